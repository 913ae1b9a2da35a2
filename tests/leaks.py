"""No process outlives the unit and console tests that started it.

A test that starts a process and ends only the process it holds leaves that
process's own children running when they do not die with their parent (a
``multiprocessing`` daemon whose parent was SIGKILLed, a shell's background
job): orphans, re-parented to pid 1, that take a core from every test after
them and from whatever runs on the machine next (a benchmark). They are found
here, for the whole kind:

- when the session is configured, the process that runs the tests becomes a
  *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``, prctl(2)): an
  orphan of any process it started is re-parented to it, not to pid 1, so it
  stays a descendant;
- at the end of the session, after pytest's own teardown of the fixtures still
  up (``trylast``), descendants still alive after a short grace (a browser's
  helpers exit a moment after it) are leaks: they are killed, being ours, and
  the session fails with their pids and command lines;
- under pytest-xdist each worker checks itself and hands its findings to the
  controller in ``workeroutput`` (a worker's own output and exit status do not
  reach the run's), which reports them and fails the run.

Found only at the session's end: a leak keeps its core until then, and the
command line names the test only when it holds the test's ``tmp_path``.

Hooks: ``pytest_configure`` and ``pytest_sessionfinish`` go in the conftests of
tests/unit and tests/console (with both in one session the check runs once);
``pytest_testnodedown`` and ``pytest_sessionfinish``, not ``pytest_configure``,
in tests/conftest.py, which an xdist controller loads (it imports no test
directory's conftest when given tests/: the workers collect). A session whose
items include tests/e2e is not checked: the end-to-end suite's sandboxes and the
compose stack's daemons are its fixtures' and scripts' to end.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import psutil
import pytest

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
GRACE_S = 3.0  # for descendants already on their way out at the session's end
LEAKS_KEY = "process_leaks"  # in an xdist worker's workeroutput: list[str]

_armed = pytest.StashKey[bool]()
_checked = pytest.StashKey[bool]()
_from_workers = pytest.StashKey[list[str]]()


def become_subreaper() -> None:
    """Make this process the child subreaper of its descendants.

    Raises OSError off Linux or when the kernel refuses: the check could find
    nothing then, and a check that cannot fail must not pass quietly."""
    if not sys.platform.startswith("linux"):
        raise OSError("the process-leak check needs Linux's PR_SET_CHILD_SUBREAPER")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def live_descendants(*, reap: bool = False) -> list[psutil.Process]:
    """This process's descendants that are not zombies.

    ``reap``: also wait for its zombie children, which only the session's end may
    do (mid-session one may belong to a ``Popen`` that has yet to wait for it)."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
            elif reap and child.ppid() == os.getpid():
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue
    return out


def describe(proc: psutil.Process) -> str:
    """``pid N: <command line>`` (at most 300 characters of it)."""
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:300]}"
    except psutil.Error:
        return f"pid {proc.pid}: (gone)"


def end_leaks() -> list[str]:
    """Kill what outlived the session (after ``GRACE_S``) and describe it: one line
    per process, and one per process that even SIGKILL left running."""
    left = live_descendants(reap=True)
    if left:
        _, left = psutil.wait_procs(left, timeout=GRACE_S)
    lines = [describe(p) for p in left]
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(left, timeout=5)
    lines += [f"{describe(p)} (still running after SIGKILL)" for p in alive]
    live_descendants(reap=True)
    return lines


def _fail(session: pytest.Session, lines: list[str]) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = "processes left running by the tests (killed now):\n  " + "\n  ".join(lines)
    if reporter is not None:
        reporter.write_sep("=", "process leak", red=True)
        reporter.write_line(text)
    else:
        print(text, file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:  # an earlier failure or interrupt stays
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _is_xdist_controller(config: pytest.Config) -> bool:
    # Read from the options, not from xdist's "dsession" plugin, which its own
    # pytest_configure (trylast) registers after a conftest's has run.
    if hasattr(config, "workerinput"):
        return False
    option = config.option
    return bool(getattr(option, "numprocesses", None) or getattr(option, "tx", None)) or (
        getattr(option, "dist", "no") != "no"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Arm the check in the process that runs the tests (not an xdist controller:
    its children are the workers, which check themselves)."""
    if config.stash.get(_armed, False) or _is_xdist_controller(config):
        return
    become_subreaper()
    config.stash[_armed] = True


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The check (a test-running process) or the workers' findings (a controller)."""
    config = session.config
    if config.stash.get(_checked, False):
        return
    config.stash[_checked] = True
    lines = list(config.stash.get(_from_workers, []))  # an xdist controller's
    if config.stash.get(_armed, False):
        if any("e2e" in item.path.parts for item in session.items):
            # A run that takes in the end-to-end suite: its sandboxes and daemons are
            # its fixtures' and scripts' to end (a dockerd may outlive a test on purpose).
            return
        own = end_leaks()
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[LEAKS_KEY] = own  # sent to the controller after this hook
        lines += own
    if lines:
        _fail(session, lines)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """An xdist worker ended: keep the leaks it found (``workeroutput[LEAKS_KEY]``)."""
    output = getattr(node, "workeroutput", None) or {}
    config = getattr(node, "config", None)
    if config is None or not output.get(LEAKS_KEY):
        return
    worker = getattr(getattr(node, "gateway", None), "id", "?")
    found = config.stash.setdefault(_from_workers, [])
    found.extend(f"[{worker}] {line}" for line in output[LEAKS_KEY])
