"""The citas flow's main menu and appointment paths (issue 10 §2), run by the
engine over the shipped flow file, the real actions and a real database, with a
scripted caller (the calls themselves: tests/e2e/test_lina_services.py).

The kind: a path of the new menu that ends somewhere the caller did not ask for
(an agent, the WhatsApp redirect, a booking) or changes the wrong appointment.
Its range: every option of the main menu, every answer of the offers and the
confirmation, the operations switch and a failing booking service.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Booking, BookingUnavailable, Slot
from ivr.booking.seed import BOGOTA
from ivr.channel import CallEnded, DigitResult
from ivr.citas.actions import CitasActions
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.flags import flag_registry
from ivr.citas.reference import CITAS_DIR, load_reference
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine
from ivr.ops.flags import FlagValue, StaticFlags
from ivr.settings import REPO_ROOT
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_flow_engine import ScriptedChannel, new_state

CITAS = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")
NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
MONDAY_0800 = datetime(2025, 3, 10, 8, 0, tzinfo=BOGOTA)
ANA = "1010101010"  # caller ID 3001234567 (config/citas/affiliates.yaml)
GENERAL = Slot("general", "norte", "dr_gomez", "890201", MONDAY_0800, "morning")
CONTROL = Slot("control", "norte", "dr_rojas", "890301", MONDAY_0800 + timedelta(days=1), "morning")
NEW = Slot("new", "norte", "dr_gomez", "890201", MONDAY_0800 + timedelta(days=2), "morning")


def keys(*digits: str) -> list[DigitResult]:
    return [DigitResult(d, "complete") for d in digits]


class DownSlots(DbSlotSource):
    """The booking service failing on every read."""

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        raise BookingUnavailable("GET /bookings: HTTP 503")


async def run(
    db: Database,
    digits: list[str],
    *,
    flags: dict[str, FlagValue] | None = None,
    down: bool = False,
) -> tuple[dict[str, object], DbSlotSource, ScriptedChannel]:
    """Ana calls (promotional audio off) and presses ``digits``; returns the
    call's variables (with its outcome), the slots and the channel."""
    ref = load_reference()
    source_type = DownSlots if down else DbSlotSource
    slots = source_type(db, timeout=10.0, clock=lambda: NOW)
    await slots.seed_slots([GENERAL, CONTROL, NEW])
    await slots.book("general", affiliate_id=ANA, call_id="seed")
    await slots.book("control", affiliate_id=ANA, call_id="seed")
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", NOW.date())
    live = StaticFlags(flag_registry(ref), {"promo_audio": False, **(flags or {})})
    actions = CitasActions(
        ref,
        directory,
        slots,
        SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S),
        flags=live,
        clock=lambda: NOW,
    )
    channel = ScriptedChannel(*keys(*digits))
    state = new_state(channel, CITAS)
    engine = FlowEngine(actions.registry(), default_vdn="5550001", flags=live.value)
    try:
        await engine.run(state)
    except CallEnded:
        pass
    nodes = [s.detail.get("node") for s in state.record.path if s.kind == "node"]
    return {**state.variables, "outcome": state.record.outcome, "nodes": nodes}, slots, channel


async def live_slots(slots: DbSlotSource) -> list[str]:
    return [b.slot.id for b in await slots.pending_for(ANA)]


async def test_2_reads_both_appointments_and_changes_nothing(db: Database) -> None:
    variables, slots, channel = await run(db, ["2"])

    assert variables["outcome"] == "appointments_listed"
    played = [m for entry in channel.log if entry[0].startswith("play") for m in entry[1:]]
    assert played.count("sound:citas/appointment_item") == 2
    assert await live_slots(slots) == ["general", "control"]


@pytest.mark.parametrize(
    ("digits", "outcome", "left"),
    [
        pytest.param(["3", "1", "1"], "appointment_cancelled", ["control"], id="first, confirm"),
        pytest.param(["3", "2", "1", "1"], "appointment_cancelled", ["general"], id="second"),
        pytest.param(["3", "1", "2"], "appointment_kept", ["general", "control"], id="keep it"),
        pytest.param(["3", "2", "2"], "appointment_kept", ["general", "control"], id="none"),
        pytest.param(
            ["3", "1", "9", "9", "9"], "appointment_kept", ["general", "control"], id="invalid"
        ),
    ],
)
async def test_3_cancels_only_the_confirmed_appointment(
    db: Database, digits: list[str], outcome: str, left: list[str]
) -> None:
    variables, slots, _ = await run(db, digits)

    assert variables["outcome"] == outcome
    assert await live_slots(slots) == left


@pytest.mark.parametrize(
    ("digits", "outcome", "left"),
    [
        pytest.param(["4", "1", "1"], "rescheduled", ["control", "new"], id="move the first"),
        pytest.param(["4", "1", "0"], "appointment_kept", ["general", "control"], id="decline"),
        pytest.param(
            ["4", "1", "2"], "appointment_kept", ["general", "control"], id="no other slot"
        ),
        pytest.param(["4", "2", "2"], "appointment_kept", ["general", "control"], id="none"),
    ],
)
async def test_4_moves_only_an_accepted_appointment_and_never_leaves_the_line(
    db: Database, digits: list[str], outcome: str, left: list[str]
) -> None:
    variables, slots, channel = await run(db, digits)

    assert variables["outcome"] == outcome
    assert sorted(await live_slots(slots)) == sorted(left)
    assert not [e for e in channel.log if e[0] == "transfer"]  # no agent, no redirect
    assert "sms" not in variables


@pytest.mark.parametrize("choice", ["2", "3", "4"])
async def test_self_service_off_sends_every_appointment_option_to_the_agents(
    db: Database, choice: str
) -> None:
    variables, slots, channel = await run(db, [choice], flags={"self_service_booking": False})

    assert "agent_self_service_off" in variables["nodes"]  # type: ignore[operator]
    assert [e[0] for e in channel.log].count("transfer") == 1
    assert await live_slots(slots) == ["general", "control"]


@pytest.mark.parametrize("choice", ["2", "3", "4"])
async def test_a_failing_booking_service_sends_the_caller_to_the_agents(
    db: Database, choice: str
) -> None:
    variables, _, channel = await run(db, [choice], down=True)

    assert "agent_service_down" in variables["nodes"]  # type: ignore[operator]
    assert [e[0] for e in channel.log].count("transfer") == 1


async def test_1_is_the_booking_path_as_before(db: Database) -> None:
    # pediatrics: a service she does not hold, and no slot: 2 at the case offer (issue 11)
    variables, _, _ = await run(db, ["1", "3", "2"])

    assert variables["nodes"][:3] == ["incident_gate", "promo_gate", "identify_caller"]  # type: ignore[index]
    assert "ask_service" in variables["nodes"]  # type: ignore[operator]
    assert variables["service_key"] == "3"
