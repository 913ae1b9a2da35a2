"""The SMTP peer of a sandbox (issue 11 §2, §8): ``ivr.mail.testserver`` as its own process.

``ivr sandbox up`` starts it beside Asterisk and the WhatsApp simulator
(``start_mail_peer``), so it outlives restarts of ``ivr serve``; ``ivr sandbox
down`` stops it (by its pid, checked against its command line). It listens on
``Ports.smtp`` and writes what it receives to
``<state>/<instance>/mail-received.jsonl``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ivr.mail.testserver import MODULE, received_path
from ivr.sandbox.instance import pid_alive
from ivr.settings import Settings

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


def _pid_file(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "mail-peer.pid"


def _log_file(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "mail-peer.log"


def _running_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid, MODULE) else None


def _greets(settings: Settings) -> bool:
    """The peer answers with its SMTP greeting (220)."""
    try:
        with socket.create_connection((settings.host, settings.ports.smtp), timeout=1) as conn:
            conn.settimeout(1)
            return conn.recv(64).startswith(b"220")
    except OSError:
        return False


def start_mail_peer(settings: Settings) -> int:
    """Start the sandbox's SMTP peer unless it runs; returns its pid.

    Raises ``RuntimeError`` when it does not greet within ``START_TIMEOUT_S``."""
    pid = _running_pid(settings)
    if pid is not None:
        return pid
    _pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", MODULE, "--host", settings.host,
        "--port", str(settings.ports.smtp), "--out", str(received_path(settings)),
    ]  # fmt: skip
    with _log_file(settings).open("ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    _pid_file(settings).write_text(str(proc.pid))
    # It outlives this command; a daemon thread reaps it if it ends while we still run.
    threading.Thread(target=proc.wait, name="reap-mail-peer", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the SMTP peer exited with {proc.returncode}")
        if _greets(settings):
            return proc.pid
        time.sleep(0.1)
    stop_mail_peer(settings)
    raise RuntimeError(f"the SMTP peer did not answer within {START_TIMEOUT_S:g} s")


def stop_mail_peer(settings: Settings) -> None:
    """Stop the sandbox's SMTP peer (ours: its pid and command line), if it runs."""
    pid = _running_pid(settings)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid, MODULE) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid, MODULE):
            os.kill(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)


def mail_peer_line(settings: Settings) -> str:
    """What ``ivr sandbox status`` says of it."""
    pid = _running_pid(settings)
    where = received_path(settings)
    if pid is None:
        return f"  smtp peer: stopped (messages in {where})"
    return f"  smtp peer: pid {pid} on {settings.host}:{settings.ports.smtp}, messages in {where}"
