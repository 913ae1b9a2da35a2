#!/bin/bash
# threads.sh PID OUT: every 2 s, per-thread CPU ticks (utime+stime) of PID
P=$1; OUT=$2
while kill -0 $P 2>/dev/null; do
  T=$(date +%s.%N)
  for t in /proc/$P/task/*; do echo "$T $(basename $t) $(awk '{print $14+$15}' $t/stat 2>/dev/null)"; done >> $OUT
  sleep 2
done
