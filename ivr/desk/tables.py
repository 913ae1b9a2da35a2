"""Desk tables (migration 0012): ``desk_contacts``, ``desk_steps``, ``desk_presence``,
``script_versions``.

Rules the database keeps (not the code):

- a re-delivered AMI event opens no second contact: unique ``source_key`` (the
  event's identity, when given) and unique ``(kind, journey_key, agent, answered_at)``;
- a contact's steps are numbered once: unique ``(contact_id, seq)``;
- script version numbers are unique, and **at most one version is published**: the
  partial unique index ``uq_script_versions_one_published`` on ``state`` where
  ``state = 'published'`` (SQLite and PostgreSQL both support partial indexes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime

PUBLISHED_PREDICATE = "state = 'published'"


class DeskContactRow(Base):
    __tablename__ = "desk_contacts"
    __table_args__ = (
        UniqueConstraint(
            "kind", "journey_key", "agent", "answered_at", name="uq_desk_contacts_answer"
        ),
        UniqueConstraint("source_key", name="uq_desk_contacts_source_key"),
        Index("ix_desk_contacts_agent_state", "agent", "state"),
        Index("ix_desk_contacts_answered_at", "answered_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    agent: Mapped[str] = mapped_column(String(32))
    agent_name: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    area: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(128), nullable=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sip_call_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    call_record_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    wa_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    handoff_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ivr_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    hold_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    ring_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    script_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    script_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    call_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scenario: Mapped[str | None] = mapped_column(String(64), nullable=True)
    procedure: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disposition_note: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    escalated_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_contact_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("desk_contacts.id"), nullable=True
    )
    journey_key: Mapped[str] = mapped_column(String(64), index=True)
    source_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class DeskStepRow(Base):
    __tablename__ = "desk_steps"
    __table_args__ = (
        UniqueConstraint("contact_id", "seq", name="uq_desk_steps_contact_seq"),
        Index("ix_desk_steps_node", "node_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("desk_contacts.id"))
    seq: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(255))
    node_kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    agent: Mapped[str] = mapped_column(String(32))


class DeskPresenceRow(Base):
    __tablename__ = "desk_presence"
    __table_args__ = (Index("ix_desk_presence_agent_at", "agent", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(128))


class ScriptVersionRow(Base):
    __tablename__ = "script_versions"
    __table_args__ = (
        UniqueConstraint("version", name="uq_script_versions_version"),
        Index(
            "uq_script_versions_one_published",
            "state",
            unique=True,
            sqlite_where=text(PUBLISHED_PREDICATE),
            postgresql_where=text(PUBLISHED_PREDICATE),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    tree: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
