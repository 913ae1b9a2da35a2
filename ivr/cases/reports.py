"""The dashboard's figures: cases, SLA, alerts, ratings and sentiment, by a dimension.

One report (:meth:`CaseReports.figures`) answers "how did we do over this
period", one row per key of a dimension, plus the total:

================  =====================================================================
``by``            a row per
================  =====================================================================
``day``           local calendar day (``2026-11-30``), every day of the period listed
``week``          ISO week (``2026-W48``, Monday to Sunday), every week listed
``month``         calendar month (``2026-11``), every month listed
``group``         support group (``cases.group``)
``site``          the affiliate's site (``cases.site_id``)
``person``        the person responsible (see below)
================  =====================================================================

What each figure counts, and where it is placed (the *decisions*, also in
``docs/cases/reports.md``):

- **cases** filed in the period (``cases.filed_at``). Their first-response and
  resolution figures belong to the same row (a cohort: "the cases of Monday, how
  fast were they answered"), whenever the answer came.
- **first response / resolution time**: the business time (the group's
  working hours, Colombian holidays: ``BusinessCalendar.business_time_between``
  of ``ivr.cases.calendar``) from ``filed_at`` to ``first_response_at`` /
  ``closed_at``; averaged over the cases that have one, in seconds.
- **SLA** per clock: *met* when the event came at or before its due time
  (``first_response_due_at``, ``resolution_due_at``), *missed* when it came
  later or has not come and the due time is past (at the report's ``now``),
  else *pending* (not counted). A case met its SLA when no clock was missed and
  both were met; ``sla_met_pct`` = cases met / (met + missed) × 100.
- **alerts**: SLA warnings (``case_events`` ``sla_warning``) by the time they were
  written; escalation calls (``escalation_attempts`` except those skipped in quiet
  hours or suppressed as duplicates) by ``started_at``; ``acknowledged``: attempts
  with ``acknowledged_at`` (the person pressed 1).
- **ratings**: answered surveys (``state`` answered, a rating) by ``answered_at``;
  a call survey has no case, so no group nor site.
- **sentiment**: ``text_analyses`` by ``at``; of a case text, or of a survey comment
  (placed by the survey's case, or its agent).
- **person**: the case's ``assignee`` for cases, warnings and sentiment; the
  person *called* for escalation attempts (``escalation_attempts.person``); the
  survey's ``agent`` (else the case's assignee) for ratings. The ``person`` filter
  means the same per figure.

Time keys are local (``tz``, the line's time zone: ``America/Bogota``). The
queries read only the rows of the period (each table by its indexed time
column) and the columns named in ``ivr.cases.report_sources``; they aggregate
in Python because business time is computed per case, which SQL cannot do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from ivr.cases.report_sources import (
    CASE_EVENTS,
    CASES,
    ESCALATION_ATTEMPTS,
    NOT_A_CALL,
    SENTIMENT_LABELS,
    SLA_WARNING,
    SURVEYS,
    TEXT_ANALYSES,
)
from ivr.store.db import Database

NO_GROUP = "sin grupo"
NO_SITE = "sin sede"
NO_PERSON = "sin asignar"
MAX_PERIOD = timedelta(days=400)  # a year and a bit: a bigger question is an export job


class Dimension(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    GROUP = "group"
    SITE = "site"
    PERSON = "person"


TIME_DIMENSIONS = (Dimension.DAY, Dimension.WEEK, Dimension.MONTH)


class BusinessClock(Protocol):
    """What the reports need of ``ivr.cases.calendar.BusinessCalendar``."""

    def business_time_between(self, a: datetime, b: datetime) -> timedelta: ...


class InvalidQuery(ValueError):
    """A report question that cannot be answered (naive times, end before start, too long)."""


@dataclass(frozen=True)
class ReportQuery:
    """The period ``[start, end)`` (aware datetimes), the dimension and the filters
    (``None``: all). Raises :class:`InvalidQuery` when built with a naive time,
    ``end <= start`` or a period over ``MAX_PERIOD``."""

    start: datetime
    end: datetime
    by: Dimension = Dimension.DAY
    group: str | None = None
    site_id: str | None = None
    person: str | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidQuery("el periodo necesita horas con zona horaria")
        if self.end <= self.start:
            raise InvalidQuery("el periodo termina antes de empezar")
        if self.end - self.start > MAX_PERIOD:
            raise InvalidQuery(f"el periodo es de {MAX_PERIOD.days} días como máximo")


@dataclass
class Figures:
    """One row of the report: the figures of one ``key`` (see the module docstring).
    Times in business seconds; percentages 0–100; ``None`` where nothing was measured."""

    key: str
    cases: int = 0
    first_responses: int = 0
    first_response_avg_s: float | None = None
    resolutions: int = 0
    resolution_avg_s: float | None = None
    first_response_met: int = 0
    first_response_missed: int = 0
    resolution_met: int = 0
    resolution_missed: int = 0
    sla_met: int = 0
    sla_missed: int = 0
    sla_met_pct: float | None = None
    warnings: int = 0
    escalation_calls: int = 0
    acknowledged: int = 0
    ratings: int = 0
    rating_avg: float | None = None
    sentiment_analyses: int = 0
    sentiment_avg: float | None = None
    negativo: int = 0
    neutral: int = 0
    positivo: int = 0
    # sums behind the averages (not shown)
    _first_response_sum: float = field(default=0.0, repr=False)
    _resolution_sum: float = field(default=0.0, repr=False)
    _rating_sum: int = field(default=0, repr=False)
    _score_sum: float = field(default=0.0, repr=False)

    def finish(self) -> Figures:
        self.first_response_avg_s = _avg(self._first_response_sum, self.first_responses)
        self.resolution_avg_s = _avg(self._resolution_sum, self.resolutions)
        decided = self.sla_met + self.sla_missed
        self.sla_met_pct = round(100.0 * self.sla_met / decided, 1) if decided else None
        self.rating_avg = _avg(float(self._rating_sum), self.ratings, digits=2)
        self.sentiment_avg = _avg(self._score_sum, self.sentiment_analyses, digits=3)
        return self

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


COLUMNS: tuple[tuple[str, str], ...] = (
    ("cases", "Casos radicados"),
    ("first_responses", "Con primera respuesta"),
    ("first_response_avg_s", "Primera respuesta promedio (s hábiles)"),
    ("resolutions", "Cerrados"),
    ("resolution_avg_s", "Resolución promedio (s hábiles)"),
    ("first_response_met", "Primera respuesta a tiempo"),
    ("first_response_missed", "Primera respuesta vencida"),
    ("resolution_met", "Resolución a tiempo"),
    ("resolution_missed", "Resolución vencida"),
    ("sla_met_pct", "ANS cumplido (%)"),
    ("warnings", "Alertas de ANS"),
    ("escalation_calls", "Llamadas de escalamiento"),
    ("acknowledged", "Llamadas confirmadas (tecla 1)"),
    ("ratings", "Calificaciones"),
    ("rating_avg", "Calificación promedio (1-10)"),
    ("sentiment_analyses", "Textos analizados"),
    ("sentiment_avg", "Sentimiento promedio (-1 a 1)"),
    ("negativo", "Negativos"),
    ("neutral", "Neutrales"),
    ("positivo", "Positivos"),
)
"""The figures in the order of the exports and the console's table, with their Spanish headings."""


@dataclass(frozen=True)
class Report:
    """:meth:`CaseReports.figures`' answer: ``rows`` in key order, ``total`` over all."""

    query: ReportQuery
    as_of: datetime
    rows: list[Figures]
    total: Figures

    def as_json(self) -> dict[str, Any]:
        q = self.query
        return {
            "by": q.by.value,
            "start": q.start.isoformat(),
            "end": q.end.isoformat(),
            "filters": {"group": q.group, "site": q.site_id, "person": q.person},
            "as_of": self.as_of.isoformat(),
            "columns": [{"key": k, "label": label} for k, label in COLUMNS],
            "rows": [r.as_json() for r in self.rows],
            "total": self.total.as_json(),
        }


@dataclass(frozen=True)
class Headline:
    """The figures of now: cases filed today (local day), open now, and open past
    their resolution due time (``resolution_due_at < now``)."""

    today: int
    open: int
    overdue: int
    as_of: datetime

    def as_json(self) -> dict[str, Any]:
        return {"today": self.today, "open": self.open, "overdue": self.overdue,
                "as_of": self.as_of.isoformat()}  # fmt: skip


def _avg(total: float, n: int, digits: int = 0) -> float | None:
    return round(total / n, digits) if n else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def time_key(at: datetime, by: Dimension, tz: tzinfo) -> str:
    """The key of ``at`` (aware) for a time dimension, in local time ``tz``.

    >>> from zoneinfo import ZoneInfo
    >>> at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 22:00 of Monday 30 November in Bogotá
    >>> [time_key(at, d, ZoneInfo("America/Bogota")) for d in TIME_DIMENSIONS]
    ['2026-11-30', '2026-W49', '2026-11']
    """
    local = at.astimezone(tz).date()
    if by is Dimension.DAY:
        return local.isoformat()
    if by is Dimension.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if by is Dimension.MONTH:
        return f"{local.year}-{local.month:02d}"
    raise ValueError(f"{by} is not a time dimension")


def time_keys(start: datetime, end: datetime, by: Dimension, tz: tzinfo) -> list[str]:
    """Every key of a time dimension that ``[start, end)`` touches, in order."""
    keys: list[str] = []
    day = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        key = time_key(datetime.combine(day, time(12), tz), by, tz)
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    return keys


class CaseReports:
    """The dashboard's queries over the cases tables (read only).

    ``calendar_for(group)``: the business calendar of a support group (core's
    ``BusinessCalendar``); ``tz``: the line's time zone, for days, weeks, months;
    ``clock``: now (aware UTC), for clocks still running.
    """

    def __init__(
        self,
        db: Database,
        calendar_for: Callable[[str], BusinessClock],
        tz: tzinfo,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.db = db
        self.calendar_for = calendar_for
        self.tz = tz
        self.clock = clock

    async def headline(self) -> Headline:
        """Today's, open and overdue case counts; raises StoreUnavailable."""
        now = self.clock()
        midnight = datetime.combine(now.astimezone(self.tz).date(), time(0), self.tz)
        c = CASES.c

        async def op(session: AsyncSession) -> Headline:
            count = select(func.count()).select_from(CASES)
            today = await session.scalar(count.where(c.filed_at >= midnight))
            still_open = c.state != "closed"
            opened = await session.scalar(count.where(still_open))
            overdue = await session.scalar(count.where(still_open, c.resolution_due_at < now))
            return Headline(int(today or 0), int(opened or 0), int(overdue or 0), now)

        return await self.db.run("count today's cases", op)

    async def figures(self, query: ReportQuery) -> Report:
        """The report for ``query``: one :class:`Figures` per key, and the total.

        Raises StoreUnavailable when the database does not answer in time.
        """
        now = self.clock()

        async def op(session: AsyncSession) -> tuple[dict[str, Figures], Figures]:
            # The counters are made here: a try the database cut runs again from zero
            # (ivr.store.db.once_more_if_cut).
            rows: dict[str, Figures] = {}
            if query.by in TIME_DIMENSIONS:
                rows = {k: Figures(k) for k in time_keys(query.start, query.end, query.by, self.tz)}
            total = Figures("total")

            def add(at: datetime, place: Placement) -> Iterator[Figures]:
                key = self._key(query.by, at, place)
                yield rows.setdefault(key, Figures(key))
                yield total

            for case in await _rows(session, self._cases(query)):
                place = Placement(case["group"], case["site_id"], case["assignee"])
                for figures in add(case["filed_at"], place):
                    self._count_case(figures, case, now)
            for event in await _rows(session, self._warnings(query)):
                for figures in add(event["at"], Placement.of(event)):
                    figures.warnings += 1
            for attempt in await _rows(session, self._attempts(query)):
                for figures in add(attempt["started_at"], Placement.of(attempt)):
                    figures.escalation_calls += attempt["result"] not in NOT_A_CALL
                    figures.acknowledged += attempt["acknowledged_at"] is not None
            for survey in await _rows(session, self._ratings(query)):
                for figures in add(survey["answered_at"], Placement.of(survey)):
                    figures.ratings += 1
                    figures._rating_sum += int(survey["rating"])
            for statement in self._analyses(query):
                for analysis in await _rows(session, statement):
                    for figures in add(analysis["at"], Placement.of(analysis)):
                        _count_sentiment(figures, analysis)
            return rows, total

        rows, total = await self.db.run(
            "compute the cases report", op, deadline_s=max(self.db.timeout, 30.0)
        )
        ordered = sorted(rows.values(), key=lambda f: f.key)
        return Report(query, now, [f.finish() for f in ordered], total.finish())

    # --- placing a row under a key ---------------------------------------------------------
    def _key(self, by: Dimension, at: datetime, place: Placement) -> str:
        if by in TIME_DIMENSIONS:
            return time_key(at, by, self.tz)
        if by is Dimension.GROUP:
            return place.group or NO_GROUP
        if by is Dimension.SITE:
            return place.site or NO_SITE
        return place.person or NO_PERSON

    # --- one case ----------------------------------------------------------------------------
    def _count_case(self, figures: Figures, case: dict[str, Any], now: datetime) -> None:
        figures.cases += 1
        calendar = self.calendar_for(case["group"])
        filed: datetime = case["filed_at"]
        verdicts = []
        for clock, done_at, due_at in (
            ("first_response", case["first_response_at"], case["first_response_due_at"]),
            ("resolution", case["closed_at"], case["resolution_due_at"]),
        ):
            if done_at is not None:
                seconds = calendar.business_time_between(filed, done_at).total_seconds()
                if clock == "first_response":
                    figures.first_responses += 1
                    figures._first_response_sum += seconds
                else:
                    figures.resolutions += 1
                    figures._resolution_sum += seconds
            verdict = sla_verdict(done_at, due_at, now)
            verdicts.append(verdict)
            if verdict != "pending":
                name = f"{clock}_{verdict}"
                setattr(figures, name, getattr(figures, name) + 1)
        if "missed" in verdicts:
            figures.sla_missed += 1
        elif all(v == "met" for v in verdicts):
            figures.sla_met += 1

    # --- the statements ------------------------------------------------------------------------
    def _case_filters(self, query: ReportQuery, *, person: Any = None) -> list[Any]:
        c = CASES.c
        found: list[Any] = []
        if query.group is not None:
            found.append(c.group == query.group)
        if query.site_id is not None:
            found.append(c.site_id == query.site_id)
        if query.person is not None:
            found.append((c.assignee if person is None else person) == query.person)
        return found

    def _cases(self, query: ReportQuery) -> Select[Any]:
        c = CASES.c
        return select(
            c.group, c.site_id, c.assignee, c.filed_at, c.first_response_due_at,
            c.resolution_due_at, c.first_response_at, c.closed_at,
        ).where(c.filed_at >= query.start, c.filed_at < query.end, *self._case_filters(query))  # fmt: skip

    def _warnings(self, query: ReportQuery) -> Select[Any]:
        e, c = CASE_EVENTS.c, CASES.c
        return (
            select(e.at, c.group, c.site_id, c.assignee.label("person"))
            .select_from(CASE_EVENTS.join(CASES, c.id == e.case_id))
            .where(e.action == SLA_WARNING, e.at >= query.start, e.at < query.end,
                   *self._case_filters(query))
        )  # fmt: skip

    def _attempts(self, query: ReportQuery) -> Select[Any]:
        a, c = ESCALATION_ATTEMPTS.c, CASES.c
        return (
            select(a.started_at, a.result, a.acknowledged_at, a.person, c.group, c.site_id)
            .select_from(ESCALATION_ATTEMPTS.outerjoin(CASES, c.id == a.case_id))
            .where(a.started_at >= query.start, a.started_at < query.end,
                   *self._case_filters(query, person=a.person))
        )  # fmt: skip

    def _ratings(self, query: ReportQuery) -> Select[Any]:
        s, c = SURVEYS.c, CASES.c
        person = func.coalesce(s.agent, c.assignee)
        return (
            select(s.answered_at, s.rating, person.label("person"), c.group, c.site_id)
            .select_from(SURVEYS.outerjoin(CASES, c.id == s.case_id))
            .where(s.state == "answered", s.rating.is_not(None), s.answered_at >= query.start,
                   s.answered_at < query.end, *self._case_filters(query, person=person))
        )  # fmt: skip

    def _analyses(self, query: ReportQuery) -> list[Select[Any]]:
        t, s, c = TEXT_ANALYSES.c, SURVEYS.c, CASES.c
        period = (t.at >= query.start, t.at < query.end)
        of_cases = (
            select(t.at, t.score, t.label, c.group, c.site_id, c.assignee.label("person"))
            .select_from(TEXT_ANALYSES.outerjoin(CASES, c.id == cast(t.subject_id, String)))
            .where(t.subject == "case", *period, *self._case_filters(query))
        )  # fmt: skip
        person = func.coalesce(s.agent, c.assignee)
        of_surveys = (
            select(t.at, t.score, t.label, c.group, c.site_id, person.label("person"))
            .select_from(
                TEXT_ANALYSES.outerjoin(
                    SURVEYS, cast(s.id, String) == cast(t.subject_id, String)
                ).outerjoin(CASES, c.id == s.case_id)
            )
            .where(t.subject == "survey", *period, *self._case_filters(query, person=person))
        )
        return [of_cases, of_surveys]


@dataclass(frozen=True)
class Placement:
    """Where a row of another table falls on the non-time dimensions."""

    group: str | None
    site: str | None
    person: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Placement:
        return cls(row.get("group"), row.get("site_id"), row.get("person"))


def sla_verdict(done_at: datetime | None, due_at: datetime | None, now: datetime) -> str:
    """``met``, ``missed`` or ``pending`` for one SLA clock (rule in the module docstring).

    >>> t = datetime(2026, 12, 1, 12, tzinfo=UTC)
    >>> h = timedelta(hours=1)
    >>> sla_verdict(t, t, t), sla_verdict(t + h, t, t), sla_verdict(None, t, t + h), sla_verdict(None, t, t)
    ('met', 'missed', 'missed', 'pending')
    """
    if due_at is None:
        return "pending"
    if done_at is not None:
        return "met" if done_at <= due_at else "missed"
    return "missed" if now > due_at else "pending"


def _count_sentiment(figures: Figures, analysis: dict[str, Any]) -> None:
    figures.sentiment_analyses += 1
    figures._score_sum += float(analysis["score"])
    label = analysis["label"]
    if label in SENTIMENT_LABELS:
        setattr(figures, label, getattr(figures, label) + 1)


async def _rows(session: AsyncSession, statement: Select[Any]) -> Iterable[dict[str, Any]]:
    result = await session.execute(statement)
    return [dict(row) for row in result.mappings()]


def period_of(day: date, by: Dimension, tz: tzinfo) -> tuple[datetime, datetime]:
    """The period of ``by`` (day, week or month) that holds ``day``, as aware datetimes."""
    if by is Dimension.DAY:
        first, after = day, day + timedelta(days=1)
    elif by is Dimension.WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif by is Dimension.MONTH:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"{by} is not a time dimension")
    return datetime.combine(first, time(0), tz), datetime.combine(after, time(0), tz)
