"""The escalation log (migration 0013, ``desk_escalations``): one row per escalation
an agent asks for, and what became of it.

A contact's own row says it was escalated (``DeskStore.escalate``: ``state``
``escalated``, ``escalated_at``, ``escalation_reason``, ``escalated_to``); this log
adds what the contact row cannot hold: whether the next level **answered**, how
long the caller waited for it, and the escalations that went wrong::

    pending ──next level's agent answers (AMI AgentConnect / chat taken)──▶ answered
       ├──────caller's channel hangs up first (queue empty, timeout, gave up)──▶ unanswered
       └──────the move itself failed (AMI refused it; the call stayed with the agent)──▶ failed

``queued_seconds``: from the request to the answer (or to the hang-up), i.e. the
time the caller spent between levels, announcement included. Reports read it
with ``desk_contacts`` (``ivr.desk.levels.journey_hops``).

Rules the database keeps: an outcome is written once (``outcome = 'pending'`` in
the update's ``WHERE``), so a re-delivered event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ivr.desk.model import ACTIVE, ESCALATED, Contact
from ivr.desk.store import utcnow
from ivr.desk.tables import DeskContactRow
from ivr.store.db import Database
from ivr.store.models import Base, UtcDateTime

logger = logging.getLogger(__name__)

PENDING, ANSWERED, UNANSWERED, FAILED = "pending", "answered", "unanswered", "failed"
OUTCOMES = (PENDING, ANSWERED, UNANSWERED, FAILED)
OUTCOME_LABELS = {  # as agents and supervisors read them
    PENDING: "En espera del siguiente nivel",
    ANSWERED: "Atendido en el siguiente nivel",
    UNANSWERED: "Sin respuesta del siguiente nivel",
    FAILED: "No se pudo transferir",
}


class EscalationRow(Base):
    __tablename__ = "desk_escalations"
    __table_args__ = (
        Index("ix_desk_escalations_contact", "contact_id"),
        Index("ix_desk_escalations_journey", "journey_key"),
        Index("ix_desk_escalations_requested_at", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("desk_contacts.id"))
    journey_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    agent: Mapped[str] = mapped_column(String(32))
    from_queue: Mapped[str] = mapped_column(String(64))
    from_level: Mapped[int] = mapped_column(Integer)
    to_queue: Mapped[str] = mapped_column(String(64))
    to_level: Mapped[int] = mapped_column(Integer)
    area: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default=PENDING)
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    queued_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_contact_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class Escalation:
    """One escalation and its outcome (see the module doc)."""

    id: int
    contact_id: str
    journey_key: str
    kind: str
    agent: str
    from_queue: str
    from_level: int
    to_queue: str
    to_level: int
    area: str
    reason: str
    requested_at: datetime
    outcome: str
    outcome_at: datetime | None = None
    queued_seconds: float | None = None
    next_contact_id: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "contact_id": self.contact_id, "journey_key": self.journey_key,
            "kind": self.kind, "agent": self.agent, "from_queue": self.from_queue,
            "from_level": self.from_level, "to_queue": self.to_queue,
            "to_level": self.to_level, "area": self.area, "reason": self.reason,
            "requested_at": self.requested_at.isoformat(), "outcome": self.outcome,
            "outcome_label": OUTCOME_LABELS[self.outcome],
            "outcome_at": self.outcome_at.isoformat() if self.outcome_at else None,
            "queued_seconds": self.queued_seconds, "next_contact_id": self.next_contact_id,
            "detail": self.detail,
        }  # fmt: skip


def _escalation(row: EscalationRow) -> Escalation:
    return Escalation(**{c: getattr(row, c) for c in Escalation.__dataclass_fields__})


class EscalationLog:
    """Reads and writes ``desk_escalations`` (and, to undo a failed move, the
    escalated contact's row). Every method raises ``StoreUnavailable`` when the
    database does not answer (``Database.run``)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def open(self, contact: Contact, *, to_queue: str, to_level: int, area: str,
                   reason: str, agent: str) -> Escalation:  # fmt: skip
        """Log the escalation of ``contact`` (already ``escalated``) as ``pending``,
        at ``contact.escalated_at`` (the instant its time at its level ended)."""
        at = contact.escalated_at or self.clock()

        async def op(session: AsyncSession) -> Escalation:
            row = EscalationRow(
                contact_id=contact.id, journey_key=contact.journey_key, kind=contact.kind,
                agent=agent, from_queue=contact.queue, from_level=contact.level,
                to_queue=to_queue, to_level=to_level, area=area, reason=reason,
                requested_at=at, outcome=PENDING,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            return _escalation(row)

        return await self.db.run("log a desk escalation", op)

    async def pending_for(self, contact_id: str) -> Escalation | None:
        """The escalation of ``contact_id`` still waiting for the next level, if any."""
        query = select(EscalationRow).where(
            EscalationRow.contact_id == contact_id, EscalationRow.outcome == PENDING
        )
        return await self._one(query)

    async def of_journey(self, journey_key: str) -> list[Escalation]:
        """Every escalation of one caller's journey, oldest first."""
        query = (
            select(EscalationRow)
            .where(EscalationRow.journey_key == journey_key)
            .order_by(EscalationRow.requested_at, EscalationRow.id)
        )
        return await self._all(query)

    async def between(self, since: datetime, until: datetime) -> list[Escalation]:
        """Escalations requested in ``[since, until)``, oldest first (reports)."""
        query = (
            select(EscalationRow)
            .where(EscalationRow.requested_at >= since, EscalationRow.requested_at < until)
            .order_by(EscalationRow.requested_at, EscalationRow.id)
        )
        return await self._all(query)

    async def settle(self, contact_id: str, outcome: str, *, at: datetime | None = None,
                     next_contact_id: str | None = None, detail: str | None = None,
                     ) -> Escalation | None:  # fmt: skip
        """Write the outcome of ``contact_id``'s pending escalation (``answered``,
        ``unanswered`` or ``failed``) with ``queued_seconds`` = ``at`` − request.
        Returns the settled escalation, or None when there was none pending (settled
        already: a re-delivered or late event changes nothing). ``ValueError`` for
        an outcome that is not one of those three."""
        if outcome not in (ANSWERED, UNANSWERED, FAILED):
            raise ValueError(f"not a final escalation outcome: {outcome!r}")
        now = at or self.clock()

        async def op(session: AsyncSession) -> Escalation | None:
            row = await session.scalar(
                select(EscalationRow).where(
                    EscalationRow.contact_id == contact_id, EscalationRow.outcome == PENDING
                )
            )
            if row is None:
                return None
            waited = max(0.0, (now - row.requested_at).total_seconds())
            done: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                update(EscalationRow)
                .where(EscalationRow.id == row.id, EscalationRow.outcome == PENDING)
                .values(outcome=outcome, outcome_at=now, queued_seconds=waited,
                        next_contact_id=next_contact_id, detail=detail)
            )  # fmt: skip
            if done.rowcount != 1:
                return None
            refreshed = await session.get(EscalationRow, row.id, populate_existing=True)
            assert refreshed is not None
            return _escalation(refreshed)

        settled = await self.db.run("settle a desk escalation", op)
        if settled is not None:
            logger.info("desk escalation of %s to %s: %s after %.1f s", contact_id,
                        settled.to_queue, outcome, settled.queued_seconds or 0.0)  # fmt: skip
        return settled

    async def link_next(self, escalation_id: int, next_contact_id: str) -> None:
        """Record the contact the next level opened (the AMI ``AgentConnect`` that
        settled ``answered`` does not know it; the journey view finds it)."""

        async def op(session: AsyncSession) -> None:
            await session.execute(
                update(EscalationRow)
                .where(EscalationRow.id == escalation_id, EscalationRow.next_contact_id.is_(None))
                .values(next_contact_id=next_contact_id)
            )

        await self.db.run("link a desk escalation to its next hop", op)

    async def reopen(self, contact_id: str, *, detail: str) -> Escalation | None:
        """The move failed (the call stayed with the agent): the pending escalation
        becomes ``failed`` and the contact goes back ``escalated`` → ``active`` (its
        escalation fields cleared, ``version`` + 1), in one transaction, so the agent
        can go on or try again. Returns the failed escalation (None if none pending)."""
        now = self.clock()

        async def op(session: AsyncSession) -> Escalation | None:
            row = await session.scalar(
                select(EscalationRow).where(
                    EscalationRow.contact_id == contact_id, EscalationRow.outcome == PENDING
                )
            )
            await session.execute(
                update(DeskContactRow)
                .where(DeskContactRow.id == contact_id, DeskContactRow.state == ESCALATED)
                .values(state=ACTIVE, escalated_at=None, escalation_reason=None,
                        escalated_to=None, version=DeskContactRow.version + 1, updated_at=now)
            )  # fmt: skip
            if row is None:
                return None
            row.outcome, row.outcome_at, row.detail = FAILED, now, detail
            row.queued_seconds = 0.0
            await session.flush()
            return _escalation(row)

        return await self.db.run("undo a desk escalation", op)

    async def _one(self, query: Any) -> Escalation | None:
        found = await self._all(query)
        return found[0] if found else None

    async def _all(self, query: Any) -> list[Escalation]:
        async def op(session: AsyncSession) -> list[Escalation]:
            return [_escalation(r) for r in (await session.scalars(query)).all()]

        return await self.db.run("read desk escalations", op)


def by_contact(escalations: Sequence[Escalation]) -> dict[str, list[Escalation]]:
    """Escalations grouped by the escalated contact, each group oldest first."""
    grouped: dict[str, list[Escalation]] = {}
    for esc in escalations:
        grouped.setdefault(esc.contact_id, []).append(esc)
    return grouped
