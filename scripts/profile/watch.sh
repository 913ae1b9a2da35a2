#!/bin/bash
# usage: watch.sh BENCHPID OUTPREFIX  — waits for the bench's `ivr.cli serve` child, py-spies it, snapshots probe counts
BENCH=$1; OUT=$2
while true; do
  PID=$(pgrep -P "$BENCH" -f "ivr.cli serve" | head -1)
  [ -n "$PID" ] && break
  kill -0 "$BENCH" 2>/dev/null || exit 1
  sleep 0.2
done
echo "controller $PID" > "$OUT.pid"
"$(dirname "$0")/threads.sh" "$PID" "$OUT.threads.txt" &
"${PY_SPY:-py-spy}" record -p "$PID" -r 200 -f raw -o "$OUT.collapsed.txt" > "$OUT.pyspy.log" 2>&1 &
while kill -0 "$PID" 2>/dev/null; do
  [ -f "$OUT.probe.json" ] && { python3 -c "import json,sys; d=json.load(open('$OUT.probe.json')); print(json.dumps(d))" >> "$OUT.timeline.jsonl" 2>/dev/null; }
  # CPU time of the controller (utime+stime ticks)
  awk -v t=$(date +%s.%N) '{print t, $14+$15}' /proc/$PID/stat >> "$OUT.cpu.txt" 2>/dev/null
  sleep 2
done
wait
