"""The keypad survey after a served call, on the real citas flow and actions with a
real SQLite database: the kind is "what a caller keys (or does not) at the survey";
each script is one caller, the flag off and a hang-up during the survey included.
The same path through the real Asterisk: tests/e2e/test_cases_surveys.py."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from ivr.channel import CallEnded, DigitResult
from ivr.citas.actions import CitasActions
from ivr.citas.flags import CALL_SURVEY, flag_registry
from ivr.citas.reference import load_reference
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine
from ivr.flow.nodes.hangup import HangupNode
from ivr.ops.flags import StaticFlags
from ivr.settings import REPO_ROOT
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from ivr.surveys.store import SurveyStore
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_flow_engine import HANGS_UP, ScriptedChannel, new_state, state_for

REFERENCE = load_reference()
FLOW = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")
SERVED = [n for n in FLOW.nodes.values() if getattr(n, "action", None) == "call_served"]


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S)
    await db.migrate()
    yield db
    await db.close()


def key(digits: str, ended_by: str) -> DigitResult:
    return DigitResult(digits, cast(Any, ended_by))


NONE = key("", "no_input")


async def served_call(
    db: Database, *script: DigitResult | str, survey: bool = True, start: str = "booked_served"
) -> tuple[ScriptedChannel, Any]:
    flags = StaticFlags(flag_registry(REFERENCE), {CALL_SURVEY: survey})
    actions = CitasActions(
        REFERENCE,
        cast(Any, None),
        cast(Any, None),
        SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S),
        flags=flags,
    )
    engine = FlowEngine(actions.registry(), default_vdn="5550001", flags=flags.value)
    channel = ScriptedChannel(*script)
    state = new_state(channel, dataclasses.replace(FLOW, start=start, answer=False))
    try:
        await engine.run(state)
    except CallEnded:
        pass
    return channel, state


@pytest.mark.parametrize(
    ("script", "rating"),
    [
        ([key("9", "terminator")], 9),  # one digit, then #
        ([key("10", "complete")], 10),  # two digits end it
        ([key("1", "between_digits")], 1),  # one digit and a pause
        ([NONE, key("7", "terminator")], 7),  # asked once more
        ([NONE, NONE], None),  # no answer: no rating, no more asking
        ([key("0", "terminator"), key("5", "terminator")], 5),  # told the range, once
        ([key("11", "complete"), key("99", "complete")], None),  # out of range twice
        ([key("0", "terminator"), NONE, NONE], None),
    ],
)
async def test_a_served_caller_rates_on_the_keypad(
    sqlite: Database, script: list[DigitResult], rating: int | None
) -> None:
    channel, state = await served_call(sqlite, *script)
    stored = await SurveyStore(sqlite).for_call(state.record.id)
    assert (stored.rating if stored else None) == rating
    assert state.record.outcome == "booked"
    assert channel.log[-1] == ("hangup",) and not channel.script  # every entry was asked for
    if stored is not None:
        assert (stored.kind, stored.channel, stored.journey_id) == ("call", "voice", "rec-1")
    assert len(channel.requests) == len(script) and all(
        (r.min_digits, r.max_digits, r.terminator) == (1, 2, "#") for r in channel.requests
    )


async def test_the_flag_off_asks_nothing_and_keeps_the_outcome(sqlite: Database) -> None:
    channel, state = await served_call(sqlite, survey=False)
    assert channel.requests == [] and state.record.outcome == "booked"
    assert await SurveyStore(sqlite).list() == []


async def test_a_caller_who_hangs_up_during_the_survey_was_still_served(sqlite: Database) -> None:
    _, state = await served_call(sqlite, HANGS_UP)
    assert state.record.outcome == "booked"  # not "abandoned": call_served set it first
    assert await SurveyStore(sqlite).list() == []


@pytest.mark.parametrize("node", SERVED, ids=lambda n: n.id)
async def test_every_served_ending_keeps_its_own_outcome_through_the_survey(
    sqlite: Database, node: Any
) -> None:
    _, state = await served_call(sqlite, key("8", "terminator"), start=node.id)
    assert state.record.outcome == node.params["outcome"]
    assert (await SurveyStore(sqlite).for_call(state.record.id)) is not None


def test_the_served_endings_are_the_ones_the_issue_names() -> None:
    assert sorted(n.params["outcome"] for n in SERVED) == [
        "appointment_cancelled", "appointments_listed", "booked", "rescheduled",
    ]  # fmt: skip


@pytest.mark.parametrize(("before", "after"), [(None, "completed"), ("booked", "booked")])
async def test_a_hangup_without_outcome_keeps_the_one_set_before_else_completed(
    before: str | None, after: str
) -> None:
    goodbye = FLOW.node("served_goodbye")
    assert isinstance(goodbye, HangupNode) and goodbye.outcome is None
    state = state_for(ScriptedChannel(), "bye2", HangupNode("bye2", 1, None, ()))
    state.record.outcome = before
    await FlowEngine({}, default_vdn="5550001").run(state)
    assert state.record.outcome == after
