"""The ARI event websocket, kept open for as long as the IVR runs.

Asterisk does not queue events for an application while its websocket is
down, so after every (re)connect ``on_connected`` runs: that is where the
controller lists the channels in the application and reconciles its calls.
Between attempts the stream sleeps a "full jitter" exponential backoff, so a
restarted Asterisk is not hit by every IVR instance in the same millisecond.

Typical wiring (the composition root owns both objects)::

    stream = EventStream(settings.ari_url, user, password, "citas-ivr",
                         router.dispatch, on_connected=controller.reconcile)
    runner = asyncio.create_task(stream.run())
    ...
    await stream.stop()  # run() returns, the websocket is closed
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from ivr.ari.counters import AriCounters
from ivr.ari.errors import AriError, AriProtocolError
from ivr.ari.events import ApplicationReplaced, Event, parse_event
from ivr.ari.wsrest import RESPONSE_TYPE, WebSocketRest

logger = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]
ConnectedHook = Callable[[], Awaitable[None]]


def events_url(base_url: str) -> str:
    """``http://host:8088/ari`` -> ``ws://host:8088/ari/events``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/events", "", ""))


def full_jitter(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (0-based): uniform in [0, capped exponential]."""
    ceiling = initial * 2 ** min(attempt, 32)  # min(): 2**n would overflow a float
    return rng.uniform(0, min(maximum, ceiling))


class EventStream:
    """Receives one ARI application's events and hands them to ``on_event``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        on_event: EventHandler,
        *,
        on_connected: ConnectedHook | None = None,
        session: aiohttp.ClientSession | None = None,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        rng: random.Random | None = None,
        heartbeat: float = 10.0,
        connect_timeout: float = 5.0,
        counters: AriCounters | None = None,
    ) -> None:
        self._url = events_url(base_url)
        self._app = app
        # Asterisk's websocket accepts credentials as api_key=user:password.
        self._params = {"app": app, "subscribeAll": "false", "api_key": f"{username}:{password}"}
        self._on_event = on_event
        self._on_connected = on_connected
        self._session = session
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._failures = 0
        self._ever_connected = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self.connected = asyncio.Event()
        self.reconnects = 0
        # Events by type as Asterisk sent them (the client's counters when given).
        self.counters = counters if counters is not None else AriCounters()
        # REST requests over this websocket (ivr.ari.wsrest), for the AriClient.
        self.rest = WebSocketRest()

    async def run(self) -> None:
        """Connect, deliver events, reconnect on loss; return after ``stop()``."""
        self._running = True
        self._stopped.clear()
        session = self._session or aiohttp.ClientSession()
        try:
            while not self._stopping.is_set():
                await self._until_stopped(self._connection(session))
                if self._stopping.is_set():
                    break
                delay = self._next_delay()
                logger.info("reconnecting ARI events for app %s in %.2fs", self._app, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            self.connected.clear()
            if self._session is None:
                await session.close()
            self._running = False
            self._stopped.set()

    async def stop(self) -> None:
        """Make ``run()`` return; when a run is active, wait until it has.

        ``run()`` returns at once, whatever it was doing (handshake, reading,
        backoff sleep), and the websocket is closed before this returns. Called
        from inside ``on_event``/``on_connected``, that handler is cancelled.
        """
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    def _next_delay(self) -> float:
        delay = full_jitter(self._failures, self._backoff_initial, self._backoff_max, self._rng)
        self._failures += 1
        return delay

    async def _until_stopped(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` until it ends or ``stop()`` is called, whichever is first."""
        work_task = asyncio.create_task(work)
        stop_task = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait((work_task, stop_task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_task.cancel()
            work_task.cancel()
            # Waiting lets the connection's own cleanup close the websocket.
            await asyncio.wait((work_task, stop_task))
        if not work_task.cancelled():
            work_task.result()  # re-raise a bug rather than reconnecting over it

    async def _connection(self, session: aiohttp.ClientSession) -> None:
        """One connection: handshake, on_connected, events until it closes."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await session.ws_connect(
                    self._url, params=self._params, heartbeat=self._heartbeat
                )
        except aiohttp.WSServerHandshakeError as exc:
            level = logging.ERROR if exc.status in (401, 403) else logging.WARNING
            logger.log(
                level, "ARI refused events websocket for app %s: HTTP %s", self._app, exc.status
            )
            return
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("cannot reach ARI events at %s: %r", self._url, exc)
            return
        self.rest.attach(ws)
        # The reader only reads: it answers REST requests (ivr.ari.wsrest) at once and
        # queues events, which this task hands to on_connected's and on_event's code
        # in order. So a handler may await a request sent on this websocket: its
        # answer never waits behind the handler (one task doing both waited on itself).
        inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(ws, inbox), name=f"ari-read-{self._app}")
        try:
            await self._opened()
            while (data := await inbox.get()) is not None:
                await self._deliver(data)
        finally:
            self.connected.clear()
            self.rest.detach()
            reader.cancel()
            await asyncio.wait((reader,))
            await ws.close()
        if not self._stopping.is_set():
            logger.warning(
                "ARI events websocket for app %s closed (code %s)", self._app, ws.close_code
            )

    async def _opened(self) -> None:
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._failures = 0
        self.connected.set()
        logger.info("ARI events connected for app %s (reconnects=%s)", self._app, self.reconnects)
        if self._on_connected is None:
            return
        try:
            await self._on_connected()
        except Exception as exc:
            if isinstance(exc, AriError) and not self.connected.is_set():
                # the websocket closed under it (_read): its requests failed, not a bug
                logger.warning("on_connected for ARI app %s cut short: %s", self._app, exc)
                return
            # Keep the events flowing: a failed reconcile is retried on the next
            # reconnect, while dropping the socket would lose live hangups.
            logger.exception("on_connected failed for ARI app %s", self._app)

    async def _read(
        self,
        ws: aiohttp.ClientWebSocketResponse[Any],
        inbox: asyncio.Queue[dict[str, Any] | None],
    ) -> None:
        """Read until the websocket closes (then put None): answers to their
        requests, every other message into ``inbox``.

        The close is known here first, while the delivering task may be inside a
        handler (``on_connected``'s reconcile, an ``on_event``) that waits on a request
        over this websocket: so ``connected`` is cleared and the waiting requests fail
        here, at once, rather than when the handler's request times out (seen: Asterisk
        killed during the reconcile, ``/health/ready`` said ARI up for the 5 s of
        ``GET /applications``' timeout, then down for 43 ms)."""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    data = self._decoded(msg.data)
                    if data is None:
                        continue
                    if data.get("type") == RESPONSE_TYPE:
                        self.rest.answer(data)  # a request's answer, not an event
                    else:
                        inbox.put_nowait(data)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    logger.warning("ARI events websocket error: %r", ws.exception())
                    return
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    return
                else:
                    logger.warning("ignoring ARI websocket message of type %s", msg.type.name)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("ARI events websocket for app %s failed: %r", self._app, exc)
        finally:
            self.connected.clear()
            self.rest.detach()
            inbox.put_nowait(None)

    @staticmethod
    def _decoded(text: str) -> dict[str, Any] | None:
        try:
            # orjson: about 3x faster than json on ARI's events (docs/perf/ari.md);
            # its JSONDecodeError is a ValueError.
            data = orjson.loads(text)
        except ValueError as exc:
            logger.warning("dropping unreadable ARI event: %s", exc)
            return None
        if not isinstance(data, dict):
            logger.warning("dropping ARI message that is not an object: %.80s", text)
            return None
        return data

    async def _deliver(self, data: dict[str, Any]) -> None:
        try:
            event = parse_event(data)
        except AriProtocolError as exc:
            logger.warning("dropping unreadable ARI event: %s", exc)
            return
        self.counters.event(event.type)
        if isinstance(event, ApplicationReplaced):
            logger.warning("another client took over ARI app %s; no more events", self._app)
        try:
            await self._on_event(event)
        except Exception:
            logger.exception(
                "ARI event handler failed on %s (channel %s)", event.type, event.channel_id
            )
