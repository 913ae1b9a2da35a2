"""FastAgiServer driven by a test client that plays Asterisk's side of FastAGI.

The client sends the header block Asterisk 22 sends for
``AGI(agi://127.0.0.1/<route>,<args>)``, reads each command line and answers
it as res_agi does. Every read has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ivr.ami.errors import AgiCommandFailed, AgiHangup
from ivr.ami.fastagi import AgiRequest, FastAgiServer

DEADLINE = 2.0


def agi_headers(route: str, *args: str) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {route}",
        f"agi_request: agi://127.0.0.1/{route}",
        "agi_channel: PJSIP/caller-00000001",
        "agi_language: es",
        "agi_type: PJSIP",
        "agi_uniqueid: 1732371400.12",
        "agi_version: 22.1.0",
        "agi_callerid: 3001234567",
        "agi_calleridname: unknown",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 4441234",
        "agi_rdnis: unknown",
        "agi_context: citas-health-check",
        "agi_extension: s",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140245125641920",
        *(f"agi_arg_{n}: {arg}" for n, arg in enumerate(args, start=1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class AsteriskSide:
    """One FastAGI connection, seen from Asterisk."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), DEADLINE)
        assert line.endswith(b"\n"), f"expected an AGI command, got {line!r}"
        return line.decode()

    def answer(self, line: str) -> None:
        self.writer.write(line.encode())

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), DEADLINE) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def running(server: FastAgiServer) -> AsyncIterator[FastAgiServer]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0.1)


@contextlib.asynccontextmanager
async def agi_call(
    server: FastAgiServer, route: str, *args: str, headers: bytes | None = None
) -> AsyncIterator[AsteriskSide]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    side = AsteriskSide(reader, writer)
    writer.write(agi_headers(route, *args) if headers is None else headers)
    try:
        yield side
    finally:
        await side.close()


async def test_health_route_sets_variable() -> None:
    async with running(FastAgiServer("127.0.0.1", 0)) as server:
        async with agi_call(server, "citas-health") as asterisk:
            assert await asterisk.command() == 'SET VARIABLE CITAS_IVR_HEALTH "up"\n'
            asterisk.answer("200 result=1\n")
            assert await asterisk.closed_by_server()


async def test_registered_route_reads_headers_args_and_variables() -> None:
    seen: list[tuple[str, str, str, tuple[str, ...], str | None]] = []

    async def lookup_affiliate(request: AgiRequest) -> None:
        flow = await request.get_variable("CITAS_FLOW")
        seen.append((request.route, request.unique_id, request.channel, request.args, flow))
        await request.set_variable("CITAS_AFFILIATE_FOUND", "1")

    server = FastAgiServer("127.0.0.1", 0)
    server.route("citas-affiliate", lookup_affiliate)
    async with running(server), agi_call(server, "citas-affiliate", "1020304050", "CC") as asterisk:
        assert await asterisk.command() == "GET VARIABLE CITAS_FLOW\n"
        asterisk.answer("200 result=1 (citas)\n")
        assert await asterisk.command() == 'SET VARIABLE CITAS_AFFILIATE_FOUND "1"\n'
        asterisk.answer("200 result=1\n")
        assert await asterisk.closed_by_server()
    assert seen == [
        ("citas-affiliate", "1732371400.12", "PJSIP/caller-00000001", ("1020304050", "CC"), "citas")
    ]


async def test_values_are_quoted_for_res_agi() -> None:
    async def name_doctor(request: AgiRequest) -> None:
        await request.set_variable("CITAS_DOCTOR", 'Dra. "Pérez" \\ sede Norte')

    server = FastAgiServer("127.0.0.1", 0)
    server.route("name-doctor", name_doctor)
    async with running(server), agi_call(server, "name-doctor") as asterisk:
        line = await asterisk.command()
        assert line == 'SET VARIABLE CITAS_DOCTOR "Dra. \\"Pérez\\" \\\\ sede Norte"\n'
        asterisk.answer("200 result=1\n")


async def test_unknown_route_is_reported_and_server_keeps_serving() -> None:
    async with running(FastAgiServer("127.0.0.1", 0)) as server:
        async with agi_call(server, "citas-typo") as asterisk:
            line = await asterisk.command()
            assert line == 'VERBOSE "citas-ivr FastAGI: unknown route citas-typo" 1\n'
            asterisk.answer("200 result=1\n")
            assert await asterisk.closed_by_server()
        async with agi_call(server, "citas-health") as asterisk:
            assert await asterisk.command() == 'SET VARIABLE CITAS_IVR_HEALTH "up"\n'
            asterisk.answer("200 result=1\n")


async def test_client_leaving_before_headers_does_not_stall_server() -> None:
    # panoramisk's own Application.handler spins without yielding in this case.
    async with running(FastAgiServer("127.0.0.1", 0)) as server:
        probe = AsteriskSide(*await asyncio.open_connection("127.0.0.1", server.port))
        probe.writer.write(b"agi_network: yes\n")
        await probe.close()
        async with agi_call(server, "citas-health") as asterisk:
            assert await asterisk.command() == 'SET VARIABLE CITAS_IVR_HEALTH "up"\n'
            asterisk.answer("200 result=1\n")


async def test_hangup_and_command_errors_reach_the_handler_as_named_errors() -> None:
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def record(request: AgiRequest) -> None:
        try:
            await request.set_variable("CITAS_STEP", "x")
        except (AgiHangup, AgiCommandFailed) as exc:
            await errors.put(exc)
            raise

    server = FastAgiServer("127.0.0.1", 0)
    server.route("record", record)
    async with running(server):
        async with agi_call(server, "record") as asterisk:
            await asterisk.command()
            asterisk.answer("HANGUP\n")
            assert isinstance(await asyncio.wait_for(errors.get(), DEADLINE), AgiHangup)
        async with agi_call(server, "record") as asterisk:
            await asterisk.command()
            await asterisk.close()
            assert isinstance(await asyncio.wait_for(errors.get(), DEADLINE), AgiHangup)
        async with agi_call(server, "record") as asterisk:
            await asterisk.command()
            asterisk.answer("510 Invalid or unknown command\n")
            failed = await asyncio.wait_for(errors.get(), DEADLINE)
            assert isinstance(failed, AgiCommandFailed)


async def test_stop_cancels_requests_still_running() -> None:
    started = asyncio.Event()

    async def never_ends(request: AgiRequest) -> None:
        started.set()
        await asyncio.Event().wait()

    server = FastAgiServer("127.0.0.1", 0)
    server.route("never-ends", never_ends)
    await server.start()
    async with agi_call(server, "never-ends") as asterisk:
        await asyncio.wait_for(started.wait(), DEADLINE)
        await asyncio.wait_for(server.stop(grace=0.05), DEADLINE)
        assert await asterisk.closed_by_server()


def test_only_async_handlers_and_unique_routes() -> None:
    server = FastAgiServer("127.0.0.1", 0)

    def plain(request: AgiRequest) -> None:
        pass

    async def health_again(request: AgiRequest) -> None:
        pass

    with pytest.raises(TypeError, match="async def"):
        server.route("plain", plain)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        server.route("citas-health", health_again)


async def test_line_breaks_and_bad_names_never_reach_asterisk() -> None:
    sent: list[str] = []

    async def send(command: str) -> dict[str, object]:
        sent.append(command)
        return {"status_code": 200, "result": ("1", ""), "msg": ""}

    request = AgiRequest({}, send, timeout=DEADLINE)
    with pytest.raises(ValueError, match="line break"):
        await request.set_variable("CITAS_X", "1\nEXEC Dial PJSIP/evil")
    with pytest.raises(ValueError, match="variable name"):
        await request.set_variable("CITAS X", "1")
    await request.set_variable("CALLERID(name)", "Citas")
    assert sent == ['SET VARIABLE CALLERID(name) "Citas"']
