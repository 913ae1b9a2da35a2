"""tests/leaks.py: a process a test leaves running fails the session and is ended."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

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
        os.waitpid(pid, 0)  # ours to reap: it was re-parented to this process
    assert pid not in {p.pid for p in live_descendants()}


LEAKING_TEST = """
import os, subprocess

def test_leaks():
    out = subprocess.run(["sh", "-c", "sleep 61 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, errors="replace", check=True)
    open(os.environ["PID_FILE"], "w").write(out.stdout)
"""

CLEAN_TEST = """
import subprocess

def test_clean():
    proc = subprocess.Popen(["sleep", "61"])
    proc.kill()
    proc.wait()
"""


def _session(
    tmp_path: Path, body: str, *args: str, run: str = "tests", e2e: str | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A pytest run laid out as this repository's: tests/conftest.py with the
    controller's hooks, tests/unit/conftest.py arming the check, the test in
    tests/unit; ``e2e``: a test module for tests/e2e, which has no conftest of
    the check. ``args``: more pytest arguments (``-n 2``); ``run``: the path
    given to pytest, from ``tmp_path``."""
    root = tmp_path / "tests"
    (root / "unit").mkdir(parents=True)
    (root / "conftest.py").write_text(
        "from tests.leaks import pytest_sessionfinish, pytest_testnodedown  # noqa: F401\n"
    )
    (root / "unit" / "conftest.py").write_text(
        "from tests.leaks import pytest_configure, pytest_sessionfinish  # noqa: F401\n"
    )
    (root / "unit" / "test_it.py").write_text(textwrap.dedent(body))
    if e2e is not None:
        (root / "e2e").mkdir()
        (root / "e2e" / "test_call.py").write_text(textwrap.dedent(e2e))
    pid_file = tmp_path / "pid"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PID_FILE": str(pid_file)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, run],
        cwd=tmp_path, env=env, capture_output=True, text=True, errors="replace", timeout=120,
        check=False,
    )  # fmt: skip
    return done, pid_file


@pytest.mark.parametrize(
    ("args", "run"),
    [
        ((), "tests"),
        (("-n", "2", "--dist", "loadfile"), "tests"),
        # the controller then loads tests/unit's conftest too, before xdist is set up
        (("-n", "2", "--dist", "loadfile"), "tests/unit"),
    ],
    ids=["one", "xdist", "xdist-unit-path"],
)
def test_a_session_whose_test_leaves_a_process_running_fails_and_ends_it(
    tmp_path: Path, args: tuple[str, ...], run: str
) -> None:
    done, pid_file = _session(tmp_path, LEAKING_TEST, *args, run=run)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout  # the test passed; the session did not
    assert "process leak" in done.stdout and "sleep 61" in done.stdout, done.stdout
    assert not psutil.pid_exists(int(pid_file.read_text()))


@pytest.mark.parametrize("args", [(), ("-n", "2", "--dist", "loadfile")], ids=["one", "xdist"])
def test_a_session_that_ends_what_it_starts_passes(tmp_path: Path, args: tuple[str, ...]) -> None:
    done, _ = _session(tmp_path, CLEAN_TEST, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "process leak" not in done.stdout


def test_a_failed_session_keeps_its_own_exit_status(tmp_path: Path) -> None:
    done, _ = _session(tmp_path, LEAKING_TEST + "\n\ndef test_fails():\n    assert False\n")
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout
    assert "process leak" in done.stdout
    interrupted, _ = _session(
        tmp_path / "x", LEAKING_TEST + "\n\ndef test_stops():\n    raise KeyboardInterrupt\n"
    )
    assert interrupted.returncode == 2, interrupted.stdout  # interrupted, not "failed"


def test_a_run_that_takes_in_the_end_to_end_suite_is_not_checked(tmp_path: Path) -> None:
    done, pid_file = _session(tmp_path, LEAKING_TEST, e2e="def test_call():\n    pass\n")
    pid = int(pid_file.read_text())
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "process leak" not in done.stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
