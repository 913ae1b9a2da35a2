"""``DbSlotSource``: slots and bookings in our own database.

Booking is one transaction: a conditional UPDATE claims the slot only while it
is still free (``booked_by IS NULL``), then the booking row is inserted. On
PostgreSQL a concurrent UPDATE waits for the row lock and then finds the slot
taken; on SQLite writers are serialised by the database lock. The UNIQUE
constraint on ``bookings.slot_id`` catches anything that slips through.

SQLite answers "database is locked" when its busy timeout runs out under
contention, and PostgreSQL may ask to retry a transaction (serialisation
failure, deadlock): both are retried a few times within the call's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable

from ivr.booking.model import Booking, BookingRejected, BookingUnavailable, Slot, SlotTaken
from ivr.booking.tables import BookingRow, SlotRow
from ivr.store.db import Database

logger = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
RETRY_DELAY = 0.05  # seconds, times the attempt number
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DbSlotSource:
    """A ``SlotSource`` over the ``slots`` and ``bookings`` tables."""

    def __init__(
        self, db: Database, *, timeout: float, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.db = db
        self.timeout = timeout
        self._clock = clock

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

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        async def op(session: AsyncSession) -> Booking:
            now = self._clock()
            conn = await session.connection()
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
                raise await _why_not_bookable(session, slot_id)
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
            slot = await session.get_one(SlotRow, slot_id)
            return Booking(row.id, _slot(slot), affiliate_id, call_id, now)

        booking = await self._run(f"book slot {slot_id}", op)
        logger.info("call %s: booked slot %s as %s", call_id, slot_id, booking.id)
        return booking

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

    async def seed_slots(self, slots: Iterable[Slot]) -> int:
        """Insert slots whose id is not there yet; returns how many were new."""
        dialect = self.db.engine.dialect.name
        rows = [_row_values(slot) for slot in slots]

        async def op(session: AsyncSession) -> int:
            conn = await session.connection()
            inserted = 0
            for values in rows:
                result = await conn.execute(_insert_ignoring_existing(dialect, values))
                inserted += max(result.rowcount, 0)
            return inserted

        return await self._run("seed slots", op)

    async def delete_free_slots(self, site_id: str) -> int:
        async def op(session: AsyncSession) -> int:
            conn = await session.connection()
            result = await conn.execute(
                delete(SlotRow).where(SlotRow.site_id == site_id, SlotRow.booked_by.is_(None))
            )
            return result.rowcount

        return await self._run(f"delete free slots of {site_id}", op)

    async def bookings_for(self, affiliate_id: str) -> list[Booking]:
        query = (
            select(BookingRow, SlotRow)
            .join(SlotRow, SlotRow.id == BookingRow.slot_id)
            .where(BookingRow.affiliate_id == affiliate_id)
            .order_by(SlotRow.starts_at, BookingRow.id)
        )

        async def op(session: AsyncSession) -> list[Booking]:
            result = await session.execute(query)
            return [
                Booking(b.id, _slot(s), b.affiliate_id, b.call_id, b.created_at) for b, s in result
            ]

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

    async def _run(self, what: str, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``op`` in one transaction, retrying lock contention, within the deadline."""
        try:
            async with asyncio.timeout(self.timeout):
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        async with self.db.sessions.begin() as session:
                            return await op(session)
                    except DBAPIError as exc:
                        if attempt == ATTEMPTS or not _worth_retrying(exc):
                            raise
                        logger.info("cannot %s (attempt %d), retrying: %s", what, attempt, exc)
                    await asyncio.sleep(RETRY_DELAY * attempt)
                raise AssertionError("unreachable")
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise BookingUnavailable(f"cannot {what}: {exc}") from exc


async def _why_not_bookable(session: AsyncSession, slot_id: str) -> Exception:
    row = await session.get(SlotRow, slot_id)
    if row is None:
        return BookingRejected(f"there is no slot {slot_id}")
    if row.booked_by is not None:
        return SlotTaken(slot_id)
    return BookingRejected(f"slot {slot_id} has already started")


def _worth_retrying(exc: DBAPIError) -> bool:
    if "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in _RETRY_SQLSTATES


def _insert_ignoring_existing(dialect: str, values: dict[str, Any]) -> Executable:
    if dialect == "postgresql":
        return (
            postgresql.insert(SlotRow).values(values).on_conflict_do_nothing(index_elements=["id"])
        )
    if dialect == "sqlite":
        return sqlite.insert(SlotRow).values(values).on_conflict_do_nothing(index_elements=["id"])
    raise BookingUnavailable(f"seeding slots is not supported on {dialect}")


def _row_values(slot: Slot) -> dict[str, Any]:
    return {
        "id": slot.id,
        "site_id": slot.site_id,
        "doctor_id": slot.doctor_id,
        "cups": slot.cups,
        "starts_at": slot.starts_at,
        "time_band": slot.time_band,
        "booked_by": None,
        "booked_at": None,
    }


def _slot(row: SlotRow) -> Slot:
    return Slot(row.id, row.site_id, row.doctor_id, row.cups, row.starts_at, row.time_band)
