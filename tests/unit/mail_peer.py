"""A real SMTP peer for the mail tests: aiosmtpd on a free loopback port, in the
test's event loop, recording what it accepts with the sandbox's handler
(``ivr.mail.testserver.RecordingHandler``) — or answering every message with a
given reply (``reply``: ``"451 4.3.0 Try later"``), as a relay in trouble does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ivr.mail.testserver import RecordingHandler, read_received


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    port: int
    out: Path
    replies: list[str] = field(default_factory=list)  # answers to DATA, in turn; then 250

    def received(self) -> list[dict[str, Any]]:
        return read_received(self.out)


class ScriptedHandler(RecordingHandler):
    def __init__(self, peer: Peer) -> None:
        super().__init__(peer.out)
        self.peer = peer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.peer.replies:
            return self.peer.replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def smtp_peer(tmp_path: Path, **smtp_kwargs: Any) -> AsyncIterator[Peer]:
    peer = Peer(free_port(), tmp_path / "mail-received.jsonl")
    handler = ScriptedHandler(peer)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="peer.test", **smtp_kwargs), "127.0.0.1", peer.port
    )
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()
