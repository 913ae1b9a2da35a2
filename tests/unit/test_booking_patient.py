"""A patient's own appointments when booking (issue 9, section 3), on real databases.

The kind: a booking that ignores the appointments the patient already holds.
Its range: every way two time intervals can meet (the ``overlaps`` table,
checked in Python and through the database's SQL), one pending appointment per
service with the line's rule on and off, and many simultaneous attempts for one
patient (SQLite always; PostgreSQL when CITAS_TEST_PG_URL names one).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from ivr.booking import Booking, PatientHasAppointment, Slot, SlotTaken
from ivr.booking.db import DbSlotSource
from ivr.booking.model import DEFAULT_LENGTH, OVERLAP, SAME_SERVICE, overlaps
from ivr.booking.seed import BOGOTA
from ivr.booking.tables import BookingRow, SlotRow
from ivr.store.db import Database, alembic_config
from tests.unit.databases import TEST_DB_TIMEOUT_S

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)  # a Friday
MONDAY = datetime(2025, 3, 10, tzinfo=BOGOTA)


def clock() -> datetime:
    return NOW


def at(hour: int, minute: int = 0, *, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def slot(
    id: str,
    starts_at: datetime,
    *,
    minutes: int = 20,
    doctor_id: str = "dr_gomez",
    cups: str = "890201",
) -> Slot:
    band = "morning" if starts_at.hour < 12 else "afternoon"
    return Slot(id, "norte", doctor_id, cups, starts_at, band, timedelta(minutes=minutes))


# --- the interval predicate, over its range -------------------------------------

# (first start, first minutes, second start, second minutes, overlap?)
INTERVALS = [
    pytest.param(at(8, 30), 20, at(8, 30), 20, True, id="equal"),
    pytest.param(
        at(8), 30, at(8, 30), 30, False, id="touching: the second starts as the first ends"
    ),
    pytest.param(at(8, 30), 30, at(8), 30, False, id="touching, other order"),
    pytest.param(at(8), 60, at(8, 20), 20, True, id="contained"),
    pytest.param(at(8, 20), 20, at(8), 60, True, id="containing"),
    pytest.param(at(8), 20, at(8, 10), 20, True, id="partial: second starts inside"),
    pytest.param(at(8, 10), 20, at(8), 20, True, id="partial: second ends inside"),
    pytest.param(at(8), 60, at(8), 20, True, id="same start, different length"),
    pytest.param(at(8), 20, at(8, 40), 20, False, id="disjoint, same morning"),
    pytest.param(at(8, 30), 20, at(8, 30, day=1), 20, False, id="same time, next day"),
    pytest.param(at(23, 50), 30, at(0, 10, day=1), 20, True, id="across midnight"),
    pytest.param(at(8, 30), 1, at(8, 30, day=7), 1, False, id="same weekday, next week"),
]


@pytest.mark.parametrize(("a_start", "a_min", "b_start", "b_min", "expected"), INTERVALS)
def test_overlaps_table(
    a_start: datetime, a_min: int, b_start: datetime, b_min: int, expected: bool
) -> None:
    a_end, b_end = a_start + timedelta(minutes=a_min), b_start + timedelta(minutes=b_min)
    assert overlaps(a_start, a_end, b_start, b_end) is expected
    assert overlaps(b_start, b_end, a_start, a_end) is expected


minutes = st.integers(min_value=0, max_value=3 * 24 * 60)
lengths = st.integers(min_value=1, max_value=6 * 60)


@given(minutes, lengths, minutes, lengths)
def test_overlaps_means_a_shared_minute(a: int, a_len: int, b: int, b_len: int) -> None:
    """Property: intervals on whole minutes overlap exactly when they share a minute."""
    shared = set(range(a, a + a_len)) & set(range(b, b + b_len))
    a_start, b_start = MONDAY + timedelta(minutes=a), MONDAY + timedelta(minutes=b)
    got = overlaps(
        a_start, a_start + timedelta(minutes=a_len), b_start, b_start + timedelta(minutes=b_len)
    )
    assert got is bool(shared)


def test_a_slot_ends_after_its_length_and_defaults_to_twenty_minutes() -> None:
    plain = Slot("s", "norte", "dr_gomez", "890201", at(8), "morning")
    assert DEFAULT_LENGTH == timedelta(minutes=20)
    assert plain.ends_at == at(8, 20)
    assert slot("t", at(8), minutes=45).ends_at == at(8, 45)


@pytest.mark.parametrize(("a_start", "a_min", "b_start", "b_min", "expected"), INTERVALS)
async def test_the_database_refuses_exactly_the_overlapping_intervals(
    db: Database, a_start: datetime, a_min: int, b_start: datetime, b_min: int, expected: bool
) -> None:
    """The SQL predicate agrees with ``overlaps`` (different services, so only time counts)."""
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    first = slot("first", a_start, minutes=a_min)
    second = slot("second", b_start, minutes=b_min, doctor_id="dr_rojas", cups="890301")
    await source.seed_slots([first, second])
    held = await source.book("first", affiliate_id="1001", call_id="call-1")

    if expected:
        with pytest.raises(PatientHasAppointment) as refused:
            await source.book("second", affiliate_id="1001", call_id="call-2")
        assert (refused.value.existing, refused.value.reason) == (held, OVERLAP)
    else:
        await source.book("second", affiliate_id="1001", call_id="call-2")
    # Someone else is never in the way.
    assert await source.bookings_for("2002") == []


# --- the observation, and one pending appointment per service ---------------------


async def test_observed_two_calls_book_her_twice_at_0830_with_two_doctors(db: Database) -> None:
    """Regression: the second booking, same 08:30, another doctor and service, is refused."""
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    gomez = slot("gomez-0830", at(8, 30), cups="890201")
    rojas = slot("rojas-0830", at(8, 30), doctor_id="dr_rojas", cups="890301")
    await source.seed_slots([gomez, rojas])

    first = await source.book(gomez.id, affiliate_id="1010101010", call_id="by-caller-id")
    with pytest.raises(PatientHasAppointment) as refused:
        await source.book(rojas.id, affiliate_id="1010101010", call_id="by-document")

    assert refused.value.existing == first
    assert refused.value.reason == OVERLAP
    assert await source.bookings_for("1010101010") == [first]
    assert await source.find(site_id="norte", cups="890301") == [rojas]  # still free


@pytest.mark.parametrize("rule", [True, False], ids=["rule on", "rule off"])
async def test_one_pending_appointment_per_service_follows_the_rule(
    db: Database, rule: bool
) -> None:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock, one_pending_per_service=rule)
    monday, tuesday = slot("mon", at(8)), slot("tue", at(8, day=1))
    other_service = slot("tue-ctl", at(10, day=1), cups="890301")
    await source.seed_slots([monday, tuesday, other_service])
    first = await source.book("mon", affiliate_id="1001", call_id=None)

    if rule:
        with pytest.raises(PatientHasAppointment) as refused:
            await source.book("tue", affiliate_id="1001", call_id=None)
        assert (refused.value.existing, refused.value.reason) == (first, SAME_SERVICE)
    else:
        await source.book("tue", affiliate_id="1001", call_id=None)
    await source.book("tue-ctl", affiliate_id="1001", call_id=None)  # another service: fine
    assert [b.slot.id for b in await source.pending_for("1001")] == (
        ["mon", "tue-ctl"] if rule else ["mon", "tue", "tue-ctl"]
    )


async def test_a_past_appointment_is_not_pending(db: Database) -> None:
    booked_at = NOW - timedelta(days=3)
    early = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: booked_at)
    past = slot("past", at(8, day=-5))  # Wednesday before NOW
    future = slot("future", at(8))
    await early.seed_slots([past, future])
    await early.book("past", affiliate_id="1001", call_id=None)

    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    assert await source.pending_for("1001") == []
    assert [b.slot.id for b in await source.bookings_for("1001")] == ["past"]
    booking = await source.book("future", affiliate_id="1001", call_id=None)  # same service
    assert await source.pending_for("1001") == [booking]


async def test_the_same_patient_booking_the_slot_they_hold_hears_it(db: Database) -> None:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    await source.seed_slots([slot("a", at(8))])
    held = await source.book("a", affiliate_id="1001", call_id="call-1")

    with pytest.raises(PatientHasAppointment) as refused:
        await source.book("a", affiliate_id="1001", call_id="call-2")
    with pytest.raises(SlotTaken):
        await source.book("a", affiliate_id="2002", call_id="call-3")
    assert refused.value.existing == held


async def test_slots_must_last(db: Database) -> None:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    with pytest.raises(ValueError, match="must last"):
        await source.seed_slots([slot("zero", at(8), minutes=0)])


# --- simultaneous calls of one patient ----------------------------------------------


async def book_all(
    source: DbSlotSource, slots: list[Slot], affiliate_id: str
) -> tuple[list[Booking], list[BaseException]]:
    results = await asyncio.gather(
        *(source.book(s.id, affiliate_id=affiliate_id, call_id=f"call-{s.id}") for s in slots),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, Booking)]
    lost = [r for r in results if isinstance(r, BaseException)]
    return won, lost


async def stored_bookings(db: Database, affiliate_id: str) -> int:
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(BookingRow)
            .where(BookingRow.affiliate_id == affiliate_id)
        )
    return int(count or 0)


@pytest.mark.parametrize("rule", [True, False], ids=["rule on", "rule off"])
async def test_simultaneous_overlapping_attempts_for_one_patient_book_once(
    db: Database, rule: bool
) -> None:
    """Twelve calls of one patient, twelve doctors and services, times that all meet."""
    source = DbSlotSource(db, timeout=30.0, clock=clock, one_pending_per_service=rule)
    # Starts 08:00, 08:05, ... 08:55, each 60 minutes long: every pair overlaps.
    slots = [
        slot(f"s{i}", at(8, 5 * i), minutes=60, doctor_id=f"dr_{i}", cups=f"8903{i:02d}")
        for i in range(12)
    ]
    await source.seed_slots(slots)

    won, lost = await book_all(source, slots, "1001")

    assert len(won) == 1, lost
    assert all(isinstance(e, PatientHasAppointment) for e in lost), lost
    assert all(e.existing == won[0] for e in lost if isinstance(e, PatientHasAppointment))
    assert await stored_bookings(db, "1001") == 1
    async with db.sessions() as session:
        claimed = await session.scalar(
            select(func.count()).select_from(SlotRow).where(SlotRow.booked_by.is_not(None))
        )
    assert claimed == 1  # the losers left their slots free


@pytest.mark.parametrize("rule", [True, False], ids=["rule on", "rule off"])
async def test_simultaneous_attempts_for_one_service_at_different_times(
    db: Database, rule: bool
) -> None:
    """One service, eight days: the rule on books one, off books all eight."""
    source = DbSlotSource(db, timeout=30.0, clock=clock, one_pending_per_service=rule)
    slots = [slot(f"day{i}", at(8, day=i), doctor_id=f"dr_{i}") for i in range(8)]
    await source.seed_slots(slots)

    won, lost = await book_all(source, slots, "1001")

    if rule:
        assert len(won) == 1, lost
        assert all(
            isinstance(e, PatientHasAppointment) and e.reason == SAME_SERVICE for e in lost
        ), lost
    else:
        assert (len(won), lost) == (8, [])
    assert await stored_bookings(db, "1001") == len(won)


async def test_simultaneous_different_services_at_different_times_both_win(db: Database) -> None:
    source = DbSlotSource(db, timeout=30.0, clock=clock)
    general = slot("general", at(8), cups="890201")
    pediatrics = slot("pediatrics", at(8, 20), doctor_id="dr_mejia", cups="890283")  # touching
    await source.seed_slots([general, pediatrics])

    won, lost = await book_all(source, [general, pediatrics], "1001")

    assert (sorted(b.slot.id for b in won), lost) == (["general", "pediatrics"], [])
    assert await stored_bookings(db, "1001") == 2


async def test_simultaneous_patients_do_not_wait_for_each_other(db: Database) -> None:
    """Twenty patients, each with their own slot at the same time: all twenty book."""
    source = DbSlotSource(db, timeout=30.0, clock=clock)
    slots = [slot(f"p{i}", at(8, 30), doctor_id=f"dr_{i}") for i in range(20)]
    await source.seed_slots(slots)

    results = await asyncio.gather(
        *(source.book(s.id, affiliate_id=f"{i}", call_id=None) for i, s in enumerate(slots))
    )

    assert sorted(b.affiliate_id for b in results) == sorted(str(i) for i in range(20))


# --- migration 0004 ---------------------------------------------------------------


async def test_migration_0004_gives_old_slots_the_default_length_and_downgrades(
    tmp_path: Path,
) -> None:
    from alembic import command

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", timeout=TEST_DB_TIMEOUT_S)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0003"))
            await conn.execute(
                text(
                    "INSERT INTO slots (id, site_id, doctor_id, cups, starts_at, time_band)"
                    " VALUES ('old', 'norte', 'dr_gomez', '890201',"
                    " '2025-03-10 13:00:00.000000', 'morning')"
                )
            )
        await db.migrate()
        source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
        [old] = await source.find(site_id="norte", cups="890201")
        assert (old.starts_at, old.ends_at) == (at(8), at(8, 20))
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
            tables = await conn.run_sync(
                lambda c: c.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
            )
            columns = await conn.run_sync(
                lambda c: [r[1] for r in c.exec_driver_sql("PRAGMA table_info(slots)")]
            )
        assert "booking_guards" not in tables
        assert "ends_at" not in columns
    finally:
        await db.close()
