"""Operations tables (migration 0003): flag values, windows, audit, alerts, tokens.

Values are stored wrapped (``{"v": value}``) so that a flag set to ``null``
("site open") is told apart from a flag never set. ``ops_state.revision`` goes
up in the same transaction as every change: controllers poll that one integer
and reload only when it moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime


class OpsStateRow(Base):
    __tablename__ = "ops_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class FlagValueRow(Base):
    __tablename__ = "ops_flags"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))


class FlagWindowRow(Base):
    __tablename__ = "ops_windows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_logged: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_logged: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRow(Base):
    __tablename__ = "ops_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    window_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class AlertRow(Base):
    __tablename__ = "ops_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class TokenRow(Base):
    __tablename__ = "ops_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ControllerRow(Base):
    """One controller process's last heartbeat (migration 0015, ``ivr.ops.controllers``)."""

    __tablename__ = "ops_controllers"

    source_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # instance@host:pid
    instance: Mapped[str] = mapped_column(String(128))  # the node (its sandbox instance)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    app: Mapped[str] = mapped_column(String(128))  # the Stasis application (the slot)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    flags_revision: Mapped[int] = mapped_column(Integer)
    breaker: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active_calls: Mapped[int] = mapped_column(Integer)
    ari_connected: Mapped[bool] = mapped_column(Boolean)
