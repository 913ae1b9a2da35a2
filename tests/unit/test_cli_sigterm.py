"""SIGTERM ends an ``ivr`` command as Ctrl-C does: what it started stops with it.

Found by the desk's newcomer review: ``ivr desk agent 7001`` killed with SIGTERM (a
tester's ``kill``, a terminal closing) died at once and left its sipp phone holding the
agent's port, so the next ``ivr desk agent 7001`` said the port was taken. The kind:
every command that runs a sipp phone in the foreground (``ivr cases phone``, ``ivr desk
agent``); tested with the one that needs no Asterisk to start (a support extension's
sipp only listens), through the real ``ivr`` executable and the real sipp.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.sandbox.render import support_port
from ivr.settings import Settings

OFFSET = 17300  # no sandbox of the tests' uses it (docs/testing.md lists the offsets)


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux's /proc), so a test can end what it started."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


# Ctrl-C at a terminal reaches a foreground command whose SIGINT is at its default. A
# runner started in the background by a non-interactive shell (``cmd &``: bash sets
# SIGINT and SIGQUIT to "ignore" for it, and an ignored signal stays ignored across
# fork and exec) passed that on to ``ivr``, which then never saw the signal: the
# SIGINT case timed out in such runs only (local CI runs started with ``&``). The
# command starts with SIGINT at its default, whatever the runner's.
AS_AT_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def until(check: object, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_support_phone_stops_its_sipp_when_the_command_is_ended(
    tmp_path: Path, sig: signal.Signals
) -> None:
    env = {**os.environ, "CITAS_PORT_OFFSET": str(OFFSET), "CITAS_INSTANCE": "sigterm-test",
           "CITAS_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    port = support_port(Settings.from_env(env), "6001")
    assert not port_taken(port), f"port {port} is in use before the test"
    ivr = Path(sys.executable).with_name("ivr")
    children: list[int] = []
    command = [str(ivr), "cases", "phone", "6001", "--timeout", "60"]
    proc = subprocess.Popen([sys.executable, "-c", AS_AT_A_TERMINAL, *command], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")  # fmt: skip
    try:
        assert until(lambda: port_taken(port), 30), "sipp never listened on the support port"
        children = children_of(proc.pid)  # sipp: ended by the finally below if the test fails
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 130, out
        assert "stopped" in out
        assert until(lambda: not port_taken(port), 10), f"sipp still holds port {port} after {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
