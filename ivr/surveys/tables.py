"""The ``surveys`` table (migration 0009): one row per survey, after a case or a call.

The columns other parts read (the sentiment part's ``text_analyses`` with
``subject = 'survey'``, the dashboard's ratings) are fixed by the issue's
design (docs/cases/surveys.md): ``id, kind, case_id, call_id, journey_id,
agent, channel, state, rating, comment, sent_at, answered_at``. The others are
this part's bookkeeping of the dialogue.

One survey per case and one per call, in the database: partial unique indexes
on ``case_id`` where ``kind = 'case'`` and on ``call_id`` where ``kind =
'call'`` (a call survey may also name the case the call was about, so a
plain unique ``case_id`` would be wrong). Every time is aware UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime

CASE = "case"
CALL = "call"
KINDS = (CASE, CALL)

WHATSAPP = "whatsapp"
SMS = "sms"
VOICE = "voice"
CHANNELS = (WHATSAPP, SMS, VOICE)

PENDING = "pending"  # a case survey created, not handed to a channel yet
SENT = "sent"  # queued in the chat or SMS outbox: waiting for the rating
ANSWERED = "answered"  # rated (a comment may follow while ``step`` is ``comment``)
EXPIRED = "expired"  # no rating in time, or two replies that were no rating
FAILED = "failed"  # no way to reach the contact (``detail`` says why)
STATES = (PENDING, SENT, ANSWERED, EXPIRED, FAILED)

STEP_RATING = "rating"
STEP_COMMENT = "comment"
STEP_DONE = "done"

_CASE_WHERE = text("kind = 'case'")
_CALL_WHERE = text("kind = 'call'")


class SurveyRow(Base):
    __tablename__ = "surveys"
    __table_args__ = (
        Index(
            "uq_surveys_case", "case_id", unique=True,
            sqlite_where=_CASE_WHERE, postgresql_where=_CASE_WHERE,
        ),
        Index(
            "uq_surveys_call", "call_id", unique=True,
            sqlite_where=_CALL_WHERE, postgresql_where=_CALL_WHERE,
        ),
        Index("ix_surveys_state_contact", "state", "contact"),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # case | call
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    case_number: Mapped[str | None] = mapped_column(String(8), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # call record id
    journey_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    agent: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None while pending
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(16))  # rating | comment | done
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-10
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    contact: Mapped[str | None] = mapped_column(String(32), nullable=True)  # wa_id or E.164
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # replies that were no rating
    last_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
