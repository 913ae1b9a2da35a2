"""Cancelling and rescheduling a patient's appointment (issue 10 §2), on real databases.

The kinds: an appointment that outlives its cancellation (slot still held,
still counted by the patient's rules), a cancellation that someone else's id
can make, and a reschedule that leaves two appointments or none. Their range:
every way a reschedule can fail (each must leave the old appointment standing),
cancelling twice, another patient's id, and simultaneous reschedules and
cancellations of one appointment (SQLite always; PostgreSQL when
CITAS_TEST_PG_URL names one).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ivr.booking import (
    AppointmentNotFound,
    Booking,
    BookingRejected,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.db import DbSlotSource
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
    id: str, starts_at: datetime, *, doctor_id: str = "dr_gomez", cups: str = "890201"
) -> Slot:
    band = "morning" if starts_at.hour < 12 else "afternoon"
    return Slot(id, "norte", doctor_id, cups, starts_at, band)


HELD = slot("held", at(8))
LATER = slot("later", at(9))  # same service, same doctor, later
TUESDAY = slot("tuesday", at(8, day=1), doctor_id="dr_rojas")
OVERLAPPING = slot("overlapping", at(8, 10), doctor_id="dr_rojas")  # meets HELD
OTHER_SERVICE = slot("other_service", at(10), doctor_id="dr_mejia", cups="890283")
TAKEN = slot("taken", at(11))
PAST = slot("past", datetime(2025, 3, 7, 6, 0, tzinfo=BOGOTA))  # 11:00 UTC, before NOW
SLOTS = [HELD, LATER, TUESDAY, OVERLAPPING, OTHER_SERVICE, TAKEN, PAST]


@pytest.fixture
async def source(db: Database) -> DbSlotSource:
    slots = DbSlotSource(db, timeout=30.0, clock=clock)
    await slots.seed_slots(SLOTS)
    return slots


async def live_bookings(db: Database, affiliate_id: str | None = None) -> list[tuple[str, str]]:
    """(booking id, slot id) of every live booking, of one patient or all."""
    query = select(BookingRow.id, BookingRow.slot_id).where(BookingRow.cancelled_at.is_(None))
    if affiliate_id is not None:
        query = query.where(BookingRow.affiliate_id == affiliate_id)
    async with db.sessions() as session:
        return [(b, s) for b, s in await session.execute(query.order_by(BookingRow.slot_id))]


async def held_slots(db: Database) -> dict[str, str]:
    """slot id -> who holds it, for every slot not free."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(SlotRow.id, SlotRow.booked_by).where(SlotRow.booked_by.is_not(None))
        )
        return {slot_id: str(by) for slot_id, by in rows}


async def assert_consistent(db: Database) -> None:
    """Every held slot has exactly one live booking, by its holder, and vice versa."""
    async with db.sessions() as session:
        live = {
            s: a
            for s, a in await session.execute(
                select(BookingRow.slot_id, BookingRow.affiliate_id).where(
                    BookingRow.cancelled_at.is_(None)
                )
            )
        }
    assert live == await held_slots(db)


# --- cancelling -------------------------------------------------------------------


async def test_a_cancelled_appointment_frees_its_slot_and_leaves_the_rules(
    db: Database, source: DbSlotSource
) -> None:
    booking = await source.book("held", affiliate_id="1001", call_id="call-1")

    cancelled = await source.cancel(booking.id, affiliate_id="1001", call_id="call-2")

    assert cancelled == Booking(
        booking.id, HELD, "1001", "call-1", booking.created_at, cancelled_at=NOW
    )
    assert await source.pending_for("1001") == []
    assert "held" in [s.id for s in await source.find(site_id="norte", cups="890201", limit=9)]
    # The same service again (one pending per service), at a time meeting the old one.
    assert (await source.book("overlapping", affiliate_id="1001", call_id=None)).slot.id
    # The freed slot takes another patient, beside the cancelled row.
    assert (await source.book("held", affiliate_id="2002", call_id=None)).slot == HELD
    assert [b.cancelled for b in await source.bookings_for("1001")] == [True, False]
    await assert_consistent(db)


async def test_cancelling_twice_is_one_cancellation(db: Database, source: DbSlotSource) -> None:
    booking = await source.book("held", affiliate_id="1001", call_id=None)
    first = await source.cancel(booking.id, affiliate_id="1001", call_id=None)
    rebooked = await source.book("held", affiliate_id="2002", call_id=None)

    again = await source.cancel(booking.id, affiliate_id="1001", call_id=None)

    assert again == first
    # The second cancellation did not free the slot from its new holder.
    assert await held_slots(db) == {"held": "2002"}
    assert await live_bookings(db) == [(rebooked.id, "held")]


@pytest.mark.parametrize(
    ("booking_id", "affiliate_id"),
    [
        pytest.param("mine", "2002", id="another patient's appointment"),
        pytest.param("no-such-booking", "1001", id="an id nobody holds"),
        pytest.param("", "1001", id="an empty id"),
    ],
)
async def test_only_the_holder_can_cancel(
    db: Database, source: DbSlotSource, booking_id: str, affiliate_id: str
) -> None:
    booking = await source.book("held", affiliate_id="1001", call_id=None)
    target = booking.id if booking_id == "mine" else booking_id

    with pytest.raises(AppointmentNotFound):
        await source.cancel(target, affiliate_id=affiliate_id, call_id=None)

    assert await source.pending_for("1001") == [booking]
    assert await held_slots(db) == {"held": "1001"}


async def test_an_appointment_that_has_started_cannot_be_cancelled(db: Database) -> None:
    now = [NOW]
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: now[0])
    await source.seed_slots([HELD])
    booking = await source.book("held", affiliate_id="1001", call_id=None)
    now[0] = HELD.starts_at

    with pytest.raises(BookingRejected, match="already started"):
        await source.cancel(booking.id, affiliate_id="1001", call_id=None)
    assert await live_bookings(db) == [(booking.id, "held")]


# --- rescheduling -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        pytest.param("later", True, id="same service later (the rule ignores the old one)"),
        pytest.param("overlapping", True, id="a time that meets the old one"),
        pytest.param("tuesday", False, id="another day, rule off"),
        pytest.param("other_service", True, id="another service"),
    ],
)
async def test_reschedule_books_the_new_slot_and_cancels_the_old_at_once(
    db: Database, target: str, rule: bool
) -> None:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock, one_pending_per_service=rule)
    await source.seed_slots(SLOTS)
    old = await source.book("held", affiliate_id="1001", call_id="call-1")

    new = await source.reschedule(old.id, target, affiliate_id="1001", call_id="call-2")

    assert (new.slot.id, new.call_id, new.cancelled_at) == (target, "call-2", None)
    assert await source.pending_for("1001") == [new]
    assert await held_slots(db) == {target: "1001"}
    async with db.sessions() as session:
        stored = await session.get(BookingRow, old.id)
    assert stored is not None
    assert (stored.cancelled_at, stored.replaced_by) == (NOW, new.id)
    await assert_consistent(db)


async def held_elsewhere(source: DbSlotSource) -> None:
    await source.book("taken", affiliate_id="2002", call_id=None)


# Every way the move can fail: the old appointment must stand, untouched.
FAILURES = [
    pytest.param("taken", SlotTaken, id="the new slot is taken"),
    pytest.param("no-such-slot", BookingRejected, id="no such slot"),
    pytest.param("past", BookingRejected, id="the new slot has started"),
    pytest.param("held", BookingRejected, id="the slot it already has"),
    pytest.param("tuesday_other", PatientHasAppointment, id="meets another appointment"),
]


@pytest.mark.parametrize(("target", "error"), FAILURES)
async def test_a_failed_reschedule_keeps_the_old_appointment(
    db: Database, source: DbSlotSource, target: str, error: type[Exception]
) -> None:
    old = await source.book("held", affiliate_id="1001", call_id=None)
    other = await source.book("other_service", affiliate_id="1001", call_id=None)
    await held_elsewhere(source)
    if target == "tuesday_other":  # 10:00 Monday: other_service holds it
        meets = slot("tuesday_other", at(10, 5), doctor_id="dr_diaz", cups="890301")
        await source.seed_slots([meets])

    with pytest.raises(error):
        await source.reschedule(old.id, target, affiliate_id="1001", call_id=None)

    assert await source.pending_for("1001") == [old, other]
    assert await held_slots(db) == {"held": "1001", "other_service": "1001", "taken": "2002"}
    await assert_consistent(db)


@pytest.mark.parametrize(
    "case", ["another patient's", "cancelled", "already rescheduled", "unknown"]
)
async def test_reschedule_needs_a_live_appointment_of_the_patient(
    db: Database, source: DbSlotSource, case: str
) -> None:
    old = await source.book("held", affiliate_id="1001", call_id=None)
    booking_id, who = old.id, "1001"
    if case == "another patient's":
        who = "2002"
    elif case == "cancelled":
        await source.cancel(old.id, affiliate_id="1001", call_id=None)
    elif case == "already rescheduled":
        await source.reschedule(old.id, "tuesday", affiliate_id="1001", call_id=None)
    else:
        booking_id = "no-such-booking"
    before = await live_bookings(db)

    with pytest.raises(AppointmentNotFound):
        await source.reschedule(booking_id, "later", affiliate_id=who, call_id=None)

    assert await live_bookings(db) == before
    assert "later" not in await held_slots(db)


# --- races ------------------------------------------------------------------------


async def test_simultaneous_reschedules_of_one_appointment_move_it_once(
    db: Database, source: DbSlotSource
) -> None:
    """Ten calls move one appointment to ten different slots at once: one wins."""
    targets = [slot(f"t{i}", at(14, 5 * i, day=2), doctor_id=f"dr_{i}") for i in range(10)]
    await source.seed_slots(targets)
    old = await source.book("held", affiliate_id="1001", call_id=None)

    results = await asyncio.gather(
        *(
            source.reschedule(old.id, t.id, affiliate_id="1001", call_id=f"call-{t.id}")
            for t in targets
        ),
        return_exceptions=True,
    )

    won = [r for r in results if isinstance(r, Booking)]
    assert len(won) == 1, results
    assert all(isinstance(r, AppointmentNotFound) for r in results if r not in won), results
    assert await live_bookings(db, "1001") == [(won[0].id, won[0].slot.id)]
    await assert_consistent(db)


@pytest.mark.parametrize("round_", range(4))
async def test_cancel_racing_a_reschedule_leaves_one_outcome(
    db: Database, source: DbSlotSource, round_: int
) -> None:
    """Whichever runs first, the patient ends with the new appointment or none,
    never the old one and the new one, and every slot agrees with its booking."""
    old = await source.book("held", affiliate_id="1001", call_id=None)
    operations = [
        source.cancel(old.id, affiliate_id="1001", call_id="cancel"),
        source.reschedule(old.id, "tuesday", affiliate_id="1001", call_id="move"),
    ]
    if round_ % 2:
        operations.reverse()

    results = await asyncio.gather(*operations, return_exceptions=True)

    cancel, move = results if round_ % 2 == 0 else results[::-1]
    assert isinstance(cancel, Booking) and cancel.cancelled, results
    live = await live_bookings(db, "1001")
    if isinstance(move, Booking):  # the move ran first; the cancel found it moved
        assert live == [(move.id, "tuesday")]
    else:
        assert isinstance(move, AppointmentNotFound), results
        assert live == []
    await assert_consistent(db)


async def test_two_patients_moving_to_one_slot_one_moves_the_other_keeps_theirs(
    db: Database, source: DbSlotSource
) -> None:
    mine = await source.book("held", affiliate_id="1001", call_id=None)
    theirs = await source.book("overlapping", affiliate_id="2002", call_id=None)

    results = await asyncio.gather(
        source.reschedule(mine.id, "tuesday", affiliate_id="1001", call_id=None),
        source.reschedule(theirs.id, "tuesday", affiliate_id="2002", call_id=None),
        return_exceptions=True,
    )

    won = [r for r in results if isinstance(r, Booking)]
    lost = [r for r in results if not isinstance(r, Booking)]
    assert len(won) == 1 and [type(e) for e in lost] == [SlotTaken], results
    loser = "2002" if won[0].affiliate_id == "1001" else "1001"
    kept = theirs if loser == "2002" else mine
    assert await live_bookings(db, loser) == [(kept.id, kept.slot.id)]
    assert await live_bookings(db, won[0].affiliate_id) == [(won[0].id, "tuesday")]
    await assert_consistent(db)


# --- migration 0005 ---------------------------------------------------------------


async def test_migration_0005_keeps_bookings_live_and_downgrades(tmp_path: Path) -> None:
    from alembic import command

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", timeout=TEST_DB_TIMEOUT_S)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0004"))
            await conn.execute(
                text(
                    "INSERT INTO slots (id, site_id, doctor_id, cups, starts_at, ends_at,"
                    " time_band, booked_by) VALUES ('old', 'norte', 'dr_gomez', '890201',"
                    " '2025-03-10 13:00:00.000000', '2025-03-10 13:20:00.000000', 'morning',"
                    " '1001')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO bookings (id, slot_id, affiliate_id, created_at)"
                    " VALUES ('bk-old', 'old', '1001', '2025-03-07 12:00:00.000000')"
                )
            )
        await db.migrate()
        source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
        [kept] = await source.pending_for("1001")
        assert (kept.id, kept.cancelled_at) == ("bk-old", None)
        await source.cancel("bk-old", affiliate_id="1001", call_id=None)
        again = await source.book("old", affiliate_id="2002", call_id=None)
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
            columns = await conn.run_sync(
                lambda c: [r[1] for r in c.exec_driver_sql("PRAGMA table_info(bookings)")]
            )
            left = (await conn.execute(text("SELECT id FROM bookings"))).scalars().all()
        assert "cancelled_at" not in columns
        assert left == [again.id]  # the cancelled row could not stay beside it
        async with db.engine.begin() as conn:
            with pytest.raises(Exception, match="UNIQUE"):
                await conn.execute(
                    text(
                        "INSERT INTO bookings (id, slot_id, affiliate_id, created_at)"
                        " VALUES ('bk-twice', 'old', '3003', '2025-03-07 12:00:00.000000')"
                    )
                )
    finally:
        await db.close()


async def test_the_live_slot_index_refuses_a_second_live_booking(
    db: Database, source: DbSlotSource
) -> None:
    """The database's own safety net, below the conditional UPDATE."""
    first = await source.book("held", affiliate_id="1001", call_id=None)
    async with db.sessions() as session:
        session.add(BookingRow(id="intruder", slot_id="held", affiliate_id="2002", created_at=NOW))
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await session.commit()
    async with db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(BookingRow))
    assert count == 1
    assert await live_bookings(db) == [(first.id, "held")]
