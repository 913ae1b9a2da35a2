"""Escalation tables (migration 0008): ``escalation_attempts`` and ``sla_marks``.

``escalation_attempts``: one row per try of a ladder step (the columns other
parts read are fixed in CASES.md): who was called at which extension, when,
whether they answered and acknowledged, and the ``result``. ``kind`` says what
the row is: ``call`` (a call was placed), ``skip`` (the step fell in quiet
hours: result ``skipped_quiet_hours``) or ``dup`` (a second monitor found the
step already claimed: result ``suppressed_duplicate``). The unique key
``(case_id, clock, step, kind)`` is the claim: a step is called at most once,
by whoever inserts its ``call`` row first.

``sla_marks``: what the monitor has done once per case and clock — a warning
(``warn:50``, ``warn:75``, ``warn:100``) or the end of a ladder nobody
acknowledged (``exhausted``); the unique key makes each happen once.

Every time is an aware UTC datetime (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime

# escalation_attempts.result
ACKNOWLEDGED = "acknowledged"
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"
NOT_ACKNOWLEDGED = "not_acknowledged"
SKIPPED_QUIET_HOURS = "skipped_quiet_hours"
SUPPRESSED_DUPLICATE = "suppressed_duplicate"
RESULTS = (ACKNOWLEDGED, NO_ANSWER, BUSY, FAILED, NOT_ACKNOWLEDGED,
           SKIPPED_QUIET_HOURS, SUPPRESSED_DUPLICATE)  # fmt: skip

# escalation_attempts.kind
CALL, SKIP, DUP = "call", "skip", "dup"


class EscalationAttemptRow(Base):
    __tablename__ = "escalation_attempts"
    __table_args__ = (
        UniqueConstraint("case_id", "clock", "step", "kind", name="uq_escalation_attempts_step"),
        Index("ix_escalation_attempts_started", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    clock: Mapped[str] = mapped_column(String(16))  # first_response | resolution
    step: Mapped[int] = mapped_column(Integer)  # 0-based index in the group's ladder
    kind: Mapped[str] = mapped_column(String(8))  # call | skip | dup
    person: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    result: Mapped[str | None] = mapped_column(String(24), nullable=True)  # None: in progress
    detail: Mapped[str] = mapped_column(Text, default="")


class SlaMarkRow(Base):
    __tablename__ = "sla_marks"
    __table_args__ = (UniqueConstraint("case_id", "clock", "mark", name="uq_sla_marks"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    clock: Mapped[str] = mapped_column(String(16))
    mark: Mapped[str] = mapped_column(String(16))  # warn:<percent> | exhausted
    at: Mapped[datetime] = mapped_column(UtcDateTime())
