"""AmiConnection against an in-process server that answers as Asterisk 22 does.

The replies are Asterisk's own AMI text (a recorded session, with each
ActionID replaced by the one the client sent); panoramisk's real parser reads
them. Tests wait on queues and events with deadlines, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ami.errors import (
    AmiActionFailed,
    AmiAuthError,
    AmiConnectionError,
    AmiTimeout,
)
from ivr.ami.manager import AmiConnection, event_filter_regex

DEADLINE = 2.0

BANNER = "Asterisk Call Manager/9.0.0\r\n"
LOGIN_ACCEPTED = (
    "Response: Success\r\nActionID: {action_id}\r\nMessage: Authentication accepted\r\n\r\n"
)
LOGIN_REFUSED = "Response: Error\r\nActionID: {action_id}\r\nMessage: Authentication failed\r\n\r\n"
FULLY_BOOTED = (
    "Event: FullyBooted\r\n"
    "Privilege: system,all\r\n"
    "Uptime: 152\r\n"
    "LastReload: 152\r\n"
    "Status: Fully Booted\r\n"
    "\r\n"
)
PONG = (
    "Response: Success\r\n"
    "ActionID: {action_id}\r\n"
    "Ping: Pong\r\n"
    "Timestamp: 1732371331.482913\r\n"
    "\r\n"
)
CORE_SHOW_UPTIME = (
    "Response: Success\r\n"
    "ActionID: {action_id}\r\n"
    "Output: System uptime: 2 minutes, 32 seconds\r\n"
    "Output: Last reload: 2 minutes, 32 seconds\r\n"
    "\r\n"
)
NO_SUCH_COMMAND = (
    "Response: Error\r\n"
    "ActionID: {action_id}\r\n"
    "Message: Command output follows\r\n"
    "Output: No such command 'core show uptme' "
    "(type 'core show help core show uptme' for other possible commands)\r\n"
    "\r\n"
)
ORIGINATE_QUEUED = (
    "Response: Success\r\nActionID: {action_id}\r\nMessage: Originate successfully queued\r\n\r\n"
)
ORIGINATE_ANSWERED = (
    "Event: OriginateResponse\r\n"
    "Privilege: call,all\r\n"
    "ActionID: {action_id}\r\n"
    "Response: Success\r\n"
    "Channel: PJSIP/agent-00000003\r\n"
    "Context: citas-ivr\r\n"
    "Exten: s\r\n"
    "Application: \r\n"
    "Data: \r\n"
    "Reason: 4\r\n"
    "Uniqueid: 1732371340.7\r\n"
    "CallerIDNum: 4441234\r\n"
    "CallerIDName: Citas\r\n"
    "\r\n"
)
ORIGINATE_NO_ANSWER = (
    "Event: OriginateResponse\r\n"
    "Privilege: call,all\r\n"
    "ActionID: {action_id}\r\n"
    "Response: Failure\r\n"
    "Channel: PJSIP/agent\r\n"
    "Context: citas-ivr\r\n"
    "Exten: s\r\n"
    "Application: \r\n"
    "Data: \r\n"
    "Reason: 3\r\n"
    "Uniqueid: <null>\r\n"
    "CallerIDNum: 4441234\r\n"
    "CallerIDName: Citas\r\n"
    "\r\n"
)

FILTER_ADDED = "Response: Success\r\nActionID: {action_id}\r\nMessage: Filter Added Successfully\r\n\r\n"

HANG_UP = "<hang up>"


@dataclass
class FakeAsterisk:
    """An AMI server: answers each action from ``replies`` (keyed by lower-case name).

    A reply of ``None`` (or a missing one) never answers; ``HANG_UP`` closes the
    connection instead of answering; a reply may end with ``HANG_UP``.
    """

    replies: dict[str, str | None]
    actions: asyncio.Queue[list[tuple[str, str]]] = field(default_factory=asyncio.Queue)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    sessions: set[asyncio.Task[None]] = field(default_factory=set)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.sessions)
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def push(self, text: str) -> None:
        for writer in self.writers:
            writer.write(text.encode())

    async def next_action(self) -> list[tuple[str, str]]:
        return await asyncio.wait_for(self.actions.get(), DEADLINE)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._session(reader, writer))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(BANNER.encode())
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                action = [
                    (name, value)
                    for name, _, value in (
                        line.partition(": ") for line in block.decode().split("\r\n") if line
                    )
                ]
                await self.actions.put(action)
                headers = dict(action)
                reply = self.replies.get(headers["Action"].lower())
                if reply is None:
                    continue
                text = reply.removesuffix(HANG_UP).format(action_id=headers["ActionID"])
                writer.write(text.encode())
                if reply.endswith(HANG_UP):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.remove(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def fake_asterisk(**replies: str | None) -> AsyncIterator[FakeAsterisk]:
    server = FakeAsterisk({"login": LOGIN_ACCEPTED + FULLY_BOOTED, "filter": FILTER_ADDED, **replies})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def connected(
    server: FakeAsterisk, *, action_timeout: float = DEADLINE
) -> AsyncIterator[AmiConnection]:
    ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox", timeout=action_timeout)
    await ami.connect()
    try:
        yield ami
    finally:
        await ami.close()


async def test_login_sends_credentials_and_turns_healthy() -> None:
    async with fake_asterisk() as server, connected(server) as ami:
        login = dict(await server.next_action())
        assert login["Action"] == "Login"
        assert login["Username"] == "citas"
        assert login["Secret"] == "citas-sandbox"
        assert ami.healthy


async def test_refused_login_raises_auth_error() -> None:
    async with fake_asterisk(login=LOGIN_REFUSED + HANG_UP) as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "wrong", timeout=DEADLINE)
        with pytest.raises(AmiAuthError, match="Authentication failed") as caught:
            await ami.connect()
        assert not isinstance(caught.value, AmiActionFailed)
        assert caught.value.response["Response"] == "Error"
        assert not ami.healthy
        await asyncio.wait_for(ami.wait_disconnected(), DEADLINE)
        await ami.close()


async def test_ping_answered_with_pong() -> None:
    async with fake_asterisk(ping=PONG) as server, connected(server) as ami:
        assert await ami.ping() is True
        assert ami.healthy


async def test_command_returns_output_lines() -> None:
    async with fake_asterisk(command=CORE_SHOW_UPTIME) as server, connected(server) as ami:
        output = await ami.command("core show uptime")
        assert output == "System uptime: 2 minutes, 32 seconds\nLast reload: 2 minutes, 32 seconds"
        await server.next_action()  # the Login
        sent = dict(await server.next_action())
        assert sent["Command"] == "core show uptime"


async def test_command_error_raises_action_failed_with_output() -> None:
    async with fake_asterisk(command=NO_SUCH_COMMAND) as server, connected(server) as ami:
        with pytest.raises(AmiActionFailed, match="Command output follows") as caught:
            await ami.command("core show uptme")
        assert caught.value.response["Output"].startswith("No such command")


async def test_event_handler_called_for_matching_events() -> None:
    booted: asyncio.Queue[Mapping[str, str]] = asyncio.Queue()

    async def on_booted(event: Mapping[str, str]) -> None:
        await booted.put(event)

    async with fake_asterisk() as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox")
        ami.on_event("Fully*", on_booted)
        await ami.connect()
        try:
            at_login = await asyncio.wait_for(booted.get(), DEADLINE)
            server.push(FULLY_BOOTED.replace("Uptime: 152", "Uptime: 153"))
            pushed = await asyncio.wait_for(booted.get(), DEADLINE)
        finally:
            await ami.close()
    assert at_login["Status"] == "Fully Booted"
    assert at_login["Privilege"] == "system,all"
    assert pushed["Uptime"] == "153"


async def test_handlers_survive_reconnect() -> None:
    booted: asyncio.Queue[Mapping[str, str]] = asyncio.Queue()

    async def on_booted(event: Mapping[str, str]) -> None:
        await booted.put(event)

    async with fake_asterisk() as server, connected(server) as ami:
        ami.on_event("FullyBooted", on_booted)
        await ami.close()
        await ami.connect()
        event = await asyncio.wait_for(booted.get(), DEADLINE)
        assert event["Event"] == "FullyBooted"


async def test_failing_handler_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivered = asyncio.Event()

    async def broken(event: Mapping[str, str]) -> None:
        raise RuntimeError("handler bug")

    async def working(event: Mapping[str, str]) -> None:
        delivered.set()

    async with fake_asterisk() as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox")
        ami.on_event("FullyBooted", broken)
        ami.on_event("FullyBooted", working)
        with caplog.at_level(logging.ERROR, logger="ivr.ami.manager"):
            await ami.connect()
            try:
                await asyncio.wait_for(delivered.wait(), DEADLINE)
            finally:
                await ami.close()
    assert "handler bug" in caplog.text


def test_plain_function_handler_refused() -> None:
    ami = AmiConnection("127.0.0.1", 5038, "citas", "citas-sandbox")

    def not_async(event: Mapping[str, str]) -> None:
        pass

    with pytest.raises(TypeError, match="async def"):
        ami.on_event("FullyBooted", not_async)  # type: ignore[arg-type]


async def test_unanswered_action_times_out() -> None:
    async with fake_asterisk(command=None) as server, connected(server, action_timeout=0.2) as ami:
        with pytest.raises(AmiTimeout, match="Command"):
            await ami.command("core show uptime")


async def test_unanswered_ping_reports_unhealthy() -> None:
    async with fake_asterisk(ping=None) as server, connected(server, action_timeout=0.2) as ami:
        assert await ami.ping() is False
        assert not ami.healthy


async def test_connection_refused_raises_connection_error() -> None:
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    ami = AmiConnection("127.0.0.1", port, "citas", "citas-sandbox")
    with pytest.raises(AmiConnectionError, match="cannot connect"):
        await ami.connect()
    assert not ami.healthy


async def test_connection_lost_fails_pending_action_and_wakes_supervisor() -> None:
    async with fake_asterisk(command=HANG_UP) as server, connected(server) as ami:
        with pytest.raises(AmiConnectionError, match="lost"):
            await ami.command("core restart now")
        await asyncio.wait_for(ami.wait_disconnected(), DEADLINE)
        assert not ami.healthy
        with pytest.raises(AmiConnectionError, match="not connected"):
            await ami.command("core show uptime")


async def test_originate_returns_originate_response() -> None:
    replies = {"originate": ORIGINATE_QUEUED + ORIGINATE_ANSWERED}
    async with fake_asterisk(**replies) as server, connected(server) as ami:
        response = await ami.originate(
            "PJSIP/agent",
            context="citas-ivr",
            exten="s",
            caller_id='"Citas" <4441234>',
            variables={"CITAS_FLOW": "smoke", "CITAS_REASON": "callback"},
            timeout_ms=20_000,
        )
        await server.next_action()  # the Login
        sent = await server.next_action()
    assert response["Channel"] == "PJSIP/agent-00000003"
    assert response["Reason"] == "4"
    assert ("Async", "true") in sent
    assert ("Timeout", "20000") in sent
    assert ("CallerID", '"Citas" <4441234>') in sent
    assert ("Variable", "CITAS_FLOW=smoke") in sent
    assert ("Variable", "CITAS_REASON=callback") in sent


async def test_unanswered_originate_raises_with_reason() -> None:
    replies = {"originate": ORIGINATE_QUEUED + ORIGINATE_NO_ANSWER}
    async with fake_asterisk(**replies) as server, connected(server) as ami:
        with pytest.raises(AmiActionFailed) as caught:
            await ami.originate("PJSIP/agent", context="citas-ivr", exten="s")
    assert caught.value.response["Reason"] == "3"


async def test_line_break_in_a_field_is_refused() -> None:
    async with fake_asterisk() as server, connected(server) as ami:
        with pytest.raises(ValueError, match="line break"):
            await ami.command("core show uptime\r\n\r\nAction: Originate")


# --- the event filter: only the events a handler waits for (docs/perf/ari.md) --------------
def ere_as_python(regex: str) -> re.Pattern[str]:
    # The two POSIX ERE constructs event_filter_regex writes that Python spells otherwise.
    return re.compile(regex.replace("[[:space:]]", r"\s"))


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["Hangup"], "Event: (Hangup)[[:space:]]"),
        (["Hangup", "Queue*"], "Event: (Hangup|Queue.*)[[:space:]]"),
        (["Agent?alled", "A.b(c)"], "Event: (Agent.alled|A[.]b[(]c[)])[[:space:]]"),
        (["Hangup", "Hangup"], "Event: (Hangup)[[:space:]]"),
    ],
)
def test_filter_regex_of_shell_patterns(patterns: list[str], expected: str) -> None:
    assert event_filter_regex(patterns) == expected


NAMES = ["Hangup", "HangupRequest", "SoftHangupRequest", "QueueCallerJoin", "QueueMemberPause",
         "AgentConnect", "AgentCalled", "Newexten", "VarSet", "OriginateResponse", "FullyBooted",
         "DTMFEnd", "UserEvent"]  # fmt: skip


@given(
    patterns=st.lists(
        st.sampled_from(NAMES)
        | st.sampled_from(["Queue*", "Agent*", "*Request", "Hang?p", "Q*Join", "A.b", "(x|y)"]),
        min_size=1,
        max_size=4,
    )
)
def test_filter_passes_exactly_the_events_the_patterns_name(patterns: list[str]) -> None:
    # The kind: a handler's event filtered out never arrives. fnmatch is the oracle
    # (panoramisk matches handlers with it).
    regex = ere_as_python(event_filter_regex(patterns))
    for name in NAMES:
        text = f"Event: {name}\r\nPrivilege: call,all\r\nChannel: PJSIP/x-1\r\n\r\n"
        wanted = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        assert bool(regex.search(text)) == wanted, (name, patterns)


async def filters_sent(server: FakeAsterisk) -> list[str]:
    """The Filter actions the server has received so far (actions drained)."""
    sent: list[str] = []
    while not server.actions.empty():
        action = dict(server.actions.get_nowait())
        if action["Action"] == "Filter":
            assert action["Operation"] == "Add"
            sent.append(action["Filter"])
    return sent


async def noop(event: Mapping[str, str]) -> None:
    return None


async def test_connect_filters_to_the_handled_events_and_originate_responses() -> None:
    async with fake_asterisk() as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox")
        ami.on_event("Hangup", noop)
        ami.on_event("Queue*", noop)
        await ami.connect()
        try:
            assert await filters_sent(server) == [
                "Event: (Hangup|Queue.*|OriginateResponse)[[:space:]]"
            ]
            # A handler added later widens the filter on the live session.
            ami.on_event("AgentConnect", noop)
            action = dict(await server.next_action())
            assert action["Filter"] == "Event: (AgentConnect)[[:space:]]"
            # And after a reconnect the whole filter is set again.
            await ami.close()
            await ami.connect()
            assert await filters_sent(server) == [
                "Event: (Hangup|Queue.*|AgentConnect|OriginateResponse)[[:space:]]"
            ]
        finally:
            await ami.close()


@pytest.mark.parametrize("patterns", [[], ["*"], ["Hangup", "*"]])
async def test_no_filter_without_handlers_or_with_a_catch_all(patterns: list[str]) -> None:
    async with fake_asterisk(ping=PONG) as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox")
        for pattern in patterns:
            ami.on_event(pattern, noop)
        await ami.connect()
        try:
            assert await ami.ping()  # a later action is answered: no filter was waited for
            actions = await filters_sent(server)
            assert actions == []
        finally:
            await ami.close()


async def test_a_refused_filter_leaves_the_session_working(caplog: pytest.LogCaptureFixture) -> None:
    refused = "Response: Error\r\nActionID: {action_id}\r\nMessage: Permission denied\r\n\r\n"
    async with fake_asterisk(filter=refused, ping=PONG) as server:
        ami = AmiConnection("127.0.0.1", server.port, "citas", "citas-sandbox")
        ami.on_event("Hangup", noop)
        with caplog.at_level(logging.WARNING, logger="ivr.ami.manager"):
            await ami.connect()
        try:
            assert "event filter" in caplog.text
            assert await ami.ping()
        finally:
            await ami.close()
