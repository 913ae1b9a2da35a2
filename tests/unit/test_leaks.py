"""tests/leaks.py: a process a test leaves running fails the session and is ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from tests.leaks import live_descendants

REPO = Path(__file__).resolve().parents[2]


def test_an_orphan_of_a_test_s_process_stays_this_session_s_descendant() -> None:
    # sh starts sleep in the background and exits: sleep is orphaned at once.
    out = subprocess.run(
        ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    )
    pid = int(out.stdout)
    try:
        assert psutil.Process(pid).ppid() == os.getpid()  # not pid 1's
        assert pid in {p.pid for p in live_descendants()}
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid in {p.pid for p in live_descendants()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid not in {p.pid for p in live_descendants()}
    assert not psutil.pid_exists(pid)  # reaped, not left a zombie


def _session(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "conftest.py").write_text(
        "from tests.leaks import pytest_configure, pytest_sessionfinish  # noqa: F401\n"
    )
    (tmp_path / "test_it.py").write_text(textwrap.dedent(body))
    pid_file = tmp_path / "pid"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PID_FILE": str(pid_file)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, errors="replace", timeout=120,
        check=False,
    )  # fmt: skip
    return done, pid_file


def test_a_session_whose_test_leaves_a_process_running_fails_and_ends_it(tmp_path: Path) -> None:
    done, pid_file = _session(
        tmp_path,
        """
        import os, subprocess

        def test_leaks():
            out = subprocess.run(["sh", "-c", "sleep 61 >/dev/null 2>&1 & echo $!"],
                                 capture_output=True, text=True, check=True)
            open(os.environ["PID_FILE"], "w").write(out.stdout)
        """,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout  # the test passed; the session did not
    assert "process leak" in done.stdout and "sleep 61" in done.stdout, done.stdout
    assert not psutil.pid_exists(int(pid_file.read_text()))


def test_a_session_that_ends_what_it_starts_passes(tmp_path: Path) -> None:
    done, _ = _session(
        tmp_path,
        """
        import subprocess

        def test_clean():
            proc = subprocess.Popen(["sleep", "61"])
            proc.kill()
            proc.wait()
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "process leak" not in done.stdout
