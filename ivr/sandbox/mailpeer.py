"""The SMTP peer of a sandbox (issue 11 §2, §8): ``ivr.mail.testserver`` as its own process.

``ivr sandbox up`` starts it beside Asterisk and the WhatsApp simulator
(``start_mail_peer``), so it outlives restarts of ``ivr serve``; ``ivr sandbox
down`` stops it (by its pid, checked against its command line). It listens on
``Ports.smtp`` and writes what it receives to
``<state>/<instance>/mail-received.jsonl``.
"""

from __future__ import annotations

import socket
import sys

from ivr.mail.testserver import MODULE, received_path
from ivr.sandbox.peers import Peer
from ivr.settings import Settings

MAIL_PEER = Peer("the SMTP peer", MODULE, "mail-peer")


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

    Raises ``RuntimeError`` when it does not greet within ``peers.START_TIMEOUT_S``."""
    command = [
        sys.executable, "-m", MODULE, "--host", settings.host,
        "--port", str(settings.ports.smtp), "--out", str(received_path(settings)),
    ]  # fmt: skip
    return MAIL_PEER.start(settings, command, lambda: _greets(settings))


def stop_mail_peer(settings: Settings) -> None:
    """Stop the sandbox's SMTP peer (ours: its pid and command line), if it runs."""
    MAIL_PEER.stop(settings)


def mail_peer_line(settings: Settings) -> str:
    """What ``ivr sandbox status`` says of it."""
    pid = MAIL_PEER.running_pid(settings)
    where = received_path(settings)
    if pid is None:
        return f"  smtp peer: stopped (messages in {where})"
    return f"  smtp peer: pid {pid} on {settings.host}:{settings.ports.smtp}, messages in {where}"
