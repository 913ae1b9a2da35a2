"""ARI REST requests over the application's event websocket (Asterisk 20.14, 21.9,
22.4 and later: "ARI REST over WebSocket", docs.asterisk.org).

A request is one text message on the websocket the events arrive on::

    {"type": "RESTRequest", "request_id": "7", "method": "POST",
     "uri": "channels/1700000000.1/play/pb-1",
     "query_strings": [{"name": "media", "value": "sound:citas/goodbye"}]}

and its answer an event of type ``RESTResponse`` with the same ``request_id``,
``status_code``, ``reason_phrase`` and, when there is a body, ``content_type`` and
``message_body`` (the JSON body as a string). The application's event filter must
allow ``RESTResponse`` (``ivr.ari.EVENT_FILTER``), or answers are never sent.

Why: through ``AriClient``, a request over HTTP costs the controller 0.23–0.27 ms of
CPU (aiohttp) and Asterisk 0.14–0.15 ms (its HTTP session); over the websocket
0.10–0.11 and 0.09–0.12 ms (``scripts/ari_rest_transport.py``, docs/perf/ari.md).
A smoke call makes four, a citas call ten.

``WebSocketRest`` is attached by ``EventStream`` to each websocket it opens and
detached when it closes. The stream's reader answers requests as their answers
arrive, apart from the events, whose handlers run in another task: a handler (the
controller's reconcile, an event's) may await a request on the same websocket.
The controller makes a connection ``ready`` once the event filter with
``RESTResponse`` is set on it and a ``probe`` (``GET /asterisk/ping``) came back
over it: an Asterisk without REST over WebSocket ignores the message, and its
requests then stay on HTTP. ``AriClient`` sends over the websocket while it is
ready, over HTTP otherwise (before the probe, between reconnects).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import orjson

from ivr.ari.errors import AriConnectionError, AriProtocolError, AriTimeout

RESPONSE_TYPE = "RESTResponse"


class WebSocketRest:
    """Requests and their answers on one event websocket at a time.

    ``request`` raises ``AriConnectionError`` when no websocket is attached or it
    closes before the answer (whether Asterisk ran the request is then unknown, as
    for an HTTP connection dropped mid-request), ``AriTimeout`` after ``timeout_s``.
    """

    def __init__(self) -> None:
        self._ws: Any = None  # aiohttp.ClientWebSocketResponse while attached
        self._pending: dict[str, asyncio.Future[tuple[int, bytes]]] = {}
        self._ids = itertools.count(1)
        self.ready = False

    def attach(self, ws: Any) -> None:
        """A new websocket: not ready until the controller has probed it."""
        self.detach()
        self._ws = ws

    def detach(self) -> None:
        """The websocket is gone: every request waiting for an answer fails."""
        self.ready = False
        self._ws = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    AriConnectionError("ARI websocket closed before the answer arrived")
                )

    async def probe(self, timeout_s: float) -> bool:
        """Send ``GET /asterisk/ping`` over the attached websocket; ready (and True)
        when it is answered 200 within ``timeout_s``. Call it once the application's
        event filter lets ``RESTResponse`` through. False, and not ready, for an
        Asterisk before 20.14/21.9/22.4 (the message is ignored) or no websocket."""
        ws = self._ws
        try:
            status, _ = await self.request("GET", "asterisk/ping", {}, None, timeout_s)
        except (AriConnectionError, AriTimeout, AriProtocolError):
            return False
        self.ready = status == 200 and ws is not None and ws is self._ws
        return self.ready

    @property
    def waiting(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    async def request(
        self,
        method: str,
        uri: str,
        query: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> tuple[int, bytes]:
        """Send ``method uri`` (a path with its ids quoted, no leading ``/``) with
        ``query`` (values as they are, unquoted) and a JSON ``body``; return (status
        code, body bytes, empty when there is none)."""
        ws = self._ws
        if ws is None:
            raise AriConnectionError(f"{method} /{uri}: no ARI websocket")
        request_id = str(next(self._ids))
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "request_id": request_id,
            "method": method,
            "uri": uri,
        }
        if query:
            message["query_strings"] = [{"name": k, "value": v} for k, v in query.items()]
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = body.decode()
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await ws.send_str(orjson.dumps(message).decode())
            except (ConnectionError, RuntimeError) as exc:  # a closing websocket
                raise AriConnectionError(f"{method} /{uri}: {exc!r}") from exc
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError as exc:
                raise AriTimeout(f"{method} /{uri}: no answer within {timeout_s}s") from exc
        finally:
            self._pending.pop(request_id, None)

    def answer(self, data: dict[str, Any]) -> None:
        """A ``RESTResponse`` event (decoded): complete its request. An answer to a
        request no longer waited for (timed out, another connection's) is dropped."""
        future = self._pending.pop(str(data.get("request_id", "")), None)
        if future is None or future.done():
            return
        status = data.get("status_code")
        body = data.get("message_body", "")
        if not isinstance(status, int) or not isinstance(body, str):
            future.set_exception(AriProtocolError(f"malformed {RESPONSE_TYPE}: {data!r:.200}"))
            return
        future.set_result((status, body.encode()))
