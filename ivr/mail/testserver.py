"""The sandbox's SMTP peer: a local aiosmtpd server that keeps what it receives.

``ivr sandbox up`` starts it beside Asterisk and the WhatsApp simulator
(``ivr.sandbox.mailpeer``), on ``Ports.smtp`` (2525 + the port offset), and
``ivr serve`` sends to it when no relay is configured (``CITAS_MAIL_HOST``
empty). Every message accepted is appended, one JSON object a line, to
``<state>/<instance>/mail-received.jsonl`` (:func:`received_path`), which a
tester reads and the end-to-end tests assert on::

    {"received_at": iso, "peer": "127.0.0.1", "envelope_from": str,
     "envelope_to": [str], "from": str, "to": str, "subject": str,
     "message_id": str, "date": str, "text": str, "html": str | null}

(``text`` and ``html`` with LF line ends.)

It speaks plain SMTP (no TLS, no AUTH): it listens on loopback only. Run it
alone with ``python -m ivr.mail.testserver --port 2525 --out FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ivr.settings import Settings

logger = logging.getLogger(__name__)

MODULE = "ivr.mail.testserver"


def received_path(settings: Settings) -> Path:
    """Where the sandbox's SMTP peer writes what it receives (beside ``sms-sent.jsonl``)."""
    return settings.state_dir / settings.instance / "mail-received.jsonl"


def read_received(path: Path) -> list[dict[str, Any]]:
    """The messages in a ``mail-received.jsonl``, oldest first (none if there is no file)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def summary(raw: bytes, *, peer: str, envelope_from: str, envelope_to: list[str]) -> dict[str, Any]:
    """One received message as the JSON line written for it."""
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    return {
        "received_at": datetime.now(UTC).isoformat(),
        "peer": peer,
        "envelope_from": envelope_from,
        "envelope_to": envelope_to,
        "from": str(parsed.get("From", "")),
        "to": str(parsed.get("To", "")),
        "subject": str(parsed.get("Subject", "")),
        "message_id": str(parsed.get("Message-ID", "")),
        "date": str(parsed.get("Date", "")),
        # SMTP carries CRLF line ends; the file is for people and tests: "\n".
        "text": _lines(text.get_content()) if text is not None else "",
        "html": _lines(html.get_content()) if html is not None else None,
    }


def _lines(content: str) -> str:
    return content.replace("\r\n", "\n")


class RecordingHandler:
    """aiosmtpd handler: accepts every message and appends its summary to ``out``."""

    def __init__(self, out: Path) -> None:
        self.out = out

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        line = summary(
            raw, peer=peer, envelope_from=str(envelope.mail_from),
            envelope_to=[str(r) for r in envelope.rcpt_tos],
        )  # fmt: skip
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        logger.info("received mail %s", line["message_id"])
        return "250 2.0.0 Ok: queued as " + str(line["message_id"]).strip("<>")


async def serve(host: str, port: int, out: Path, *, stop: asyncio.Event) -> None:
    """Serve on host:port until ``stop`` is set."""
    handler = RecordingHandler(out)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="citas-sandbox", enable_SMTPUTF8=True), host, port
    )
    logger.info("SMTP peer on %s:%d writing %s", host, port, out)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, args.out, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
