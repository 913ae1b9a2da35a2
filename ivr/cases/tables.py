"""Cases tables (migration 0007): ``cases``, ``case_events`` and ``case_sequence``.

One open case per affiliate and specialty is a rule of the database, not of
the code: the partial unique index ``uq_cases_open_per_affiliate_specialty`` on
``(affiliate_id, specialty)`` where ``state <> 'closed'`` (both SQLite and
PostgreSQL support partial indexes; the same predicate is given to each).

``case_sequence`` holds one row (id 1): the last sequence number given. A
filing takes the next one with ``UPDATE … SET last = last + 1 RETURNING last``
inside the filing's own transaction (see ``ivr.cases.store``), so a number is
never given twice and a filing that fails gives its number back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime

OPEN_PREDICATE = "state <> 'closed'"


class CaseSequenceRow(Base):
    __tablename__ = "case_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index(
            "uq_cases_open_per_affiliate_specialty",
            "affiliate_id",
            "specialty",
            unique=True,
            sqlite_where=text(OPEN_PREDICATE),
            postgresql_where=text(OPEN_PREDICATE),
        ),
        Index("ix_cases_state_due", "state", "due_at"),
        Index("ix_cases_group_state", "group", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(8), unique=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    affiliate_id: Mapped[str] = mapped_column(String(64))
    specialty: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[str] = mapped_column(String(64))
    cups: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    journey_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    call_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    wa_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    contact_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    search_evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    priority_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    group: Mapped[str] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_response_due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolution_due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    closed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseEventRow(Base):
    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(36), ForeignKey("cases.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
