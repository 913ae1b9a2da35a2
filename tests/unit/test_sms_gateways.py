"""SMS gateways: the JSON-lines file and an HTTP provider served in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from ivr.masking import mask_number
from ivr.sms.gateways import (
    FileSmsGateway,
    HttpSmsGateway,
    SmsPermanentError,
    SmsTemporaryError,
)
from ivr.sms.outbox import PENDING, OutboxMessage

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)


def message(id: str = "msg-1", to: str = "3001234567", text: str = "Agende aquí") -> OutboxMessage:
    return OutboxMessage(id, f"w:{id}", to, text, PENDING, 1, NOW, None, None, None, NOW, None)


def test_mask_number() -> None:
    assert mask_number("3001234567") == "*******567"
    assert mask_number("+57 300 123 4567") == "+** *** *** *567"
    assert mask_number("123") == "123"
    assert mask_number("") == "-"


async def test_file_gateway_writes_one_line_per_send(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "sms.jsonl"
    gateway = FileSmsGateway(path)

    assert await gateway.send(message("m1")) == "file-m1"
    assert await gateway.send(message("m2", text="Cita confirmada: lunes 8:00")) == "file-m2"

    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(w["id"], w["dedupe_key"], w["to"], w["text"]) for w in written] == [
        ("m1", "w:m1", "3001234567", "Agende aquí"),
        ("m2", "w:m2", "3001234567", "Cita confirmada: lunes 8:00"),
    ]
    assert all(datetime.fromisoformat(w["at"]).tzinfo is not None for w in written)


async def test_file_gateway_cannot_write_is_temporary(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SmsTemporaryError):
        await FileSmsGateway(tmp_path / "file" / "sms.jsonl").send(message())


@dataclass
class FakeProvider:
    url: str = ""
    status: int = 200
    body: Any = field(default_factory=lambda: {"id": "prov-42"})
    seen: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    state = FakeProvider()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append((dict(request.headers), await request.json()))
        if state.hang:
            await state.release.wait()
        if isinstance(state.body, str):
            return web.Response(status=state.status, text=state.body)
        return web.json_response(state.body, status=state.status)

    app = web.Application()
    app.router.add_post("/sms", handle)
    server = TestServer(app)
    await server.start_server()
    state.url = str(server.make_url("/sms"))
    try:
        yield state
    finally:
        state.release.set()
        await server.close()


async def test_http_gateway_posts_with_the_idempotency_key(provider: FakeProvider) -> None:
    async with HttpSmsGateway(provider.url, token="tok", timeout=2.0) as gateway:
        assert await gateway.send(message("msg-7")) == "prov-42"
        assert await gateway.send(message("msg-7")) == "prov-42"  # a retry: same key

    assert [body for _, body in provider.seen] == [
        {"to": "3001234567", "text": "Agende aquí", "reference": "msg-7"}
    ] * 2
    assert [h["Idempotency-Key"] for h, _ in provider.seen] == ["msg-7", "msg-7"]
    assert provider.seen[0][0]["Authorization"] == "Bearer tok"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, SmsTemporaryError),
        (500, SmsTemporaryError),
        (503, SmsTemporaryError),
        (400, SmsPermanentError),
        (401, SmsPermanentError),
        (404, SmsPermanentError),
        (422, SmsPermanentError),
    ],
)
async def test_http_gateway_error_mapping(
    provider: FakeProvider, status: int, error: type[Exception]
) -> None:
    provider.status, provider.body = status, {"error": "nope"}
    async with HttpSmsGateway(provider.url, token=None, timeout=2.0) as gateway:
        with pytest.raises(error, match=str(status)) as raised:
            await gateway.send(message())
    assert "3001234567" not in str(raised.value)


async def test_http_gateway_timeout_is_temporary(provider: FakeProvider) -> None:
    provider.hang = True
    async with HttpSmsGateway(provider.url, token=None, timeout=0.2) as gateway:
        with pytest.raises(SmsTemporaryError, match="no answer"):
            await gateway.send(message())


async def test_http_gateway_unreachable_is_temporary() -> None:
    url = f"http://127.0.0.1:{unused_port()}/sms"
    async with HttpSmsGateway(url, token=None, timeout=2.0) as gateway:
        with pytest.raises(SmsTemporaryError):
            await gateway.send(message())


async def test_http_gateway_accepted_without_an_id(provider: FakeProvider) -> None:
    provider.status, provider.body = 202, "queued"
    async with HttpSmsGateway(provider.url, token=None, timeout=2.0) as gateway:
        assert await gateway.send(message("msg-9")) == "unknown-msg-9"


async def test_http_gateway_leaves_a_given_session_open(provider: FakeProvider) -> None:
    async with aiohttp.ClientSession() as session:
        async with HttpSmsGateway(provider.url, token=None, timeout=2.0, session=session) as gw:
            await gw.send(message())
        assert not session.closed
