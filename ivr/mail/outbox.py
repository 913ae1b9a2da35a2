"""The mail outbox: a message is stored before anything tries to send it.

A message's life (as the SMS outbox, ``ivr.sms.outbox``)::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │  └───▶ failed
       └──── retry ───────┘

Claiming takes a lease. A worker that dies mid-send leaves its message in
``sending``; once the lease has expired any worker claims it again, so a
message is never lost on a restart. ``dedupe_key`` makes ``enqueue``
idempotent: the same key again (a retried request, a replayed reconciliation)
returns the first message and queues nothing. A message marked ``sent`` stays
sent whatever a late or confused worker says, so nothing is sent twice by us
(a worker that dies after the server accepted and before ``mark_sent`` sends
it again after its lease: SMTP has no idempotency key, which is why the
``Message-ID`` is fixed at enqueue and receivers can see the duplicate).

Addresses are checked (``ivr.mail.message.require_address``) before anything is
stored: ``InvalidAddress`` (a ValueError). Storage failures raise
``ivr.store.StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TypeVar

from sqlalchemy import (
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
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ivr.failures import failure_text
from ivr.mail import mask_address
from ivr.mail.message import compose, new_message_id, require_address
from ivr.store.db import Database, StoreUnavailable
from ivr.store.models import Base, UtcDateTime

logger = logging.getLogger(__name__)

T = TypeVar("T")

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
FINAL = (SENT, FAILED)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MailOutboxRow(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_mail_outbox_dedupe_key"),
        Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    server_reply: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class MailMessage:
    """One stored message. ``attempts``: sends started (counted when claimed);
    ``server_reply``: what the SMTP server answered to the accepted message."""

    id: str
    dedupe_key: str
    sender: str
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    server_reply: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    def email(self) -> EmailMessage:
        """The RFC 5322 message, the same on every attempt (id and date fixed at enqueue)."""
        return compose(
            sender=self.sender, to=self.to_address, subject=self.subject, text=self.body_text,
            html=self.body_html, message_id=self.message_id, date=self.created_at,
        )  # fmt: skip


class MailOutbox:
    """The ``mail_outbox`` table. ``wakeup`` is set when a message is queued."""

    def __init__(
        self, db: Database, *, timeout: float, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.db = db
        self.timeout = timeout
        self._clock = clock
        self.wakeup = asyncio.Event()

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        sender: str,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
    ) -> MailMessage:
        """Queue a message; the same ``dedupe_key`` again returns the first one unchanged.

        Raises ``InvalidAddress`` (nothing stored) for a sender or recipient that
        is not one address, ``ValueError`` for an empty subject or text.
        """
        require_address(sender)
        require_address(to)
        if not subject.strip() or not text.strip():
            raise ValueError("a message needs a subject and a text")
        existing = await self.find(dedupe_key)
        if existing is not None:
            return existing
        now = self._clock()
        row = MailOutboxRow(
            id=str(uuid.uuid4()), dedupe_key=dedupe_key, sender=sender, to_address=to,
            subject=subject, body_text=text, body_html=html, message_id=new_message_id(sender),
            status=PENDING, attempts=0, next_attempt_at=now, created_at=now,
        )  # fmt: skip
        if not await self._insert(row):
            winner = await self.find(dedupe_key)  # lost the race to the same key
            if winner is None:
                raise StoreUnavailable(f"mail {dedupe_key} neither inserted nor found")
            return winner
        logger.info("mail %s queued for %s (%s)", row.id, mask_address(to), dedupe_key)
        self.wakeup.set()
        return _message(row)

    async def claim_due(
        self, now: datetime, lease_s: float, limit: int
    ) -> builtins.list[MailMessage]:
        """Lease up to ``limit`` due messages to the caller, atomically.

        Due: pending and its time has come, or sending with an expired lease.
        Two workers never get the same message (PostgreSQL: ``FOR UPDATE SKIP
        LOCKED``; SQLite: writers take turns and the UPDATE re-checks the row is due).
        """
        due = or_(
            and_(MailOutboxRow.status == PENDING, MailOutboxRow.next_attempt_at <= now),
            and_(MailOutboxRow.status == SENDING, MailOutboxRow.lease_until < now),
        )
        pick = (
            select(MailOutboxRow.id)
            .where(due)
            .order_by(MailOutboxRow.next_attempt_at, MailOutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        async def op(session: AsyncSession) -> builtins.list[MailMessage]:
            ids = builtins.list(await session.scalars(pick))
            if not ids:
                return []
            claim = (
                update(MailOutboxRow)
                .where(MailOutboxRow.id.in_(ids), due)
                .values(
                    status=SENDING,
                    lease_until=now + timedelta(seconds=lease_s),
                    attempts=MailOutboxRow.attempts + 1,
                )
                .returning(MailOutboxRow)
                .execution_options(synchronize_session=False)
            )
            return [_message(row) for row in await session.scalars(claim)]

        claimed = await self._run("claim due mail", op)
        return sorted(claimed, key=lambda m: (m.next_attempt_at, m.id))

    async def mark_sent(self, id: str, server_reply: str) -> None:
        await self._update(
            id, "mark sent", status=SENT, server_reply=server_reply, sent_at=self._clock()
        )

    async def mark_retry(self, id: str, error: str, next_attempt_at: datetime) -> None:
        await self._update(
            id, "mark for retry", status=PENDING, last_error=error, next_attempt_at=next_attempt_at
        )

    async def mark_failed(self, id: str, error: str) -> None:
        await self._update(id, "mark failed", status=FAILED, last_error=error)

    async def get(self, id: str) -> MailMessage | None:
        async def op(session: AsyncSession) -> MailMessage | None:
            row = await session.get(MailOutboxRow, id)
            return _message(row) if row is not None else None

        return await self._run(f"read mail {id}", op)

    async def find(self, dedupe_key: str) -> MailMessage | None:
        """The message queued under ``dedupe_key``, if any."""

        async def op(session: AsyncSession) -> MailMessage | None:
            row = await session.scalar(
                select(MailOutboxRow).where(MailOutboxRow.dedupe_key == dedupe_key)
            )
            return _message(row) if row is not None else None

        return await self._run(f"look up mail {dedupe_key}", op)

    async def next_due(self) -> datetime | None:
        """When the earliest pending message is due or the earliest lease expires."""

        async def op(session: AsyncSession) -> datetime | None:
            pending = await session.scalar(
                select(func.min(MailOutboxRow.next_attempt_at)).where(
                    MailOutboxRow.status == PENDING
                )
            )
            leased = await session.scalar(
                select(func.min(MailOutboxRow.lease_until)).where(MailOutboxRow.status == SENDING)
            )
            times = [t for t in (pending, leased) if t is not None]
            return min(times) if times else None

        return await self._run("find the next due mail", op)

    async def list(
        self,
        *,
        status: str | None = None,
        key_prefix: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[MailMessage]:
        """Messages, oldest first: with ``status``, whose key starts with
        ``key_prefix``, queued at or after ``since``."""
        query = select(MailOutboxRow).order_by(MailOutboxRow.created_at, MailOutboxRow.id)
        if status is not None:
            query = query.where(MailOutboxRow.status == status)
        if key_prefix is not None:
            query = query.where(MailOutboxRow.dedupe_key.startswith(key_prefix, autoescape=True))
        if since is not None:
            query = query.where(MailOutboxRow.created_at >= since)

        async def op(session: AsyncSession) -> builtins.list[MailMessage]:
            return [_message(row) for row in await session.scalars(query)]

        return await self._run("list mail", op)

    async def _insert(self, row: MailOutboxRow) -> bool:
        """False when the dedupe key is already there."""
        try:
            async with asyncio.timeout(self.timeout), self.db.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            return False
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            reason = failure_text(exc, deadline_s=self.timeout)
            raise StoreUnavailable(f"cannot queue mail {row.dedupe_key}: {reason}") from exc
        return True

    async def _update(self, id: str, what: str, **values: object) -> None:
        # A sent message stays sent, whatever a late or confused worker says.
        change = (
            update(MailOutboxRow)
            .where(MailOutboxRow.id == id, MailOutboxRow.status != SENT)
            .values(lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )

        async def op(session: AsyncSession) -> None:
            await session.execute(change)

        await self._run(f"{what} mail {id}", op)

    async def _run(self, what: str, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.db.run(what, op, deadline_s=self.timeout)


def _message(row: MailOutboxRow) -> MailMessage:
    return MailMessage(
        id=row.id, dedupe_key=row.dedupe_key, sender=row.sender, to_address=row.to_address,
        subject=row.subject, body_text=row.body_text, body_html=row.body_html,
        message_id=row.message_id, status=row.status, attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, lease_until=row.lease_until,
        server_reply=row.server_reply, last_error=row.last_error, created_at=row.created_at,
        sent_at=row.sent_at,
    )  # fmt: skip
