"""CPU of each thread of a process over a window: ``threads.py PID SECONDS``.

Prints one line per thread that used CPU, busiest first: thread id, name, ms of
CPU per second (utime + stime from /proc/PID/task/*/stat; stime, the kernel's
part, apart), and its voluntary and involuntary context switches per second
(/proc/PID/task/*/status: a voluntary one is the thread going to sleep, so about
one per wake-up of an event loop); then the process's read and write system calls
per second (/proc/PID/io syscr, syscw).
Used by step.sh.
"""

import os
import sys
import time


def snapshot(pid: int) -> dict[str, tuple[str, int, int, int, int]]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (
            name,
            int(fields[11]) + int(fields[12]),
            int(fields[12]),
            int(status["voluntary_ctxt_switches"]),
            int(status["nonvoluntary_ctxt_switches"]),
        )
    return out


def syscalls(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    return int(io["syscr"]), int(io["syscw"])


def main() -> None:
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    before, io_before, start = snapshot(pid), syscalls(pid), time.monotonic()
    time.sleep(seconds)
    after, io_after, elapsed = snapshot(pid), syscalls(pid), time.monotonic() - start
    ticks = os.sysconf("SC_CLK_TCK")
    rows = []
    for tid, (name, cpu, sys_cpu, vol, invol) in after.items():
        _, cpu0, sys0, vol0, invol0 = before.get(tid, (name, 0, 0, 0, 0))
        used = (cpu - cpu0) / ticks
        if used > 0:
            rate = (
                used * 1000 / elapsed,
                (sys_cpu - sys0) * 1000 / ticks / elapsed,
                (vol - vol0) / elapsed,
                (invol - invol0) / elapsed,
            )
            rows.append((rate, tid, name))
    for (ms, sys_ms, vol, invol), tid, name in sorted(rows, reverse=True):
        print(
            f"{tid:>8} {name:20} {ms:7.1f} ms/s (system {sys_ms:6.1f})"
            f" {vol:8.1f} vcs/s {invol:7.1f} ics/s"
        )
    reads, writes = ((b - a) / elapsed for a, b in zip(io_before, io_after, strict=True))
    print(f"syscalls: {reads:.1f} reads/s, {writes:.1f} writes/s")


if __name__ == "__main__":
    main()
