"""CPU and memory of the processes a step watches, each as a process *tree*.

The controller with ``CITAS_CONTROLLERS=N`` is ``ivr serve`` and its N-1 voice
workers; PostgreSQL is the postmaster and one backend per connection. What a
call costs them is the sum over every process of the tree, children of
children included (``psutil.Process.children(recursive=True)``), and over every
process that lived during the step: one that started during the step counts
from zero, one that ended counts up to its last sample (at most
``SAMPLE_EVERY_S`` of its CPU is lost). Processes are keyed by (pid, start
time), so a pid the kernel reuses is a new process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

from ivr.bench.stats import ProcessUsage

ProcKey = tuple[int, float]  # (pid, create_time in epoch seconds)


def tree_cpu_seconds(start: Mapping[ProcKey, float], last: Mapping[ProcKey, float]) -> float:
    """CPU seconds a tree used between two snapshots (pure).

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
    root: psutil.Process
    children: bool
    start: dict[ProcKey, float]
    last: dict[ProcKey, float]
    rss_peak: int = 0
    threads_peak: int = 0
    fds_peak: int = 0
    processes_peak: int = 0


class UsageMeter:
    """CPU seconds over a window, peak RSS (summed over the tree), peak threads and
    file descriptors, per watched process tree. ``trees``: name → root process,
    with its children (True) or alone (False)."""

    def __init__(
        self, procs: Mapping[str, psutil.Process | None], *, trees: frozenset[str] = frozenset()
    ) -> None:
        self.trees = {
            name: _Tree(proc, name in trees, {}, {})
            for name, proc in procs.items()
            if proc is not None
        }
        self.t0 = self.t1 = time.monotonic()
        self.sample()
        for tree in self.trees.values():
            tree.start = dict(tree.last)

    def sample(self) -> None:
        self.t1 = time.monotonic()
        for tree in self.trees.values():
            members = [tree.root]
            if tree.children:
                try:
                    members += tree.root.children(recursive=True)
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
            tree.rss_peak = max(tree.rss_peak, rss)
            tree.threads_peak = max(tree.threads_peak, threads)
            tree.fds_peak = max(tree.fds_peak, fds)
            tree.processes_peak = max(tree.processes_peak, alive)

    def result(self) -> dict[str, ProcessUsage]:
        return {
            name: ProcessUsage(
                cpu_s=round(tree_cpu_seconds(tree.start, tree.last), 3),
                rss_peak_mb=round(tree.rss_peak / 2**20, 1),
                window_s=round(self.t1 - self.t0, 3),
                threads_peak=tree.threads_peak,
                fds_peak=tree.fds_peak,
                processes_peak=tree.processes_peak,
            )
            for name, tree in self.trees.items()
            if tree.last
        }
