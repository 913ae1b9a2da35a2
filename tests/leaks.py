"""No process outlives the unit and console tests that started it.

A test that starts a process and ends only the process it holds leaves that
process's own children running when they do not die with their parent (a
``multiprocessing`` daemon whose parent was SIGKILLed, a shell's background
job): orphans, re-parented to pid 1, that take a core from every test after
them and from whatever runs on the machine next (a benchmark). They are found
here, for the whole kind, in two steps:

- at the start of the session the pytest process becomes a *child subreaper*
  (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``, proc(5), prctl(2)): an orphan of
  any process it started is re-parented to it, not to pid 1, so it stays a
  descendant;
- at the end of the session, after every fixture's teardown, any live
  descendant is a leak: the session fails with their pids and command lines
  (which name the test's ``tmp_path``), and they are killed, being ours.

Zombies re-parented to the session are reaped there. The conftests of
tests/unit and tests/console take the two hooks from here; with both in one
session the check runs once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import psutil
import pytest

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_state = {"armed": False, "checked": False}


def become_subreaper() -> None:
    """Make this process the child subreaper of its descendants (Linux only).

    Raises OSError when the kernel refuses: the check could not find anything
    then, and a check that cannot fail must not pass quietly."""
    if _state["armed"]:
        return
    if not sys.platform.startswith("linux"):
        raise OSError("the process-leak check needs Linux's PR_SET_CHILD_SUBREAPER")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")
    _state["armed"] = True


def live_descendants() -> list[psutil.Process]:
    """This process's descendants that are not zombies; zombie children are reaped."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                if child.ppid() == os.getpid():
                    os.waitpid(child.pid, os.WNOHANG)
                continue
            out.append(child)
        except (psutil.Error, ChildProcessError):
            continue
    return out


def describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid}: {' '.join(proc.cmdline())[:300]}"
    except psutil.Error:
        return f"pid {proc.pid}: (gone)"


def pytest_configure(config: pytest.Config) -> None:
    become_subreaper()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _state["checked"] or not _state["armed"]:
        return
    _state["checked"] = True
    is_worker = hasattr(session.config, "workerinput")
    if not is_worker and session.config.pluginmanager.has_plugin("dsession"):
        return  # the xdist controller runs no test (its workers are its children)
    left = live_descendants()
    if not left:
        return
    lines = [describe(p) for p in left]
    for proc in left:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=5)
    live_descendants()  # reap what just died
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = "processes left running by the tests (killed now):\n  " + "\n  ".join(lines)
    if reporter is not None:
        reporter.write_sep("=", "process leak", red=True)
        reporter.write_line(text)
    else:
        print(text, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
