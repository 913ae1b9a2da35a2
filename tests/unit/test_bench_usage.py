"""The bench's busiest window and the controllers' run-queue wait (ivr.bench.usage)."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import ivr.bench.usage as usage
from ivr.bench.usage import Moment, UsageMeter, busiest, runqueue_wait_s


def test_the_modules_examples_hold() -> None:
    result = doctest.testmod(usage)
    assert result.attempted >= 2 and result.failed == 0


def _moments(*rows: tuple[float, float, float, float]) -> list[Moment]:
    """(t, machine busy s, tree "c" CPU s, tree "c" wait s) per sample."""
    return [Moment(t, busy, {"c": cpu}, {"c": wait}) for t, busy, cpu, wait in rows]


def test_the_busiest_window_is_found_among_quieter_ones() -> None:
    ms = _moments(
        (0.0, 0.0, 0.0, 0.0),
        (2.0, 1.0, 0.2, 0.0),  # 25 % of two cores
        (4.0, 4.9, 1.4, 1.5),  # 97.5 %: the peak, the controller waited 750 ms/s
        (6.0, 6.5, 1.8, 1.6),  # 40 %
    )
    peak = busiest(ms, cores=2)
    assert peak is not None
    assert (peak.seconds, peak.machine_pct) == (2.0, 97.5)
    assert peak.cores == {"c": 0.6}
    assert peak.wait_ms_per_s == {"c": 750.0}


@pytest.mark.parametrize(
    ("times", "window"),
    [
        ([], 2.0),
        ([0.0], 2.0),
        ([0.0, 0.5, 1.0, 1.9], 2.0),  # the samples span less than one window
    ],
)
def test_fewer_samples_than_one_window_give_no_peak(times: list[float], window: float) -> None:
    ms = [Moment(t, t, {}, {}) for t in times]
    assert busiest(ms, cores=2, window_s=window) is None


def test_a_window_spans_at_least_its_length_over_irregular_samples() -> None:
    # samples every 0.5 s, then a late one: each window reaches the first sample >= 2 s on
    ms = _moments(
        (0.0, 0.0, 0.0, 0.0), (0.5, 0.9, 0.0, 0.0), (1.0, 1.8, 0.0, 0.0),
        (1.5, 2.7, 0.0, 0.0), (2.0, 3.6, 0.0, 0.0), (5.0, 4.0, 0.0, 0.0),
    )  # fmt: skip
    peak = busiest(ms, cores=2)
    assert peak is not None
    assert peak.seconds == 2.0 and peak.machine_pct == 90.0


def test_a_wait_that_falls_with_an_ended_thread_counts_as_none() -> None:
    ms = _moments((0.0, 0.0, 0.0, 2.0), (2.0, 2.0, 1.0, 1.0))
    peak = busiest(ms, cores=1)
    assert peak is not None and peak.wait_ms_per_s == {"c": 0.0}


def _fake_task(root: Path, pid: int, tid: int, schedstat: str) -> None:
    task = root / str(pid) / "task" / str(tid)
    task.mkdir(parents=True)
    (task / "schedstat").write_text(schedstat)


def test_the_wait_is_summed_over_a_processs_threads(tmp_path: Path) -> None:
    _fake_task(tmp_path, 40, 40, "123000000 250000000 17\n")
    _fake_task(tmp_path, 40, 41, "5000000 500000000 3\n")
    _fake_task(tmp_path, 41, 41, "1 999999999999 1\n")  # another process: not counted
    assert runqueue_wait_s(40, tmp_path) == pytest.approx(0.75)


@pytest.mark.parametrize("schedstat", ["", "123\n"])
def test_a_kernel_without_the_field_gives_none(tmp_path: Path, schedstat: str) -> None:
    _fake_task(tmp_path, 40, 40, schedstat)
    assert runqueue_wait_s(40, tmp_path) is None


def test_a_process_that_is_gone_gives_none(tmp_path: Path) -> None:
    assert runqueue_wait_s(40, tmp_path) is None


def test_a_real_busy_tree_has_a_peak_and_a_measured_wait() -> None:
    # The bench's wait column needs the kernel's schedstat (CONFIG_SCHED_INFO).
    assert Path(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat").exists()
    # Two processes burning CPU: the meter sees the tree's CPU in its busiest
    # window and reads the threads' real run-queue wait, for the tree asked only.
    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<2.5: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    try:
        meter = UsageMeter(
            {"controller": psutil.Process(procs[0].pid), "other": psutil.Process(procs[1].pid)},
            waits=frozenset({"controller"}),
        )
        while any(p.poll() is None for p in procs):
            meter.sample()
            time.sleep(0.1)
        meter.sample()
        result = meter.result()
        peak = meter.peak()
    finally:
        for p in procs:
            p.wait(timeout=30)
    assert peak is not None and peak.seconds >= 2.0
    assert 0.0 < peak.machine_pct <= 100.0
    controller = result["controller"]
    assert controller.cpu_s >= 2.0
    assert controller.runqueue_wait_s is not None and controller.runqueue_wait_s >= 0.0
    # a busy machine may give it little of its busiest window, never more than one core
    assert controller.peak_cores is not None and 0.0 < controller.peak_cores <= 1.05
    assert controller.peak_wait_ms_per_s is not None
    assert result["other"].runqueue_wait_s is None  # not asked for
    assert result["other"].peak_wait_ms_per_s is None
