"""Lina's services on the phone (issue 10 §2): list, cancel and reschedule an
appointment, sipp callers through the real Asterisk and controller, and the
database checked afterwards."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.scenarios.runner import SEED_PATIENT
from ivr.store import Database
from tests.e2e.conftest import ControllerProcess, Sandbox, ok

pytestmark = pytest.mark.e2e


def bookings_of(sandbox: Sandbox, affiliate_id: str) -> list[dict[str, Any]]:
    """Every booking of the patient (cancelled too), oldest first."""
    from sqlalchemy import text

    async def rows() -> list[dict[str, Any]]:
        db = Database(sandbox.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                result = await conn.execute(
                    text(
                        "SELECT b.id, b.slot_id, b.call_id, b.cancelled_at, b.replaced_by,"
                        " s.booked_by, s.cups FROM bookings b JOIN slots s ON s.id = b.slot_id"
                        " WHERE b.affiliate_id = :a ORDER BY b.created_at, s.starts_at"
                    ),
                    {"a": affiliate_id},
                )
                return [dict(row._mapping) for row in result]
        finally:
            await db.close()

    return asyncio.run(rows())


def prompts_heard(record: dict[str, Any]) -> list[str]:
    return [m for s in record["path"] if s["kind"] == "prompt" for m in s["media"]]


def test_the_caller_hears_her_appointments_and_nothing_changes(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("appointments-list"))["records"]

    heard = prompts_heard(record)
    assert heard.count("sound:citas/appointment_item") == 2
    assert "sound:citas/site_norte" in heard
    assert any(m.startswith("sound:digits/mon-") for m in heard)
    assert "1." in record["variables"]["appointments_text"]
    seeded = bookings_of(sandbox, SEED_PATIENT)
    assert [b["cancelled_at"] for b in seeded] == [None, None]
    assert all(b["booked_by"] == SEED_PATIENT for b in seeded)


def test_the_caller_cancels_the_second_appointment_and_the_first_stands(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("appointments-cancel"))["records"]

    first, second = bookings_of(sandbox, SEED_PATIENT)
    assert record["variables"]["cancelled_id"] == second["id"]
    assert second["cancelled_at"] is not None and second["booked_by"] is None  # slot free
    assert first["cancelled_at"] is None and first["booked_by"] == SEED_PATIENT
    # The confirmation read the appointment again after "this one" was chosen.
    heard = prompts_heard(record)
    assert heard.index("sound:citas/cancel_confirm_intro") > heard.index(
        "sound:citas/appointment_offer_intro"
    )


def test_the_caller_reschedules_once_atomically(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("appointments-reschedule"))["records"]

    rows = bookings_of(sandbox, SEED_PATIENT)
    moved = [b for b in rows if b["call_id"] == record["id"]]
    assert len(moved) == 1  # rescheduled exactly once
    (new,) = moved
    (old,) = [b for b in rows if b["replaced_by"] is not None]
    assert old["replaced_by"] == new["id"] == record["variables"]["booking_id"]
    assert old["cancelled_at"] is not None and old["booked_by"] is None
    assert new["cancelled_at"] is None and new["booked_by"] == SEED_PATIENT
    assert new["cups"] == old["cups"] == "890201"
    live = [b for b in rows if b["cancelled_at"] is None]
    assert len(live) == 2  # the untouched second appointment and the moved first


def test_two_calls_rescheduling_one_appointment_move_it_once(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    records = ok(sandbox.call("appointments-double-reschedule"))["records"]

    (winner,) = [r for r in records if r["outcome"] == "rescheduled"]
    (loser,) = [r for r in records if r["outcome"] == "appointment_not_found"]
    rows = bookings_of(sandbox, SEED_PATIENT)
    assert [b["call_id"] for b in rows].count(winner["id"]) == 1
    assert loser["id"] not in [b["call_id"] for b in rows]  # the loser booked nothing
    (old,) = [b for b in rows if b["replaced_by"] is not None]
    assert old["replaced_by"] == winner["variables"]["booking_id"]
    live = [b for b in rows if b["cancelled_at"] is None]
    assert len(live) == 2 and all(b["booked_by"] == SEED_PATIENT for b in live)
