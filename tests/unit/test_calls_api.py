"""``GET /api/calls/summary`` of the ops API over a real socket (aiohttp TestServer)
and a real database (SQLite and PostgreSQL): the viewer's counts from real rows,
the answer valid against the OpenAPI document, the refusals (no token, unknown query
parameter, a process without call records)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import BodyValidator, openapi_document
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from ivr.store.records import CallRecordStore

BOOTSTRAP = Actor("cli:test", Role.ADMIN)
PATH = "/api/calls/summary"


@dataclass
class Console:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    bodies: BodyValidator

    async def get(self, who: str | None, path: str = PATH) -> ClientResponse:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return await self.client.get(path, headers=headers)


async def _tokens(db: Database) -> tuple[FlagService, dict[str, str]]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {role.label: await service.create_token(BOOTSTRAP, role.label, role, "pruebas")
              for role in Role}  # fmt: skip
    return service, tokens


@pytest.fixture
async def console(db: Database) -> AsyncIterator[Console]:
    service, tokens = await _tokens(db)
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        calls=CallRecordStore(db))  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Console(client, tokens, BodyValidator(openapi_document(service.registry)))


async def _seed(db: Database, now: datetime) -> None:
    # (started before now, ended before now, outcome)
    rows = [
        (timedelta(minutes=1), None, None),  # in progress
        (timedelta(minutes=3), None, None),  # in progress
        (timedelta(hours=3), None, None),  # interrupted: no end after 2 h
        (timedelta(hours=1), timedelta(minutes=50), "transferred"),
        (timedelta(hours=1), timedelta(minutes=50), "transferred"),
        (timedelta(hours=5), timedelta(hours=4), "booked"),
        (timedelta(hours=30), timedelta(hours=29), "booked"),  # outside the 24 h
    ]
    async with db.sessions.begin() as session:
        for n, (started, ended, outcome) in enumerate(rows):
            session.add(CallRecordRow(
                id=f"00000000-0000-0000-0000-{n:012d}", channel_id=f"chan-{n}", sip_call_id=None,
                flow="citas", caller_number="3001234567", started_at=now - started,
                ended_at=None if ended is None else now - ended, outcome=outcome,
                end_reason=None, steps=0, path=[], variables={},
            ))  # fmt: skip


async def test_a_viewer_gets_the_counts_of_real_calls(console: Console, db: Database) -> None:
    empty = await console.get("viewer")
    assert empty.status == 200, await empty.text()
    body = await empty.json()
    assert console.bodies.problems("CallSummary", body) == []
    assert (body["in_progress"], body["by_outcome"], body["window_hours"]) == (0, {}, 24)

    before = datetime.now(UTC)
    await _seed(db, before)
    response = await console.get("viewer")
    body = await response.json()
    assert response.status == 200, body
    assert console.bodies.problems("CallSummary", body) == []
    assert body["in_progress"] == 2
    assert body["by_outcome"] == {"transferred": 2, "booked": 1, "interrupted": 1}
    as_of = datetime.fromisoformat(body["as_of"])
    assert before <= as_of <= datetime.now(UTC)
    assert as_of - datetime.fromisoformat(body["since"]) == timedelta(hours=24)
    assert "3001234567" not in await response.text()


@pytest.mark.parametrize(
    ("who", "path", "status", "error"),
    [
        (None, PATH, 401, "unauthorized"),
        ("viewer", PATH + "?window=48", 422, "invalid_parameter"),  # a misspelt filter, refused
        ("admin", PATH + "?active=true", 422, "invalid_parameter"),
    ],
)
async def test_refusals(console: Console, who: str | None, path: str, status: int, error: str) -> None:  # fmt: skip
    response = await console.get(who, path)
    body = await response.json()
    assert (response.status, body["error"]) == (status, error), body
    assert console.bodies.problems("Error", body) == []


async def test_a_process_without_call_records_answers_404(db: Database) -> None:
    service, tokens = await _tokens(db)
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True})
    async with TestClient(TestServer(app)) as client:
        response = await client.get(PATH, headers={"Authorization": f"Bearer {tokens['viewer']}"})
        body = await response.json()
    assert response.status == 404 and body["error"] == "not_found", body


def test_the_route_is_in_the_openapi_document_for_viewers() -> None:
    doc = openapi_document(flag_registry(load_reference()))
    get = doc["paths"][PATH]["get"]
    assert get["x-min-role"] == "viewer"
    assert get["operationId"] == "call_summary"
    assert "CallSummary" in doc["components"]["schemas"]
