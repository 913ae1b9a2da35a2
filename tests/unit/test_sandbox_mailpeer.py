"""The sandbox's SMTP peer as its own process (``ivr.sandbox.mailpeer``): started
once, greets on ``Ports.smtp``, writes what it receives to
``<state>/<instance>/mail-received.jsonl``, stopped by its pid."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ivr.mail.message import compose
from ivr.mail.smtp import SmtpMailer, server_for
from ivr.mail.testserver import read_received, received_path
from ivr.sandbox.mailpeer import mail_peer_line, start_mail_peer, stop_mail_peer
from ivr.settings import Settings
from tests.unit.mail_peer import free_port


def test_the_peer_starts_once_receives_and_stops(tmp_path: Path) -> None:
    base = Settings.from_env({"CITAS_STATE_DIR": str(tmp_path), "CITAS_INSTANCE": "mailpeer"})
    settings = replace(base, ports=replace(base.ports, smtp=free_port()))
    try:
        pid = start_mail_peer(settings)
        assert start_mail_peer(settings) == pid  # already running: the same process
        assert f"pid {pid} on 127.0.0.1:{settings.ports.smtp}" in mail_peer_line(settings)

        message = compose(sender="citas@example.org", to="ana@example.org",
                          subject="Respuesta a su caso n.º 0000013", text="Hola, Ana.",
                          message_id="<p1@example.org>", date=datetime.now(UTC))  # fmt: skip
        asyncio.run(SmtpMailer(server_for(settings)).send(message))

        path = received_path(settings)
        assert path == tmp_path / "mailpeer" / "mail-received.jsonl"
        (got,) = read_received(path)
        assert (got["to"], got["subject"]) == ("ana@example.org", "Respuesta a su caso n.º 0000013")
    finally:
        stop_mail_peer(settings)
    assert mail_peer_line(settings).startswith("  smtp peer: stopped")
