"""What the fault tests put around the controller: a TCP proxy in front of
Asterisk's HTTP/ARI port that can cut every connection, an SMS provider that
fails on demand, and direct reads and locks on the sandbox's SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.e2e.ops_peers import LoopThread


class TcpProxy(LoopThread):
    """127.0.0.1:``port`` -> 127.0.0.1:``target``; ``cut()`` drops every
    connection and refuses new ones until ``restore()``."""

    def __init__(self, port: int, target: int) -> None:
        super().__init__("tcp-proxy")
        self.port, self.target = port, target
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        super().start()
        self.run(self._listen())

    def cut(self) -> None:
        self.run(self._cut())

    def restore(self) -> None:
        self.run(self._listen())

    def stop(self) -> None:
        self.run(self._cut())
        self.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, as a dead host or a broken NAT would
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(
            self._pipe(client_r, server_w), self._pipe(server_r, client_w), return_exceptions=True
        )
        self._writers -= {client_w, server_w}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


@dataclass(frozen=True)
class SmsAttempt:
    status: int
    idempotency_key: str
    to: str
    text: str
    reference: str


class SmsProviderPeer(LoopThread):
    """An SMS provider over real HTTP: answers 503 to the first ``fail_first``
    posts, then 200; keeps every attempt; delivers each idempotency key once."""

    def __init__(self, port: int, fail_first: int) -> None:
        super().__init__("sms-provider")
        self.port = port
        self.fail_first = fail_first
        self.attempts: list[SmsAttempt] = []
        self.delivered: dict[str, SmsAttempt] = {}  # idempotency key -> the delivered message
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/messages"

    def start(self) -> None:
        super().start()
        self.run(self._start())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/messages", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        failing = len(self.attempts) < self.fail_first
        attempt = SmsAttempt(
            503 if failing else 200,
            request.headers.get("Idempotency-Key", ""),
            str(body.get("to")),
            str(body.get("text")),
            str(body.get("reference")),
        )
        self.attempts.append(attempt)
        if failing:
            return web.json_response({"message": "injected outage"}, status=503)
        self.delivered.setdefault(attempt.idempotency_key, attempt)
        return web.json_response({"id": f"prov-{attempt.idempotency_key}"})

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.close()


@dataclass(frozen=True)
class RecordRow:
    id: str
    sip_call_id: str | None
    flow: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    end_reason: str | None
    path: list[dict[str, Any]]


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # stored as UTC


def call_records(db_file: Path, sip_prefix: str | None = None) -> list[RecordRow]:
    """Call records straight from the SQLite file (no controller code involved)."""
    import json

    query = (
        "SELECT id, sip_call_id, flow, started_at, ended_at, outcome, end_reason, path"
        " FROM call_records"
    )
    params: tuple[str, ...] = ()
    if sip_prefix is not None:
        query += " WHERE sip_call_id LIKE ?"
        params = (sip_prefix + "%",)
    with contextlib.closing(sqlite3.connect(db_file, timeout=10)) as conn:
        rows = conn.execute(query + " ORDER BY started_at", params).fetchall()
    out = []
    for id_, sip, flow, started, ended, outcome, reason, path in rows:
        started_at = _when(started)
        assert started_at is not None
        out.append(
            RecordRow(id_, sip, flow, started_at, _when(ended), outcome, reason, json.loads(path))
        )
    return out


def sms_status(db_file: Path, sms_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(db_file, timeout=10)) as conn:
        row = conn.execute("SELECT status FROM sms_outbox WHERE id = ?", (sms_id,)).fetchone()
    return None if row is None else str(row[0])


@contextlib.contextmanager
def database_locked(db_file: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock (BEGIN EXCLUSIVE): every other writer fails (busy).

    The controller's database is in WAL mode (ivr.store.db), so readers go on.
    """
    conn = sqlite3.connect(db_file, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()
