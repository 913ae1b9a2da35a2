"""CPU and memory of the processes a step watches, each as a process *tree*.

The controller with ``CITAS_CONTROLLERS=N`` is ``ivr serve`` and its N-1 voice
workers; PostgreSQL is the postmaster and one backend per connection. What a
call costs them is the sum over every process of the tree, children of
children included (``psutil.Process.children(recursive=True)``), and over every
process that lived during the step: one that started during the step counts
from zero, one that ended counts up to its last sample (at most
``SAMPLE_EVERY_S`` of its CPU is lost). Processes are keyed by (pid, start
time), so a pid the kernel reuses is a new process.

An average over the step hides its busiest moment: a citas step at 400 calls
averaged 71-80 % of the machine while its busiest seconds were 93-99 % (runs
t33, t35), where each controller's main thread was runnable but waited for a
core 450-740 ms in every second (docs/PERFORMANCE.md, runs t29-t36). So every
sample also keeps the machine's busy and total CPU time (``psutil.cpu_times()``)
and, for the trees named in ``waits``, the time each of their threads waited on
a run queue (the second field of ``/proc/<pid>/task/<tid>/schedstat``, ns; the
kernel's scheduler statistics, Documentation/scheduler/sched-stats.rst): the
busiest window of ``PEAK_WINDOW_S`` says who had the cores then, and who
waited. The wait is summed over every thread of the tree (the main threads,
the reader and writer threads, every controller process), so it can pass
1000 ms per second.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

from ivr.bench.stats import ProcessUsage

ProcKey = tuple[int, float]  # (pid, create_time in epoch seconds)
ThreadKey = tuple[int, float, int]  # (pid, create_time, tid)
K = TypeVar("K", bound=Hashable)
PEAK_WINDOW_S = 2.0  # the busiest window of a step: at least this long
PROC = Path("/proc")


def runqueue_waits(pid: int, proc_root: Path = PROC) -> dict[int, float] | None:
    """Each thread's run-queue wait (runnable, not running) since it started, in
    seconds, by thread id: the second field of ``/proc/<pid>/task/<tid>/schedstat``
    (ns). None when the kernel keeps no schedstat (no ``/proc/<pid>/schedstat``:
    built without ``CONFIG_SCHED_INFO``) or the process is gone. A thread that
    ends between the listing and its read is left out."""
    base = proc_root / str(pid)
    try:
        if len((base / "schedstat").read_text().split()) < 2:
            return None
        tasks = list((base / "task").iterdir())
    except OSError:
        return None
    waits: dict[int, float] = {}
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        if len(fields) >= 2 and task.name.isdigit():
            waits[int(task.name)] = int(fields[1]) / 1e9
    return waits


@dataclass(frozen=True)
class Moment:
    """One sample: monotonic seconds; the machine's busy and total CPU seconds
    (all cores, from the kernel's counters); per tree its CPU seconds and its
    threads' run-queue wait seconds (cumulative, from the window's start)."""

    t: float
    machine_busy_s: float
    machine_total_s: float
    cpu_s: Mapping[str, float]
    wait_s: Mapping[str, float]


@dataclass(frozen=True)
class Peak:
    """The busiest window of a step: its length (s), the machine's CPU busy (% of
    all cores), each tree's cores used, and each waiting-measured tree's run-queue
    wait (ms per second, summed over all its threads)."""

    seconds: float
    machine_pct: float
    cores: Mapping[str, float] = field(default_factory=dict)
    wait_ms_per_s: Mapping[str, float] = field(default_factory=dict)


def busiest(moments: Sequence[Moment], cores: int, window_s: float = PEAK_WINDOW_S) -> Peak | None:
    """The window of consecutive samples, at least ``window_s`` long by the
    clock, in which the machine was busiest (pure); None with fewer samples
    than one window. Its shares are ratios of the kernel's counters (busy over
    total CPU time; a window lasts total / ``cores`` seconds), so a sample read
    late does not inflate them.

    >>> ms = [Moment(0, 0.0, 0.0, {"a": 0.0}, {"a": 0.0}),
    ...       Moment(2, 1.0, 4.0, {"a": 0.5}, {"a": 0.2}),
    ...       Moment(4, 4.8, 8.0, {"a": 2.5}, {"a": 1.8})]
    >>> p = busiest(ms, cores=2)
    >>> p.seconds, p.machine_pct, p.cores["a"], p.wait_ms_per_s["a"]
    (2.0, 95.0, 1.0, 800.0)
    """
    best: Peak | None = None
    j = 0
    for i in range(len(moments)):
        while j < len(moments) and moments[j].t - moments[i].t < window_s:
            j += 1
        if j == len(moments):
            break
        a, b = moments[i], moments[j]
        total = b.machine_total_s - a.machine_total_s
        if total <= 0:
            continue  # the counters did not move (a clock step): no share to give
        wall = total / cores
        pct = 100.0 * (b.machine_busy_s - a.machine_busy_s) / total
        if best is None or pct > best.machine_pct:
            best = Peak(
                seconds=round(wall, 3),
                machine_pct=round(pct, 1),
                cores={k: round(max(0.0, b.cpu_s[k] - a.cpu_s.get(k, 0.0)) / wall, 3)
                       for k in b.cpu_s},
                wait_ms_per_s={k: round(max(0.0, b.wait_s[k] - a.wait_s.get(k, 0.0)) * 1000 / wall, 1)
                               for k in b.wait_s},
            )  # fmt: skip
    return best


def machine_cpu_s() -> tuple[float, float]:
    """The machine's (busy, total) CPU seconds over all cores since boot, from
    ``/proc/stat`` through psutil: busy is all but idle and iowait; guest time is
    already inside user time on Linux, so it is not counted twice."""
    t = psutil.cpu_times()
    guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    total = float(sum(t)) - guest
    return total - t.idle - getattr(t, "iowait", 0.0), total


def tree_cpu_seconds(start: Mapping[K, float], last: Mapping[K, float]) -> float:
    """CPU seconds a tree used between two snapshots (pure); also its threads'
    run-queue wait, keyed by thread instead of process.

    ``start``: each process's CPU (user + system, s) when the window opened;
    ``last``: the latest CPU seen of every process seen since (alive or not).
    A process absent from ``start`` started inside the window and counts whole;
    one absent from ``last`` was never seen again and adds nothing.

    >>> tree_cpu_seconds({(1, 0.0): 5.0}, {(1, 0.0): 7.5, (2, 9.0): 1.0})
    3.5
    """
    return sum(max(0.0, cpu - start.get(key, 0.0)) for key, cpu in last.items())


@dataclass
class _Tree:
    roots: list[psutil.Process]  # one, or a cluster's nodes' (their Asterisks, controllers)
    children: bool
    start: dict[ProcKey, float]
    last: dict[ProcKey, float]
    rss_peak: int = 0
    threads_peak: int = 0
    fds_peak: int = 0
    processes_peak: int = 0
    # Run-queue wait (s) per thread, where measured (``waits``): as ``start``/``last``,
    # by thread, so a thread that ends takes only its own wait with it.
    wait_start: dict[ThreadKey, float] = field(default_factory=dict)
    wait_last: dict[ThreadKey, float] = field(default_factory=dict)
    measures_wait: bool = False


class UsageMeter:
    """CPU seconds over a window, peak RSS (summed over the tree), peak threads and
    file descriptors, per watched process tree, and the window's busiest
    ``PEAK_WINDOW_S`` (``peak()``). ``procs``: name → its root process, or the
    roots of several processes counted as one part (a cluster's Asterisks: the
    sums over them); ``trees``: the names counted with their children (else a
    root alone); ``waits``: the trees whose threads' run-queue wait is read too
    (a file per thread and sample: the controllers, not Asterisk's hundreds of
    threads)."""

    def __init__(
        self,
        procs: Mapping[str, psutil.Process | Sequence[psutil.Process] | None],
        *,
        trees: frozenset[str] = frozenset(),
        waits: frozenset[str] = frozenset(),
    ) -> None:
        self.trees = {
            name: _Tree(roots, name in trees, {}, {}, measures_wait=name in waits)
            for name, proc in procs.items()
            if (roots := [proc] if isinstance(proc, psutil.Process) else list(proc or ()))
        }
        self.moments: list[Moment] = []
        self.t0 = self.t1 = time.monotonic()
        self.sample()
        for tree in self.trees.values():
            tree.start = dict(tree.last)
            tree.wait_start = dict(tree.wait_last)
        self.moments = [self._moment()]

    def sample(self) -> None:
        self.t1 = time.monotonic()
        for tree in self.trees.values():
            members = list(tree.roots)
            if tree.children:
                for root in tree.roots:
                    try:
                        members += root.children(recursive=True)
                    except psutil.Error:
                        pass
            rss = threads = fds = alive = 0
            for proc in members:
                try:
                    with proc.oneshot():
                        key = (proc.pid, proc.create_time())
                        times = proc.cpu_times()
                        rss += proc.memory_info().rss
                        threads += proc.num_threads()
                        try:
                            fds += proc.num_fds()
                        except psutil.AccessDenied:
                            pass
                except psutil.Error:
                    continue
                alive += 1
                tree.last[key] = times.user + times.system
                if tree.measures_wait:
                    waits = runqueue_waits(proc.pid)
                    for tid, wait in (waits or {}).items():
                        tree.wait_last[(*key, tid)] = wait
            tree.rss_peak = max(tree.rss_peak, rss)
            tree.threads_peak = max(tree.threads_peak, threads)
            tree.fds_peak = max(tree.fds_peak, fds)
            tree.processes_peak = max(tree.processes_peak, alive)
        if self.moments:
            self.moments.append(self._moment())

    def _moment(self) -> Moment:
        busy, total = machine_cpu_s()
        return Moment(
            t=self.t1,
            machine_busy_s=busy,
            machine_total_s=total,
            cpu_s={n: tree_cpu_seconds(t.start, t.last) for n, t in self.trees.items()},
            wait_s={
                n: tree_cpu_seconds(t.wait_start, t.wait_last)
                for n, t in self.trees.items()
                if t.measures_wait and t.wait_last
            },
        )

    def peak(self) -> Peak | None:
        """The busiest ``PEAK_WINDOW_S`` of the samples so far (None: too few)."""
        return busiest(self.moments, psutil.cpu_count() or 1)

    def result(self) -> dict[str, ProcessUsage]:
        peak = self.peak()
        return {
            name: ProcessUsage(
                cpu_s=round(tree_cpu_seconds(tree.start, tree.last), 3),
                rss_peak_mb=round(tree.rss_peak / 2**20, 1),
                window_s=round(self.t1 - self.t0, 3),
                threads_peak=tree.threads_peak,
                fds_peak=tree.fds_peak,
                processes_peak=tree.processes_peak,
                runqueue_wait_s=(
                    round(tree_cpu_seconds(tree.wait_start, tree.wait_last), 3)
                    if tree.measures_wait and tree.wait_last
                    else None
                ),
                peak_cores=peak.cores.get(name) if peak else None,
                peak_wait_ms_per_s=peak.wait_ms_per_s.get(name) if peak else None,
            )
            for name, tree in self.trees.items()
            if tree.last
        }
