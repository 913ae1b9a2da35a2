"""The dashboard's routes (``ivr.cases.reports_http``) on the ops API, over a real socket
(aiohttp TestServer) and real databases (SQLite, PostgreSQL): a viewer reads the
figures, the funnel and the options; the CSV and XLSX downloads are files a
spreadsheet opens, safe; a bad period, an unknown dimension or parameter is refused
(422, Spanish message) and nothing but a token reads them (401); the routes are in
the OpenAPI document and their answers match its schemas."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.cases.calendar import BusinessCalendar
from ivr.cases.funnel import FunnelReports
from ivr.cases.reports import CaseReports
from ivr.cases.reports_http import ReportRoutes, reports_extension
from ivr.citas.flags import flag_registry
from ivr.citas.funnel import CITAS_FUNNEL
from ivr.citas.reference import load_reference
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from ivr.xlsx_export import read_back
from tests.unit import cases_report_tables as t
from tests.unit.cases_report_seed import (
    AUDIT,
    BOGOTA,
    CALLS,
    add_rows,
    audit,
    call,
    case,
    local,
)

BOOTSTRAP = Actor("cli:test", Role.ADMIN)
NOW = local(2026, 11, 30, 12, 0)
CALENDAR = BusinessCalendar.standard()


@dataclass
class Api:
    client: TestClient[Any, Any]
    token: str
    document: dict[str, Any]

    async def get(self, path: str, token: str | None = "viewer") -> ClientResponse:
        headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        return await self.client.get(path, headers=headers)


@pytest.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    token = await service.create_token(BOOTSTRAP, "vera", Role.VIEWER, "pruebas")
    figures = CaseReports(db, lambda group: CALENDAR, BOGOTA, clock=lambda: NOW)
    routes = ReportRoutes(
        figures, FunnelReports(db, CITAS_FUNNEL, BOGOTA), BOGOTA, groups=lambda: ["citas"]
    )
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[reports_extension(routes)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        document = await (await client.get("/api/openapi.json")).json()
        yield Api(client, token, document)


async def seed(db: Database) -> None:
    filed = local(2026, 11, 26, 9, 0)
    await add_rows(db, t.CASES, [
        case(filed, site="=HYPERLINK(\"http://x\",\"y\")", assignee="@SUM(A1:A9)", group="citas",
             first_response_at=local(2026, 11, 26, 10, 0)),
        case(local(2026, 11, 30, 8, 0), site="norte", assignee="ana"),
        case(local(2026, 10, 1, 8, 0), site="sur"),  # outside the default 7 days
    ])  # fmt: skip
    await add_rows(
        db, CALLS, [call(local(2026, 11, 30, 8, 0), site="+cmd"), call(local(2026, 11, 30, 9, 0))]
    )
    await add_rows(
        db, AUDIT, [audit(local(2026, 11, 30, 8, 30), "set", "promo_audio", True, False)]
    )


async def test_the_figures_of_the_last_seven_days_by_default(api: Api, db: Database) -> None:
    await seed(db)
    response = await api.get("/api/reports/figures")
    assert response.status == 200
    body = await response.json()
    assert (body["start"], body["end"]) == (local(2026, 11, 24, 0, 0).astimezone(BOGOTA).isoformat(),
                                            local(2026, 12, 1, 0, 0).astimezone(BOGOTA).isoformat())  # fmt: skip
    assert body["rows"][0]["key"] == "2026-11-24" and len(body["rows"]) == 7
    assert body["total"]["cases"] == 2 and body["total"]["first_response_avg_s"] == 3600
    assert body["columns"][0]["label"] == "Casos radicados"


@pytest.mark.parametrize(("query", "cases"), [
    ("by=site", 2), ("by=person&person=ana", 1), ("by=month&from=2026-10-01&to=2026-11-30", 3),
    ("by=group&group=citas&site=norte", 1), ("from=2026-11-30&to=2026-11-30", 1),
])  # fmt: skip
async def test_dimensions_filters_and_periods(
    api: Api, db: Database, query: str, cases: int
) -> None:
    await seed(db)
    response = await api.get(f"/api/reports/figures?{query}")
    assert response.status == 200, await response.text()
    assert (await response.json())["total"]["cases"] == cases


async def test_the_headline_funnel_and_options(api: Api, db: Database) -> None:
    await seed(db)
    headline = await (await api.get("/api/reports/headline")).json()
    assert (headline["today"], headline["open"]) == (1, 3)
    funnel = await (await api.get("/api/reports/funnel?from=2026-11-30&to=2026-11-30")).json()
    assert funnel["total"]["target"] == 2 and set(funnel["by_site"]) == {"+cmd", "norte"}
    assert funnel["timeline_step"] == "hour" and len(funnel["timeline"]) == 24
    assert [m["name"] for m in funnel["markers"]] == ["promo_audio"]
    only = await (
        await api.get("/api/reports/funnel?from=2026-11-30&to=2026-11-30&site=norte")
    ).json()
    assert only["total"]["target"] == 1
    options = await (await api.get("/api/reports/options")).json()
    assert options == {"groups": ["citas"], "sites": sorted(['=HYPERLINK("http://x","y")', "norte", "sur"]),
                       "people": sorted(["@SUM(A1:A9)", "ana"])}  # fmt: skip


async def test_the_csv_downloads_are_safe(api: Api, db: Database) -> None:
    await seed(db)
    response = await api.get("/api/reports/figures?by=site&format=csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert (
        "attachment; filename=citas-indicadores-2026-11-24-a-2026-11-30.csv"
        == response.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0][:2] == ["Sede", "Casos radicados"]
    assert ['\'=HYPERLINK("http://x","y")', "1"] == rows[1][:2] and rows[-1][:2] == ["Total", "2"]
    funnel = await api.get("/api/reports/funnel?from=2026-11-30&to=2026-11-30&format=csv")
    lines = list(csv.reader(io.StringIO(await funnel.text())))
    assert lines[0][:2] == ["Hora de la llamada (local)", "Sede"]
    assert ["2026-11-30 08:00", "'+cmd"] == lines[1][:2]


async def test_the_xlsx_download_is_a_safe_workbook(api: Api, db: Database) -> None:
    await seed(db)
    response = await api.get("/api/reports/export?by=person")
    assert response.status == 200
    assert (
        response.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["Content-Disposition"].endswith(
        "citas-tablero-2026-11-24-a-2026-11-30.xlsx"
    )
    book = read_back(await response.read())
    people = [r[0] for r in book["Indicadores"][1:]]
    assert people == ["'@SUM(A1:A9)", "ana", "Total"]
    assert [r[0] for r in book["Embudo por sede"][1:]] == ["'+cmd", "norte", "Total"]


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-11-30&to=2026-11-01", "from"), ("from=2025-01-01&to=2026-11-30", "from"),
    ("from=30-11-2026", "from"), ("by=year", "by"), ("format=pdf", "format"), ("sede=norte", "sede"),
    ("group=", "group"),
])  # fmt: skip
async def test_a_bad_question_is_refused_in_spanish(api: Api, query: str, field: str) -> None:
    response = await api.get(f"/api/reports/figures?{query}")
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "invalid_parameter" and field in body["message"] + str(body["details"])
    assert any(word in body["message"] for word in ("parámetro", "periodo"))


async def test_the_funnel_period_is_at_most_93_days(api: Api) -> None:
    response = await api.get("/api/reports/funnel?from=2026-08-01&to=2026-11-30")
    assert response.status == 422 and "93" in (await response.json())["message"]


@pytest.mark.parametrize("path", ["/api/reports/headline", "/api/reports/figures", "/api/reports/funnel",
                                  "/api/reports/export", "/api/reports/options"])  # fmt: skip
async def test_every_route_needs_a_token_and_is_documented(api: Api, path: str) -> None:
    assert (await api.get(path, token=None)).status == 401
    operation = api.document["paths"][path]["get"]
    assert operation["tags"] == ["reports"]


async def test_the_page_is_served_and_linked(api: Api) -> None:
    page = await api.client.get("/console/tablero.html")
    assert page.status == 200 and "Tablero" in await page.text()
    for name in ("tablero.js", "tablero.css"):
        assert (await api.client.get(f"/console/{name}")).status == 200
    pages = await (await api.client.get("/api/console/pages")).json()
    assert {"file": "tablero.html", "title": "Tablero", "href": "/console/tablero.html"} in pages[
        "pages"
    ]
