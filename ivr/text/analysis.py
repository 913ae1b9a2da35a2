"""The analysis worker: every case text and survey comment gets its sentiment and keywords.

Decision: a worker that scans the database for texts without an analysis, not a
hook the filing and survey code must remember to call. Nothing is lost on a
crash (the next scan finds what was left), a case filed by any channel or tool
is covered, and ``ivr.cases`` need not import ``ivr.text`` (nor the reverse).
Whoever writes a text may call :meth:`TextAnalysisWorker.poke` to have it
analysed at once rather than within ``idle_wait`` seconds.

For each text (a case's ``summary``; a survey's ``comment``):

1. the sentiment (:func:`ivr.text.sentiment.analyse`) and the keywords of every
   list (:class:`ivr.text.keywords.KeywordMatcher`);
2. when a matched keyword raises priority, ``raise_priority(number, reason)``
   with reason ``"palabra clave: tutela"`` (the composition root wires it to
   ``CaseStore.raise_priority(..., actor=Actor("sistema", "system"))``). For a
   survey comment, the case it rates is raised only while it is not closed (a
   closed case has nobody left to hurry; the match stays in the analysis, for
   the reports);
3. the analysis row (``text_analyses``, unique per subject).

Step 2 runs before step 3, so a crash in between raises the priority again on
the next scan (at least once: raising an already high priority changes
nothing) rather than never. Cases and surveys are read through their table
names and the columns fixed in the cases design, without importing their
packages.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, exists, inspect, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.ops.store import utcnow
from ivr.store.db import Database, StoreUnavailable
from ivr.text.keyword_store import KeywordStore
from ivr.text.keywords import Keyword, KeywordMatch, KeywordMatcher, priority_reason
from ivr.text.sentiment import DecisiveWord, Sentiment, analyse
from ivr.text.tables import TextAnalysisRow

logger = logging.getLogger(__name__)

CASES = table("cases", column("id"), column("number"), column("summary"), column("state"),
              column("filed_at"))  # fmt: skip
SURVEYS = table("surveys", column("id"), column("comment"), column("case_id"),
                column("answered_at"))  # fmt: skip
RaisePriority = Callable[[str, str], Awaitable[None]]  # (case number, reason)


@dataclass(frozen=True)
class PendingText:
    """A text waiting for its analysis, and the case a keyword would raise (if any)."""

    subject: str  # case | survey
    subject_id: str
    text: str
    case_number: str | None
    case_open: bool


@dataclass(frozen=True)
class TextAnalysis:
    """A stored analysis (a row of ``text_analyses``)."""

    subject: str
    subject_id: str
    sentiment: Sentiment
    keywords: tuple[KeywordMatch, ...]
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "subject_id": self.subject_id,
            **self.sentiment.as_json(),
            "keywords": [k.as_json() for k in self.keywords],
            "at": self.at.isoformat(),
        }


class TextAnalysisWorker:
    """Scans for unanalysed case texts and survey comments until :meth:`stop`."""

    def __init__(
        self,
        db: Database,
        keywords: KeywordStore,
        raise_priority: RaisePriority,
        *,
        surveys: bool | None = None,
        batch: int = 50,
        idle_wait: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.keywords = keywords
        self.raise_priority = raise_priority
        self.surveys = surveys  # None: look whether the surveys table exists (once)
        self.batch = batch
        self.idle_wait = idle_wait
        self.clock = clock
        self.wakeup = asyncio.Event()
        self._stopping = False

    def poke(self) -> None:
        """Scan now (a case was filed, a survey answered)."""
        self.wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self.wakeup.set()

    async def run(self) -> None:
        """Analyse until ``stop()``; a database outage is logged and waited out."""
        while not self._stopping:
            self.wakeup.clear()
            try:
                done = await self.run_once()
            except StoreUnavailable as exc:
                logger.warning("text analysis: database unavailable: %s", exc)
                done = 0
            if done < self.batch and not self._stopping:
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=self.idle_wait)
                except TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Analyse up to ``batch`` pending texts; returns how many were stored."""
        pending = await self.pending()
        if not pending:
            return 0
        matcher = KeywordMatcher(await self.keywords.keywords())
        stored = 0
        for item in pending:
            stored += await self._analyse(item, matcher)
        return stored

    async def pending(self) -> list[PendingText]:
        """Case texts, then survey comments, without an analysis (oldest first)."""
        if self.surveys is None:
            self.surveys = await self._has_surveys()

        async def op(session: AsyncSession) -> list[PendingText]:
            found = await _pending_cases(session, self.batch)
            if self.surveys and len(found) < self.batch:
                found += await _pending_surveys(session, self.batch - len(found))
            return found

        return await self.db.run("find texts to analyse", op)

    async def _has_surveys(self) -> bool:
        async def op(session: AsyncSession) -> bool:
            connection = await session.connection()
            return await connection.run_sync(lambda c: inspect(c).has_table(SURVEYS.name))

        return await self.db.run("look for the surveys table", op)

    async def analysis(self, subject: str, subject_id: str) -> TextAnalysis | None:
        async def op(session: AsyncSession) -> TextAnalysis | None:
            row = (
                await session.execute(
                    select(TextAnalysisRow).where(
                        TextAnalysisRow.subject == subject, TextAnalysisRow.subject_id == subject_id
                    )
                )
            ).scalar()
            return None if row is None else _from_row(row)

        return await self.db.run("read a text analysis", op)

    async def _analyse(self, item: PendingText, matcher: KeywordMatcher) -> int:
        sentiment = analyse(item.text)
        matches = matcher.find(item.text)
        reason = priority_reason(matches)
        if reason and item.case_number and item.case_open:
            await self.raise_priority(item.case_number, reason)
            logger.info("case %s: priority raised by the %s text (%s)",
                        item.case_number, item.subject, reason)  # fmt: skip
        row = TextAnalysisRow(
            id=str(uuid.uuid4()), subject=item.subject, subject_id=item.subject_id,
            score=sentiment.score, label=sentiment.label,
            words=[w.as_json() for w in sentiment.decisive_words],
            keywords=[m.as_json() for m in matches], at=self.clock(),
        )  # fmt: skip

        async def op(session: AsyncSession) -> None:
            session.add(row)

        try:
            await self.db.run("store a text analysis", op)
        except IntegrityError:
            return 0  # another worker stored it first
        return 1


async def _pending_cases(session: AsyncSession, limit: int) -> list[PendingText]:
    done = exists().where(
        TextAnalysisRow.subject == "case", TextAnalysisRow.subject_id == CASES.c.id
    )
    query = (
        select(CASES.c.id, CASES.c.number, CASES.c.summary, CASES.c.state)
        .where(~done)
        .order_by(CASES.c.filed_at)
        .limit(limit)
    )
    return [
        PendingText("case", r.id, r.summary or "", r.number, r.state != "closed")
        for r in (await session.execute(query)).all()
    ]


async def _pending_surveys(session: AsyncSession, limit: int) -> list[PendingText]:
    done = exists().where(
        TextAnalysisRow.subject == "survey", TextAnalysisRow.subject_id == SURVEYS.c.id
    )
    query = (
        select(SURVEYS.c.id, SURVEYS.c.comment, CASES.c.number, CASES.c.state)
        .select_from(SURVEYS.outerjoin(CASES, CASES.c.id == SURVEYS.c.case_id))
        .where(SURVEYS.c.comment.is_not(None), SURVEYS.c.comment != "", ~done)
        .order_by(SURVEYS.c.answered_at)
        .limit(limit)
    )
    return [
        PendingText(
            "survey", r.id, r.comment, r.number, r.number is not None and r.state != "closed"
        )
        for r in (await session.execute(query)).all()
    ]


def _from_row(row: TextAnalysisRow) -> TextAnalysis:
    sentiment = Sentiment(
        row.score, row.label,  # type: ignore[arg-type]  # written from Sentiment.label
        tuple(DecisiveWord(w["text"], w["weight"]) for w in row.words),
    )  # fmt: skip
    matches = tuple(
        KeywordMatch(
            Keyword(k["id"], k["list_id"], k["list"], k["phrase"], k["raises_priority"]),
            k["written"],
        )
        for k in row.keywords
    )
    return TextAnalysis(row.subject, row.subject_id, sentiment, matches, row.at)
