"""Call records: every call's path (nodes, prompts, digits, decisions, outcome).

The record is written when the call starts and again when it ends, so a call
always leaves a row even if the controller dies mid-call (its outcome is then
empty, which reports show as "interrupted").
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from ivr.store.db import Database, StoreUnavailable
from ivr.store.models import CallRecordRow


@dataclass(frozen=True)
class PathStep:
    """One thing that happened on a call, in order."""

    at: float
    kind: str  # node, prompt, digits, decision, transfer, hangup, error ...
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "kind": self.kind, **self.detail}


@dataclass
class CallRecord:
    id: str
    channel_id: str
    flow: str
    sip_call_id: str | None
    caller_number: str | None
    started_at: datetime
    path: list[PathStep] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None

    def step(self, kind: str, **detail: Any) -> None:
        elapsed = (datetime.now(UTC) - self.started_at).total_seconds()
        self.path.append(PathStep(elapsed, kind, detail))


class CallRecordStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(
        self, *, channel_id: str, flow: str, sip_call_id: str | None, caller_number: str | None
    ) -> CallRecord:
        record = CallRecord(
            id=str(uuid.uuid4()),
            channel_id=channel_id,
            flow=flow,
            sip_call_id=sip_call_id,
            caller_number=caller_number,
            started_at=datetime.now(UTC),
        )
        await self._write(record, insert=True)
        return record

    async def close(self, record: CallRecord, *, outcome: str, reason: str) -> None:
        record.outcome = outcome
        record.end_reason = reason
        record.ended_at = datetime.now(UTC)
        await self._write(record, insert=False)

    async def _write(self, record: CallRecord, *, insert: bool) -> None:
        try:
            async with asyncio.timeout(self.db.timeout), self.db.sessions.begin() as session:
                if insert:
                    row = CallRecordRow(id=record.id)
                    session.add(row)
                else:
                    found = await session.get(CallRecordRow, record.id)
                    row = found if found is not None else CallRecordRow(id=record.id)
                    if found is None:
                        session.add(row)
                row.channel_id = record.channel_id
                row.sip_call_id = record.sip_call_id
                row.flow = record.flow
                row.caller_number = record.caller_number
                row.started_at = record.started_at
                row.ended_at = record.ended_at
                row.outcome = record.outcome
                row.end_reason = record.end_reason
                row.steps = len(record.path)
                row.path = [s.as_json() for s in record.path]
                row.variables = dict(record.variables)
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"cannot write call record {record.id}: {exc}") from exc

    async def find_by_sip_call_id(self, sip_call_id: str) -> list[CallRecordRow]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(CallRecordRow)
                .where(CallRecordRow.sip_call_id == sip_call_id)
                .order_by(CallRecordRow.started_at)
            )
            return list(rows)

    async def recent(self, limit: int = 20) -> list[CallRecordRow]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(CallRecordRow).order_by(CallRecordRow.started_at.desc()).limit(limit)
            )
            return list(rows)
