"""Real rows for the report tests: call records, conversations, cases and the rest,
written with plain INSERTs into a migrated database (SQLite or PostgreSQL)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text

from ivr.cases.number import format_number
from ivr.chat.tables import ConversationRow
from ivr.ops.tables import AuditRow
from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from tests.unit.databases import migrated_database

BOGOTA = ZoneInfo("America/Bogota")
_ids = itertools.count(1)


def local(*args: int) -> datetime:
    """A Bogotá wall time as an aware UTC datetime."""
    return datetime(*args, tzinfo=BOGOTA).astimezone(UTC)  # type: ignore[misc]


def new_id() -> str:
    return str(uuid.uuid4())


@asynccontextmanager
async def report_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database, empty."""
    async with migrated_database(backend, tmp_path) as db:
        yield db


async def add_rows(db: Database, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        async with db.engine.begin() as conn:
            await conn.execute(insert(table), list(rows))


async def empty(db: Database, *tables: str) -> None:
    async with db.engine.begin() as conn:
        for name in tables:
            await conn.execute(text(f"DELETE FROM {name}"))


def call(
    started_at: datetime,
    *,
    site: str | None = "norte",
    segment: str | None = "target",
    outcome: str | None = "booked",
    flow: str = "citas",
    call_id: str | None = None,
) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if site is not None:
        variables["site_id"] = site
    if segment is not None:
        variables["segment"] = segment
    return {
        "id": call_id or new_id(), "channel_id": f"chan-{next(_ids)}", "sip_call_id": None,
        "flow": flow, "caller_number": "+573001112233", "started_at": started_at,
        "ended_at": started_at + timedelta(minutes=2), "outcome": outcome, "end_reason": "hangup",
        "steps": 3, "path": [], "variables": variables,
    }  # fmt: skip


def conversation(journey_id: str | None, outcome: str | None, at: datetime) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": new_id(), "wa_id": f"57300{n:07d}", "flow": "citas", "node": None, "attempt": 0,
        "variables": {}, "state": "closed", "outcome": outcome, "assigned_agent": None,
        "journey_id": journey_id, "last_inbound_at": at, "last_activity_at": at, "version": 1,
        "created_at": at, "updated_at": at,
    }  # fmt: skip


def case(
    filed_at: datetime,
    *,
    group: str = "citas",
    site: str = "norte",
    assignee: str | None = None,
    channel: str = "voice",
    journey_id: str | None = None,
    first_response_due_at: datetime | None = None,
    resolution_due_at: datetime | None = None,
    first_response_at: datetime | None = None,
    closed_at: datetime | None = None,
    case_id: str | None = None,
) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": case_id or new_id(), "number": format_number(n), "seq": n, "affiliate_id": f"af-{n}",
        "consent": True, "search_evidence": [], "priority": "normal", "updated_at": filed_at,
        "version": 1,
        "specialty": "general", "service_id": "general_first", "cups": "890201", "site_id": site,
        "channel": channel, "journey_id": journey_id, "summary": "Sin cupo", "group": group,
        "state": "closed" if closed_at else ("answered" if first_response_at else "open"),
        "assignee": assignee, "filed_at": filed_at, "due_at": filed_at + timedelta(days=7),
        "first_response_due_at": first_response_due_at or filed_at + timedelta(hours=8),
        "resolution_due_at": resolution_due_at or filed_at + timedelta(days=7),
        "first_response_at": first_response_at, "answered_at": first_response_at,
        "closed_at": closed_at,
    }  # fmt: skip


def event(
    case_id: str, at: datetime, action: str = "sla_warning", percent: int = 50
) -> dict[str, Any]:
    return {"case_id": case_id, "at": at, "actor": "sistema", "role": "system", "action": action,
            "old": None, "new": {"clock": "first_response", "percent": percent}, "detail": ""}  # fmt: skip


_STEPS = itertools.count()


def attempt(
    case_id: str, started_at: datetime, person: str, result: str, *, acknowledged: bool = False
) -> dict[str, Any]:
    kind = {"skipped_quiet_hours": "skip", "suppressed_duplicate": "dup"}.get(result, "call")
    return {
        "id": new_id(), "case_id": case_id, "clock": "first_response", "kind": kind,
        "step": next(_STEPS),  # (case, clock, step, kind) is unique (migration 0008)
        "person": person, "extension": "6001", "started_at": started_at,
        "answered_at": started_at + timedelta(seconds=5) if acknowledged else None,
        "acknowledged_at": started_at + timedelta(seconds=9) if acknowledged else None,
        "result": result, "detail": "",
    }  # fmt: skip


def survey(
    answered_at: datetime | None, rating: int | None, *, case_id: str | None = None,
    agent: str | None = None, state: str = "answered", kind: str = "case",
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": new_id(), "kind": kind, "case_id": case_id, "call_id": None, "journey_id": None,
        "agent": agent, "channel": "whatsapp" if kind == "case" else "voice", "state": state,
        "rating": rating, "comment": None, "sent_at": answered_at, "answered_at": answered_at,
        # the surveys part's own bookkeeping (migration 0009)
        "step": "done" if state == "answered" else "rating", "attempts": 0,
        "created_at": answered_at or datetime(2026, 11, 1, tzinfo=UTC),
    }  # fmt: skip


def analysis(
    subject: str, subject_id: str, score: float, label: str, at: datetime
) -> dict[str, Any]:
    return {"id": new_id(), "subject": subject, "subject_id": subject_id, "score": score,
            "label": label, "words": [], "keywords": [], "at": at}  # fmt: skip


def audit(
    at: datetime, action: str, name: str | None, old: Any = None, new: Any = None
) -> dict[str, Any]:
    return {"at": at, "actor": "token:ada", "role": "operator", "action": action, "name": name,
            "old_value": {"v": old}, "new_value": {"v": new}, "reason": "prueba", "window_id": None}  # fmt: skip


CALLS = CallRecordRow.__table__
CONVERSATIONS = ConversationRow.__table__
AUDIT = AuditRow.__table__
