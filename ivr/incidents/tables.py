"""The incident reports table (migration 0010)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime


class IncidentReportRow(Base):
    __tablename__ = "incident_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    channels: Mapped[list[str]] = mapped_column(JSON)
    document_type: Mapped[str | None] = mapped_column(String(8), nullable=True)
    document: Mapped[str | None] = mapped_column(String(32), nullable=True)
    affiliate_name: Mapped[str | None] = mapped_column(String(160), nullable=True)
    affiliate_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    description: Mapped[str] = mapped_column(Text)
    error_message: Mapped[str] = mapped_column(Text)
    extra: Mapped[str] = mapped_column(Text, default="")
    incident_active: Mapped[bool] = mapped_column(Boolean)
    incident_source: Mapped[str] = mapped_column(String(16))  # default | set | window
    incident_audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incident_window_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    case_numbers: Mapped[list[str]] = mapped_column(JSON)
    reported_by: Mapped[str] = mapped_column(String(128))
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
