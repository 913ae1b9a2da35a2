"""The patient's appointments in the citas flow (issue 10 §2): list, pick, cancel,
reschedule, as actions over a real database (SQLite; PostgreSQL too when
configured). The calls themselves are placed by sipp in
tests/e2e/test_lina_services.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Slot
from ivr.booking.seed import BOGOTA
from ivr.channel import Phrase, phrase_json
from ivr.citas.actions import COMMITS, OUTCOMES, CitasActions
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
PEDIATRICS = Slot(
    "mejia", "norte", "dr_mejia", "890283", MONDAY_0800 + timedelta(days=1, hours=6), "afternoon"
)
FREE = [
    Slot(
        f"free{i}",
        "norte",
        "dr_rojas",
        "890201",
        MONDAY_0800 + timedelta(days=2, hours=i),
        "morning",
    )
    for i in range(3)
]
# Three services, three days: a patient may hold all three at once.
VARIOUS = [
    Slot(
        f"various{i}",
        "norte",
        "dr_vargas",
        f"89030{i}",
        MONDAY_0800 + timedelta(days=3 + i),
        "morning",
    )
    for i in range(3)
]
ANA = "1010101010"


@pytest.fixture
async def actions(db: Database) -> CitasActions:
    slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: NOW)
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", NOW.date())
    citas = CitasActions(
        load_reference(),
        directory,
        slots,
        SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S),
        clock=lambda: NOW,
    )
    await slots.seed_slots([GOMEZ, PEDIATRICS, *FREE, *VARIOUS])
    return citas


def call(affiliate_id: str = ANA) -> CallState:
    channel = SimpleNamespace(call_id="call", caller_number=None)
    record = CallRecord("rec", "chan", "citas", None, None, NOW)
    state = CallState(channel, record, SimpleNamespace(name="citas"))  # type: ignore[arg-type]
    state.set("affiliate_id", affiliate_id)
    return state


def db_source(actions: CitasActions) -> DbSlotSource:
    assert isinstance(actions.slots, DbSlotSource)
    return actions.slots


async def book(actions: CitasActions, *slots: Slot) -> list[str]:
    return [
        (await db_source(actions).book(s.id, affiliate_id=ANA, call_id="first")).id for s in slots
    ]


async def test_the_new_actions_are_declared_registered_and_commit(actions: CitasActions) -> None:
    assert OUTCOMES["list_appointments"] == ("found", "none")
    assert OUTCOMES["cancel_appointment"] == ("cancelled", "not_found", "unavailable")
    assert {"cancel_appointment", "move_appointment", "book_slot"} <= COMMITS
    registry = actions.registry()
    names = ["list_appointments", "pick_appointment", "cancel_appointment", "reschedule"]
    assert all(callable(registry[name]) for name in [*names, "move_appointment"])


async def test_list_reads_every_pending_appointment_on_both_channels(
    actions: CitasActions,
) -> None:
    await book(actions, GOMEZ, PEDIATRICS)
    state = call()

    assert await actions.list_appointments(state, {}) == "found"

    assert state.variables["appointments_count"] == 2
    listing = (
        "1. lunes 10 de marzo, 8:00 a. m., Doctora Ana Gómez, Sede Norte\n"
        "2. martes 11 de marzo, 2:00 p. m., Doctora Carla Mejía, Sede Norte"
    )
    # One spoken phrase: voice plays the media, a chat shows the list.
    assert state.variables["appointments_media"] == Phrase("spoken", listing, (
        "sound:citas/appointment_item",
        *actions.slot_media(GOMEZ),
        "sound:citas/appointment_item",
        *actions.slot_media(PEDIATRICS),
    ))  # fmt: skip
    assert state.variables["appointments_text"] == listing
    # What survives a restart (a chat resumed in another process) is plain JSON.
    json.dumps({k: phrase_json(v) for k, v in state.variables.items() if not k.startswith("_")})


async def test_list_with_nothing_pending_is_none(actions: CitasActions) -> None:
    [held] = await book(actions, GOMEZ)
    await db_source(actions).cancel(held, affiliate_id=ANA, call_id=None)
    state = call()

    assert await actions.list_appointments(state, {}) == "none"
    assert state.variables["appointments_media"] == Phrase("spoken", "", ())


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_pick_offers_each_appointment_once_in_order(
    actions: CitasActions, count: int
) -> None:
    ids = await book(actions, *VARIOUS[:count])
    state = call()
    await actions.list_appointments(state, {})

    outcomes, picked = [], []
    for _ in range(count + 1):
        outcomes.append(await actions.pick_appointment(state, {}))
        picked.append(state.variables.get("appointment_id"))

    first = "single" if count == 1 else "found"
    assert outcomes == [first] + ["found"] * (count - 1) + ["none"]
    assert picked[:count] == ids
    media = state.variables["appointment_media"]
    assert media.media == tuple(actions.slot_media(VARIOUS[count - 1]))
    assert media.value == actions.appointment_text(VARIOUS[count - 1])


async def test_cancel_the_picked_appointment_frees_it(actions: CitasActions) -> None:
    [held] = await book(actions, GOMEZ)
    state = call()
    await actions.list_appointments(state, {})
    await actions.pick_appointment(state, {})

    assert await actions.cancel_appointment(state, {}) == "cancelled"
    assert await actions.cancel_appointment(state, {}) == "cancelled"  # idempotent

    assert await db_source(actions).pending_for(ANA) == []
    assert GOMEZ in await db_source(actions).find(site_id="norte", cups="890201", limit=9)
    assert state.variables["cancelled_id"] == held


async def test_cancel_of_an_appointment_that_is_not_the_caller_s_is_not_found(
    actions: CitasActions,
) -> None:
    await book(actions, GOMEZ)
    state = call()
    await actions.list_appointments(state, {})
    await actions.pick_appointment(state, {})
    state.set("affiliate_id", "2020202020")  # never happens in a flow: the guard holds

    assert await actions.cancel_appointment(state, {}) == "not_found"
    assert len(await db_source(actions).pending_for(ANA)) == 1


async def test_reschedule_offers_the_same_service_and_moves_on_accept(
    actions: CitasActions,
) -> None:
    [held] = await book(actions, GOMEZ)
    state = call()
    await actions.list_appointments(state, {})
    await actions.pick_appointment(state, {})

    assert await actions.reschedule(state, {}) == "found"
    assert (state.variables["mode"], state.variables["slot_id"]) == ("reschedule", "free0")
    assert await actions.next_slot(state, {}) == "found"  # the booking path's offers
    assert await actions.move_appointment(state, {}) == "rescheduled"

    [moved] = await db_source(actions).pending_for(ANA)
    assert (moved.slot.id, moved.id) == ("free1", state.variables["booking_id"])
    [old, new] = sorted(await db_source(actions).bookings_for(ANA), key=lambda b: b.created_at)
    assert (old.id, old.cancelled, new.cancelled) == (held, True, False)
    # Accepting again (a replayed key) cannot move it twice: it is gone.
    assert await actions.move_appointment(state, {}) == "not_found"
    assert len(await db_source(actions).pending_for(ANA)) == 1


async def test_reschedule_to_a_slot_taken_meanwhile_keeps_the_old_one(
    actions: CitasActions,
) -> None:
    [held] = await book(actions, GOMEZ)
    state = call()
    await actions.list_appointments(state, {})
    await actions.pick_appointment(state, {})
    await actions.reschedule(state, {})
    await db_source(actions).book(str(state.variables["slot_id"]), affiliate_id="2", call_id=None)

    assert await actions.move_appointment(state, {}) == "taken"
    assert [b.id for b in await db_source(actions).pending_for(ANA)] == [held]


async def test_reschedule_with_no_other_slot_is_none(actions: CitasActions) -> None:
    await book(actions, PEDIATRICS)  # the only pediatrics slot
    state = call()
    await actions.list_appointments(state, {})
    await actions.pick_appointment(state, {})

    assert await actions.reschedule(state, {}) == "none"
