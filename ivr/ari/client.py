"""REST half of the ARI client: the dozen calls the IVR makes.

Every public method names its ARI path as a template plus path parameters, so
``calls_made`` can be checked against Asterisk's ``/ari/api-docs`` (each
template must exist with that method, each query parameter must be declared).

>>> async def greet(client: AriClient, channel_id: str) -> None:
...     await client.answer(channel_id)
...     await client.play(channel_id, "sound:hello-world", playback_id=f"{channel_id}-hi")
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ivr.ari.counters import AriCounters
from ivr.ari.errors import (
    AriConnectionError,
    AriProtocolError,
    AriTimeout,
    error_for_status,
)
from ivr.ari.models import Channel, Playback
from ivr.ari.wsrest import WebSocketRest
from ivr.httpsession import OwnedSession

logger = logging.getLogger(__name__)

QueryValue = str | int | bool | None
CallRecord = tuple[str, str, frozenset[str]]


def _decoded(status: int, body: bytes, method: str, url_path: str) -> Any:
    """A response's JSON body, None when empty; ``AriError`` for a status of 400 up."""
    logger.debug("ARI %s %s -> %s", method, url_path, status)
    if status >= 400:
        raise error_for_status(status, method, url_path, _error_message(body))
    if not body:
        return None
    try:
        return orjson.loads(body)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        raise AriProtocolError(f"{method} {url_path}: response is not JSON") from exc


def basic_auth_header(username: str, password: str) -> str:
    # Built by hand: aiohttp.BasicAuth is deprecated in 3.14 and its
    # replacement does not exist in the older 3.x we also support.
    if ":" in username:
        raise ValueError("an ARI username cannot contain ':' (RFC 7617)")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _query_value(value: str | int | bool) -> str:
    # ARI parses booleans only in lower case.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Asterisk's HTTP server gives each connection a thread and refuses or drops
# connections past its http.conf ``sessionlimit`` (Asterisk's default: 100).
# aiohttp's default pool (100 sockets) let two controllers under load open
# more than that: Asterisk dropped connections mid-request ("Server
# disconnected", answer and play failing on 114 of 1280 calls in the bench at
# 640 calls on 2 controllers). Each controller process keeps at most
# ARI_CONNECTIONS REST sockets (plus its event websocket); the sandbox's
# http.conf sessionlimit covers MAX_CONTROLLERS of them (ari_sessions_needed).
ARI_CONNECTIONS = 16
# Idle keep-alive sockets are closed before Asterisk's own 15 s
# (http.conf session_keep_alive), so a request never goes out on a socket
# Asterisk is closing.
ARI_KEEPALIVE_S = 10.0


def ari_sessions_needed(controllers: int) -> int:
    """HTTP sessions Asterisk must accept for ``controllers`` processes: each
    one's REST pool and event websocket, plus one for a CLI or test client."""
    return controllers * (ARI_CONNECTIONS + 1) + 1


class AriClient(OwnedSession):
    """Async client of the Asterisk REST Interface, e.g. ``http://127.0.0.1:8088/ari``.

    Its own session keeps at most ``ARI_CONNECTIONS`` sockets to Asterisk."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        counters: AriCounters | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": basic_auth_header(username, password)}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        super().__init__(session, connections=ARI_CONNECTIONS, keepalive_s=ARI_KEEPALIVE_S)
        self.calls_made: set[CallRecord] = set()
        # Requests by route (and, given to the EventStream, events by type).
        self.counters = counters if counters is not None else AriCounters()
        # The event websocket's requests (EventStream.rest), used while ready.
        self.websocket: WebSocketRest | None = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, QueryValue] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; return the decoded JSON body, or None for 204."""
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        self.calls_made.add((method, path, frozenset(query)))
        url_path = path.format_map({k: quote(v, safe="") for k, v in (path_params or {}).items()})
        websocket = self.websocket if self.websocket is not None and self.websocket.ready else None
        self.counters.request(method, path, websocket=websocket is not None)
        if websocket is not None:
            body_in = None if json is None else orjson.dumps(json)
            assert self._timeout.total is not None
            status, body = await websocket.request(
                method, url_path[1:], query, body_in, self._timeout.total
            )
            return _decoded(status, body, method, url_path)
        url = self._base_url + url_path
        try:
            async with self._get_session().request(
                method, url, params=query, json=json, headers=self._headers, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            # Checked first: aiohttp's ServerTimeoutError is also a connection error.
            raise AriTimeout(
                f"{method} {url_path}: no answer within {self._timeout.total}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise AriConnectionError(f"{method} {url_path}: {exc!r}") from exc
        return _decoded(status, body, method, url_path)

    # -- asterisk ---------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        return _expect_obj(await self._request("GET", "/asterisk/ping"), "ping")

    async def asterisk_info(self) -> dict[str, Any]:
        return _expect_obj(await self._request("GET", "/asterisk/info"), "asterisk info")

    async def list_applications(self) -> list[dict[str, Any]]:
        apps = _expect_list(await self._request("GET", "/applications"), "applications")
        return [_expect_obj(app, "application") for app in apps]

    async def application_channel_ids(self, app: str) -> list[str]:
        """The channels application ``app`` is subscribed to (``GET /applications/{app}``);
        ``AriNotFound`` when Asterisk does not know the application."""
        data = _expect_obj(
            await self._request("GET", "/applications/{applicationName}",
                                path_params={"applicationName": app}),
            "application",
        )  # fmt: skip
        return [str(c) for c in _expect_list(data.get("channel_ids", []), "channel_ids")]

    async def set_global_variable(self, variable: str, value: str) -> None:
        """A global dialplan variable (``POST /asterisk/variable``), e.g. ``CITAS_CONTROLLERS``."""
        await self._request(
            "POST", "/asterisk/variable", params={"variable": variable, "value": value}
        )

    async def set_event_filter(self, app: str, allowed: Sequence[str]) -> dict[str, Any]:
        """Let Stasis application ``app`` receive only the event types ``allowed``.

        ``PUT /applications/{app}/eventFilter`` (Asterisk 13.26+; ARI's
        ``events_allowed``): every other event type (``ChannelVarset``,
        ``PlaybackContinuing``...) is no longer serialised and sent on the app's
        websocket. Returns the application as Asterisk now describes it
        (``events_allowed``/``events_disallowed`` lists of ``{"type": ...}``).
        ``AriNotFound`` when the app is not registered (no websocket connected),
        ``AriBadRequest`` for a malformed filter.
        """
        data = await self._request(
            "PUT",
            "/applications/{applicationName}/eventFilter",
            path_params={"applicationName": app},
            json={"allowed": [{"type": t} for t in allowed], "disallowed": []},
        )
        return _expect_obj(data, "application")

    # -- channels ---------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        channels = _expect_list(await self._request("GET", "/channels"), "channels")
        return [Channel.from_json(_expect_obj(ch, "channel")) for ch in channels]

    async def get_channel(self, channel_id: str) -> Channel:
        data = await self._request(
            "GET", "/channels/{channelId}", path_params={"channelId": channel_id}
        )
        return Channel.from_json(_expect_obj(data, "channel"))

    async def originate(
        self,
        channel_id: str,
        *,
        endpoint: str,
        app: str,
        app_args: Sequence[str] = (),
        caller_id: str | None = None,
        timeout_s: int = 30,
    ) -> Channel:
        """Dial ``endpoint`` (``PJSIP/6001``) as a new channel ``channel_id`` that
        enters Stasis app ``app`` (with ``app_args``) once answered; Asterisk gives
        up after ``timeout_s`` seconds of ringing. Our app gets the channel's
        events from its creation, so an unanswered call ends in a
        ``ChannelDestroyed`` with the hang-up cause. ``AriConflict``-like errors
        (``AriError``) when the id is in use or the endpoint is unknown."""
        data = await self._request(
            "POST",
            "/channels/{channelId}",
            path_params={"channelId": channel_id},
            params={
                "endpoint": endpoint,
                "app": app,
                "appArgs": ",".join(app_args) or None,
                "callerId": caller_id,
                "timeout": timeout_s,
            },
        )
        return Channel.from_json(_expect_obj(data, "channel"))

    async def answer(self, channel_id: str) -> None:
        await self._channel_post(channel_id, "/answer")

    async def ring(self, channel_id: str) -> None:
        await self._channel_post(channel_id, "/ring")

    async def start_silence(self, channel_id: str) -> None:
        await self._channel_post(channel_id, "/silence")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self._channel_post(channel_id, "/moh", {"mohClass": moh_class})

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._request(
            "DELETE",
            "/channels/{channelId}",
            path_params={"channelId": channel_id},
            params={"reason": reason},
        )

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str,
        extension: str,
        priority: int = 1,
        label: str | None = None,
    ) -> None:
        params: dict[str, QueryValue] = {
            "context": context,
            "extension": extension,
            "priority": priority,
            "label": label,
        }
        await self._channel_post(channel_id, "/continue", params)

    async def move(self, channel_id: str, app: str, app_args: Sequence[str] = ()) -> None:
        """Move a channel in Stasis into application ``app`` (``POST
        /channels/{id}/move``): it gets a StasisStart with ``app_args`` there. Works
        for a channel whose application's websocket is gone (docs/perf/multi.md).
        ``AriNotFound`` when the channel is gone, ``AriConflict`` when not in Stasis."""
        await self._channel_post(
            channel_id, "/move", {"app": app, "appArgs": ",".join(app_args) or None}
        )

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self._channel_post(channel_id, "/variable", {"variable": variable, "value": value})

    async def get_variable(self, channel_id: str, variable: str) -> str:
        data = await self._request(
            "GET",
            "/channels/{channelId}/variable",
            path_params={"channelId": channel_id},
            params={"variable": variable},
        )
        value = _expect_obj(data, "variable").get("value")
        if not isinstance(value, str):
            raise AriProtocolError(f"variable {variable}: expected string value, got {value!r}")
        return value

    async def _channel_post(
        self, channel_id: str, action: str, params: Mapping[str, QueryValue] | None = None
    ) -> None:
        await self._request(
            "POST",
            "/channels/{channelId}" + action,
            path_params={"channelId": channel_id},
            params=params,
        )

    # -- playbacks --------------------------------------------------------

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str,
        lang: str | None = None,
    ) -> Playback:
        """Start playing ``media`` (one URI or several, played in order).

        The caller picks ``playback_id`` so PlaybackFinished can be matched to
        this request even if the event overtakes the HTTP response.
        """
        media_param = media if isinstance(media, str) else ",".join(media)
        data = await self._request(
            "POST",
            "/channels/{channelId}/play/{playbackId}",
            path_params={"channelId": channel_id, "playbackId": playback_id},
            params={"media": media_param, "lang": lang},
        )
        return Playback.from_json(_expect_obj(data, "playback"))

    async def stop_playback(self, playback_id: str) -> None:
        await self._request(
            "DELETE", "/playbacks/{playbackId}", path_params={"playbackId": playback_id}
        )


def _error_message(body: bytes) -> str:
    # ARI errors are {"message": "..."}; the HTTP layer's own 401 is plain text.
    try:
        data = orjson.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(data, dict):
        for key in ("message", "error"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return body.decode("utf-8", "replace").strip()[:200]


def _expect_obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise AriProtocolError(f"{what}: expected object, got {type(data).__name__}")
    return data


def _expect_list(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise AriProtocolError(f"{what}: expected list, got {type(data).__name__}")
    return data
