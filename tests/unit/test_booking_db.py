"""DbSlotSource on a real database, schema made by the migrations.

SQLite always; PostgreSQL too when CITAS_TEST_PG_URL names one
(postgresql+asyncpg://...). Its bookings and slots tables are emptied first.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ivr.booking import (
    Booking,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.db import DbSlotSource
from ivr.booking.seed import BOGOTA, demo_slots, race_slot
from ivr.booking.tables import BookingRow
from ivr.citas.reference import load_sites
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S

SITES = Path(__file__).resolve().parents[2] / "config" / "citas" / "sites.yaml"

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)  # a Friday


def clock() -> datetime:
    return NOW


def slot(
    id: str,
    *,
    days: int = 1,
    hour: int = 8,
    site_id: str = "norte",
    doctor_id: str = "dr_gomez",
    cups: str = "890201",
) -> Slot:
    starts_at = datetime.combine(NOW.date() + timedelta(days=days), datetime.min.time(), BOGOTA)
    starts_at += timedelta(hours=hour)
    band = "morning" if hour < 12 else "afternoon"
    return Slot(id, site_id, doctor_id, cups, starts_at, band)


A = slot("a", days=3, hour=8)
B = slot("b", days=3, hour=14, doctor_id="dr_rojas")
C = slot("c", days=4, hour=8)
OTHER_CUPS = slot("d", days=3, hour=9, cups="890301")
OTHER_SITE = slot("e", days=3, hour=9, site_id="sur", doctor_id="dr_torres")
PAST = slot("past", days=0, hour=6)  # 06:00 Bogotá is 11:00 UTC, before NOW


@pytest.fixture
async def source(db: Database) -> DbSlotSource:
    slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    await slots.seed_slots([C, B, A, OTHER_CUPS, OTHER_SITE, PAST])
    return slots


async def find(source: DbSlotSource, **filters: Any) -> list[str]:
    found = await source.find(site_id="norte", cups="890201", limit=10, **filters)
    return [s.id for s in found]


async def test_find_gives_free_future_slots_earliest_first(source: DbSlotSource) -> None:
    assert await find(source) == ["a", "b", "c"]
    [first] = await source.find(site_id="norte", cups="890201")
    assert first == A
    assert first.starts_at.tzinfo is not None


async def test_find_filters(source: DbSlotSource) -> None:
    assert await find(source, time_band="afternoon") == ["b"]
    assert await find(source, time_band="morning") == ["a", "c"]
    assert await find(source, doctor_id="dr_gomez") == ["a", "c"]
    assert await find(source, exclude_doctor_id="dr_gomez") == ["b"]
    assert await find(source, exclude_ids={"a", "c"}) == ["b"]
    assert await find(source, after=A.starts_at) == ["b", "c"]
    assert await find(source, after=NOW - timedelta(days=30)) == ["a", "b", "c"]
    assert await source.find(site_id="sur", cups="890301") == []
    assert await source.count_free("norte", "890201") == 3


async def test_booked_slot_is_no_longer_offered(source: DbSlotSource) -> None:
    booking = await source.book("a", affiliate_id="1001", call_id="call-1")

    assert booking == Booking(booking.id, A, "1001", "call-1", NOW)
    assert await find(source) == ["b", "c"]
    assert await source.count_free("norte", "890201") == 2
    assert await source.bookings_for("1001") == [booking]
    assert await source.bookings_for("1002") == []


async def test_booking_a_taken_slot_raises_slot_taken(source: DbSlotSource) -> None:
    await source.book("b", affiliate_id="1001", call_id="call-1")

    with pytest.raises(SlotTaken) as taken:
        await source.book("b", affiliate_id="1002", call_id="call-2")
    # The holder trying again, in another call, hears their own appointment
    # (test_booking_patient.py); the same call gets its booking back (below).
    with pytest.raises(PatientHasAppointment):
        await source.book("b", affiliate_id="1001", call_id="call-3")
    assert taken.value.slot_id == "b"
    assert [b.affiliate_id for b in await source.bookings_for("1001")] == ["1001"]
    assert await source.bookings_for("1002") == []


async def test_a_call_booking_its_own_slot_again_gets_its_booking_back(
    source: DbSlotSource,
) -> None:
    # A try whose COMMIT took effect but whose answer was lost runs again
    # (ivr.store.db.once_more_if_cut): the call's one booking, not a refusal.
    first = await source.book("b", affiliate_id="1001", call_id="call-1")
    again = await source.book("b", affiliate_id="1001", call_id="call-1")
    assert again == first
    assert await source.bookings_for("1001") == [first]
    # Another patient's call with the same id (ids are the call records'): refused.
    with pytest.raises(SlotTaken):
        await source.book("b", affiliate_id="1002", call_id="call-1")


async def test_unknown_and_past_slots_are_rejected(source: DbSlotSource) -> None:
    with pytest.raises(BookingRejected, match="no slot"):
        await source.book("nope", affiliate_id="1001", call_id=None)
    with pytest.raises(BookingRejected, match="already started"):
        await source.book("past", affiliate_id="1001", call_id=None)


async def test_twenty_callers_racing_for_one_slot_book_it_once(db: Database) -> None:
    source = DbSlotSource(db, timeout=20.0, clock=clock)
    race = race_slot(NOW.date())
    await source.seed_slots([race])

    results = await asyncio.gather(
        *(source.book(race.id, affiliate_id=f"{i}", call_id=f"call-{i}") for i in range(20)),
        return_exceptions=True,
    )

    bookings = [r for r in results if isinstance(r, Booking)]
    assert len(bookings) == 1, results
    assert all(isinstance(r, SlotTaken) for r in results if not isinstance(r, Booking)), results
    async with db.sessions() as session:
        rows = await session.scalar(
            select(func.count()).select_from(BookingRow).where(BookingRow.slot_id == race.id)
        )
    assert rows == 1
    assert await source.find(site_id="oriente", cups="890201") == []


async def test_seeding_is_idempotent(db: Database) -> None:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    slots = demo_slots(NOW.date(), load_sites(SITES))

    assert await source.seed_slots(slots) == len(slots) == 150
    assert await source.seed_slots(slots) == 0
    await source.book(slots[0].id, affiliate_id="1001", call_id=None)
    assert await source.seed_slots(slots) == 0
    assert await source.bookings_for("1001") != []


async def test_delete_free_slots_keeps_booked_ones(source: DbSlotSource) -> None:
    await source.book("a", affiliate_id="1001", call_id=None)

    assert await source.delete_free_slots("norte") == 4  # b, c, d, past
    assert await find(source) == []
    assert [b.slot.id for b in await source.bookings_for("1001")] == ["a"]
    assert await source.find(site_id="sur", cups="890201") == [OTHER_SITE]


async def test_health(source: DbSlotSource) -> None:
    assert await source.health() is True


def test_race_slot_is_fresh_each_time() -> None:
    first, second = race_slot(date(2025, 3, 7)), race_slot(date(2025, 3, 7))

    assert first.id != second.id
    assert first.starts_at == second.starts_at == datetime(2025, 3, 10, 9, 0, tzinfo=BOGOTA)
    assert (first.site_id, first.doctor_id, first.cups, first.time_band) == (
        "oriente",
        "dr_ortiz",
        "890201",
        "morning",
    )


# --- SQLite under lock contention ------------------------------------------------


async def test_a_locked_sqlite_database_means_unavailable_not_a_crash(tmp_path: Path) -> None:
    locked_sqlite = tmp_path / "locked.db"
    db = Database(f"sqlite+aiosqlite:///{locked_sqlite}", timeout=0.1)
    try:
        await db.migrate()
        source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
        await source.seed_slots([A])
        holder = sqlite3.connect(locked_sqlite, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            with pytest.raises(BookingUnavailable, match="locked"):
                await source.book("a", affiliate_id="1001", call_id=None)
            assert await source.health() is True  # WAL (ivr.store.db): reads go on
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (await source.book("a", affiliate_id="1001", call_id=None)).slot == A
    finally:
        await db.close()
