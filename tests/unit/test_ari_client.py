"""AriClient against an in-process server that answers like Asterisk 22's ARI."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from ivr.ari import (
    AriAuthError,
    AriBadRequest,
    AriClient,
    AriConflict,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFound,
    AriProtocolError,
    AriServerError,
    AriTimeout,
    Channel,
)
from tests.unit.ari_samples import channel_json

USER, PASSWORD = "citas", "s3cret"

CHANNEL = channel_json()

PLAYBACK = {
    "id": "1700000000.1-welcome",
    "media_uri": "sound:citas/welcome",
    "target_uri": "channel:1700000000.1",
    "language": "es",
    "state": "queued",
}


@dataclass
class Seen:
    method: str
    raw_path: str  # path and query exactly as sent
    authorization: str | None


@dataclass
class FakeAri:
    """Answers per (method, path) like Asterisk; records what it received."""

    url: str
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def reply(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        self.replies[(method, path)] = (status, body)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAri]:
    state = FakeAri(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append(
            Seen(request.method, request.raw_path, request.headers.get("Authorization"))
        )
        status, body = state.replies.get(
            (request.method, request.path), (404, {"message": "Resource not found"})
        )
        if status == 204:
            return web.Response(status=204)
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/ari/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    state.url = str(server.make_url("/ari"))
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
async def client(fake: FakeAri) -> AsyncIterator[AriClient]:
    async with AriClient(fake.url, USER, PASSWORD, timeout=2.0) as ari:
        yield ari


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_ping_sends_basic_auth(fake: FakeAri, client: AriClient) -> None:
    pong = {"asterisk_id": "02:42:ac:11:00:02", "ping": "pong", "timestamp": "2024-05-02"}
    fake.reply("GET", "/ari/asterisk/ping", body=pong)

    assert await client.ping() == pong
    assert fake.seen == [Seen("GET", "/ari/asterisk/ping", basic(USER, PASSWORD))]


async def test_asterisk_info_and_applications(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/ari/asterisk/info", body={"system": {"version": "22.1.0"}})
    fake.reply("GET", "/ari/applications", body=[{"name": "citas-ivr", "channel_ids": []}])

    assert (await client.asterisk_info())["system"]["version"] == "22.1.0"
    assert await client.list_applications() == [{"name": "citas-ivr", "channel_ids": []}]


async def test_channels_are_parsed(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/ari/channels", body=[CHANNEL])
    fake.reply("GET", "/ari/channels/1700000000.1", body=CHANNEL)

    [listed] = await client.list_channels()
    got = await client.get_channel("1700000000.1")

    assert listed == got
    assert got == Channel.from_json(CHANNEL)
    assert (got.caller.number, got.language, got.dialplan_exten) == ("3001234567", "es", "4441234")


async def test_path_params_are_quoted(fake: FakeAri, client: AriClient) -> None:
    # aiohttp's request.path is decoded, so only raw_path shows the quoting.
    fake.reply("POST", "/ari/channels/a/b c/answer", status=204)

    await client.answer("a/b c")

    # A "/" in an id must stay inside its path segment.
    assert fake.seen[0].raw_path == "/ari/channels/a%2Fb%20c/answer"


@pytest.mark.parametrize(
    ("call", "method", "raw_path"),
    [
        (lambda c: c.answer("1700000000.1"), "POST", "/ari/channels/1700000000.1/answer"),
        (lambda c: c.ring("1700000000.1"), "POST", "/ari/channels/1700000000.1/ring"),
        (
            lambda c: c.start_silence("1700000000.1"),
            "POST",
            "/ari/channels/1700000000.1/silence",
        ),
        (lambda c: c.start_moh("1700000000.1"), "POST", "/ari/channels/1700000000.1/moh"),
        (
            lambda c: c.start_moh("1700000000.1", "citas"),
            "POST",
            "/ari/channels/1700000000.1/moh?mohClass=citas",
        ),
        (
            lambda c: c.hangup("1700000000.1"),
            "DELETE",
            "/ari/channels/1700000000.1?reason=normal",
        ),
        (
            lambda c: c.hangup("1700000000.1", reason="busy"),
            "DELETE",
            "/ari/channels/1700000000.1?reason=busy",
        ),
        (
            lambda c: c.continue_in_dialplan(
                "1700000000.1", context="citas-agent", extension="5550001"
            ),
            "POST",
            "/ari/channels/1700000000.1/continue?context=citas-agent&extension=5550001&priority=1",
        ),
        (
            lambda c: c.continue_in_dialplan(
                "1700000000.1", context="citas-exit", extension="s", priority=2, label="bye"
            ),
            "POST",
            "/ari/channels/1700000000.1/continue"
            "?context=citas-exit&extension=s&priority=2&label=bye",
        ),
        (
            lambda c: c.set_variable("1700000000.1", "CITAS_RESULT", "booked"),
            "POST",
            "/ari/channels/1700000000.1/variable?variable=CITAS_RESULT&value=booked",
        ),
        (
            lambda c: c.stop_playback("1700000000.1-welcome"),
            "DELETE",
            "/ari/playbacks/1700000000.1-welcome",
        ),
    ],
)
async def test_no_content_calls_send_exact_query(
    fake: FakeAri, client: AriClient, call: Any, method: str, raw_path: str
) -> None:
    fake.reply(method, raw_path.partition("?")[0], status=204)

    assert await call(client) is None
    assert [(s.method, s.raw_path) for s in fake.seen] == [(method, raw_path)]


async def test_play_one_media(fake: FakeAri, client: AriClient) -> None:
    path = "/ari/channels/1700000000.1/play/1700000000.1-welcome"
    fake.reply("POST", path, status=201, body=PLAYBACK)

    playback = await client.play(
        "1700000000.1", "sound:citas/welcome", playback_id="1700000000.1-welcome", lang="es"
    )

    assert playback.id == "1700000000.1-welcome"
    assert playback.channel_id == "1700000000.1"
    assert fake.seen[0].raw_path == path + "?media=sound:citas/welcome&lang=es"


async def test_play_media_list_is_comma_joined(fake: FakeAri, client: AriClient) -> None:
    path = "/ari/channels/1700000000.1/play/pb-2"
    fake.reply("POST", path, status=201, body=PLAYBACK)

    await client.play("1700000000.1", ["sound:citas/date", "digits:15"], playback_id="pb-2")

    assert fake.seen[0].raw_path == path + "?media=sound:citas/date,digits:15"


async def test_get_variable(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/ari/channels/1700000000.1/variable", body={"value": "booked"})

    assert await client.get_variable("1700000000.1", "CITAS_RESULT") == "booked"
    assert fake.seen[0].raw_path == "/ari/channels/1700000000.1/variable?variable=CITAS_RESULT"


@pytest.mark.parametrize(
    ("status", "body", "exc_type", "message"),
    [
        (400, {"message": "Invalid media URI"}, AriBadRequest, "Invalid media URI"),
        (401, {"error": "Authentication required"}, AriAuthError, "Authentication required"),
        (403, "Forbidden", AriAuthError, "Forbidden"),
        (404, {"message": "Channel not found"}, AriNotFound, "Channel not found"),
        (409, {"message": "Channel not in Stasis application"}, AriConflict, "not in Stasis"),
        (422, {"message": "Unprocessable"}, AriHttpError, "Unprocessable"),
        (500, {"message": "Internal Server Error"}, AriServerError, "Internal Server Error"),
        (503, "Service Unavailable", AriServerError, "Service Unavailable"),
    ],
)
async def test_error_status_maps_to_exception(
    fake: FakeAri,
    client: AriClient,
    status: int,
    body: Any,
    exc_type: type[AriError],
    message: str,
) -> None:
    fake.reply("POST", "/ari/channels/1700000000.1/answer", status=status, body=body)

    with pytest.raises(exc_type) as info:
        await client.answer("1700000000.1")

    err = info.value
    assert type(err) is exc_type
    assert isinstance(err, AriHttpError | AriAuthError)
    assert (err.status, err.method, err.path) == (status, "POST", "/channels/1700000000.1/answer")
    assert message in err.message


async def test_auth_error_is_not_caught_as_http_error(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/ari/channels", status=401, body={"error": "Authentication required"})

    with pytest.raises(AriAuthError) as info:
        await client.list_channels()

    assert not isinstance(info.value, AriHttpError)


async def test_non_json_success_is_protocol_error(fake: FakeAri, client: AriClient) -> None:
    fake.reply("GET", "/ari/asterisk/ping", body="<html>proxy</html>")

    with pytest.raises(AriProtocolError, match="not JSON"):
        await client.ping()


async def test_get_variable_without_value_is_protocol_error(
    fake: FakeAri, client: AriClient
) -> None:
    fake.reply("GET", "/ari/channels/1700000000.1/variable", body={})

    with pytest.raises(AriProtocolError, match="CITAS_RESULT"):
        await client.get_variable("1700000000.1", "CITAS_RESULT")


async def test_slow_answer_is_timeout() -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({"ping": "pong"})

    app = web.Application()
    app.router.add_get("/ari/asterisk/ping", stuck)
    server = TestServer(app)
    await server.start_server()
    try:
        async with AriClient(str(server.make_url("/ari")), USER, PASSWORD, timeout=0.2) as ari:
            with pytest.raises(AriTimeout) as info:
                await ari.ping()
        assert arrived.is_set()
        assert isinstance(info.value, AriConnectionError)
    finally:
        release.set()
        await server.close()


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{unused_port()}/ari"
    async with AriClient(url, USER, PASSWORD, timeout=2.0) as ari:
        with pytest.raises(AriConnectionError) as info:
            await ari.ping()
    assert not isinstance(info.value, AriTimeout)


async def test_calls_made_records_templates_and_param_names(
    fake: FakeAri, client: AriClient
) -> None:
    for method, path in [
        ("POST", "/ari/channels/1700000000.1/answer"),
        ("POST", "/ari/channels/1700000000.2/answer"),
        ("DELETE", "/ari/channels/1700000000.1"),
        ("POST", "/ari/channels/1700000000.1/continue"),
    ]:
        fake.reply(method, path, status=204)
    fake.reply("POST", "/ari/channels/1700000000.1/play/pb-1", status=201, body=PLAYBACK)

    await client.answer("1700000000.1")
    await client.answer("1700000000.2")
    await client.hangup("1700000000.1")
    await client.continue_in_dialplan("1700000000.1", context="c", extension="s")
    await client.play("1700000000.1", "sound:x", playback_id="pb-1")
    with pytest.raises(AriNotFound):  # failed calls are recorded too
        await client.stop_playback("pb-1")

    assert client.calls_made == {
        ("POST", "/channels/{channelId}/answer", frozenset()),
        ("DELETE", "/channels/{channelId}", frozenset({"reason"})),
        (
            "POST",
            "/channels/{channelId}/continue",
            frozenset({"context", "extension", "priority"}),
        ),
        ("POST", "/channels/{channelId}/play/{playbackId}", frozenset({"media"})),
        ("DELETE", "/playbacks/{playbackId}", frozenset()),
    }


async def test_injected_session_is_left_open(fake: FakeAri) -> None:
    fake.reply("GET", "/ari/asterisk/ping", body={"ping": "pong"})
    async with aiohttp.ClientSession() as session:
        async with AriClient(fake.url, USER, PASSWORD, session=session) as ari:
            await ari.ping()
        assert not session.closed


async def test_error_body_in_message(fake: FakeAri, client: AriClient) -> None:
    fake.reply("DELETE", "/ari/channels/gone", status=404, body={"message": "Channel not found"})

    with pytest.raises(AriNotFound) as info:
        await client.hangup("gone")

    assert str(info.value) == "DELETE /channels/gone -> HTTP 404: Channel not found"
    assert info.value.message == "Channel not found"


async def test_counters_count_requests_by_route(fake: FakeAri, client: AriClient) -> None:
    """Every request is counted once by method and route template, failed ones too."""
    for channel in ("1700000000.1", "1700000000.2"):
        fake.reply("POST", f"/ari/channels/{channel}/answer", status=204)
        fake.reply("POST", f"/ari/channels/{channel}/play/{channel}-a", status=201, body=PLAYBACK)
        await client.answer(channel)
        await client.play(channel, "sound:x", playback_id=f"{channel}-a")
    with pytest.raises(AriNotFound):
        await client.stop_playback("pb-1")

    assert client.counters.snapshot()["requests"] == {
        "DELETE /playbacks/{id}": 1,
        "POST /channels/{id}/answer": 2,
        "POST /channels/{id}/play/{id}": 2,
    }
