"""``DbSlotSource``: slots and bookings in our own database.

Booking is one transaction, in this order:

1. **The patient's guard row** (``booking_guards``) is written: an upsert that
   bumps the patient's counter. This is the serialisation point for one
   patient: on PostgreSQL the row lock is held to the end of the transaction,
   so a second booking for the same patient waits there and, under READ
   COMMITTED, its next statements see the first one's committed booking; on
   SQLite the write takes the database's write lock before anything is read.
2. **The patient's own appointments** are checked with that lock held: none may
   overlap the new slot's ``[starts_at, ends_at)`` (``model.overlaps``, the
   same predicate in SQL), and, with ``one_pending_per_service``, none may be a
   pending appointment (not started yet) for the same CUPS code. Either raises
   ``PatientHasAppointment`` with the appointment found.
3. **The slot** is claimed with a conditional UPDATE only while it is still
   free (``booked_by IS NULL``), then the booking row is inserted. A concurrent
   claim by another patient waits for the row lock (PostgreSQL) or the write
   lock (SQLite) and then finds the slot taken. The UNIQUE constraint on
   ``bookings.slot_id`` catches anything that slips through.

Why a guard row and not constraints: an exclusion constraint over
``tstzrange(starts_at, ends_at)`` needs the ``btree_gist`` extension (not
granted on every managed PostgreSQL) and has no SQLite counterpart, so the two
databases would enforce the rule by two mechanisms (a constraint and a
trigger) that have to be kept equal; "pending" depends on the clock, which no
index predicate can read, so a partial unique index cannot say "one pending
appointment per service" without a status column nothing else maintains; and
the per-service rule is a table value operations may switch off, which a
constraint cannot follow without a migration. One row lock per patient gives
both databases the same guarantee with the same SQL, and contention only
between calls of the same patient. The price: every writer of ``bookings``
must go through ``book`` (the reference HTTP service does).

Cancelling and rescheduling (issue 10 §2) take the same guard row first, so
one patient's bookings, cancellations and reschedules run one at a time. A
cancellation marks the booking (``cancelled_at``) and frees its slot; a
reschedule does steps 2 and 3 for the new slot (ignoring the appointment being
moved) and then the cancellation, all in one transaction: if the new slot is
taken the transaction rolls back and the old appointment stands. Only live
(not cancelled) bookings count for the rules and for the unique slot index.

Guard rows are taken in one order (guard, then slot) and each transaction holds
one patient's guard, so the two locks cannot deadlock.

**Free slots from memory** (issue 13, part db): given a change feed
(``ivr.store.changes``), ``find`` reads the free slots of a (site, CUPS) from a
per-process cache, filtered in Python exactly as the SQL below filters them
(``_matches``); every write of slots here (book, cancel, reschedule, seed,
delete, release) touches the site's topic ``slots.<site>`` in its own
transaction, so every process drops that site's slots at once on PostgreSQL
(NOTIFY) and within ``CITAS_CHANGES_POLL_S`` on SQLite. A slot offered from a
stale cache is never double-booked: ``book`` still claims it in one transaction
that checks it is free (step 3); a caller offered a slot taken meanwhile hears
the next one, as before.

SQLite answers "database is locked" when its busy timeout runs out under
contention, and PostgreSQL may ask to retry a transaction (serialisation
failure, deadlock): both are retried a few times within the call's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from ivr.booking.model import (
    OVERLAP,
    SAME_SERVICE,
    AppointmentNotFound,
    Booking,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.tables import BookingGuardRow, BookingRow, SlotRow
from ivr.failures import failure_text
from ivr.store.changes import Cached, ChangeFeed, slots_topic, touch
from ivr.store.db import (
    Attempt,
    Database,
    StoreUnavailable,
    UnsupportedDialect,
    cut_worth_retrying,
    dialect_insert,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
RETRY_DELAY = 0.05  # seconds, times the attempt number
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DbSlotSource:
    """A ``SlotSource`` over the ``slots`` and ``bookings`` tables.

    ``one_pending_per_service``: the line's ``booking.one_pending_per_service``
    (config/citas/line.yaml); on, a patient holds at most one pending
    appointment per CUPS code. Overlapping appointments are always refused.
    """

    def __init__(
        self,
        db: Database,
        *,
        timeout: float,
        clock: Callable[[], datetime] = _utcnow,
        one_pending_per_service: bool = True,
        feed: ChangeFeed | None = None,
    ) -> None:
        """``feed``: cache the free slots per (site, CUPS), invalidated through it
        (module docstring); None reads them from the database on every ``find``."""
        self.db = db
        self.timeout = timeout
        self._clock = clock
        self.one_pending_per_service = one_pending_per_service
        self.free: Cached[tuple[str, str], list[Slot]] | None = (
            Cached(feed, lambda key: slots_topic(key[0]), self._load_free)
            if feed is not None else None
        )  # fmt: skip

    async def find(
        self,
        *,
        site_id: str,
        cups: str,
        after: datetime | None = None,
        time_band: str | None = None,
        doctor_id: str | None = None,
        exclude_doctor_id: str | None = None,
        exclude_ids: Collection[str] = (),
        limit: int = 1,
    ) -> list[Slot]:
        now = self._clock()
        floor = now if after is None or after < now else after
        if self.free is not None:
            excluded = frozenset(exclude_ids)
            found = []
            for slot in await self.free.get((site_id, cups)):
                if _matches(slot, floor, time_band, doctor_id, exclude_doctor_id, excluded):
                    found.append(slot)
                    if len(found) == limit:
                        break
            return found
        query = select(SlotRow).where(
            SlotRow.site_id == site_id,
            SlotRow.cups == cups,
            SlotRow.booked_by.is_(None),
            SlotRow.starts_at > floor,
        )
        if time_band is not None:
            query = query.where(SlotRow.time_band == time_band)
        if doctor_id is not None:
            query = query.where(SlotRow.doctor_id == doctor_id)
        if exclude_doctor_id is not None:
            query = query.where(SlotRow.doctor_id != exclude_doctor_id)
        if exclude_ids:
            query = query.where(SlotRow.id.not_in(list(exclude_ids)))
        query = query.order_by(SlotRow.starts_at, SlotRow.id).limit(limit)

        async def op(session: AsyncSession) -> list[Slot]:
            return [_slot(row) for row in await session.scalars(query)]

        return await self._run("find slots", op)

    def _stale(self) -> None:
        """A slot we offered was taken: our cache knew before the feed told us."""
        if self.free is not None:
            self.free.invalidate()

    async def _load_free(self, key: tuple[str, str]) -> list[Slot]:
        """Every free slot of (site, CUPS) not started yet, in ``find``'s order."""
        site_id, cups = key
        query = (
            select(SlotRow)
            .where(SlotRow.site_id == site_id, SlotRow.cups == cups,
                   SlotRow.booked_by.is_(None), SlotRow.starts_at > self._clock())
            .order_by(SlotRow.starts_at, SlotRow.id)
        )  # fmt: skip

        async def op(session: AsyncSession) -> list[Slot]:
            return [_slot(row) for row in await session.scalars(query)]

        return await self._run("load free slots", op, read_only=True)

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        """Book ``slot_id`` for the patient (steps 1-3 above); the booking.

        Idempotent per call: a call that books the slot it already holds gets its
        booking back, not a second one nor a refusal, so a try whose COMMIT took
        effect but whose answer was lost (the database cut the connection) can run
        again. Without a ``call_id`` (the booking API's requests may have none) a
        try cut at its COMMIT is not run again: ``BookingUnavailable``. Raises ``SlotTaken``, ``PatientHasAppointment``, ``BookingRejected``
        (no such slot, or it has started) or ``BookingUnavailable``.
        """
        dialect = self.db.engine.dialect.name

        async def op(session: AsyncSession) -> Booking:
            now = self._clock()
            conn = await session.connection()
            # 1. The patient's serialisation point, before anything is read.
            await conn.execute(_guard(dialect, affiliate_id, now))
            if call_id is not None and (
                done := await _booked_by_call(session, slot_id, affiliate_id, call_id)
            ):
                return done  # this call's booking, committed by a try whose answer was lost
            return await self._claim(session, slot_id, affiliate_id, call_id, now)

        try:
            booking = await self._run(
                f"book slot {slot_id}", op, write=True, idempotent=call_id is not None
            )
        except (SlotTaken, BookingRejected):  # taken, or gone: our cache is stale
            self._stale()
            raise
        logger.info("call %s: booked slot %s as %s", call_id, slot_id, booking.id)
        return booking

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        """Cancel the patient's appointment ``booking_id``: its slot is free again
        and it no longer counts for the patient's rules; returns it cancelled.

        Idempotent: an appointment already cancelled (or replaced by a
        reschedule) is returned as it is, ``cancelled_at`` unchanged. Runs under
        the patient's guard row, like ``book`` and ``reschedule``, so the three
        never interleave for one patient. Raises ``AppointmentNotFound`` (no such
        appointment, or another patient's), ``BookingRejected`` (it has already
        started) or ``BookingUnavailable``.
        """
        dialect = self.db.engine.dialect.name

        async def op(session: AsyncSession) -> tuple[Booking, bool]:
            now = self._clock()
            conn = await session.connection()
            await conn.execute(_guard(dialect, affiliate_id, now))
            old = await _own_booking(session, booking_id, affiliate_id)
            if old.cancelled:
                return old, False
            if old.slot.starts_at <= now:
                raise BookingRejected(f"appointment {booking_id} has already started")
            await touch(session, slots_topic(old.slot.site_id))
            return await _release(conn, old, now, replaced_by=None), True

        cancelled, changed = await self._run(
            f"cancel booking {booking_id}", op, write=True, idempotent=True
        )
        if changed:
            logger.info("call %s: cancelled booking %s", call_id, booking_id)
        else:
            logger.info("call %s: booking %s was already cancelled", call_id, booking_id)
        return cancelled

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        """Move the patient's appointment ``booking_id`` to ``slot_id``: one
        transaction books the new slot and cancels the old appointment (its slot
        freed, ``replaced_by`` the new booking). Returns the new booking.

        Either both happen or neither: if the new slot is taken, the old
        appointment stands. The patient's rules (``book``) apply to the new
        slot as if the old appointment were already gone. Two reschedules, or a
        reschedule and a cancel, of one appointment run one after the other on
        the patient's guard row; the second finds it cancelled. Raises
        ``AppointmentNotFound`` (none such of this patient, or already
        cancelled), ``SlotTaken``, ``PatientHasAppointment``, ``BookingRejected``
        (either has started, or the new slot is the old one) or
        ``BookingUnavailable``.
        """
        dialect = self.db.engine.dialect.name

        async def op(session: AsyncSession) -> Booking:
            now = self._clock()
            conn = await session.connection()
            await conn.execute(_guard(dialect, affiliate_id, now))
            old = await _own_booking(session, booking_id, affiliate_id)
            if old.cancelled:
                raise AppointmentNotFound(booking_id)
            if old.slot.starts_at <= now:
                raise BookingRejected(f"appointment {booking_id} has already started")
            if old.slot.id == slot_id:
                raise BookingRejected(f"appointment {booking_id} is already in slot {slot_id}")
            new = await self._claim(session, slot_id, affiliate_id, call_id, now, replacing=old.id)
            await _release(conn, old, now, replaced_by=new.id)
            await touch(session, slots_topic(old.slot.site_id))
            return new

        try:
            booking = await self._run(
                f"move booking {booking_id} to slot {slot_id}", op, write=True
            )
        except (SlotTaken, BookingRejected):  # taken, or gone: our cache is stale
            self._stale()
            raise
        logger.info(
            "call %s: moved booking %s to slot %s as %s", call_id, booking_id, slot_id, booking.id
        )
        return booking

    async def _claim(
        self,
        session: AsyncSession,
        slot_id: str,
        affiliate_id: str,
        call_id: str | None,
        now: datetime,
        *,
        replacing: str | None = None,
    ) -> Booking:
        """Steps 2 and 3 of a booking, with the patient's guard held; ``replacing``
        is an appointment of theirs the rules ignore (it is being rescheduled)."""
        conn = await session.connection()
        found = await session.scalar(select(SlotRow).where(SlotRow.id == slot_id))
        if found is None:
            raise BookingRejected(f"there is no slot {slot_id}")
        slot = _slot(found)
        # 2. The patient's own appointments, with the guard held.
        conflict = await self._conflict(session, affiliate_id, slot, now, ignoring=replacing)
        if conflict is not None:
            raise conflict
        # 3. The slot itself.
        claimed = await conn.execute(
            update(SlotRow)
            .where(
                SlotRow.id == slot_id,
                SlotRow.booked_by.is_(None),
                SlotRow.starts_at > now,
            )
            .values(booked_by=affiliate_id, booked_at=now)
        )
        if claimed.rowcount != 1:
            raise await _why_not_bookable(conn, slot_id)
        await touch(session, slots_topic(slot.site_id))
        row = BookingRow(
            id=str(uuid.uuid4()),
            slot_id=slot_id,
            affiliate_id=affiliate_id,
            call_id=call_id,
            created_at=now,
        )
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise SlotTaken(slot_id) from exc
        return Booking(row.id, slot, affiliate_id, call_id, now)

    async def _conflict(
        self,
        session: AsyncSession,
        affiliate_id: str,
        slot: Slot,
        now: datetime,
        *,
        ignoring: str | None = None,
    ) -> PatientHasAppointment | None:
        """The patient's live appointment that rules ``slot`` out, if any (overlap
        first); ``ignoring`` names one of theirs that does not count."""
        mine = _live_bookings_of(affiliate_id)
        if ignoring is not None:
            mine = mine.where(BookingRow.id != ignoring)
        overlapping = mine.where(SlotRow.starts_at < slot.ends_at, SlotRow.ends_at > slot.starts_at)
        checks = [(OVERLAP, overlapping)]
        if self.one_pending_per_service:
            same = mine.where(SlotRow.cups == slot.cups, SlotRow.starts_at > now)
            checks.append((SAME_SERVICE, same))
        for reason, query in checks:
            first = (await session.execute(query.limit(1))).first()
            if first is not None:
                booking_row, slot_row = first
                return PatientHasAppointment(_booking(booking_row, slot_row), reason)
        return None

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        """The patient's live appointments that have not started yet, earliest first."""
        query = _live_bookings_of(affiliate_id).where(SlotRow.starts_at > self._clock())

        def op(conn: Connection) -> list[Booking]:  # in a reader thread on SQLite: a call's path
            with Session(bind=conn) as session:
                return [_booking(b, s) for b, s in session.execute(query)]

        try:
            return await self.db.read_sync("list pending bookings", op, deadline_s=self.timeout)
        except StoreUnavailable as exc:
            raise BookingUnavailable(str(exc)) from exc

    async def release_bookings(self) -> int:
        """Demo reset (``ivr call`` seeds, the sandbox only): every booking is
        deleted and its slot is free again; returns how many were deleted."""

        async def op(session: AsyncSession) -> int:
            conn = await session.connection()
            await conn.execute(
                update(SlotRow)
                .where(SlotRow.booked_by.is_not(None))
                .values(booked_by=None, booked_at=None)
            )
            await conn.execute(delete(BookingGuardRow))
            for site_id in await session.scalars(select(SlotRow.site_id).distinct()):
                await touch(session, slots_topic(site_id))
            return (await conn.execute(delete(BookingRow))).rowcount

        return await self._run("release every booking", op, write=True)

    async def health(self) -> bool:
        async def op(session: AsyncSession) -> bool:
            # Reads the table, so a missing schema or a locked database shows.
            await session.execute(select(SlotRow.id).limit(1))
            return True

        try:
            return await self._run("check the database", op)
        except BookingUnavailable as exc:
            logger.warning("booking database unhealthy: %s", exc)
            return False

    async def seed_slots(self, slots: Collection[Slot]) -> int:
        """Insert slots whose id is not there yet; returns how many were new.

        Raises ``ValueError`` for a slot that does not last (length zero or less).
        """
        dialect = self.db.engine.dialect.name
        short = [slot.id for slot in slots if slot.length <= timedelta(0)]
        if short:
            raise ValueError(f"slots must last: {short}")
        rows = [_row_values(slot) for slot in slots]

        async def op(session: AsyncSession) -> int:
            conn = await session.connection()
            inserted = 0
            for values in rows:
                result = await conn.execute(_insert_ignoring_existing(dialect, values))
                inserted += max(result.rowcount, 0)
            if inserted:
                for site_id in sorted({slot.site_id for slot in slots}):
                    await touch(session, slots_topic(site_id))
            return inserted

        return await self._run("seed slots", op, write=True)

    async def delete_free_slots(self, site_id: str) -> int:
        async def op(session: AsyncSession) -> int:
            conn = await session.connection()
            result = await conn.execute(
                delete(SlotRow).where(SlotRow.site_id == site_id, SlotRow.booked_by.is_(None))
            )
            await touch(session, slots_topic(site_id))
            return result.rowcount

        return await self._run(f"delete free slots of {site_id}", op, write=True)

    async def bookings_for(self, affiliate_id: str) -> list[Booking]:
        """Every booking of the patient, past, pending and cancelled, earliest first."""
        query = _bookings_of(affiliate_id)

        async def op(session: AsyncSession) -> list[Booking]:
            return [_booking(b, s) for b, s in await session.execute(query)]

        return await self._run("list bookings", op)

    async def count_free(self, site_id: str, cups: str) -> int:
        query = select(func.count()).where(
            SlotRow.site_id == site_id,
            SlotRow.cups == cups,
            SlotRow.booked_by.is_(None),
            SlotRow.starts_at > self._clock(),
        )

        async def op(session: AsyncSession) -> int:
            return int(await session.scalar(query) or 0)

        return await self._run("count free slots", op)

    async def _run(
        self,
        what: str,
        op: Callable[[AsyncSession], Awaitable[T]],
        *,
        write: bool = False,
        read_only: bool = False,
        idempotent: bool = False,
    ) -> T:
        """Run ``op`` in one transaction, retrying lock contention, within the
        deadline; ``write``, ``read_only``: as ``Database.session``. A connection
        the database cut is retried once on a new one (``ivr.store.db.once_more_if_cut``)
        when the transaction had not reached its commit, or whatever it had
        reached when ``idempotent`` (``op`` run twice does what it does once)."""
        cut = False
        number = 1  # the try, counting contention's retries (the cut's is on top)
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    attempt = Attempt()
                    try:
                        async with self.db.session(write=write, read_only=read_only) as session:
                            result = await op(session)
                            await session.flush()  # pending writes, before the COMMIT
                            attempt.committing = True
                        return result
                    except DBAPIError as exc:
                        if not cut and cut_worth_retrying(exc, attempt, idempotent=idempotent):
                            cut = True
                            logger.warning("cannot %s: the database cut the connection (%s); once more",
                                           what, str(exc.orig).splitlines()[0] if exc.orig else exc)  # fmt: skip
                            continue
                        if number == ATTEMPTS or not _worth_retrying(exc):
                            raise
                        logger.info("cannot %s (attempt %d), retrying: %s", what, number, exc)
                    await asyncio.sleep(RETRY_DELAY * number)
                    number += 1
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise BookingUnavailable(
                f"cannot {what}: {failure_text(exc, deadline_s=self.timeout)}"
            ) from exc


async def _booked_by_call(
    session: AsyncSession, slot_id: str, affiliate_id: str, call_id: str
) -> Booking | None:
    """The live booking of ``slot_id`` this call made for this patient, if any (the
    slot's one live booking: ``uq_bookings_live_slot_id``)."""
    row = await session.scalar(
        select(BookingRow).where(BookingRow.slot_id == slot_id, BookingRow.cancelled_at.is_(None))
    )
    if row is None or row.affiliate_id != affiliate_id or row.call_id != call_id:
        return None
    found = await session.scalar(select(SlotRow).where(SlotRow.id == slot_id))
    assert found is not None  # a booking's slot (foreign key)
    return Booking(row.id, _slot(found), affiliate_id, call_id, row.created_at)


async def _why_not_bookable(conn: AsyncConnection, slot_id: str) -> Exception:
    booked_by = (
        await conn.execute(select(SlotRow.booked_by).where(SlotRow.id == slot_id))
    ).scalar_one_or_none()
    if booked_by is not None:
        return SlotTaken(slot_id)
    return BookingRejected(f"slot {slot_id} has already started")


def _bookings_of(affiliate_id: str) -> Select[BookingRow, SlotRow]:
    return (
        select(BookingRow, SlotRow)
        .join(SlotRow, SlotRow.id == BookingRow.slot_id)
        .where(BookingRow.affiliate_id == affiliate_id)
        .order_by(SlotRow.starts_at, BookingRow.id)
    )


def _live_bookings_of(affiliate_id: str) -> Select[BookingRow, SlotRow]:
    """The patient's bookings not cancelled: the only ones any rule counts."""
    return _bookings_of(affiliate_id).where(BookingRow.cancelled_at.is_(None))


async def _own_booking(session: AsyncSession, booking_id: str, affiliate_id: str) -> Booking:
    """The patient's booking ``booking_id``, cancelled or not; ``AppointmentNotFound``
    when there is none or it is another patient's."""
    found = (
        await session.execute(
            select(BookingRow, SlotRow)
            .join(SlotRow, SlotRow.id == BookingRow.slot_id)
            .where(BookingRow.id == booking_id)
        )
    ).first()
    if found is None or found[0].affiliate_id != affiliate_id:
        raise AppointmentNotFound(booking_id)
    return _booking(found[0], found[1])


def _matches(
    slot: Slot,
    floor: datetime,
    time_band: str | None,
    doctor_id: str | None,
    exclude_doctor_id: str | None,
    exclude_ids: frozenset[str],
) -> bool:
    """``find``'s SQL filter, for a free slot of the right site and CUPS."""
    return (
        slot.starts_at > floor
        and (time_band is None or slot.time_band == time_band)
        and (doctor_id is None or slot.doctor_id == doctor_id)
        and (exclude_doctor_id is None or slot.doctor_id != exclude_doctor_id)
        and slot.id not in exclude_ids
    )


async def _release(
    conn: AsyncConnection, booking: Booking, now: datetime, *, replaced_by: str | None
) -> Booking:
    """Mark ``booking`` cancelled and free its slot; returns it cancelled."""
    await conn.execute(
        update(BookingRow)
        .where(BookingRow.id == booking.id, BookingRow.cancelled_at.is_(None))
        .values(cancelled_at=now, replaced_by=replaced_by)
    )
    await conn.execute(
        update(SlotRow)
        .where(SlotRow.id == booking.slot.id, SlotRow.booked_by == booking.affiliate_id)
        .values(booked_by=None, booked_at=None)
    )
    return replace(booking, cancelled_at=now)


def _guard(dialect: str, affiliate_id: str, now: datetime) -> Executable:
    """Upsert the patient's guard row: the write that serialises their bookings."""
    values = {"affiliate_id": affiliate_id, "bookings": 1, "updated_at": now}
    bump = {"bookings": BookingGuardRow.bookings + 1, "updated_at": now}
    try:
        insert = dialect_insert(dialect, BookingGuardRow)
    except UnsupportedDialect as exc:
        raise BookingUnavailable(f"booking: {exc}") from exc
    return insert.values(values).on_conflict_do_update(index_elements=["affiliate_id"], set_=bump)


def _worth_retrying(exc: DBAPIError) -> bool:
    if "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in _RETRY_SQLSTATES


def _insert_ignoring_existing(dialect: str, values: dict[str, Any]) -> Executable:
    try:
        insert = dialect_insert(dialect, SlotRow)
    except UnsupportedDialect as exc:
        raise BookingUnavailable(f"seeding slots: {exc}") from exc
    return insert.values(values).on_conflict_do_nothing(index_elements=["id"])


def _row_values(slot: Slot) -> dict[str, Any]:
    return {
        "id": slot.id,
        "site_id": slot.site_id,
        "doctor_id": slot.doctor_id,
        "cups": slot.cups,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "time_band": slot.time_band,
        "booked_by": None,
        "booked_at": None,
    }


def _slot(row: SlotRow) -> Slot:
    return Slot(
        row.id,
        row.site_id,
        row.doctor_id,
        row.cups,
        row.starts_at,
        row.time_band,
        row.ends_at - row.starts_at,
    )


def _booking(booking: BookingRow, slot: SlotRow) -> Booking:
    return Booking(
        booking.id,
        _slot(slot),
        booking.affiliate_id,
        booking.call_id,
        booking.created_at,
        booking.cancelled_at,
    )
