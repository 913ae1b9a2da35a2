"""ARI REST over the event websocket (``ivr.ari.wsrest``): AriClient and EventStream
against an in-process server that answers ``RESTRequest`` messages the way Asterisk
22 does (checked against the sandbox's Asterisk: docs/perf/ari.md) and serves the
same routes over HTTP, so a test sees which way each request went."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestServer

from ivr.ari import AriClient, AriNotFound, Event, EventStream
from ivr.ari.errors import AriConnectionError, AriProtocolError, AriTimeout
from ivr.ari.wsrest import WebSocketRest
from tests.unit.test_ari_stream import (
    APP,
    DEADLINE,
    PASSWORD,
    STASIS_START,
    USER,
    Counter,
    dtmf,
)

CLIENT_TIMEOUT_S = 5.0  # the fixture's AriClient
SILENT = "channels/silent/answer"  # a request Asterisk never answers (for the timeout)
DROP = "channels/drop/answer"  # a request during which the websocket goes down


class FakeAsterisk:
    """/ari/events with REST over WebSocket, and the same requests over HTTP."""

    def __init__(self) -> None:
        self.socket: web.WebSocketResponse | None = None
        self.url = ""
        self.over_ws: list[dict[str, Any]] = []
        self.received = Counter()  # requests that came over the websocket
        self.over_http: list[str] = []
        self.connections = 0
        self.connected = asyncio.Event()
        self.shuffle = False  # answer a burst of requests in a random order
        self.rest_over_ws = True  # False: an Asterisk before 22.4 ignores RESTRequest
        self._burst: list[dict[str, Any]] = []

    @staticmethod
    def route(method: str, uri: str, query: dict[str, str]) -> tuple[int, Any]:
        if uri.startswith("channels/gone"):
            return 404, {"message": "Channel not found"}
        if uri == "asterisk/variable" and method == "GET":
            return 200, {"value": query.get("variable", "") + "=" + query.get("echo", "")}
        if uri == "asterisk/ping":
            return 200, {"ping": "pong"}
        if uri.endswith("/eventFilter"):
            return 200, {"name": APP, "events_allowed": [], "events_disallowed": []}
        if "/play/" in uri:
            channel, playback = uri.removeprefix("channels/").split("/play/")
            return 201, {
                "id": playback,
                "media_uri": query.get("media", ""),
                "target_uri": f"channel:{channel}",
                "language": query.get("lang", "en"),
                "state": "queued",
            }
        return 204, None

    async def events(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.socket = ws
        self.connections += 1
        self.connected.set()
        async for msg in ws:
            data = json.loads(msg.data)
            assert data["type"] == "RESTRequest"
            self.over_ws.append(data)
            self.received.bump()
            if data["uri"] == SILENT or not self.rest_over_ws:
                continue
            if data["uri"] == DROP:
                await ws.close(code=WSCloseCode.GOING_AWAY)
                break
            if self.shuffle:
                self._burst.append(data)
                continue
            await self._answer(ws, data)
        return ws

    async def flush_shuffled(self) -> None:
        assert self.socket is not None
        burst, self._burst = self._burst, []
        random.Random(7).shuffle(burst)
        for data in burst:
            await self._answer(self.socket, data)

    async def _answer(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        query = {q["name"]: q["value"] for q in data.get("query_strings", [])}
        status, body = self.route(data["method"], data["uri"], query)
        answer: dict[str, Any] = {
            "type": "RESTResponse",
            "transaction_id": "",
            "request_id": data["request_id"],
            "status_code": status,
            "reason_phrase": "",
            "uri": data["uri"],
            "application": APP,
        }
        if body is not None:
            answer |= {"content_type": "application/json", "message_body": json.dumps(body)}
        await ws.send_str(json.dumps(answer))

    async def http(self, request: web.Request) -> web.StreamResponse:
        uri = request.match_info["tail"]
        self.over_http.append(f"{request.method} {uri}")
        status, body = self.route(request.method, uri, dict(request.query))
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)

    async def push(self, *messages: dict[str, Any]) -> None:
        assert self.socket is not None
        for message in messages:
            await self.socket.send_str(json.dumps(message))


class Live:
    def __init__(
        self, fake: FakeAsterisk, stream: EventStream, client: AriClient, base: str
    ) -> None:
        self.fake, self.stream, self.client, self.base = fake, stream, client, base
        self.events: list[Event] = []
        self.delivered = Counter()

    async def on_event(self, ev: Event) -> None:
        if ev.type == "StasisStart" and ev.channel_id == "1700000000.1":
            await self.client.answer("from-the-handler")  # as a router's reject does
        self.events.append(ev)
        self.delivered.bump()


async def probed(live: Live) -> None:
    """As the controller does once the filter is set; the probe's own request is
    then forgotten, so a test sees only its own."""
    assert await live.stream.rest.probe(DEADLINE)
    assert live.fake.over_ws[-1]["uri"] == "asterisk/ping"
    live.fake.over_ws.clear()
    live.fake.received.value = 0


async def served(fake: FakeAsterisk) -> tuple[TestServer, str]:
    """``fake`` on a local port: its server and ARI's base URL there."""
    app = web.Application()
    app.router.add_get("/ari/events", fake.events)
    app.router.add_route("*", "/ari/{tail:.*}", fake.http)
    server = TestServer(app)
    await server.start_server()
    return server, str(server.make_url("/ari"))


@contextlib.asynccontextmanager
async def streaming(
    server: TestServer,
    base: str,
    client: AriClient,
    on_event: Callable[[Event], Awaitable[None]],
    on_connected: Callable[[], Awaitable[None]],
) -> AsyncIterator[EventStream]:
    """An EventStream on ``base`` running, ``client``'s requests over its websocket
    once ready; on exit the stream, the client and ``server`` are closed."""
    stream = EventStream(
        base, USER, PASSWORD, APP, on_event, on_connected=on_connected,
        backoff_initial=0.001, backoff_max=0.01,
    )  # fmt: skip
    client.websocket = stream.rest
    task = asyncio.create_task(stream.run())
    try:
        yield stream
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)
        await client.close()
        await server.close()


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    fake = FakeAsterisk()
    server, base = await served(fake)
    # Not the timeout under test (test_no_answer_in_time... has its own 0.5 s): an
    # answer over HTTP on a loaded 2-core machine once took longer than 0.5 s.
    client = AriClient(base, USER, PASSWORD, timeout=CLIENT_TIMEOUT_S)
    holder: list[Live] = []

    async def on_event(ev: Event) -> None:
        await holder[0].on_event(ev)

    stream = EventStream(
        base, USER, PASSWORD, APP, on_event, backoff_initial=0.001, backoff_max=0.01
    )
    client.websocket = stream.rest
    holder.append(Live(fake, stream, client, base))
    task = asyncio.create_task(stream.run())
    try:
        async with asyncio.timeout(DEADLINE):
            await fake.connected.wait()
            await stream.connected.wait()
        yield holder[0]
    finally:
        await asyncio.wait_for(stream.stop(), DEADLINE)
        await asyncio.wait_for(task, DEADLINE)
        await client.close()
        await server.close()


async def test_requests_go_over_http_until_the_connection_is_ready(live: Live) -> None:
    """Ready only once the controller has set the filter that lets RESTResponse
    through and a probe came back (``Controller._set_event_filter``): before, HTTP."""
    await live.client.answer("1700000000.1")
    await probed(live)
    await live.client.answer("1700000000.1")

    assert live.fake.over_http == ["POST channels/1700000000.1/answer"]
    assert [(m["method"], m["uri"]) for m in live.fake.over_ws] == [
        ("POST", "channels/1700000000.1/answer")
    ]
    assert live.client.counters.over_websocket == 1  # the probe is not a client request
    assert live.client.counters.snapshot()["requests"] == {"POST /channels/{id}/answer": 2}


async def test_an_asterisk_without_rest_over_websocket_keeps_http(live: Live) -> None:
    """Before 20.14/21.9/22.4 Asterisk ignores the RESTRequest message: the probe
    times out, the connection is not ready, requests go over HTTP at once."""
    live.fake.rest_over_ws = False

    assert not await live.stream.rest.probe(0.2)
    await live.client.answer("1700000000.1")

    assert not live.stream.rest.ready and live.stream.rest.waiting == 0
    assert live.fake.over_http == ["POST channels/1700000000.1/answer"]


async def test_a_request_carries_its_query_and_body_and_gets_its_answer(live: Live) -> None:
    await probed(live)

    media = ["sound:citas/slot_offer", "digits:15", "sound:citas/goodbye"]
    playback = await live.client.play("1700000000.1", media, playback_id="pb-1", lang="es")
    await live.client.set_event_filter(APP, ["StasisStart", "RESTResponse"])
    ping = await live.client.ping()
    with pytest.raises(AriNotFound, match="Channel not found"):
        await live.client.answer("gone")

    play, event_filter, _, _ = live.fake.over_ws
    assert play["uri"] == "channels/1700000000.1/play/pb-1"
    assert play["query_strings"] == [
        {"name": "media", "value": ",".join(media)},  # as they are: Asterisk decodes nothing
        {"name": "lang", "value": "es"},
    ]
    assert (event_filter["method"], event_filter["content_type"]) == ("PUT", "application/json")
    assert json.loads(event_filter["message_body"])["allowed"] == [
        {"type": "StasisStart"},
        {"type": "RESTResponse"},
    ]
    assert (playback.id, playback.media_uri) == ("pb-1", ",".join(media))
    assert ping == {"ping": "pong"} and live.fake.over_http == []


async def test_answers_in_any_order_reach_their_own_requests(live: Live) -> None:
    await probed(live)
    live.fake.shuffle = True
    client = live.client

    async def echo(i: int) -> Any:
        return await client._request(
            "GET", "/asterisk/variable", params={"variable": f"V{i}", "echo": str(i)}
        )

    asks = [asyncio.create_task(echo(i)) for i in range(50)]
    await live.fake.received.reach(50)
    await live.fake.flush_shuffled()
    answers = await asyncio.wait_for(asyncio.gather(*asks), DEADLINE)

    assert answers == [{"value": f"V{i}={i}"} for i in range(50)]
    assert live.stream.rest.waiting == 0


async def test_answers_are_not_events_and_events_still_flow(live: Live) -> None:
    await probed(live)
    await live.fake.push(STASIS_START)
    await live.client.answer("1700000000.2")
    await live.fake.push(dtmf("5"))
    await live.delivered.reach(2)

    assert [e.type for e in live.events] == ["StasisStart", "ChannelDtmfReceived"]
    assert live.stream.counters.events == {"StasisStart": 1, "ChannelDtmfReceived": 1}


async def test_no_answer_in_time_is_a_timeout_and_the_late_answer_is_dropped(live: Live) -> None:
    await probed(live)
    quick = AriClient(live.base, USER, PASSWORD, timeout=0.5)
    quick.websocket = live.stream.rest
    try:
        with pytest.raises(AriTimeout, match=r"no answer within 0\.5s"):
            await quick.answer("silent")
    finally:
        await quick.close()
    live.stream.rest.answer({"request_id": live.fake.over_ws[-1]["request_id"], "status_code": 204})

    assert live.stream.rest.waiting == 0
    await live.client.answer("1700000000.1")  # the websocket still works


async def test_a_websocket_lost_mid_request_fails_it_and_the_next_connection_waits(
    live: Live,
) -> None:
    """Whether Asterisk ran it is unknown, as with HTTP dropped mid-request: an
    AriConnectionError at once, not the timeout. The new connection has no filter
    yet: requests go over HTTP until it is ready again."""
    await probed(live)
    live.fake.connected.clear()

    with pytest.raises(AriConnectionError, match="closed before the answer"):
        await asyncio.wait_for(live.client.answer("drop"), CLIENT_TIMEOUT_S / 2)
    async with asyncio.timeout(DEADLINE):
        await live.fake.connected.wait()
    await live.client.answer("1700000000.1")

    assert live.fake.connections == 2
    assert live.fake.over_http == ["POST channels/1700000000.1/answer"]
    assert not live.stream.rest.ready


async def test_without_a_websocket_nothing_is_ready_and_a_request_refuses() -> None:
    rest = WebSocketRest()

    assert not await rest.probe(1.0)
    assert not rest.ready
    with pytest.raises(AriConnectionError, match="no ARI websocket"):
        await rest.request("POST", "channels/x/answer", {}, None, 1.0)


@pytest.mark.parametrize(
    "answer",
    [
        {"request_id": "1", "status_code": "204"},
        {"request_id": "1", "status_code": 200, "message_body": {"already": "decoded"}},
    ],
)
async def test_a_malformed_answer_is_a_protocol_error(answer: dict[str, Any]) -> None:
    class Socket:
        async def send_str(self, text: str) -> None:
            asyncio.get_running_loop().call_soon(rest.answer, answer)

    rest = WebSocketRest()
    rest.attach(Socket())
    with pytest.raises(AriProtocolError, match="malformed RESTResponse"):
        await rest.request("GET", "asterisk/ping", {}, None, 1.0)


async def test_a_handler_of_the_stream_may_wait_for_a_request_on_its_websocket(
    live: Live,
) -> None:
    """The stream's handlers (``on_event`` here; ``on_connected``, the controller's
    reconcile, runs in the same task) await requests on the websocket whose
    messages the stream reads: the answer is read apart from the events, so it
    does not wait behind the handler that waits for it (a first version, one task
    for both, waited for the request timeout)."""
    await probed(live)
    await live.fake.push(STASIS_START)
    await live.delivered.reach(1)  # the handler's request was answered first
    await live.client.answer("1700000000.1")

    assert live.fake.over_http == []
    assert [m["uri"] for m in live.fake.over_ws] == [
        "channels/from-the-handler/answer",
        "channels/1700000000.1/answer",
    ]


@pytest.mark.parametrize("handler", ["on_connected", "on_event"])
async def test_the_websocket_lost_under_a_handler_fails_its_request_and_clears_connected_at_once(
    handler: str,
) -> None:
    """The kind of a CI failure: Asterisk killed while the controller's reconcile
    (``on_connected``) waited for ``GET /applications`` over the websocket. The
    reader saw the close at once, but the request waited for its 5 s timeout and
    ``connected`` (``/health/ready``'s ARI check) stayed set all that time. Now both
    end as soon as the websocket closes, whichever handler is waiting."""
    fake = FakeAsterisk()
    server, base = await served(fake)
    timeout = 5.0
    client = AriClient(base, USER, PASSWORD, timeout=timeout)
    seen: list[tuple[str, float, bool]] = []  # (error, seconds waited, connected after)

    async def cut_under_the_handler() -> None:
        assert await stream.rest.probe(DEADLINE)
        started = asyncio.get_running_loop().time()
        try:
            await client.answer("drop")
        except AriConnectionError as exc:
            waited = asyncio.get_running_loop().time() - started
            seen.append((str(exc), waited, stream.connected.is_set()))

    async def on_event(ev: Event) -> None:
        if handler == "on_event" and not seen:
            await cut_under_the_handler()

    async def on_connected() -> None:
        if handler == "on_connected" and not seen:
            await cut_under_the_handler()

    async with streaming(server, base, client, on_event, on_connected) as stream:
        async with asyncio.timeout(DEADLINE):
            await fake.connected.wait()
            if handler == "on_event":
                await stream.connected.wait()
                fake.connected.clear()
                await fake.push(STASIS_START)
            else:
                fake.connected.clear()
            await fake.connected.wait()  # the stream came back on a new connection
            await stream.connected.wait()

    ((error, waited, connected_after),) = seen
    assert "closed before the answer" in error
    assert waited < timeout / 5, waited
    assert not connected_after
    assert fake.connections == 2


@pytest.mark.parametrize(("raised", "traceback"), [(AriConnectionError, False), (TypeError, True)])
async def test_a_handler_cut_short_by_the_close_is_a_warning_and_a_bug_keeps_its_traceback(
    raised: type[Exception], traceback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """``on_connected`` failing as the websocket closes: its request's failure
    (an ARI error) is one warning line; anything else is a bug, logged with its
    traceback even then."""
    fake = FakeAsterisk()
    server, base = await served(fake)
    client = AriClient(base, USER, PASSWORD, timeout=CLIENT_TIMEOUT_S)
    calls: list[int] = []
    reconnected = asyncio.Event()

    async def on_connected() -> None:
        calls.append(1)
        if len(calls) > 1:
            reconnected.set()
            return
        assert await stream.rest.probe(DEADLINE)
        with contextlib.suppress(AriConnectionError):
            await client.answer("drop")
        raise raised("cut short")

    async def on_event(ev: Event) -> None:
        pass

    async with streaming(server, base, client, on_event, on_connected) as stream:
        async with asyncio.timeout(DEADLINE):
            await reconnected.wait()

    (record,) = [r for r in caplog.records if "on_connected" in r.getMessage()]
    assert (record.exc_info is not None) is traceback
    assert record.levelname == ("ERROR" if traceback else "WARNING")
