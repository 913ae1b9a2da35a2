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
from ivr.bench.stats import ProcessUsage, StepResult, step_line
from ivr.bench.usage import Moment, UsageMeter, busiest, runqueue_waits, tree_cpu_seconds


def test_the_modules_examples_hold() -> None:
    result = doctest.testmod(usage)
    assert result.attempted >= 2 and result.failed == 0


def _moments(*rows: tuple[float, float, float, float]) -> list[Moment]:
    """(t, machine busy s, tree "c" CPU s, tree "c" wait s) per sample, on two
    cores whose counters advance with the clock (total = 2 * t)."""
    return [Moment(t, busy, 2 * t, {"c": cpu}, {"c": wait}) for t, busy, cpu, wait in rows]


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
    ms = [Moment(t, t, 2 * t, {}, {}) for t in times]
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


def test_a_sample_read_late_does_not_inflate_the_share() -> None:
    # The second sample's clock was read 0.15 s before the kernel's counters (a slow
    # walk of the processes): the share is busy over total CPU time, not over the clock.
    ms = [
        Moment(0.0, 0.0, 0.0, {"c": 0.0}, {}),
        Moment(2.0, 4.3, 4.3, {"c": 2.15}, {}),  # both cores busy for 2.15 s
    ]
    peak = busiest(ms, cores=2)
    assert peak is not None
    assert peak.machine_pct == 100.0 and peak.seconds == 2.15 and peak.cores == {"c": 1.0}


def test_a_window_whose_counters_did_not_move_is_skipped() -> None:
    ms = [Moment(0.0, 5.0, 10.0, {}, {}), Moment(2.0, 5.0, 10.0, {}, {})]
    assert busiest(ms, cores=2) is None


def test_a_wait_that_falls_counts_as_none() -> None:
    ms = _moments((0.0, 0.0, 0.0, 2.0), (2.0, 2.0, 1.0, 1.0))
    peak = busiest(ms, cores=1)
    assert peak is not None and peak.wait_ms_per_s == {"c": 0.0}


def test_a_thread_that_ends_takes_only_its_own_wait() -> None:
    # Keyed by thread: the ended thread (tid 12) adds what it waited up to its last
    # sample; the living one's wait in the window is not hidden by it.
    start = {(1, 0.0, 11): 100.0, (1, 0.0, 12): 50.0}
    last = {(1, 0.0, 11): 100.5, (1, 0.0, 12): 50.25, (1, 0.0, 13): 0.125}
    assert tree_cpu_seconds(start, last) == pytest.approx(0.875)


def _fake_process(root: Path, pid: int, threads: dict[int, str], *, own: str = "1 2 3\n") -> None:
    (root / str(pid)).mkdir(parents=True)
    (root / str(pid) / "schedstat").write_text(own)
    for tid, schedstat in threads.items():
        task = root / str(pid) / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "schedstat").write_text(schedstat)


def test_each_threads_wait_is_read(tmp_path: Path) -> None:
    _fake_process(tmp_path, 40, {40: "123000000 250000000 17\n", 41: "5000000 500000000 3\n"})
    _fake_process(tmp_path, 42, {42: "1 999999999999 1\n"})  # another process: not read
    assert runqueue_waits(40, tmp_path) == {40: pytest.approx(0.25), 41: pytest.approx(0.5)}


def test_a_kernel_without_schedstat_gives_none_not_zero(tmp_path: Path) -> None:
    # CONFIG_SCHED_INFO off: no schedstat file at all, for the process or its threads
    (tmp_path / "40" / "task" / "40").mkdir(parents=True)
    assert runqueue_waits(40, tmp_path) is None


@pytest.mark.parametrize("own", ["", "123\n"])
def test_a_schedstat_without_the_field_gives_none(tmp_path: Path, own: str) -> None:
    _fake_process(tmp_path, 40, {40: own}, own=own)
    assert runqueue_waits(40, tmp_path) is None


def test_a_process_that_is_gone_gives_none(tmp_path: Path) -> None:
    assert runqueue_waits(40, tmp_path) is None


def test_a_thread_gone_between_listing_and_reading_is_left_out(tmp_path: Path) -> None:
    _fake_process(tmp_path, 40, {40: "1 2000000000 1\n"})
    (tmp_path / "40" / "task" / "41").mkdir()  # listed, its schedstat already gone
    assert runqueue_waits(40, tmp_path) == {40: 2.0}


def test_the_summary_and_the_console_line_carry_the_busiest_window() -> None:
    use = ProcessUsage(
        cpu_s=9.0, rss_peak_mb=100.0, window_s=40.0, runqueue_wait_s=20.0,
        peak_cores=0.55, peak_wait_ms_per_s=2400.0,
    )  # fmt: skip
    step = StepResult(
        line="citas", concurrency=400, placed=400, completed=400, failed=0,
        duration_s=40.0, rate_cps=40.0, max_concurrent_seen=400,
        usage={"controller": use, "asterisk": ProcessUsage(40.0, 300.0, 40.0, peak_cores=1.35)},
        host_cpu_pct=76.0, host_cpu_peak_pct=98.5,
    )  # fmt: skip
    s = step.summary()
    assert s["host_cpu_peak_pct"] == 98.5
    assert s["controller_runqueue_wait_ms_per_s"] == 500.0  # 20 s over 40 s
    assert s["controller_peak_runqueue_wait_ms_per_s"] == 2400.0
    assert (s["asterisk_peak_cores"], s["controller_peak_cores"]) == (1.35, 0.55)
    assert "busiest 2 s 98.5%: ast 1.4 / ctl 0.6 cores, ctl run-queue wait 2400.0 ms/s" in (
        step_line(step)
    )
    older = StepResult(
        line="citas", concurrency=40, placed=40, completed=40, failed=0,
        duration_s=10.0, rate_cps=4.0, max_concurrent_seen=40, host_cpu_pct=10.0,
    )  # fmt: skip
    assert older.summary()["controller_runqueue_wait_ms_per_s"] is None
    assert "busiest" not in step_line(older)


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


def test_several_roots_are_one_part_summed() -> None:
    # A cluster's Asterisks (or controllers) are one part of the bill: the meter sums
    # their CPU, their processes and their memory, each counted once (issue 14).
    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<1.0: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(3)]
    try:
        roots = [psutil.Process(p.pid) for p in procs]
        meter = UsageMeter({"asterisk": roots[:2], "alone": roots[2], "none": [], "gone": None})
        while any(p.poll() is None for p in procs):
            meter.sample()
            time.sleep(0.1)
        meter.sample()
        result = meter.result()
    finally:
        for p in procs:
            p.wait(timeout=30)
    assert set(result) == {"asterisk", "alone"}  # an empty list is no part, as None
    assert result["asterisk"].processes_peak == 2 and result["alone"].processes_peak == 1
    assert result["asterisk"].cpu_s >= 1.9  # both roots' second, not one
    assert result["alone"].cpu_s < 1.5
