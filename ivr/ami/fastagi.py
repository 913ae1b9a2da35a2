"""FastAGI server: ``AGI(agi://host:port/<route>,args)`` answered by async handlers.

For dialplan that needs a lookup without going through Stasis::

    async def lookup_affiliate(request: AgiRequest) -> None:
        document = request.args[0]
        ...
        await request.set_variable("CITAS_AFFILIATE_FOUND", "1")

    server = FastAgiServer(settings.host, settings.ports.agi)
    server.route("citas-affiliate", lookup_affiliate)
    await server.start()

The route ``citas-health`` is built in: it sets ``CITAS_IVR_HEALTH=up``, so
the dialplan can check the controller with ``AGI(agi://.../citas-health)``.

panoramisk's ``fast_agi.Request`` speaks the AGI command/result exchange. Its
``Application.handler`` is not used: it spins forever without yielding when a
client closes before the header block ends (a TCP health probe freezes the
whole event loop), and it catches ``BaseException`` around the route.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk.fast_agi import Request

from ivr.ami.errors import AgiCommandFailed, AgiError, AgiHangup, AgiTimeout

logger = logging.getLogger(__name__)

HEALTH_ROUTE = "citas-health"
HEALTH_VARIABLE = "CITAS_IVR_HEALTH"

AgiCommandSender = Callable[[str], Awaitable[Mapping[str, Any]]]
AgiHandler = Callable[["AgiRequest"], Awaitable[None]]

# A variable name, or a dialplan function call such as CALLERID(name).
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([^\s\"\\()]*\))?")


@dataclass(frozen=True)
class AgiResult:
    """A ``200 result=<value> (<data>)`` line: ``GET VARIABLE`` puts the value in data."""

    value: str
    data: str


class AgiRequest:
    """One FastAGI request: Asterisk's ``agi_*`` headers and the channel's command line.

    ``send`` is the transport (the server passes panoramisk's; tests pass a fake).
    """

    def __init__(self, headers: Mapping[str, str], send: AgiCommandSender, *, timeout: float):
        self.headers = headers
        self._send = send
        self._timeout = timeout

    @property
    def route(self) -> str:
        return self.headers.get("agi_network_script", "")

    @property
    def unique_id(self) -> str:
        """Asterisk's channel uniqueid: the id to put on every log line."""
        return self.headers.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.headers.get("agi_channel", "")

    @property
    def caller_id(self) -> str:
        return self.headers.get("agi_callerid", "")

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1``, ``agi_arg_2``, ...: the arguments after the URI in ``AGI()``."""
        found: list[str] = []
        while (arg := self.headers.get(f"agi_arg_{len(found) + 1}")) is not None:
            found.append(arg)
        return tuple(found)

    async def command(self, command: str) -> AgiResult:
        """Send one AGI command line; raise ``AgiError`` unless Asterisk answers 200."""
        if "\n" in command or "\r" in command:
            raise ValueError("an AGI command is a single line")
        try:
            result = await asyncio.wait_for(self._send(command), self._timeout)
        except TimeoutError as exc:
            verb = command.split(" ", 1)[0]
            raise AgiTimeout(f"AGI {verb}: no answer in {self._timeout}s") from exc
        if result.get("error") == "AGIResultHangup":
            raise AgiHangup(str(result.get("msg", "")))
        if "error" in result:
            raise AgiCommandFailed(command, result)
        value, data = result.get("result", ("", ""))
        return AgiResult(value=value, data=data)

    async def set_variable(self, name: str, value: str) -> None:
        """``SET VARIABLE``: set a channel variable the dialplan reads after AGI()."""
        await self.command(f"SET VARIABLE {_variable_name(name)} {_quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE``: the variable's value, or None when it is not set."""
        result = await self.command(f"GET VARIABLE {_variable_name(name)}")
        return result.data if result.value == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        """``VERBOSE``: a line in Asterisk's console and full log."""
        await self.command(f"VERBOSE {_quote(message)} {level}")


class FastAgiServer:
    """A TCP server answering Asterisk's FastAGI requests by route name."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._routes: dict[str, AgiHandler] = {}
        self._server: asyncio.Server | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self.route(HEALTH_ROUTE, report_health)

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        if self._server is None:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def route(self, name: str, handler: AgiHandler) -> None:
        """Answer ``agi://host/<name>`` with ``handler``, an ``async def`` function."""
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"FastAGI handler {handler!r} must be an 'async def' function")
        if not name or "/" in name:
            raise ValueError(f"FastAGI route {name!r}: use a plain name such as 'citas-health'")
        if name in self._routes:
            raise ValueError(f"FastAGI route {name!r} is already registered")
        self._routes[name] = handler

    async def start(self) -> None:
        # A plain callback, so the request tasks are ours to cancel in stop().
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        logger.info("FastAGI listening on %s:%s", self._host, self.port)

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop listening, give running requests ``grace`` seconds, cancel the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        running = set(self._requests)
        if running:
            _done, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            headers = await self._read_headers(reader)
            if headers is not None:
                await self._dispatch(headers, _sender(reader, writer))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        try:
            block = await asyncio.wait_for(reader.readuntil(b"\n\n"), self._timeout)
        except asyncio.IncompleteReadError:
            logger.debug("FastAGI client left before its headers ended (a TCP probe?)")
            return None
        except (TimeoutError, asyncio.LimitOverrunError, OSError) as exc:
            logger.warning("FastAGI request without a usable header block: %r", exc)
            return None
        return parse_agi_headers(block.decode("utf-8", errors="replace"))

    async def _dispatch(self, headers: Mapping[str, str], send: AgiCommandSender) -> None:
        request = AgiRequest(headers, send, timeout=self._timeout)
        handler = self._routes.get(request.route)
        if handler is None:
            logger.warning("[%s] FastAGI: no route %r", request.unique_id, request.route)
            handler = _report_unknown_route
        try:
            await handler(request)
        except AgiHangup:
            logger.info("[%s] FastAGI %s: channel hung up", request.unique_id, request.route)
        except AgiError as exc:
            logger.warning("[%s] FastAGI %s: %s", request.unique_id, request.route, exc)
        except Exception:
            logger.exception("[%s] FastAGI %s: handler failed", request.unique_id, request.route)


async def report_health(request: AgiRequest) -> None:
    """The ``citas-health`` route: tell the dialplan the controller answers."""
    await request.set_variable(HEALTH_VARIABLE, "up")


async def _report_unknown_route(request: AgiRequest) -> None:
    # Visible on the Asterisk console, where a dialplan typo gets noticed.
    await request.verbose(f"citas-ivr FastAGI: unknown route {request.route}", 1)


def parse_agi_headers(block: str) -> dict[str, str]:
    """``agi_name: value`` lines as a dict (Asterisk ends the block with an empty line)."""
    headers: dict[str, str] = {}
    for line in block.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
        elif line.endswith(":"):
            headers[line[:-1]] = ""
    return headers


def _sender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AgiCommandSender:
    request = Request(app=None, headers={}, reader=reader, writer=writer, encoding="utf-8")

    async def send(command: str) -> Mapping[str, Any]:
        try:
            result: Mapping[str, Any] = await request.send_command(command)
        except ConnectionError as exc:
            raise AgiHangup(f"connection lost: {exc}") from exc
        except ValueError:
            # panoramisk parses the empty line read at EOF as a status code.
            if reader.at_eof():
                raise AgiHangup("Asterisk closed the connection") from None
            raise
        return result

    return send


def _variable_name(name: str) -> str:
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"not a channel variable name: {name!r}")
    return name


def _quote(value: str) -> str:
    """Quote an AGI argument; res_agi's parser honours backslash escapes inside quotes."""
    if "\n" in value or "\r" in value:
        raise ValueError("an AGI argument cannot contain a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
