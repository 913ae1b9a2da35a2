"""The migration funnel of a line: from the phone to the chat, by site and hour.

The insurer's plan moves target callers from the phone to the WhatsApp
assistant. The funnel follows each target call (``call_records``) along its
journey (``journey_id``: the call record's id, which the chat started from the
call's SMS link carries, ``ivr.chat.callref``, and a case filed on the call or in
that chat carries too)::

    target callers ─┬─ booked by phone
                    └─ redirected to WhatsApp ── chats started ─┬─ booked in the chat
                                                                └─ cases filed

- **target callers**: call records of the line's flow whose ``segment`` variable is
  the target one (the eligibility decision; calls that hung up before it are not
  in the funnel);
- **booked by phone** / **redirected**: the call's outcome is one of the line's
  booking / redirect outcomes (:class:`FunnelDefinition`);
- **chats started**: conversations whose ``journey_id`` is the call's id;
  **booked in the chat**: of those, the ones whose outcome is a booking;
- **cases filed**: cases whose ``journey_id`` is the call's id (on the call or in its
  chat: ``cases_voice`` / ``cases_chat`` split them by ``cases.channel``).

Every figure is placed at the *call's* site (its ``site_id`` variable: the
affiliate's assigned site) and local hour, so a chat the next morning still
counts for the call that sent it. Known limit (issue 10's model): a WhatsApp
contact has one conversation row; when the same person starts a chat from a
second call, the row's ``journey_id`` moves to that call and its outcome is the
latest chat's, so the first call's chat stops counting.

Flag changes (``ops_audit`` entries that name a flag: set, reset, incident
on/off, a window starting, ending or cancelled) are returned as
:class:`FlagMarker` to mark on the timeline.

Efficiency: one query, aggregated in the database (``GROUP BY`` UTC hour and
site), reading ``call_records`` through its ``started_at`` index and joining
``conversations`` and ``cases`` through their ``journey_id`` indexes. The UTC
hour is turned into local time here, exact for zones whose offset is a whole
number of hours (Colombia: UTC−5, no daylight saving time).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import String, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ivr.cases.report_sources import CASES
from ivr.chat.tables import ConversationRow
from ivr.ops.tables import AuditRow
from ivr.store.db import Database
from ivr.store.models import CallRecordRow

MARKED_ACTIONS = (
    "set", "reset", "incident_on", "incident_off", "window_started", "window_ended",
    "cancel_window",
)  # fmt: skip
"""The audit actions that change a flag's effective value (a scheduled window
is marked when it starts, not when it is created)."""

MAX_FUNNEL_PERIOD = timedelta(days=93)
DAILY_FROM = timedelta(days=3)  # a longer period is drawn by day, not by hour
NO_SITE = "sin sede"


@dataclass(frozen=True)
class FunnelDefinition:
    """What the funnel's stages mean for one line (the line gives it, the platform counts).

    ``flow``: the call records' flow name (None: any); ``booked``/``redirected``:
    call outcomes; ``chat_booked``: conversation outcomes; the target segment is
    ``variables[segment_variable] == target_segment``; the site is
    ``variables[site_variable]``."""

    flow: str | None
    booked: frozenset[str]
    redirected: frozenset[str]
    chat_booked: frozenset[str]
    segment_variable: str = "segment"
    target_segment: str = "target"
    site_variable: str = "site_id"


STAGES: tuple[tuple[str, str], ...] = (
    ("target", "Llamantes objetivo"),
    ("booked_phone", "Agendaron por teléfono"),
    ("redirected", "Redirigidos a WhatsApp"),
    ("chats", "Iniciaron el chat"),
    ("booked_chat", "Agendaron en el chat"),
    ("cases", "Casos radicados"),
    ("cases_voice", "Casos radicados en la llamada"),
    ("cases_chat", "Casos radicados en el chat"),
)
"""The funnel's counts in order, with their Spanish names (console, exports)."""


@dataclass
class FunnelCounts:
    target: int = 0
    booked_phone: int = 0
    redirected: int = 0
    chats: int = 0
    booked_chat: int = 0
    cases: int = 0
    cases_voice: int = 0
    cases_chat: int = 0

    def add(self, other: FunnelCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FunnelCell:
    """The counts of the calls that started in one local hour at one site."""

    hour: datetime  # local, aware, the start of the hour
    site: str
    counts: FunnelCounts


@dataclass(frozen=True)
class FlagMarker:
    """A flag change to mark on the timeline (from ``ops_audit``)."""

    at: datetime
    name: str
    action: str
    actor: str
    old: Any
    new: Any
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "name": self.name, "action": self.action,
                "actor": self.actor, "old": self.old, "new": self.new, "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class Funnel:
    """:meth:`FunnelReports.funnel`'s answer; ``cells`` by hour then site."""

    start: datetime
    end: datetime
    site: str | None
    tz: tzinfo
    cells: list[FunnelCell]
    markers: list[FlagMarker] = field(default_factory=list)

    def total(self) -> FunnelCounts:
        return _sum(c.counts for c in self.cells)

    def by_site(self) -> dict[str, FunnelCounts]:
        found: dict[str, FunnelCounts] = {}
        for cell in self.cells:
            found.setdefault(cell.site, FunnelCounts()).add(cell.counts)
        return dict(sorted(found.items()))

    def by_hour_of_day(self) -> list[FunnelCounts]:
        """24 counts: the calls that started at 00:xx, 01:xx … 23:xx local time."""
        found = [FunnelCounts() for _ in range(24)]
        for cell in self.cells:
            found[cell.hour.hour].add(cell.counts)
        return found

    def timeline(self) -> list[tuple[datetime, FunnelCounts]]:
        """Every hour of the period (every day from ``DAILY_FROM`` on), zeros included."""
        daily = self.end - self.start > DAILY_FROM
        step = timedelta(days=1) if daily else timedelta(hours=1)
        local = self.start.astimezone(self.tz)
        first = local.replace(minute=0, second=0, microsecond=0)
        if daily:
            first = first.replace(hour=0)
        slots: dict[datetime, FunnelCounts] = {}
        at = first
        while at < self.end:
            slots[at] = FunnelCounts()
            at = (at.astimezone(UTC) + step).astimezone(self.tz) if not daily else _next_day(at)
        for cell in self.cells:
            key = cell.hour.replace(hour=0) if daily else cell.hour
            slots.setdefault(key, FunnelCounts()).add(cell.counts)
        return sorted(slots.items())

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "site": self.site,
            "stages": [{"key": k, "label": label} for k, label in STAGES],
            "total": self.total().as_json(),
            "by_site": {s: c.as_json() for s, c in self.by_site().items()},
            "by_hour_of_day": [c.as_json() for c in self.by_hour_of_day()],
            "timeline_step": "day" if self.end - self.start > DAILY_FROM else "hour",
            "timeline": [{"at": at.isoformat(), **c.as_json()} for at, c in self.timeline()],
            "cells": [{"hour": c.hour.isoformat(), "site": c.site, **c.counts.as_json()}
                      for c in self.cells],
            "markers": [m.as_json() for m in self.markers],
        }  # fmt: skip


class utc_hour(FunctionElement[str]):
    """``'YYYY-MM-DD HH'`` of a timestamp, in UTC, on SQLite and PostgreSQL."""

    type = String()
    inherit_cache = True


@compiles(utc_hour, "sqlite")
def _utc_hour_sqlite(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps call_records.started_at as UTC text ('2026-11-30 13:05:00.000000').
    return f"strftime('%Y-%m-%d %H', {compiler.process(element.clauses, **kw)})"


@compiles(utc_hour, "postgresql")
def _utc_hour_postgresql(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


class FunnelReports:
    """The funnel queries of one line (read only); ``tz``: the line's time zone."""

    def __init__(self, db: Database, definition: FunnelDefinition, tz: tzinfo) -> None:
        self.db = db
        self.definition = definition
        self.tz = tz

    async def funnel(self, start: datetime, end: datetime, site: str | None = None) -> Funnel:
        """The funnel of the target calls that started in ``[start, end)`` (aware),
        of one site or all, with the flag changes of the period.

        Raises ValueError for naive times, an empty period or one over 93 days;
        StoreUnavailable when the database does not answer in time.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("el periodo necesita horas con zona horaria")
        if not start < end <= start + MAX_FUNNEL_PERIOD:
            raise ValueError(f"el periodo va de 1 hora a {MAX_FUNNEL_PERIOD.days} días")

        async def op(session: AsyncSession) -> Funnel:
            cells = [
                self._cell(row)
                for row in (await session.execute(self._counts(start, end, site))).mappings()
            ]
            cells.sort(key=lambda c: (c.hour, c.site))
            markers = await _markers(session, start, end, self.tz)
            return Funnel(start, end, site, self.tz, cells, markers)

        return await self.db.run("compute the funnel", op, deadline_s=max(self.db.timeout, 30.0))

    def _counts(self, start: datetime, end: datetime, site: str | None) -> Any:
        d = self.definition
        r, cv, cs = CallRecordRow, ConversationRow, CASES.c
        site_of = r.variables[d.site_variable].as_string()
        where = [r.started_at >= start, r.started_at < end,
                 r.variables[d.segment_variable].as_string() == d.target_segment]  # fmt: skip
        if d.flow is not None:
            where.append(r.flow == d.flow)
        if site is not None:
            where.append(site_of == site)

        def distinct_if(condition: Any, key: Any) -> Any:
            return func.count(distinct(case((condition, key))))

        return (
            select(
                utc_hour(r.started_at).label("hour"),
                site_of.label("site"),
                func.count(distinct(r.id)).label("target"),
                distinct_if(r.outcome.in_(d.booked), r.id).label("booked_phone"),
                distinct_if(r.outcome.in_(d.redirected), r.id).label("redirected"),
                func.count(distinct(cv.id)).label("chats"),
                distinct_if(cv.outcome.in_(d.chat_booked), cv.id).label("booked_chat"),
                func.count(distinct(cs.id)).label("cases"),
                distinct_if(cs.channel == "voice", cs.id).label("cases_voice"),
                distinct_if(cs.channel == "chat", cs.id).label("cases_chat"),
            )
            .select_from(
                CallRecordRow.__table__.outerjoin(ConversationRow, cv.journey_id == r.id).outerjoin(
                    CASES, cs.journey_id == r.id
                )
            )
            .where(*where)
            # by the labels: PostgreSQL takes two renderings of a JSON path with
            # their own bound parameters for two different expressions
            .group_by("hour", "site")
        )

    def _cell(self, row: Any) -> FunnelCell:
        hour = datetime.strptime(str(row["hour"]), "%Y-%m-%d %H").replace(tzinfo=UTC)
        counts = FunnelCounts(**{f.name: int(row[f.name]) for f in fields(FunnelCounts)})
        return FunnelCell(hour.astimezone(self.tz), str(row["site"] or NO_SITE), counts)


async def _markers(
    session: AsyncSession, start: datetime, end: datetime, tz: tzinfo
) -> list[FlagMarker]:
    a = AuditRow
    rows = await session.scalars(
        select(a).where(a.at >= start, a.at < end, a.name.is_not(None),
                        a.action.in_(MARKED_ACTIONS)).order_by(a.at, a.id)
    )  # fmt: skip
    return [
        FlagMarker(row.at.astimezone(tz), str(row.name), row.action, row.actor,
                   _unwrap(row.old_value), _unwrap(row.new_value), row.reason)
        for row in rows
    ]  # fmt: skip


def _unwrap(value: Any) -> Any:
    """Audit values are stored as ``{"v": value}`` (``ivr.ops.tables``)."""
    return value.get("v") if isinstance(value, dict) and set(value) == {"v"} else value


def _sum(counts: Iterable[FunnelCounts]) -> FunnelCounts:
    total = FunnelCounts()
    for c in counts:
        total.add(c)
    return total


def _next_day(at: datetime) -> datetime:
    return (at.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=at.tzinfo)


def funnel_definition(
    flow: str | None, *, booked: Collection[str], redirected: Collection[str],
    chat_booked: Collection[str],
) -> FunnelDefinition:  # fmt: skip
    """A :class:`FunnelDefinition` from any collections of outcome names."""
    return FunnelDefinition(flow, frozenset(booked), frozenset(redirected), frozenset(chat_booked))
