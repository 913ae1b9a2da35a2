"""The desk reports' routes (``ivr.desk.reports_http``) on the ops API, over a real socket
(aiohttp TestServer) and real databases (SQLite, PostgreSQL): a viewer reads each
report for a period of Bogotá days; the CSV and XLSX downloads hold the same figures
and are formula-safe; a bad period, report or parameter is refused (422) and nothing
but a token reads them (401); the routes are in the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.controller import ops_extensions
from ivr.desk.reports import REPORTS, DeskReports
from ivr.desk.reports_http import DeskReportRoutes, desk_reports_extension
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.settings import Settings
from ivr.store.db import Database
from ivr.xlsx_export import read_back
from tests.unit.test_desk_reports_db import (
    BOGOTA,
    NOW,
    PLAN,
    add_contacts,
    contact_row,
    day,
    db,
    seeded,
)

__all__ = ["db"]  # the module's database fixture: desk tables emptied on each backend

BOOTSTRAP = Actor("cli:test", Role.ADMIN)


@dataclass
class Api:
    client: TestClient[Any, Any]
    token: str
    document: dict[str, Any]

    async def get(self, path: str, token: bool = True) -> ClientResponse:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        return await self.client.get(path, headers=headers)


@pytest.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    token = await service.create_token(BOOTSTRAP, "vera", Role.VIEWER, "pruebas")
    routes = DeskReportRoutes(DeskReports(db, BOGOTA, clock=lambda: NOW), BOGOTA)
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[desk_reports_extension(routes)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        document = await (await client.get("/api/openapi.json")).json()
        yield Api(client, token, document)


WEEK = "from=2026-11-23&to=2026-11-29"


async def test_each_report_for_a_week_of_bogota_days(api: Api, db: Database) -> None:
    await seeded(db)
    for name in REPORTS:
        response = await api.get(f"/api/desk/reports/{name}?{WEEK}")
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["report"] == name
        assert (body["start"], body["end"]) == (day(date(2026, 11, 23)).isoformat(),
                                                day(date(2026, 11, 30)).isoformat())  # fmt: skip
    levels = await (await api.get(f"/api/desk/reports/levels?{WEEK}&within=10")).json()
    assert levels["within_s"] == 10 and levels["total"]["contacts"] == 150
    reasons = await (await api.get(f"/api/desk/reports/reasons?{WEEK}&agent=7001")).json()
    assert reasons["filters"] == {"agent": "7001", "site": None}
    assert reasons["contacts"] == sum(1 for c in PLAN.contacts if c.agent == "7001")
    assert list(reasons["by_key"]) == [f"2026-11-{d}" for d in range(23, 30)]


async def test_the_default_period_is_the_last_seven_days(api: Api, db: Database) -> None:
    body = await (await api.get("/api/desk/reports/reasons")).json()
    today = NOW.astimezone(BOGOTA).date()
    assert body["start"] == day(today - timedelta(days=6)).isoformat()
    assert body["end"] == day(today + timedelta(days=1)).isoformat()


async def test_the_csv_and_the_workbook_hold_the_figures(api: Api, db: Database) -> None:
    await seeded(db)
    levels = await (await api.get(f"/api/desk/reports/levels?{WEEK}")).json()
    response = await api.get(f"/api/desk/reports/levels/export?{WEEK}&format=csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert (
        "escritorio-levels-2026-11-23-a-2026-11-29.csv" in response.headers["Content-Disposition"]
    )
    header, *rows = list(csv.reader(io.StringIO(await response.text())))
    assert header[:3] == ["Nivel", "Cola", "Contactos"] and "% atendidos en ≤ 20 s" in header
    total = dict(zip(header, rows[-1], strict=True))
    assert (total["Nivel"], total["Contactos"]) == ("Total", str(levels["total"]["contacts"]))
    response = await api.get(f"/api/desk/reports/mismatch/export?{WEEK}&format=xlsx")
    assert response.status == 200
    book = read_back(await response.read())
    assert list(book) == [
        "Cruce IVR-asesor",
        "Matriz",
        "Por motivo del IVR",
        "Principales desajustes",
    ]
    mismatch = await (await api.get(f"/api/desk/reports/mismatch?{WEEK}")).json()
    per_reason = {r[0]: r for r in book["Por motivo del IVR"][1:]}
    for r in mismatch["by_ivr_reason"]:
        assert per_reason[r["ivr_reason"]][4] == r["mismatched"]


async def test_text_that_looks_like_a_formula_is_neutralised(api: Api, db: Database) -> None:
    answered = day(date(2026, 11, 24)) + timedelta(hours=9)
    await add_contacts(db, [contact_row("c-1", answered, agent_name="@SUM(A1:A9)", state="escalated",
                                        escalated_at=answered + timedelta(minutes=2),
                                        escalation_reason='=HYPERLINK("http://x","y")')])  # fmt: skip
    for form in ("csv", "xlsx"):
        agents = await api.get(f"/api/desk/reports/agents/export?{WEEK}&format={form}")
        levels = await api.get(f"/api/desk/reports/levels/export?{WEEK}&format={form}")
        assert agents.status == levels.status == 200
        if form == "csv":
            agent_rows = list(csv.reader(io.StringIO(await agents.text())))
            level_rows = list(csv.reader(io.StringIO(await levels.text())))
        else:
            agent_rows = read_back(await agents.read())["Asesores"]  # type: ignore[assignment]
            level_rows = read_back(await levels.read())["Niveles de servicio"]  # type: ignore[assignment]
        assert agent_rows[1][:2] == ["7001", "'@SUM(A1:A9)"], form
        reasons = level_rows[0].index("Motivos de escalamiento")
        assert level_rows[1][reasons] == '\'=HYPERLINK("http://x","y"): 1', form


@pytest.mark.parametrize(("path", "status"), [
    ("/api/desk/reports/reasons?from=2026-11-30&to=2026-11-01", 422),
    ("/api/desk/reports/reasons?from=2025-01-01&to=2026-11-30", 422),
    ("/api/desk/reports/reasons?by=week", 422),
    ("/api/desk/reports/levels?within=-1", 422),
    ("/api/desk/reports/levels?within=abc", 422),
    ("/api/desk/reports/levels?nope=1", 422),
    ("/api/desk/reports/unknown", 422),
    ("/api/desk/reports/levels/export?format=pdf", 422),
])  # fmt: skip
async def test_questions_that_cannot_be_answered_are_refused(
    api: Api, path: str, status: int
) -> None:
    response = await api.get(path)
    assert response.status == status, await response.text()
    assert (await response.json())["error"] == "invalid_parameter"


async def test_no_token_no_report(api: Api) -> None:
    for path in ("/api/desk/reports/levels", "/api/desk/reports/levels/export?format=csv"):
        assert (await api.get(path, token=False)).status == 401


def test_the_routes_are_in_the_openapi_document(api: Api) -> None:
    paths = api.document["paths"]
    assert set(paths["/api/desk/reports/{report}"]) == {"get"}
    export = paths["/api/desk/reports/{report}/export"]["get"]
    assert {p["name"] for p in export["parameters"]} >= {
        "report",
        "from",
        "to",
        "agent",
        "site",
        "format",
    }
    assert "DeskReport" in api.document["components"]["schemas"]


async def test_the_composition_root_adds_the_page(tmp_path: Path) -> None:
    settings = Settings.from_env({"CITAS_STATE_DIR": str(tmp_path)})
    database = Database(settings.database_url)
    try:
        pages = [
            (e.name, p.title, p.file) for e in ops_extensions(settings, database) for p in e.pages
        ]
    finally:
        await database.close()
    assert ("desk-reports", "Reportes del escritorio", "reportes-escritorio.html") in pages
