"""Surveys in the database: created once per closed case or rated call, then answered.

A case survey's life (``ivr.surveys.worker`` creates and sends it,
``ivr.surveys.chat`` takes the replies)::

    case closed ──ensure_for_closed_cases()──▶ pending ──mark_sent()──▶ sent
                                                  │                      │ rate()
                                                  └─mark_failed()        ▼
                              expire_due(): no rating in RATING_TTL ◀─ answered (step comment)
                                 ▼                                       │ comment() / refusal /
                              expired                                    ▼ COMMENT_TTL passed
                                                                      answered (step done)

**Once per case, in the database.** ``ensure_for_closed_cases`` inserts with
``ON CONFLICT DO NOTHING`` on the partial unique index ``uq_surveys_case``, so
two workers (two controllers) that see the same closed case create one row;
what is sent is keyed by the survey's id (the chat outbox's and the SMS
outbox's idempotency keys), so a worker that dies between queueing and
``mark_sent`` queues the same message again, which is one message.

A call survey (``record_call_rating``) is one row per call (``uq_surveys_call``):
the rating typed on the keypad, stored answered at once.

Storage failures raise ``ivr.store.StoreUnavailable``; ``SurveyNotFound`` an
unknown id. Contacts appear in logs masked (``ivr.masking.mask_number``).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import String, and_, column, or_, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.model import SYSTEM
from ivr.cases.store import CaseError
from ivr.masking import mask_number
from ivr.store.db import Database, DialectInsert, StoreUnavailable, dialect_insert
from ivr.store.models import UtcDateTime
from ivr.surveys.tables import (
    ANSWERED,
    CALL,
    CASE,
    EXPIRED,
    FAILED,
    PENDING,
    SENT,
    STEP_COMMENT,
    STEP_DONE,
    STEP_RATING,
    VOICE,
    SurveyRow,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

RATING_TTL = timedelta(hours=24)
"""How long a sent survey waits for its rating: Meta's customer-service window,
after which a WhatsApp reply to it could not be answered freely anyway."""
COMMENT_TTL = timedelta(minutes=30)
"""How long, after the rating, the next message is taken as the comment (the
assistant's own idle time): later messages go to the assistant again."""
CASE_MAX_AGE = timedelta(days=7)
"""Cases closed longer ago than this get no survey: the first deployment does
not survey the whole history, and a week-old case is no longer fresh in mind."""

CASES = table(
    "cases",
    column("id", String),
    column("number", String),
    column("state", String),
    column("closed_at", UtcDateTime()),
    column("wa_id", String),
    column("contact_phone", String),
    column("journey_id", String),
    column("assignee", String),
    column("closed_by", String),
)
"""The columns of the cases part's table this part reads (issue 11 design, ``cases``)."""


CaseEvents = Callable[[str, str, str], Awaitable[None]]
"""(case number, action, detail) -> written to the case's history (``case_events``,
actions ``survey_sent`` / ``survey_failed`` / ``survey_answered``); wired by the
composition root to ``CaseStore.add_event``."""


async def tell_case(
    events: CaseEvents | None, number: str | None, action: str, detail: str
) -> None:
    """Best effort: the ``surveys`` row is the record, the case's history a view of it;
    a history that cannot be written is logged, never a reason to send twice."""
    if events is None or not number:
        return
    try:
        await events(number, action, detail)
    except (StoreUnavailable, CaseError) as exc:  # the database down; the case gone
        logger.warning("case %s: %s not written to its history: %s", number, action, exc)


class SurveyNotFound(LookupError):
    """No survey with that id."""


@dataclass(frozen=True)
class Survey:
    """One survey (``ivr.surveys.tables`` documents the columns)."""

    id: str
    kind: str
    case_id: str | None
    case_number: str | None
    call_id: str | None
    journey_id: str | None
    agent: str | None
    channel: str | None
    state: str
    step: str
    rating: int | None
    comment: str | None
    contact: str | None
    attempts: int
    last_message_id: str | None
    detail: str | None
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def from_row(cls, row: SurveyRow) -> Survey:
        return cls(
            row.id, row.kind, row.case_id, row.case_number, row.call_id, row.journey_id,
            row.agent, row.channel, row.state, row.step, row.rating, row.comment, row.contact,
            row.attempts, row.last_message_id, row.detail, row.created_at, row.sent_at,
            row.answered_at, row.closed_at,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """For the API and reports: the contact masked."""
        return {
            "id": self.id, "kind": self.kind, "case_id": self.case_id,
            "case_number": self.case_number, "call_id": self.call_id,
            "journey_id": self.journey_id, "agent": self.agent, "channel": self.channel,
            "state": self.state, "rating": self.rating, "comment": self.comment,
            "contact": mask_number(self.contact),
            "sent_at": _iso(self.sent_at), "answered_at": _iso(self.answered_at),
        }  # fmt: skip


@dataclass(frozen=True)
class PendingSurvey:
    """A case survey to send, with the case's contact (``wa_id`` digits, ``phone`` E.164)."""

    survey: Survey
    wa_id: str | None
    phone: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SurveyStore:
    """The ``surveys`` table. ``clock``: aware UTC now."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.clock = clock

    # --- creation -----------------------------------------------------------------------
    async def ensure_for_closed_cases(self, *, limit: int = 100) -> int:
        """Create the survey of each case closed in the last ``CASE_MAX_AGE`` that has
        none; returns how many this call created (0 when another worker did).

        A case closed by the system actor (``ivr.cases.model.SYSTEM``: no person
        handled it, e.g. the scenario seeds resetting test data) is not surveyed:
        the affiliate would be asked to rate an answer nobody gave."""
        now = self.clock()

        async def op(session: AsyncSession) -> int:
            rows = await session.execute(
                select(CASES.c.id, CASES.c.number, CASES.c.journey_id,
                       CASES.c.assignee, CASES.c.closed_by)
                .outerjoin(SurveyRow, and_(SurveyRow.case_id == CASES.c.id, SurveyRow.kind == CASE))
                .where(CASES.c.state == "closed", CASES.c.closed_at >= now - CASE_MAX_AGE,
                       CASES.c.closed_by != SYSTEM.name, SurveyRow.id.is_(None))
                .order_by(CASES.c.closed_at)
                .limit(limit)
            )  # fmt: skip
            created = 0
            for case_id, number, journey_id, assignee, closed_by in rows.all():
                inserted = await session.scalar(
                    self._insert()
                    .values(
                        id=str(uuid.uuid4()), kind=CASE, case_id=case_id, case_number=number,
                        journey_id=journey_id, agent=assignee or closed_by, state=PENDING,
                        step=STEP_RATING, attempts=0, created_at=now,
                    )
                    .on_conflict_do_nothing(
                        index_elements=["case_id"], index_where=SurveyRow.kind == CASE
                    )
                    .returning(SurveyRow.id)
                )  # fmt: skip
                created += inserted is not None
            return created

        return await self._run("create case surveys", op)

    async def record_call_rating(
        self,
        *,
        call_id: str,
        rating: int,
        journey_id: str | None = None,
        case_id: str | None = None,
        agent: str | None = None,
    ) -> Survey:
        """Store a rating typed on the keypad after a call (channel ``voice``,
        answered at once). Once per call: a second rating of the same call leaves
        the first (returned). Raises ``ValueError`` outside 1-10."""
        if not 1 <= rating <= 10:
            raise ValueError(f"rating {rating} is not 1-10")
        now = self.clock()

        async def op(session: AsyncSession) -> Survey:
            await session.execute(
                self._insert()
                .values(
                    id=str(uuid.uuid4()), kind=CALL, call_id=call_id, journey_id=journey_id,
                    case_id=case_id, agent=agent, channel=VOICE, state=ANSWERED,
                    step=STEP_DONE, rating=rating, attempts=0, created_at=now, sent_at=now,
                    answered_at=now, closed_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=["call_id"], index_where=SurveyRow.kind == CALL
                )
            )  # fmt: skip
            row = await session.scalar(
                select(SurveyRow).where(SurveyRow.kind == CALL, SurveyRow.call_id == call_id)
            )
            assert row is not None
            return Survey.from_row(row)

        return await self._run(f"store the rating of call {call_id}", op)

    # --- sending ------------------------------------------------------------------------
    async def pending(self, *, limit: int = 50) -> builtins.list[PendingSurvey]:
        """Case surveys not handed to a channel yet, oldest first, with their case's contact."""

        async def op(session: AsyncSession) -> builtins.list[PendingSurvey]:
            rows = await session.execute(
                select(SurveyRow, CASES.c.wa_id, CASES.c.contact_phone)
                .outerjoin(CASES, CASES.c.id == SurveyRow.case_id)
                .where(SurveyRow.kind == CASE, SurveyRow.state == PENDING)
                .order_by(SurveyRow.created_at)
                .limit(limit)
            )
            return [PendingSurvey(Survey.from_row(r), w, p) for r, w, p in rows.all()]

        return await self._run("list pending surveys", op)

    async def mark_sent(self, id: str, *, channel: str, contact: str) -> bool:
        """The survey is queued on ``channel`` to ``contact`` (wa_id digits, or E.164).
        False when another worker marked it first (it queued the same keyed message)."""
        return await self._set(id, f"mark survey {id} sent", PENDING, state=SENT,
                               channel=channel, contact=contact, sent_at=self.clock())  # fmt: skip

    async def mark_failed(self, id: str, detail: str) -> None:
        """No channel reaches the contact: the survey is not sent (``detail`` says why)."""
        await self._set(id, f"mark survey {id} failed", PENDING, state=FAILED, detail=detail,
                        closed_at=self.clock())  # fmt: skip

    # --- replies ------------------------------------------------------------------------
    async def active_for(self, contacts: Sequence[str]) -> Survey | None:
        """The survey that takes ``contacts``' next message (the last sent), or None."""
        now = self.clock()

        async def op(session: AsyncSession) -> builtins.list[Survey]:
            rows = await session.scalars(
                select(SurveyRow)
                .where(
                    SurveyRow.contact.in_(list(contacts)),
                    or_(
                        and_(SurveyRow.state == SENT, SurveyRow.step == STEP_RATING,
                             SurveyRow.sent_at > now - RATING_TTL),
                        and_(SurveyRow.state == ANSWERED, SurveyRow.step == STEP_COMMENT,
                             SurveyRow.answered_at > now - COMMENT_TTL),
                    ),
                )
                .order_by(SurveyRow.sent_at.desc())
                .limit(1)
            )  # fmt: skip
            return [Survey.from_row(r) for r in rows]

        found = await self._run("find the survey a message answers", op)
        return found[0] if found else None

    async def get(self, id: str) -> Survey:
        """The survey ``id``; raises ``SurveyNotFound``."""

        async def op(session: AsyncSession) -> Survey | None:
            row = await session.get(SurveyRow, id)
            return Survey.from_row(row) if row is not None else None

        found = await self._run(f"read survey {id}", op)
        if found is None:
            raise SurveyNotFound(id)
        return found

    async def for_case(self, case_id: str) -> Survey | None:
        """The survey sent after case ``case_id`` closed, if any."""
        return await self._one(SurveyRow.kind == CASE, SurveyRow.case_id == case_id)

    async def for_call(self, call_id: str) -> Survey | None:
        """The keypad survey of call ``call_id`` (its call record id), if any."""
        return await self._one(SurveyRow.kind == CALL, SurveyRow.call_id == call_id)

    async def rate(self, id: str, rating: int, *, message_id: str) -> None:
        """The rating arrived: ``answered``, and the next message is the comment."""
        if not 1 <= rating <= 10:
            raise ValueError(f"rating {rating} is not 1-10")
        await self._set(id, f"rate survey {id}", SENT, state=ANSWERED, step=STEP_COMMENT,
                        rating=rating, answered_at=self.clock(),
                        last_message_id=message_id)  # fmt: skip

    async def comment(self, id: str, comment: str | None, *, message_id: str) -> None:
        """The comment (None: declined): the survey is done."""
        await self._set(id, f"store the comment of survey {id}", ANSWERED, step=STEP_DONE,
                        comment=comment, closed_at=self.clock(),
                        last_message_id=message_id)  # fmt: skip

    async def not_a_rating(self, id: str, *, message_id: str, give_up_after: int) -> bool:
        """A reply that gave no rating; returns True when this was the last one
        allowed (``give_up_after`` such replies: the survey is then ``expired``)."""
        survey = await self.get(id)
        attempts = survey.attempts + 1
        if attempts >= give_up_after:
            await self._set(id, f"expire survey {id}", SENT, state=EXPIRED, attempts=attempts,
                            detail="sin calificación válida", closed_at=self.clock(),
                            last_message_id=message_id)  # fmt: skip
            return True
        await self._set(id, f"count a reply to survey {id}", SENT, attempts=attempts,
                        last_message_id=message_id)  # fmt: skip
        return False

    async def expire_due(self) -> int:
        """Close what waited too long: no rating in ``RATING_TTL`` (expired), no
        comment in ``COMMENT_TTL`` (done, without one). Returns how many."""
        now = self.clock()

        async def op(session: AsyncSession) -> int:
            expired = await session.execute(
                update(SurveyRow)
                .where(SurveyRow.state == SENT, SurveyRow.sent_at <= now - RATING_TTL)
                .values(state=EXPIRED, detail="sin respuesta", closed_at=now)
            )
            done = await session.execute(
                update(SurveyRow)
                .where(SurveyRow.state == ANSWERED, SurveyRow.step == STEP_COMMENT,
                       SurveyRow.answered_at <= now - COMMENT_TTL)
                .values(step=STEP_DONE, closed_at=now)
            )  # fmt: skip
            return int(expired.rowcount or 0) + int(done.rowcount or 0)  # type: ignore[attr-defined]

        return await self._run("expire surveys", op)

    async def list(
        self, *, kind: str | None = None, state: str | None = None, limit: int = 200
    ) -> builtins.list[Survey]:
        """Surveys, newest first (for reports and the tests)."""

        async def op(session: AsyncSession) -> builtins.list[Survey]:
            query = select(SurveyRow).order_by(SurveyRow.created_at.desc()).limit(limit)
            if kind is not None:
                query = query.where(SurveyRow.kind == kind)
            if state is not None:
                query = query.where(SurveyRow.state == state)
            return [Survey.from_row(r) for r in await session.scalars(query)]

        return await self._run("list surveys", op)

    # --- helpers ------------------------------------------------------------------------
    def _insert(self) -> DialectInsert:
        return dialect_insert(self.db.engine.dialect.name, SurveyRow)

    async def _one(self, *where: Any) -> Survey | None:
        async def op(session: AsyncSession) -> Survey | None:
            row = await session.scalar(select(SurveyRow).where(*where))
            return Survey.from_row(row) if row is not None else None

        return await self._run("read a survey", op)

    async def _set(self, id: str, what: str, from_state: str, **values: object) -> bool:
        """Update survey ``id`` only while it is in ``from_state`` (a late or repeated
        step after another writer moved it changes nothing, and is logged)."""

        async def op(session: AsyncSession) -> int:
            result = await session.execute(
                update(SurveyRow)
                .where(SurveyRow.id == id, SurveyRow.state == from_state)
                .values(**values)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        if not await self._run(what, op):
            logger.info("survey %s: not %s any more, %s skipped", id, from_state, what)
            return False
        return True

    async def _run(self, what: str, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.db.run(what, op)
