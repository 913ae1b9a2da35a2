"""The AMI connection: panoramisk's Manager behind a small, typed, timed API.

Typical use, from the composition root::

    ami = AmiConnection(settings.host, settings.ports.ami, settings.ami_user,
                        settings.ami_password, timeout=settings.request_timeout)
    ami.on_event("FullyBooted", on_asterisk_booted)   # an ``async def``
    await ami.connect()
    uptime = await ami.command("core show uptime")
    ...
    await ami.close()

``AmiConnection`` never reconnects by itself: a supervisor awaits
``wait_disconnected()`` and calls ``connect()`` again, so retries, back-off and
logging live in one place. Registered event handlers survive a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from ivr.ami.errors import AmiActionFailed, AmiAuthError, AmiConnectionError, AmiError, AmiTimeout
from ivr.failures import failure_text

logger = logging.getLogger(__name__)

AmiEvent = Mapping[str, str]
AmiEventHandler = Callable[[AmiEvent], Awaitable[None]]
AmiFields = Mapping[str, str | list[str]]


class AmiConnection:
    """One logged-in AMI session with Asterisk.

    Every action waits at most ``timeout`` seconds for its response and raises
    an ``AmiError`` subclass (see ``ivr.ami.errors``) instead of hanging.
    """

    def __init__(
        self, host: str, port: int, username: str, password: str, *, timeout: float = 5.0
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._timeout = timeout
        self._manager: _Manager | None = None
        self._protocol: _Protocol | None = None
        self._logged_in = False
        self._last_ping_ok = False
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._handlers: list[tuple[str, AmiEventHandler]] = []
        self._filtered = False  # an include filter is set on this session
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._handler_tasks: set[asyncio.Task[None]] = set()

    @property
    def healthy(self) -> bool:
        """Logged in, and the last ping (or the login itself) was answered."""
        return self._logged_in and self._last_ping_ok

    async def connect(self) -> None:
        """Open the TCP connection and log in; raise ``AmiError`` on failure."""
        await self._shut("reconnecting")
        loop = asyncio.get_running_loop()
        try:
            _transport, protocol = await asyncio.wait_for(
                loop.create_connection(_Protocol, self._host, self._port), self._timeout
            )
        except TimeoutError as exc:
            raise AmiTimeout(f"AMI connect to {self._where} took over {self._timeout}s") from exc
        except OSError as exc:
            reason = failure_text(exc)
            raise AmiConnectionError(f"cannot connect to AMI at {self._where}: {reason}") from exc
        self._attach(loop, protocol)
        await self._login()
        await self._filter_events()

    async def close(self) -> None:
        """Close the connection and cancel the event handlers still running."""
        await self._shut("connection closed")
        tasks = list(self._handler_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_disconnected(self) -> None:
        """Return once the connection is down (lost, refused login or closed)."""
        await self._disconnected.wait()

    async def ping(self) -> bool:
        """Send ``Action: Ping``; True when Asterisk answered. Never raises."""
        try:
            response = await self._action({"Action": "Ping"})
        except AmiError as exc:
            logger.warning("AMI ping to %s failed: %s", self._where, exc)
            self._last_ping_ok = False
            return False
        self._last_ping_ok = response.get("Ping") == "Pong"
        return self._last_ping_ok

    async def command(self, cli: str) -> str:
        """Run a CLI command (``Action: Command``) and return its output text."""
        response = await self._action({"Action": "Command", "Command": cli})
        return response.get("Output", "")

    async def originate(
        self,
        channel: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout_ms: int = 30_000,
    ) -> dict[str, str]:
        """Place a call and return Asterisk's ``OriginateResponse`` once it is answered.

        The action is sent with ``Async: true`` (a synchronous Originate blocks
        the whole AMI session while the far end rings). Raises
        ``AmiActionFailed`` when Asterisk rejects the action or the call is not
        answered (``Reason`` in the response: 1 hangup, 3 no answer, 5 busy,
        8 congestion).
        """
        fields: dict[str, str | list[str]] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Timeout": str(timeout_ms),
            "Async": "true",
        }
        if caller_id is not None:
            fields["CallerID"] = caller_id
        if variables:
            fields["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        return await self._action(fields, within=timeout_ms / 1000 + self._timeout)

    async def action(self, fields: AmiFields) -> dict[str, str]:
        """Send an action answered by one message (``QueueAdd``, ``QueuePause``...) and
        return it. ``fields["Action"]`` names it. Raises ``AmiActionFailed`` (Response:
        Error), ``AmiTimeout``, ``AmiConnectionError``.

        panoramisk would otherwise wait for an event list after "Added interface to
        queue" (it guesses lists from the message text) and time out."""
        return await self._action(fields, as_list=False)

    async def action_list(self, fields: AmiFields) -> list[dict[str, str]]:
        """Send an action answered by an event list (``QueueStatus``, ``QueueSummary``) and
        return the list's events, without the opening response and the closing
        ``...Complete`` event. Raises as ``action``."""
        name = str(fields["Action"])
        answer = await self._send(name, fields, self._timeout)
        messages = answer if isinstance(answer, list) else [answer]
        first = _as_dict(messages[0])
        if not messages[0].success or first.get("Response") in ("Error", "Failure"):
            raise AmiActionFailed(name, first)
        return [
            _as_dict(m) for m in messages[1:] if not str(m.get("Event", "")).endswith("Complete")
        ]

    def on_event(self, pattern: str, handler: AmiEventHandler) -> None:
        """Call ``handler(event)`` for every event whose name matches ``pattern``.

        ``pattern`` is a shell pattern (``"FullyBooted"``, ``"Queue*"``, ``"*"``).
        Only coroutine functions are accepted. Each event runs in its own task,
        so handlers may overlap; an exception is logged, never propagated.
        """
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"AMI event handler {handler!r} must be an 'async def' function")
        self._handlers.append((pattern, handler))
        if self._manager is not None:
            self._manager.register_event(pattern, self._bridge(handler))
        if self._filtered and self._logged_in:
            # A filter is in place: widen it (Asterisk keeps every include filter).
            task = asyncio.get_running_loop().create_task(self._widen_filter(pattern))
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    async def _filter_events(self) -> None:
        """Have Asterisk send this session only the events it has handlers for.

        Without it a session logged in with ``Events: on`` gets every event of its
        read classes: per call dozens (``Newexten`` per dialplan priority,
        ``VarSet``, ``Newstate``, ``DTMFBegin``...), each parsed by panoramisk in
        the controller's event loop and dropped (docs/perf/ari.md). ``Action:
        Filter`` (``Operation: Add``, an include regex) applies to broadcast events
        only: action responses and their event lists (``QueueStatus``) are not
        filtered. ``OriginateResponse`` (an ``originate()``'s answer) always
        passes. No handler, or a ``*`` handler: no filter (every event, as before).
        A refused filter is logged; the session then gets every event.
        """
        self._filtered = False
        patterns = [pattern for pattern, _ in self._handlers]
        if not patterns or any(p.strip("*") == "" for p in patterns):
            return
        self._filtered = await self._add_filter([*patterns, *ALWAYS_SENT_EVENTS])

    async def _widen_filter(self, pattern: str) -> None:
        await self._add_filter([pattern])

    async def _add_filter(self, patterns: list[str]) -> bool:
        regex = event_filter_regex(patterns)
        try:
            await self._action({"Action": "Filter", "Operation": "Add", "Filter": regex})
        except AmiError as exc:
            logger.warning("AMI %s: event filter %s refused: %s", self._where, regex, exc)
            return False
        return True

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    def _attach(self, loop: asyncio.AbstractEventLoop, protocol: _Protocol) -> None:
        manager = _Manager(self._connection_lost, host=self._host, port=self._port, loop=loop)
        for pattern, handler in self._handlers:
            manager.register_event(pattern, self._bridge(handler))
        opened: asyncio.Future[tuple[object, _Protocol]] = loop.create_future()
        opened.set_result((protocol.transport, protocol))
        # Manager.connection_made is the done-callback of its own connect task;
        # feeding it our finished connection wires protocol and manager together.
        manager.connection_made(opened)
        self._manager = manager
        self._protocol = protocol
        self._disconnected.clear()

    async def _login(self) -> None:
        fields = {
            "Action": "Login",
            "Username": self._username,
            "Secret": self._password,
            "Events": "on",
        }
        try:
            await self._action(fields)
        except AmiActionFailed as exc:
            await self._shut("login refused")
            raise AmiAuthError(self._username, exc.response) from None
        except AmiError:
            await self._shut("login failed")
            raise
        self._logged_in = True
        self._last_ping_ok = True
        logger.info("AMI logged in to %s as %s", self._where, self._username)

    async def _action(
        self, fields: AmiFields, *, within: float | None = None, as_list: bool | None = None
    ) -> dict[str, str]:
        """Send one action and return its final response; raise on error or timeout."""
        name = str(fields["Action"])
        answer = await self._send(
            name, fields, self._timeout if within is None else within, as_list
        )
        # Multi-message answers (Originate with Async) end with the message that decides.
        final = answer[-1] if isinstance(answer, list) else answer
        response = _as_dict(final)
        if not final.success or response.get("Response") == "Failure":
            raise AmiActionFailed(name, response)
        return response

    async def _send(
        self, name: str, fields: AmiFields, within: float, as_list: bool | None = None
    ) -> Any:
        manager = self._manager
        if manager is None or self._disconnected.is_set():
            raise AmiConnectionError(f"AMI {name}: not connected to {self._where}")
        _check_no_line_breaks(name, fields)
        action = Action(dict(fields))
        future: asyncio.Future[Any] = manager.send_action(action, as_list=as_list)
        self._in_flight.add(future)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError as exc:
            manager.forget(action)
            raise AmiTimeout(f"AMI {name}: no response from {self._where} in {within}s") from exc
        finally:
            self._in_flight.discard(future)

    def _bridge(self, handler: AmiEventHandler) -> Callable[[object, Mapping[str, Any]], None]:
        # Manager.dispatch calls plain callables directly (only FastAGI's add_route
        # wraps them with the removed asyncio.coroutine). A plain bridge lets us own
        # the task: panoramisk would ensure_future() a coroutine and drop it.
        def deliver(_manager: object, message: Mapping[str, Any]) -> None:
            task = asyncio.get_running_loop().create_task(_run_handler(handler, _as_dict(message)))
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

        return deliver

    def _connection_lost(self, manager: _Manager, exc: BaseException | None) -> None:
        if manager is not self._manager:
            return
        logger.warning("AMI connection to %s lost: %s", self._where, exc or "closed by Asterisk")
        self._drop_connection("connection lost")

    async def _shut(self, reason: str) -> None:
        """Drop the connection and wait until its socket is really closed."""
        protocol = self._protocol
        self._drop_connection(reason)
        if protocol is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.socket_closed), self._timeout)

    def _drop_connection(self, reason: str) -> None:
        manager, self._manager, self._protocol = self._manager, None, None
        self._logged_in = False
        self._last_ping_ok = False
        self._disconnected.set()
        if manager is not None:
            manager.close()
        for future in self._in_flight:
            if not future.done():
                future.set_exception(AmiConnectionError(f"AMI {self._where}: {reason}"))


# Events an action of ours waits for, whether or not a handler is registered.
ALWAYS_SENT_EVENTS = ("OriginateResponse",)
_ERE_SPECIAL = set(".[]()*+?{}|^$\\")


def event_filter_regex(patterns: list[str]) -> str:
    """An AMI ``Filter`` include regex (POSIX extended, matched anywhere in the
    event's text) for events named by shell ``patterns`` (``*``, ``?``): e.g.
    ``["Hangup", "Queue*"]`` -> ``Event: (Hangup|Queue.*)[[:space:]]``. The
    trailing space class (the header's CR) keeps ``Hangup`` from taking
    ``HangupRequest``."""
    alternatives: list[str] = []
    for pattern in dict.fromkeys(patterns):
        out = []
        for ch in pattern:
            if ch == "*":
                out.append(".*")
            elif ch == "?":
                out.append(".")
            elif ch in _ERE_SPECIAL:
                out.append("[" + ch + "]" if ch not in "^\\" else "\\" + ch)
            else:
                out.append(ch)
        alternatives.append("".join(out))
    return "Event: (" + "|".join(alternatives) + ")[[:space:]]"


async def _run_handler(handler: AmiEventHandler, event: AmiEvent) -> None:
    try:
        await handler(event)
    except Exception:
        logger.exception("AMI handler %s failed on event %s", handler, event.get("Event"))


def _as_dict(message: Mapping[str, Any]) -> dict[str, str]:
    """A panoramisk Message as plain headers; repeated headers are joined by newlines.

    Asterisk 14+ answers ``Command`` with one ``Output:`` header per line.
    """
    headers: dict[str, str] = {}
    for key, value in message.items():
        if key == "content" and not value:
            continue
        headers[key] = "\n".join(value) if isinstance(value, list) else str(value)
    return headers


def _check_no_line_breaks(name: str, fields: AmiFields) -> None:
    # A CR or LF inside a value would end the header and let it inject another action.
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if "\r" in item or "\n" in item:
                raise ValueError(f"AMI {name}: field {key!r} contains a line break")


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's AMI parser, plus a future that says when the socket is closed."""

    socket_closed: asyncio.Future[None]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.socket_closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.socket_closed.done():
            self.socket_closed.set_result(None)

    def close(self) -> None:
        # AmiConnection fails the pending actions itself. Upstream would queue them
        # for a re-send and log each one whole: an Originate's channel and variables
        # carry phone and document numbers.
        self.responses.clear()
        super().close()


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its self-driven lifecycle.

    Upstream reconnects forever from untracked ``call_later`` handles, pings
    without reading the answer, and re-sends unanswered actions after a
    reconnect (a re-sent Originate rings a patient twice). AmiConnection owns
    those decisions, so the hooks report to it instead.
    """

    pinger: asyncio.TimerHandle | None

    def __init__(
        self, on_lost: Callable[[_Manager, BaseException | None], None], **config: Any
    ) -> None:
        super().__init__(**config)
        self._on_lost = on_lost
        # Drop the FullyBooted handler that re-sends queued actions.
        self.callbacks.clear()
        self.patterns.clear()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        self._on_lost(self, exc)

    def ping(self) -> None:
        """Upstream's unattended keepalive; ``AmiConnection.ping`` replaces it."""

    def forget(self, action: Action) -> None:
        """Stop waiting for an action's answer (it timed out): a late one is dropped."""
        if self.protocol is not None:
            self.protocol.responses.pop(action.id, None)
