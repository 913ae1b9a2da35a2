"""CPU of each thread of a process over a window: ``threads.py PID SECONDS``.

Prints one line per thread that used CPU, busiest first: thread id, name, ms of
CPU per second (utime + stime from /proc/PID/task/*/stat). Used by step.sh.
"""

import os
import sys
import time


def snapshot(pid: int) -> dict[str, tuple[str, int]]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (name, int(fields[11]) + int(fields[12]))
    return out


def main() -> None:
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    before, start = snapshot(pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = snapshot(pid), time.monotonic() - start
    ticks = os.sysconf("SC_CLK_TCK")
    rows = []
    for tid, (name, cpu) in after.items():
        used = (cpu - before.get(tid, (name, 0))[1]) / ticks
        if used > 0:
            rows.append((used * 1000 / elapsed, tid, name))
    for ms, tid, name in sorted(rows, reverse=True):
        print(f"{tid:>8} {name:20} {ms:7.1f} ms/s")


if __name__ == "__main__":
    main()
