"""Chat tables (migration 0006): conversations, inbound and outbound messages, hand-offs.

One conversation per contact (``wa_id``: the contact's number, E.164 without
``+``, as Meta sends it). ``version`` goes up with every change of a
conversation, so a turn that read version *n* writes only if nobody changed
the conversation since (``ivr.chat.store`` has the reasoning).

Every time is an aware UTC datetime (``UtcDateTime``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("wa_id", name="uq_conversations_wa_id"),
        Index("ix_conversations_state_activity", "state", "last_activity_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    wa_id: Mapped[str] = mapped_column(String(32))
    flow: Mapped[str] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # bot | agent | closed
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    assigned_agent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    journey_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChatInboundRow(Base):
    __tablename__ = "chat_inbound"
    __table_args__ = (
        UniqueConstraint("message_id", name="uq_chat_inbound_message_id"),
        Index("ix_chat_inbound_pending", "conversation_id", "processed_at", "meta_timestamp", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255))  # Meta's wamid: the dedupe key
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    kind: Mapped[str] = mapped_column(String(32))  # text | button | list | ...
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    reply_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    meta_timestamp: Mapped[datetime] = mapped_column(UtcDateTime())  # when the contact sent it
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ChatOutboundRow(Base):
    __tablename__ = "chat_outbound"
    __table_args__ = (
        UniqueConstraint("key", name="uq_chat_outbound_key"),
        UniqueConstraint("wamid", name="uq_chat_outbound_wamid"),
        Index("ix_chat_outbound_state_next", "state", "next_attempt_at"),
        Index("ix_chat_outbound_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))  # idempotency key
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    wa_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # queued | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    wamid: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # Meta's, see store
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    status_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChatHandoffRow(Base):
    __tablename__ = "chat_handoffs"
    __table_args__ = (Index("ix_chat_handoffs_open", "released_at", "queued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(128))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    taken_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    taken_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
