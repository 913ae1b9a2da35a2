"""find_slot and book_slot tell the caller the appointment they already have.

The actions over a real database (SQLite; PostgreSQL too when configured), with
the line's ``booking.one_pending_per_service`` on and off. The calls themselves
are placed by sipp in tests/e2e/test_citas.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Slot
from ivr.booking.seed import BOGOTA
from ivr.citas.actions import OUTCOMES, CitasActions
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.reference import CITAS_DIR, load_reference
from ivr.flow.engine import CallState
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from ivr.store.records import CallRecord
from tests.unit.databases import TEST_DB_TIMEOUT_S

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
MONDAY_0800 = datetime(2025, 3, 10, 8, 0, tzinfo=BOGOTA)
GOMEZ = Slot("gomez", "norte", "dr_gomez", "890201", MONDAY_0800, "morning")
ROJAS = Slot("rojas", "norte", "dr_rojas", "890301", MONDAY_0800, "morning")
LATER = Slot("later", "norte", "dr_gomez", "890201", MONDAY_0800 + timedelta(days=1), "morning")
ANA = "1010101010"


def actions_for(db: Database, *, rule: bool) -> CitasActions:
    ref = load_reference()
    ref = replace(ref, line=replace(ref.line, one_pending_per_service=rule))
    slots = DbSlotSource(
        db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: NOW, one_pending_per_service=rule
    )
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", NOW.date())
    return CitasActions(
        ref, directory, slots, SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S), clock=lambda: NOW
    )


_RECORDS = itertools.count(1)


def call(cups: str, affiliate_id: str = ANA) -> CallState:
    # Each call its own record id, as real records' are (uuid): a booking is
    # idempotent per call (DbSlotSource.book), so two calls must not share one.
    channel = SimpleNamespace(call_id="call", caller_number=None)
    record = CallRecord(f"rec-{next(_RECORDS)}", "chan", "citas", None, None, NOW)
    state = CallState(channel, record, SimpleNamespace(name="citas"))  # type: ignore[arg-type]
    for name, value in {"affiliate_id": affiliate_id, "site_id": "norte", "cups": cups}.items():
        state.set(name, value)
    return state


async def seeded(db: Database, rule: bool) -> CitasActions:
    actions = actions_for(db, rule=rule)
    assert isinstance(actions.slots, DbSlotSource)
    await actions.slots.seed_slots([GOMEZ, ROJAS, LATER])
    await actions.slots.book("gomez", affiliate_id=ANA, call_id="first-call")
    return actions


def test_the_new_outcomes_are_declared() -> None:
    assert "has_appointment" in OUTCOMES["find_slot"]
    assert "has_appointment" in OUTCOMES["book_slot"]


@pytest.mark.parametrize("rule", [True, False], ids=["rule on", "rule off"])
async def test_the_search_finds_the_pending_appointment_for_this_service(
    db: Database, rule: bool
) -> None:
    actions = await seeded(db, rule)
    state = call("890201")

    outcome = await actions.find_slot(state, {})

    if rule:
        assert outcome == "has_appointment"
        assert state.variables["appointment_reason"] == "same_service"
        assert state.variables["appointment_media"] == actions.slot_phrase(GOMEZ)
        assert state.variables["appointment_starts_at"] == "2025-03-10T08:00:00-05:00"
        assert "slot_id" not in state.variables
    else:
        assert (outcome, state.variables["slot_id"]) == ("found", "later")


async def test_the_search_for_another_service_or_another_patient_offers_a_slot(
    db: Database,
) -> None:
    actions = await seeded(db, True)

    other_service, other_patient = call("890301"), call("890201", affiliate_id="2020202020")
    assert await actions.find_slot(other_service, {}) == "found"
    assert await actions.find_slot(other_patient, {}) == "found"
    assert other_service.variables["slot_id"] == "rojas"  # offered: the overlap shows at booking


@pytest.mark.parametrize("rule", [True, False], ids=["rule on", "rule off"])
async def test_booking_an_overlapping_slot_reads_out_the_one_held(db: Database, rule: bool) -> None:
    actions = await seeded(db, rule)
    state = call("890301")
    state.set("slot_id", "rojas")

    assert await actions.book_slot(state, {}) == "has_appointment"
    assert state.variables["appointment_reason"] == "overlap"
    assert state.variables["appointment_media"] == actions.slot_phrase(GOMEZ)
    assert "booking_id" not in state.variables
    assert [b.slot.id for b in await actions.slots.pending_for(ANA)] == ["gomez"]


async def test_losing_the_race_to_ones_own_call_reads_out_the_winner(db: Database) -> None:
    actions = actions_for(db, rule=True)
    assert isinstance(actions.slots, DbSlotSource)
    await actions.slots.seed_slots([GOMEZ])
    first, second = call("890201"), call("890201")
    for state in (first, second):
        assert await actions.find_slot(state, {}) == "found"  # both heard the same offer

    outcomes: list[Any] = [await actions.book_slot(s, {}) for s in (first, second)]

    assert outcomes == ["booked", "has_appointment"]
    assert second.variables["appointment_id"] == first.variables["booking_id"]
