"""The SMS outbox: a message is stored before anything tries to send it.

A message's life::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │  └───▶ failed
       └──── retry ───────┘

Claiming takes a lease. A worker that dies mid-send leaves its message in
``sending``; once the lease has expired any worker claims it again, so a
message is never lost (at worst it is sent again, which is why the HTTP
gateway sends an idempotency key). ``dedupe_key`` makes ``enqueue`` idempotent:
a retried flow node or a replayed call cannot queue a second SMS.

Destinations are E.164 mobile numbers (``+573001234567``): ``enqueue`` refuses
anything else with ``ivr.phone.InvalidPhoneNumber`` before storing it, so no
caller of the outbox can queue a message to ``anonymous``, a national number
or a fixed line (normalise with ``ivr.phone.sms_destination`` first).

Storage failures raise ``ivr.store.StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from ivr.masking import mask_number
from ivr.phone import require_sms_destination
from ivr.store.db import Database, StoreUnavailable, dialect_insert
from ivr.store.group import GroupCommit
from ivr.store.models import Base, UtcDateTime

logger = logging.getLogger(__name__)

T = TypeVar("T")

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MAX_HELD = 10_000  # messages kept in memory while the database is unavailable


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmsOutboxRow(Base):
    __tablename__ = "sms_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_sms_outbox_dedupe_key"),
        Index("ix_sms_outbox_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    to_number: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    provider_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    dedupe_key: str
    to_number: str
    text: str
    status: str
    attempts: int  # sends started, counted when claimed
    next_attempt_at: datetime
    lease_until: datetime | None
    provider_id: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@functools.cache
def _insert_new(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id`` for
    ``dialect`` (``postgresql`` or ``sqlite``), built once: a batch's clash with a stored
    key, or two items of one batch with the same key, leave the first message in place
    and return nothing for the later one."""
    return (
        dialect_insert(dialect, SmsOutboxRow)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(SmsOutboxRow.dedupe_key, SmsOutboxRow.id)
    )


# A mark: the message's id, what is being marked (for the error), the new values.
Mark = tuple[str, str, dict[str, object]]


def _maybe_one_rows(exc: Exception) -> bool:
    """A batch's failure that may be one row's: the database refused a statement (a
    value it cannot store, a deadlock victim), not an outage (no connection, a busy
    or locked database, a timeout). ``GroupCommit`` then writes the batch's rows one
    by one, so one message's bad row never fails the others' callers."""
    cause = exc.__cause__
    return (
        isinstance(cause, DBAPIError)
        and not isinstance(cause, OperationalError | InterfaceError)
        and not cause.connection_invalidated
    )


class SmsOutbox:
    def __init__(
        self, db: Database, *, timeout: float, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.db = db
        self.timeout = timeout
        self._clock = clock
        self.wakeup = asyncio.Event()  # set when a message is queued
        # Messages the database could not take yet (to_number, text, dedupe_key),
        # oldest first; the worker stores them when it can (``store_held``).
        self.held: deque[tuple[str, str, str]] = deque()
        # The enqueues and the worker's marks of the same moment, one commit each batch.
        self.inserts: GroupCommit[dict[str, object], str | None] = GroupCommit(
            self._insert_batch, name="sms enqueue", alone=_maybe_one_rows
        )
        self.marks: GroupCommit[Mark, None] = GroupCommit(
            self._mark_batch, name="sms marks", alone=_maybe_one_rows
        )

    async def enqueue_or_hold(self, *, to_number: str, text: str, dedupe_key: str) -> str | None:
        """``enqueue``; while the database is unavailable, keep the message in memory
        (the worker stores it later) and return None, so a caller who was told an
        SMS is coming gets it. Raises ``InvalidPhoneNumber`` like ``enqueue``."""
        try:
            return await self.enqueue(to_number=to_number, text=text, dedupe_key=dedupe_key)
        except StoreUnavailable as exc:
            if len(self.held) >= MAX_HELD:
                dropped = self.held.popleft()
                logger.error("sms %s dropped: %d messages held already", dropped[2], MAX_HELD)
            self.held.append((to_number, text, dedupe_key))
            logger.warning("sms %s held in memory until the outbox is back: %s", dedupe_key, exc)
            self.wakeup.set()
            return None

    async def store_held(self) -> int:
        """Store the held messages, oldest first, until the database fails again."""
        stored = 0
        while self.held:
            to_number, text, dedupe_key = self.held[0]
            await self.enqueue(to_number=to_number, text=text, dedupe_key=dedupe_key)
            self.held.popleft()
            stored += 1
        return stored

    async def enqueue(self, *, to_number: str, text: str, dedupe_key: str) -> str:
        """Queue a message; the same ``dedupe_key`` again returns the first one's id.

        ``to_number`` must be an E.164 mobile number, else ``InvalidPhoneNumber``
        (a ValueError) is raised and nothing is stored.
        """
        require_sms_destination(to_number)
        # Queued with the other enqueues of the moment (``GroupCommit``): one
        # transaction for the batch, an INSERT that skips a stored key and returns
        # the ids it inserted (issue 13, docs/perf/db.md).
        now = self._clock()
        message_id = str(uuid.uuid4())
        row = {
            "id": message_id, "dedupe_key": dedupe_key, "to_number": to_number, "text": text,
            "status": PENDING, "attempts": 0, "next_attempt_at": now, "lease_until": None,
            "provider_id": None, "last_error": None, "created_at": now, "sent_at": None,
        }  # fmt: skip
        try:
            async with asyncio.timeout(self.timeout):
                stored = await self.inserts.submit(row)
        except TimeoutError as exc:
            raise StoreUnavailable(f"cannot queue sms {dedupe_key}: no answer in time") from exc
        if stored is None:
            raise StoreUnavailable(f"sms {dedupe_key} neither inserted nor found")
        if stored != message_id:
            return stored  # queued before (a retried step), or by another enqueue of the key
        logger.info("sms %s queued for %s (%s)", message_id, mask_number(to_number), dedupe_key)
        self.wakeup.set()
        return message_id

    async def claim_due(
        self, now: datetime, lease_s: float, limit: int
    ) -> builtins.list[OutboxMessage]:
        """Lease up to ``limit`` due messages to the caller, atomically.

        Due: pending and its time has come, or sending with an expired lease
        (its worker died). Two workers never get the same message: on
        PostgreSQL the SELECT locks the rows it picks and skips those another
        claim holds; on SQLite writers take turns and the UPDATE re-checks
        that each row is still due, so a row claimed meanwhile is left out.
        (One UPDATE with the SELECT as a subquery is not safe on PostgreSQL:
        the planner may rescan a SKIP LOCKED subquery and claim past the limit.)
        """
        due = or_(
            and_(SmsOutboxRow.status == PENDING, SmsOutboxRow.next_attempt_at <= now),
            and_(SmsOutboxRow.status == SENDING, SmsOutboxRow.lease_until < now),
        )
        pick = (
            select(SmsOutboxRow.id)
            .where(due)
            .order_by(SmsOutboxRow.next_attempt_at, SmsOutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def op(conn: Connection) -> builtins.list[OutboxMessage]:
            # One job of the write turn, run whole by the writer thread on SQLite
            # (Database.write_sync): the worker's claim held the turn for six loop
            # rounds, up to 1 s, in front of the callers' enqueues (bench t16).
            with Session(bind=conn) as session:
                ids = builtins.list(session.scalars(pick))
                if not ids:
                    return []
                claim = (
                    update(SmsOutboxRow)
                    .where(SmsOutboxRow.id.in_(ids), due)
                    .values(
                        status=SENDING,
                        lease_until=now + timedelta(seconds=lease_s),
                        attempts=SmsOutboxRow.attempts + 1,
                    )
                    .returning(SmsOutboxRow)
                    .execution_options(synchronize_session=False)
                )
                return [_message(row) for row in session.scalars(claim)]

        claimed = await self.db.write_sync("claim due sms", op, deadline_s=self.timeout)
        return sorted(claimed, key=lambda m: (m.next_attempt_at, m.id))

    async def mark_sent(self, id: str, provider_id: str) -> None:
        await self._update(
            id, "mark sent", status=SENT, provider_id=provider_id, sent_at=self._clock()
        )

    async def mark_retry(self, id: str, error: str, next_attempt_at: datetime) -> None:
        await self._update(
            id, "mark for retry", status=PENDING, last_error=error, next_attempt_at=next_attempt_at
        )

    async def mark_failed(self, id: str, error: str) -> None:
        await self._update(id, "mark failed", status=FAILED, last_error=error)

    async def get(self, id: str) -> OutboxMessage | None:
        async def op(session: AsyncSession) -> OutboxMessage | None:
            row = await session.get(SmsOutboxRow, id)
            return _message(row) if row is not None else None

        return await self._run(f"read sms {id}", op)

    async def next_due(self) -> datetime | None:
        """When the earliest pending message is due or the earliest lease expires."""

        async def op(session: AsyncSession) -> datetime | None:
            pending = await session.scalar(
                select(func.min(SmsOutboxRow.next_attempt_at)).where(SmsOutboxRow.status == PENDING)
            )
            leased = await session.scalar(
                select(func.min(SmsOutboxRow.lease_until)).where(SmsOutboxRow.status == SENDING)
            )
            times = [t for t in (pending, leased) if t is not None]
            return min(times) if times else None

        return await self._run("find the next due sms", op)

    async def list(self, status: str | None = None) -> builtins.list[OutboxMessage]:
        query = select(SmsOutboxRow).order_by(SmsOutboxRow.created_at, SmsOutboxRow.id)
        if status is not None:
            query = query.where(SmsOutboxRow.status == status)

        async def op(session: AsyncSession) -> builtins.list[OutboxMessage]:
            return [_message(row) for row in await session.scalars(query)]

        return await self._run("list sms", op)

    async def _insert_batch(self, rows: Sequence[dict[str, object]]) -> builtins.list[str | None]:
        """Store the rows whose dedupe key is new, in one transaction; return, per row,
        the id stored under its key (the row's own id: it was inserted; another: the
        key was there first; None: neither, which should not happen). Core statements
        on the caller's path (no ORM unit of work: its flush was 8 % of the loop in
        scripts/db_call_cost.py's profile). Raises ``StoreUnavailable``."""
        keys = [str(row["dedupe_key"]) for row in rows]
        # In key order: two controllers' batches sharing keys wait for each other in
        # the same order, never in a cycle (PostgreSQL: "deadlock detected").
        ordered = sorted(rows, key=lambda row: str(row["dedupe_key"]))
        statement = _insert_new(self.db.engine.dialect.name)

        def op(conn: Connection) -> dict[str, str]:
            # RETURNING names the rows inserted; only a key already there (a retried
            # step) costs a read. One job of the writer thread (Database.write_sync).
            inserted = conn.execute(statement, ordered)
            stored = {str(key): str(id) for key, id in inserted.all()}
            clashed = [key for key in keys if key not in stored]
            if clashed:
                known = select(SmsOutboxRow.dedupe_key, SmsOutboxRow.id).where(
                    SmsOutboxRow.dedupe_key.in_(clashed)
                )
                stored |= {str(key): str(id) for key, id in conn.execute(known).all()}
            return stored

        stored = await self.db.write_sync(f"queue {len(rows)} sms", op, deadline_s=self.timeout)
        return [stored.get(key) for key in keys]

    async def _update(self, id: str, what: str, **values: object) -> None:
        """Mark one message, committed with the other marks of the moment (``marks``)."""
        await self.marks.submit((id, what, values))

    async def _mark_batch(self, marks: Sequence[Mark]) -> builtins.list[None]:
        """The marks in one transaction. A sent message stays sent, whatever a late
        or confused worker says. Raises ``StoreUnavailable``."""

        def op(conn: Connection) -> None:
            # In id order: two workers' batches never lock two rows in opposite orders.
            for id, _what, values in sorted(marks, key=lambda mark: mark[0]):
                conn.execute(
                    update(SmsOutboxRow)
                    .where(SmsOutboxRow.id == id, SmsOutboxRow.status != SENT)
                    .values(lease_until=None, **values)
                )

        what = ", ".join(f"{what} sms {id}" for id, what, _ in marks[:3])
        more = f" and {len(marks) - 3} more" if len(marks) > 3 else ""
        await self.db.write_sync(what + more, op, deadline_s=self.timeout)
        return [None] * len(marks)

    async def _run(
        self, what: str, op: Callable[[AsyncSession], Awaitable[T]], *, write: bool = False
    ) -> T:
        return await self.db.run(what, op, deadline_s=self.timeout, write=write)


def _message(row: SmsOutboxRow) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        dedupe_key=row.dedupe_key,
        to_number=row.to_number,
        text=row.text,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        lease_until=row.lease_until,
        provider_id=row.provider_id,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )
