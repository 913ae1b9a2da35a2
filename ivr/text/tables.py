"""Text-analysis tables (migration 0010): keyword lists, keywords, their audit, analyses.

``keyword_audit`` is the keywords' own audit trail (who, when, why, old and new),
kept apart from ``ops_audit`` so the flags' history and timeline stay about flags.
``text_analyses`` holds one analysis per subject (``case`` or ``survey``): the
unique ``(subject, subject_id)`` makes the analysis worker idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime


class KeywordListRow(Base):
    __tablename__ = "keyword_lists"
    __table_args__ = (UniqueConstraint("name", name="uq_keyword_lists_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KeywordRow(Base):
    __tablename__ = "keywords"
    __table_args__ = (UniqueConstraint("list_id", "match_key", name="uq_keywords_list_match"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    list_id: Mapped[str] = mapped_column(String(36), ForeignKey("keyword_lists.id"), index=True)
    phrase: Mapped[str] = mapped_column(String(120))  # as the admin wrote it
    match_key: Mapped[str] = mapped_column(String(240))  # its stems, space-separated
    raises_priority: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class KeywordAuditRow(Base):
    __tablename__ = "keyword_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    list_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    keyword_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text)


class TextAnalysisRow(Base):
    __tablename__ = "text_analyses"
    __table_args__ = (UniqueConstraint("subject", "subject_id", name="uq_text_analyses_subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))  # case | survey
    subject_id: Mapped[str] = mapped_column(String(36))
    score: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(16), index=True)  # negativo | neutral | positivo
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"text", "weight"}]
    keywords: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"phrase", "list", ...}]
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
