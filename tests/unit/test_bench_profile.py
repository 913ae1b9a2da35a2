"""ivr.bench.profile: py-spy on a real Python process, the shares, the flame graph."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ivr.bench.profile import (
    ProfilerError,
    area_of,
    by_area,
    by_process,
    frame_name,
    is_waiting,
    merged,
    profiling,
    read_collapsed,
    render_svg,
    top_frames,
    top_self,
    under,
)

# A process with a known shape: the main thread burns CPU in burn_json (json
# encoding) two thirds of the time and in burn_sum one third; a second thread
# only ever waits on a queue (it must not show up as work); a child process
# (--subprocesses) burns in child_spin.
TARGET = textwrap.dedent(
    """
    import json, multiprocessing, queue, sys, threading, time

    def waiter(q):
        q.get()

    def child_spin():
        end = time.monotonic() + 60
        while time.monotonic() < end:
            sum(range(500))

    def burn_json():
        json.dumps({"k": list(range(200))})

    def burn_sum():
        sum(range(2000))

    if __name__ == "__main__":
        q = queue.Queue()
        threading.Thread(target=waiter, args=(q,), daemon=True).start()
        child = multiprocessing.get_context("fork").Process(target=child_spin, daemon=True)
        child.start()
        print("ready", flush=True)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            t = time.monotonic()
            while time.monotonic() - t < 0.002:
                burn_json()
            t = time.monotonic()
            while time.monotonic() - t < 0.001:
                burn_sum()
    """
)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    # A session of its own: its forked child (a daemon, which a killed parent does not
    # end) goes with its process group, not 60 s of a core later.
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, errors="replace",
        cwd=tmp_path, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        _gone_within(proc.pid, 5.0)


def _gone_within(pgid: int, seconds: float) -> None:
    """Wait until no live process of group ``pgid`` is left (a zombie waiting for
    whatever reaps orphans here runs nothing). Raises AssertionError naming what is
    left after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for p in psutil.process_iter(["pid", "status"]):
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    left.append(p.pid)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} still runs {left}")
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_profiling_a_real_process(target: subprocess.Popen[str], tmp_path: Path) -> None:
    out = tmp_path / "results" / "flame-smoke-ari-160.svg"
    started = time.monotonic()
    with profiling(target.pid, out, seconds=30, rate=100) as profile:
        time.sleep(3)  # the block ends first: py-spy is stopped and writes what it has
    assert time.monotonic() - started < 25
    assert profile.svg == out and profile.collapsed == out.with_suffix(".collapsed.txt")

    stacks = read_collapsed(profile.collapsed)
    assert sum(stacks.values()) > 50  # about 3 s at 100 Hz, two processes
    shares = {frame.split(" ")[0]: (own, cum) for frame, own, cum in top_frames(stacks, 200)}
    json_cum, sum_cum = shares["burn_json"][1], shares["burn_sum"][1]
    assert json_cum > sum_cum > 0  # 2:1 by design; loose, the machine is shared
    assert "child_spin" in shares  # the child process was sampled too
    processes = by_process(stacks)
    assert target.pid in processes and len(processes) == 2
    (child,) = set(processes) - {target.pid}
    child_frames = {f.split(" ")[0] for s in processes[child] for f in s}
    assert "child_spin" in child_frames and "burn_json" not in child_frames
    assert "waiter" not in shares  # the thread blocked in q.get() is not work
    with_waits = read_collapsed(profile.collapsed, working=False)
    assert sum(with_waits.values()) >= sum(stacks.values())

    tree = ET.parse(out)  # the SVG is well-formed XML
    titles = [t.text or "" for t in tree.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("burn_json") for t in titles)


def test_profiling_a_process_that_is_gone(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(ProfilerError, match=f"pid {dead.pid}"):
        with profiling(dead.pid, tmp_path / "f.svg", seconds=2):
            pass


def test_the_blocks_exception_wins(target: subprocess.Popen[str], tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with profiling(target.pid, tmp_path / "f.svg", seconds=5, rate=50):
            raise KeyError("step failed")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("_run_once (asyncio/base_events.py:1922)", "_run_once (asyncio/base_events.py)"),
        ("<module> (ivr/cli.py:461)", "<module> (ivr/cli.py)"),
        ("_run_code (<frozen runpy>:88)", "_run_code (<frozen runpy>)"),
        ("no location", "no location"),
    ],
)
def test_frame_name_drops_the_line(raw: str, name: str) -> None:
    assert frame_name(raw) == name


def _line_of(module_file: str, needle: str) -> int:
    """The line number of ``needle`` in a stdlib file (versions move lines)."""
    import importlib.util

    spec = importlib.util.find_spec(module_file)
    assert spec is not None and spec.origin is not None
    for n, line in enumerate(Path(spec.origin).read_text().splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("module", "file", "needle", "waiting"),
    [
        ("concurrent.futures.thread", "concurrent/futures/thread.py", "work_queue.get(", True),
        ("concurrent.futures.thread", "concurrent/futures/thread.py", "work_item.run()", False),
        ("selectors", "selectors.py", "self._selector.poll(", True),
        ("json.encoder", "json/encoder.py", "def iterencode", False),
        ("threading", "threading.py", "waiter.acquire(", True),
    ],
)
def test_is_waiting_reads_the_source_line(
    module: str, file: str, needle: str, waiting: bool
) -> None:
    frame = f"f ({file}:{_line_of(module, needle)})"
    assert is_waiting(frame) is waiting


def test_is_waiting_unknown_file() -> None:
    assert is_waiting("f (nowhere/at_all.py:3)") is False
    assert is_waiting("no location") is False


STACKS = {
    ("main (app.py)", "loop (asyncio/base_events.py)", "loads (json/decoder.py)"): 30,
    ("main (app.py)", "loop (asyncio/base_events.py)", "emit (logging/__init__.py)"): 10,
    ("main (app.py)", "loop (asyncio/base_events.py)"): 20,
    ("worker (threading.py)", "execute (sqlalchemy/engine/base.py)"): 40,
}


def test_top_frames_self_and_cumulative() -> None:
    rows = {f: (own, cum) for f, own, cum in top_frames(STACKS)}
    assert rows["main (app.py)"] == (0.0, 0.6)
    assert rows["loop (asyncio/base_events.py)"] == (0.2, 0.6)
    assert rows["loads (json/decoder.py)"] == (0.3, 0.3)
    assert top_self(STACKS, 2) == [
        ("execute (sqlalchemy/engine/base.py)", 0.4),
        ("loads (json/decoder.py)", 0.3),
    ]


def test_under() -> None:
    assert under(STACKS, "asyncio/") == pytest.approx(0.6)
    assert under(STACKS, "json/") == pytest.approx(0.3)
    assert under(STACKS, "nothing") == 0.0


def test_by_process() -> None:
    parent, child = (
        'process 10:"python -m ivr.cli serve"',
        'process 11:"python -m ivr.cli serve --voice-worker"',
    )
    stacks = {
        (parent, "main (a.py)", "work (a.py)"): 3,
        (parent, child, "main (a.py)", "work (a.py)"): 2,
        (parent, child, "main (a.py)", "idle (a.py)"): 1,
        ("main (a.py)", "work (a.py)"): 4,  # recorded without --subprocesses
    }
    assert by_process(stacks) == {
        10: {("main (a.py)", "work (a.py)"): 3},
        11: {("main (a.py)", "work (a.py)"): 2, ("main (a.py)", "idle (a.py)"): 1},
        None: {("main (a.py)", "work (a.py)"): 4},
    }
    assert merged(by_process(stacks)) == {
        ("main (a.py)", "work (a.py)"): 9,
        ("main (a.py)", "idle (a.py)"): 1,
    }


def test_recursion_counts_once() -> None:
    rows = top_frames({("a (x.py)", "a (x.py)", "a (x.py)"): 5, ("b (y.py)",): 5})
    assert dict((f, c) for f, _, c in rows) == {"a (x.py)": 0.5, "b (y.py)": 0.5}


@pytest.mark.parametrize(
    ("frame", "area"),
    [
        ("execute (sqlalchemy/engine/base.py)", "sqlalchemy"),
        ("_execute (aiosqlite/core.py)", "aiosqlite"),
        ("loads (json/decoder.py)", "json"),
        ("emit (logging/__init__.py)", "logging"),
        ("_run_once (asyncio/base_events.py)", "asyncio"),
        ("receive (aiohttp/client_ws.py)", "aiohttp"),
        ("_deliver (ivr/ari/stream.py)", "ivr.ari"),
        ("_save (ivr/store/records.py)", "ivr.store"),
        ("play (ivr/voice.py)", "ivr (other)"),
        ("from_line (panoramisk/message.py)", "panoramisk (AMI)"),
        ("something (else.py)", "other"),
    ],
)
def test_area_of(frame: str, area: str) -> None:
    assert area_of(frame) == area


def test_by_area() -> None:
    assert by_area(STACKS) == [
        ("sqlalchemy", 0.4),
        ("json", 0.3),
        ("asyncio", 0.2),
        ("logging", 0.1),
    ]


def test_render_svg(tmp_path: Path) -> None:
    out = tmp_path / "f.svg"
    render_svg(STACKS, out, title="t <1>")
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    assert "main (app.py) (60 samples, 60.00 %)" in titles
    assert "execute (sqlalchemy/engine/base.py) (40 samples, 40.00 %)" in titles
    rects = {
        g.find(f"{ns}title").text.rpartition(" (")[0]: float(g.find(f"{ns}rect").get("width"))  # type: ignore[union-attr]
        for g in root.iter(f"{ns}g")
    }
    assert rects["main (app.py)"] == pytest.approx(1200 * 0.6)
    assert rects["loads (json/decoder.py)"] == pytest.approx(1200 * 0.3)
