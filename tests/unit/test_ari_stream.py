"""EventStream against an in-process websocket that behaves like /ari/events."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestServer

from ivr.ari import ChannelDtmfReceived, Event, EventStream, StasisStart
from ivr.ari.stream import events_url, full_jitter
from tests.unit.ari_samples import channel_json

APP, USER, PASSWORD = "citas-ivr", "citas", "s3cret"
DEADLINE = 2.0

CHANNEL: dict[str, Any] = channel_json()


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "application": APP,
        "timestamp": "2024-05-02T10:00:01.000-0500",
        **fields,
    }


STASIS_START = event("StasisStart", args=[], channel=CHANNEL)


def dtmf(digit: str) -> dict[str, Any]:
    return event("ChannelDtmfReceived", digit=digit, duration_ms=100, channel=CHANNEL)


class Counter:
    """A count that tests can wait on with a deadline."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = asyncio.Event()

    def bump(self) -> None:
        self.value += 1
        self._changed.set()

    async def reach(self, n: int) -> None:
        async with asyncio.timeout(DEADLINE):
            while self.value < n:
                self._changed.clear()
                await self._changed.wait()


class FakeEvents:
    """/ari/events: checks app, subscribeAll and api_key like Asterisk, then relays."""

    def __init__(self) -> None:
        self.accepted = Counter()
        self.rejected = Counter()
        self.handlers_done = Counter()
        self.queries: list[dict[str, str]] = []
        self.socket: web.WebSocketResponse | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(dict(request.query))
        if request.query.get("api_key") != f"{USER}:{PASSWORD}":
            self.rejected.bump()
            return web.json_response({"error": "Authentication required"}, status=401)
        if request.query.get("app") != APP:
            return web.json_response({"message": "Invalid application provided"}, status=400)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.socket = ws
        self.accepted.bump()
        try:
            async for _ in ws:  # ARI clients send nothing; wait for the close
                pass
        finally:
            self.handlers_done.bump()
        return ws

    async def push(self, *messages: object) -> None:
        assert self.socket is not None
        for msg in messages:
            await self.socket.send_str(msg if isinstance(msg, str) else json.dumps(msg))

    async def drop(self) -> None:
        """Close from the server side, as Asterisk does on restart."""
        assert self.socket is not None
        await self.socket.close(code=WSCloseCode.GOING_AWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEvents]:
    state = FakeEvents()
    app = web.Application()
    app.router.add_get("/ari/events", state.handle)
    server = TestServer(app)
    await server.start_server()
    state.url = str(server.make_url("/ari"))
    try:
        yield state
    finally:
        await server.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.received = Counter()
        self.connected = Counter()

    async def on_event(self, ev: Event) -> None:
        self.events.append(ev)
        self.received.bump()

    async def on_connected(self) -> None:
        self.connected.bump()


def make_stream(url: str, rec: Recorder, *, password: str = PASSWORD, **kw: Any) -> EventStream:
    kw.setdefault("backoff_initial", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return EventStream(url, USER, password, APP, rec.on_event, on_connected=rec.on_connected, **kw)


@pytest.fixture
async def running(fake: FakeEvents) -> AsyncIterator[tuple[EventStream, Recorder]]:
    rec = Recorder()
    stream = make_stream(fake.url, rec)
    task = asyncio.create_task(stream.run())
    try:
        yield stream, rec
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)


async def test_receives_typed_events(
    fake: FakeEvents, running: tuple[EventStream, Recorder]
) -> None:
    stream, rec = running
    await rec.connected.reach(1)
    assert stream.connected.is_set()

    await fake.push(STASIS_START, dtmf("5"))
    await rec.received.reach(2)

    start, digit = rec.events
    assert isinstance(start, StasisStart)
    assert isinstance(digit, ChannelDtmfReceived)
    assert (digit.channel_id, digit.digit) == ("1700000000.1", "5")
    assert fake.queries == [{"app": APP, "subscribeAll": "false", "api_key": f"{USER}:{PASSWORD}"}]


async def test_counters_count_events_by_type(
    fake: FakeEvents, running: tuple[EventStream, Recorder]
) -> None:
    """Each event Asterisk sent is counted by its type, unhandled types included;
    an unreadable message is not an event."""
    stream, rec = running
    await rec.connected.reach(1)
    varset = event("ChannelVarset", variable="X", value="1", channel=CHANNEL)
    await fake.push(STASIS_START, dtmf("5"), "not json", varset, dtmf("6"))
    await rec.received.reach(4)

    snap = stream.counters.snapshot()
    assert snap["events"] == {"ChannelDtmfReceived": 2, "ChannelVarset": 1, "StasisStart": 1}
    assert snap["calls"] == 1 and snap["per_call"]["events"] == 4.0


async def test_reconnects_after_server_closes(
    fake: FakeEvents, running: tuple[EventStream, Recorder]
) -> None:
    stream, rec = running
    await rec.connected.reach(1)

    await fake.drop()
    await rec.connected.reach(2)

    assert fake.accepted.value == 2
    assert stream.reconnects == 1
    assert stream.connected.is_set()
    await fake.push(dtmf("7"))
    await rec.received.reach(1)
    assert isinstance(rec.events[0], ChannelDtmfReceived)


async def test_handler_exception_does_not_kill_stream(
    fake: FakeEvents, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    done = Counter()

    async def fragile(ev: Event) -> None:
        seen.append(ev.type)
        done.bump()
        if ev.type == "StasisStart":
            raise RuntimeError("handler bug")

    stream = EventStream(fake.url, USER, PASSWORD, APP, fragile)
    task = asyncio.create_task(stream.run())
    try:
        await fake.accepted.reach(1)
        with caplog.at_level(logging.ERROR, logger="ivr.ari.stream"):
            await fake.push(STASIS_START, dtmf("1"))
            await done.reach(2)
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)

    assert seen == ["StasisStart", "ChannelDtmfReceived"]
    assert stream.reconnects == 0
    [record] = [r for r in caplog.records if r.exc_info]
    assert "1700000000.1" in record.getMessage()


async def test_unreadable_messages_are_dropped(
    fake: FakeEvents, running: tuple[EventStream, Recorder]
) -> None:
    stream, rec = running
    await rec.connected.reach(1)

    await fake.push("not json", event("StasisStart", args=[]), ["a", "list"], dtmf("9"))
    await rec.received.reach(1)

    assert [type(e) for e in rec.events] == [ChannelDtmfReceived]
    assert stream.reconnects == 0


async def test_stop_returns_promptly_and_closes_socket(
    fake: FakeEvents, running: tuple[EventStream, Recorder]
) -> None:
    stream, rec = running
    await rec.connected.reach(1)

    await asyncio.wait_for(stream.stop(), 0.5)

    assert not stream.connected.is_set()
    await fake.handlers_done.reach(1)
    assert fake.socket is not None and fake.socket.closed


async def test_stop_interrupts_backoff_sleep(fake: FakeEvents) -> None:
    rec = Recorder()
    # A 30s backoff: stop() must not wait for it.
    stream = make_stream(fake.url, rec, password="wrong", backoff_initial=30, backoff_max=30)
    task = asyncio.create_task(stream.run())
    await fake.rejected.reach(1)

    await asyncio.wait_for(stream.stop(), 0.5)
    await asyncio.wait_for(task, 0.5)


async def test_stop_before_run(fake: FakeEvents) -> None:
    rec = Recorder()
    stream = make_stream(fake.url, rec)

    await stream.stop()
    await asyncio.wait_for(stream.run(), DEADLINE)

    assert fake.accepted.value == 0


async def test_bad_credentials_keep_retrying(
    fake: FakeEvents, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    stream = make_stream(fake.url, rec, password="wrong")
    task = asyncio.create_task(stream.run())
    try:
        with caplog.at_level(logging.ERROR, logger="ivr.ari.stream"):
            await fake.rejected.reach(3)
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)

    assert rec.connected.value == 0
    assert stream.reconnects == 0
    assert any("HTTP 401" in r.getMessage() for r in caplog.records)
    assert not any("wrong" in r.getMessage() for r in caplog.records)


async def test_on_connected_failure_keeps_events_flowing(fake: FakeEvents) -> None:
    rec = Recorder()

    async def failing_reconcile() -> None:
        raise RuntimeError("reconcile failed")

    stream = EventStream(
        fake.url, USER, PASSWORD, APP, rec.on_event, on_connected=failing_reconcile
    )
    task = asyncio.create_task(stream.run())
    try:
        await fake.accepted.reach(1)
        await fake.push(dtmf("3"))
        await rec.received.reach(1)
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)


def test_full_jitter_is_capped_exponential() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [full_jitter(n, 0.2, 10.0, Top()) for n in range(8)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0])
    assert full_jitter(5000, 0.2, 10.0, Top()) == 10.0
    rng = random.Random(7)
    assert all(0 <= full_jitter(n, 0.2, 10.0, rng) <= 10.0 for n in range(50))


@pytest.mark.parametrize(
    ("base", "ws"),
    [
        ("http://127.0.0.1:8088/ari", "ws://127.0.0.1:8088/ari/events"),
        ("https://pbx.example:8089/ari/", "wss://pbx.example:8089/ari/events"),
    ],
)
def test_events_url(base: str, ws: str) -> None:
    assert events_url(base) == ws
