"""The desk's AMI queue events (ivr.desk.events): parsed from events recorded from a real
Asterisk 22 (tests/unit/data/desk_ami_events.json, captured through AmiConnection, the
run-time path), and the kind — channel variables and member interfaces — over its range."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.desk.events import (
    EVENT_NAMES,
    AgentCalled,
    AgentCompleted,
    AgentConnected,
    AgentRingNoAnswer,
    CallerAbandoned,
    CallerJoined,
    CallerLeft,
    MemberPaused,
    MemberStatus,
    QueueEvent,
    agent_of,
    channel_variables,
    listen,
    parse_event,
)

RECORDED = Path(__file__).parent.parent / "data" / "desk_ami_events.json"
TYPES = {
    "QueueCallerJoin": CallerJoined, "AgentCalled": AgentCalled,
    "AgentRingNoAnswer": AgentRingNoAnswer, "AgentConnect": AgentConnected,
    "AgentComplete": AgentCompleted, "QueueCallerAbandon": CallerAbandoned,
    "QueueCallerLeave": CallerLeft, "QueueMemberStatus": MemberStatus,
    "QueueMemberPause": MemberPaused,
}  # fmt: skip


def recorded() -> list[dict[str, str]]:
    events: list[dict[str, str]] = json.loads(RECORDED.read_text())["events"]
    return events


# Not in the recording (no call rang out or was abandoned in it): parsed from the
# field names of Asterisk's AMI documentation, in test_desk_pop_screen.
NOT_RECORDED = {"QueueCallerAbandon", "AgentRingNoAnswer"}


def test_the_recording_has_every_other_kind_of_desk_event() -> None:
    assert {e["Event"] for e in recorded()} == set(EVENT_NAMES) - NOT_RECORDED


@pytest.mark.parametrize("fields", recorded(), ids=lambda f: f["Event"])
def test_each_recorded_event_parses_to_its_type(fields: dict[str, str]) -> None:
    event = parse_event(fields)
    assert event is not None
    assert isinstance(event, TYPES[fields["Event"]])
    assert event.queue == fields["Queue"]
    assert event.fields["Event"] == fields["Event"]


def test_the_recorded_agent_connect_carries_the_ivr_context_and_the_agent() -> None:
    connect = next(parse_event(f) for f in recorded() if f["Event"] == "AgentConnect")
    assert isinstance(connect, AgentConnected)
    assert connect.agent == "7001"
    assert connect.variables["CITAS_SEGMENT"] == "non_target"
    assert connect.variables["CITAS_REASON"] == "non-target"
    assert connect.variables["CITAS_CALL_ID"]
    assert connect.uniqueid and connect.dest_uniqueid and connect.uniqueid != connect.dest_uniqueid
    assert connect.hold_seconds >= 0 and connect.ring_seconds >= 0


def test_the_recorded_pause_carries_its_reason() -> None:
    paused = [parse_event(f) for f in recorded() if f["Event"] == "QueueMemberPause"]
    assert [(p.paused, p.paused_reason, p.interface) for p in paused if isinstance(p, MemberPaused)] == [
        (True, "Almuerzo", "PJSIP/7002"), (False, "", "PJSIP/7002"),
    ]  # fmt: skip


def test_the_recorded_agent_complete_names_who_hung_up() -> None:
    complete = next(parse_event(f) for f in recorded() if f["Event"] == "AgentComplete")
    assert isinstance(complete, AgentCompleted)
    assert complete.reason in {"caller", "agent", "transfer"}
    assert complete.agent == "7001"


def test_events_outside_the_desk_are_not_parsed() -> None:
    for name in ("Newchannel", "Hangup", "QueueParams", "FullyBooted", ""):
        assert parse_event({"Event": name, "Queue": "general"}) is None


# --- ChanVariable: the shapes it comes in ------------------------------------------------
CASES = [
    ("CITAS_SEGMENT=target", {"CITAS_SEGMENT": "target"}),
    ("A=1\nB=2", {"A": "1", "B": "2"}),  # AmiConnection joins a repeated header
    (["A=1", "B=2"], {"A": "1", "B": "2"}),  # panoramisk's own list
    ("A=\nB=2", {"A": "", "B": "2"}),  # empty value kept (CITAS_DESK_PREV unset)
    ("A=x=y", {"A": "x=y"}),  # only the first = splits
    ("__A=1", {"A": "1"}),  # inheritance marks dropped
    ("A=1\r\nB=2", {"A": "1", "B": "2"}),
    ("junk\nA=1", {"A": "1"}),
    ("", {}),
    (None, {}),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_channel_variables_shapes(raw: str | list[str] | None, expected: dict[str, str]) -> None:
    assert channel_variables(raw) == expected


names = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)
values = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)


@given(st.dictionaries(names, values, max_size=10), st.booleans())
def test_channel_variables_round_trip(variables: dict[str, str], as_list: bool) -> None:
    items = [f"{k}={v}" for k, v in variables.items()]
    assert channel_variables(items if as_list else "\n".join(items)) == variables


# --- member interfaces -------------------------------------------------------------------
@pytest.mark.parametrize(("interface", "agent"), [
    ("PJSIP/7001", "7001"), ("pjsip/7006", "7006"), ("PJSIP/12", "12"), (" PJSIP/7001 ", "7001"),
    ("PJSIP/agent", None), ("Local/7001@citas-agents", None), ("SIP/7001", None),
    ("PJSIP/7001-00000001", None), ("PJSIP/", None), ("", None), (None, None),
])  # fmt: skip
def test_agent_of_interface(interface: str | None, agent: str | None) -> None:
    assert agent_of(interface) == agent


@given(st.integers(min_value=10, max_value=99_999_999))
def test_every_numeric_pjsip_endpoint_is_an_agent(ext: int) -> None:
    assert agent_of(f"PJSIP/{ext}") == str(ext)


def test_timestamp_is_used_when_asterisk_sends_one() -> None:
    ev = parse_event({"Event": "AgentConnect", "Queue": "q", "Timestamp": "1764496800.250000"})
    assert ev is not None and ev.at == datetime(2025, 11, 30, 10, 0, 0, 250000, tzinfo=UTC)
    received = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_event({"Event": "AgentConnect", "Queue": "q"}, received=received).at == received  # type: ignore[union-attr]
    bad = parse_event({"Event": "AgentConnect", "Queue": "q", "Timestamp": "x"}, received=received)
    assert bad is not None and bad.at == received


def test_missing_numbers_read_as_zero() -> None:
    ev = parse_event({"Event": "AgentConnect", "Queue": "q", "HoldTime": "", "RingTime": "abc"})
    assert isinstance(ev, AgentConnected) and ev.hold_seconds == 0 and ev.ring_seconds == 0


class FakeSource:
    def __init__(self) -> None:
        self.handlers: list[tuple[str, Callable[[Mapping[str, str]], Awaitable[None]]]] = []

    def on_event(self, pattern: str, handler: Callable[[Mapping[str, str]], Awaitable[None]]) -> None:
        self.handlers.append((pattern, handler))


async def test_listen_subscribes_to_the_desk_events_only_and_parses_them() -> None:
    source = FakeSource()
    got: list[QueueEvent] = []

    async def handler(event: QueueEvent) -> None:
        got.append(event)

    listen(source, handler)
    assert [p for p, _ in source.handlers] == list(EVENT_NAMES)
    for fields in recorded():
        for pattern, deliver in source.handlers:
            if pattern == fields["Event"]:
                await deliver(fields)
    await asyncio.sleep(0)
    assert [e.name for e in got] == [f["Event"] for f in recorded()]
