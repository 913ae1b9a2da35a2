"""The desk's AMI session (DeskAmi) and the queue actions over a real AMI parser.

Against the in-process AMI server of tests/unit/test_ami_manager.py, answering
with Asterisk 22's own text (recorded from the sandbox).

The kinds of fault: an action whose one-message answer panoramisk takes for the
start of an event list and waits out (QueueAdd's "Added interface to queue":
found at the first login, every login timed out), an event list cut short or
leaking its framing, and a desk that stays disconnected, loses its handlers or
does not re-read the state after Asterisk comes back.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from ivr.ami.errors import AmiActionFailed, AmiConnectionError
from ivr.desk.ami import DeskAmi
from tests.unit.eventually import eventually
from tests.unit.test_ami_manager import DEADLINE, HANG_UP, connected, fake_asterisk

QUEUE_ADDED = "Response: Success\r\nActionID: {action_id}\r\nMessage: Added interface to queue\r\n\r\n"
QUEUE_REMOVED = (
    "Response: Success\r\nActionID: {action_id}\r\nMessage: Removed interface from queue\r\n\r\n"
)
PAUSED = "Response: Success\r\nActionID: {action_id}\r\nMessage: Interface paused successfully\r\n\r\n"
ALREADY_THERE = (
    "Response: Error\r\nActionID: {action_id}\r\nMessage: Unable to add interface: Already there\r\n\r\n"
)
MEMBER = (
    "Event: QueueMember\r\nActionID: {{action_id}}\r\nQueue: {queue}\r\nName: {name}\r\n"
    "Location: {iface}\r\nStateInterface: {iface}\r\nMembership: {membership}\r\nPenalty: {penalty}\r\n"
    "CallsTaken: 0\r\nLastCall: 0\r\nLastPause: 0\r\nLoginTime: 1796032743\r\nInCall: 0\r\n"
    "Status: 1\r\nPaused: 0\r\nPausedReason: \r\nWrapuptime: 0\r\n\r\n"
)
QUEUE_STATUS = (
    "Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
    "Message: Queue status will follow\r\n\r\n"
    "Event: QueueParams\r\nActionID: {action_id}\r\nQueue: l1_general\r\nMax: 0\r\n"
    "Strategy: leastrecent\r\nCalls: 0\r\nHoldtime: 0\r\nTalkTime: 0\r\nCompleted: 0\r\n"
    "Abandoned: 0\r\nServiceLevel: 0\r\nServicelevelPerf: 0.0\r\nServicelevelPerf2: 0.0\r\n"
    "Weight: 0\r\n\r\n"
    + MEMBER.format(queue="l1_general", name="Probador (sipp)", iface="PJSIP/agent",
                    membership="static", penalty=100)
    + MEMBER.format(queue="l1_general", name="Ana Gómez", iface="PJSIP/7001",
                    membership="dynamic", penalty=0)
    + "Event: QueueStatusComplete\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
    "ListItems: 3\r\n\r\n"
)  # fmt: skip


@pytest.mark.parametrize(
    ("action", "reply", "message"),
    [
        ("QueueAdd", QUEUE_ADDED, "Added interface to queue"),
        ("QueueRemove", QUEUE_REMOVED, "Removed interface from queue"),
        ("QueuePause", PAUSED, "Interface paused successfully"),
    ],
)
async def test_a_one_message_answer_is_returned_not_waited_out(
    action: str, reply: str, message: str
) -> None:
    async with fake_asterisk(**{action.lower(): reply}) as server, connected(server) as ami:
        answer = await asyncio.wait_for(
            ami.action({"Action": action, "Queue": "l1_general", "Interface": "PJSIP/7001"}),
            DEADLINE,
        )

    assert answer["Message"] == message


async def test_an_error_answer_raises_with_asterisks_message() -> None:
    async with fake_asterisk(queueadd=ALREADY_THERE) as server, connected(server) as ami:
        with pytest.raises(AmiActionFailed, match="Already there") as failed:
            await ami.action({"Action": "QueueAdd", "Queue": "l1_general", "Interface": "PJSIP/7001"})

    assert failed.value.response["Message"] == "Unable to add interface: Already there"


async def test_an_event_list_comes_back_whole_without_its_framing() -> None:
    async with fake_asterisk(queuestatus=QUEUE_STATUS) as server, connected(server) as ami:
        events = await ami.action_list({"Action": "QueueStatus"})

    assert [e["Event"] for e in events] == ["QueueParams", "QueueMember", "QueueMember"]
    assert [e["Name"] for e in events[1:]] == ["Probador (sipp)", "Ana Gómez"]


async def test_an_event_list_refused_raises() -> None:
    refused = "Response: Error\r\nActionID: {action_id}\r\nMessage: Permission denied\r\n\r\n"
    async with fake_asterisk(queuestatus=refused) as server, connected(server) as ami:
        with pytest.raises(AmiActionFailed, match="Permission denied"):
            await ami.action_list({"Action": "QueueStatus"})


async def test_the_desk_session_reconnects_keeps_its_handlers_and_rereads_after_each_connect() -> None:
    async with fake_asterisk(ping=None) as server:
        desk = DeskAmi("127.0.0.1", server.port, "citas", "citas-sandbox", timeout=DEADLINE,
                       backoff_initial=0.05, backoff_max=0.1, rng=random.Random(7))  # fmt: skip
        seen: asyncio.Queue[str] = asyncio.Queue()
        connects: asyncio.Queue[int] = asyncio.Queue()

        async def on_join(event: object) -> None:
            assert isinstance(event, dict)
            await seen.put(event["Queue"])

        async def reread() -> None:
            await connects.put(desk.health().reconnects)

        desk.on_event("QueueCallerJoin", on_join)
        desk.on_connected(reread)
        await desk.start()
        try:
            assert await asyncio.wait_for(connects.get(), DEADLINE) == 0
            assert desk.health().connected
            server.replies["hangup"] = HANG_UP  # the next action drops the session
            with pytest.raises(AmiConnectionError):
                await desk.action({"Action": "Hangup", "Channel": "x"})
            assert await asyncio.wait_for(connects.get(), DEADLINE) == 1
            server.push("Event: QueueCallerJoin\r\nQueue: l1_general\r\nPosition: 1\r\n\r\n")
            assert await asyncio.wait_for(seen.get(), DEADLINE) == "l1_general"
            health = desk.health().as_json()
            assert health["connected"] and health["reconnects"] == 1
            assert health["last_error"] is None
        finally:
            await desk.stop()
        assert not desk.health().connected


async def test_while_asterisk_is_away_the_desk_says_so_and_keeps_trying() -> None:
    async with fake_asterisk() as server:
        port = server.port
    # The server is gone: nothing listens on its port any more.
    desk = DeskAmi("127.0.0.1", port, "citas", "citas-sandbox", timeout=DEADLINE,
                   backoff_initial=0.01, backoff_max=0.02)  # fmt: skip
    await desk.start()
    try:
        await eventually(lambda: (desk.health().last_error or "").startswith("connect:"))
        health = desk.health()
        assert not health.connected and not desk.healthy
        assert health.last_error is not None and "cannot connect" in health.last_error
        with pytest.raises(AmiConnectionError):
            await desk.action({"Action": "QueueStatus"})
    finally:
        await desk.stop()
