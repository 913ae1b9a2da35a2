"""Keyword lists and incident reports over the ops API (the extension hook), over a real
socket (aiohttp TestServer) and a real database (SQLite; PostgreSQL with CITAS_TEST_PG_URL)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.incidents.http import incident_extension
from ivr.incidents.store import IncidentReportStore
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from ivr.text.http import keyword_extension
from ivr.text.keyword_store import KeywordStore
from ivr.xlsx_export import XLSX_MEDIA_TYPE

BOOTSTRAP = Actor("cli:test", Role.ADMIN)


@dataclass
class Ops:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    keywords: KeywordStore

    async def call(self, role: str | None, method: str, path: str, body: Any = None) -> ClientResponse:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return await self.client.request(method, path, headers=headers, json=body)


async def json_of(response: ClientResponse, status: int) -> Any:
    body = await response.json()
    assert response.status == status, body
    return body


@pytest.fixture
async def ops(db: Database) -> AsyncIterator[Ops]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {
        role.label: await service.create_token(BOOTSTRAP, role.label, role, "pruebas")
        for role in Role
    }
    keywords = KeywordStore(db)
    extensions = [
        keyword_extension(keywords),
        incident_extension(IncidentReportStore(db, check_cases=False)),
    ]
    app = build_ops_app(service, Metrics(), readiness=lambda: {"db": True}, extensions=extensions)
    async with TestClient(TestServer(app)) as client:
        yield Ops(client, tokens, keywords)


# --- keywords ------------------------------------------------------------------------------
async def test_an_admin_edits_the_lists_and_a_viewer_reads_them(ops: Ops) -> None:
    created = await json_of(await ops.call("admin", "POST", "/api/keyword-lists",
                                           {"name": "Jurídico", "reason": "inicio"}), 201)  # fmt: skip
    keyword = await json_of(await ops.call("admin", "POST", f"/api/keyword-lists/{created['id']}/keywords",
                                           {"phrase": "tutela", "raises_priority": True, "reason": "plan"}), 201)  # fmt: skip
    assert (keyword["list"], keyword["raises_priority"]) == ("Jurídico", True)
    changed = await json_of(await ops.call("admin", "PUT", f"/api/keywords/{keyword['id']}",
                                           {"raises_priority": False, "reason": "revisión"}), 200)  # fmt: skip
    assert changed["raises_priority"] is False
    lists = await json_of(await ops.call("viewer", "GET", "/api/keyword-lists"), 200)
    assert [(x["name"], [k["phrase"] for k in x["keywords"]]) for x in lists["lists"]] == [
        ("Jurídico", ["tutela"])
    ]
    audit = await json_of(await ops.call("viewer", "GET", "/api/keyword-audit?limit=10"), 200)
    assert [e["action"] for e in audit["entries"]] == [
        "keyword_changed",
        "keyword_added",
        "list_created",
    ]
    assert audit["entries"][0]["reason"] == "revisión" and audit["entries"][0]["actor"] == "token:admin"
    await json_of(await ops.call("admin", "DELETE", f"/api/keywords/{keyword['id']}", {"reason": "x"}), 200)  # fmt: skip
    await json_of(await ops.call("admin", "DELETE", f"/api/keyword-lists/{created['id']}", {"reason": "x"}), 200)  # fmt: skip
    assert (await json_of(await ops.call("viewer", "GET", "/api/keyword-lists"), 200))[
        "lists"
    ] == []


REFUSED = [
    ("no token", None, "POST", "/api/keyword-lists", {"name": "A", "reason": "r"}, 401, "unauthorized"),
    ("operator", "operator", "POST", "/api/keyword-lists", {"name": "A", "reason": "r"}, 403, "forbidden"),
    ("no reason", "admin", "POST", "/api/keyword-lists", {"name": "A"}, 422, "invalid_body"),
    ("blank reason", "admin", "POST", "/api/keyword-lists", {"name": "A", "reason": "  "}, 422, "invalid_body"),
    ("unknown field", "admin", "POST", "/api/keyword-lists", {"name": "A", "reason": "r", "x": 1}, 422, "invalid_body"),
    ("duplicate", "admin", "POST", "/api/keyword-lists", {"name": "Legal", "reason": "r"}, 422, "invalid"),
    ("no such list", "admin", "POST", "/api/keyword-lists/nope/keywords", {"phrase": "x", "raises_priority": True, "reason": "r"}, 404, "not_found"),
    ("punctuation only", "admin", "POST", "/api/keyword-lists/{id}/keywords", {"phrase": "¡¡", "raises_priority": True, "reason": "r"}, 422, "invalid_body"),
    ("same stems", "admin", "POST", "/api/keyword-lists/{id}/keywords", {"phrase": "TUTELAS", "raises_priority": True, "reason": "r"}, 422, "invalid"),
    ("no such keyword", "admin", "PUT", "/api/keywords/nope", {"raises_priority": True, "reason": "r"}, 404, "not_found"),
    ("bad limit", "viewer", "GET", "/api/keyword-audit?limit=0", None, 422, "invalid_parameter"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "role", "method", "path", "body", "status", "error"), REFUSED, ids=[r[0] for r in REFUSED])  # fmt: skip
async def test_a_refused_keyword_request_changes_nothing(
    ops: Ops,
    case: str,
    role: str | None,
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    legal = await ops.keywords.create_list(BOOTSTRAP, "Legal", "", "r")
    await ops.keywords.add_keyword(BOOTSTRAP, legal.id, "tutela", raises_priority=True, reason="r")
    before = (await ops.keywords.lists(), await ops.keywords.history())
    answer = await json_of(
        await ops.call(role, method, path.replace("{id}", legal.id), body), status
    )
    assert answer["error"] == error and answer["message"]
    assert (await ops.keywords.lists(), await ops.keywords.history()) == before


async def test_trying_a_text_shows_the_sentiment_and_the_keywords(ops: Ops) -> None:
    legal = await ops.keywords.create_list(BOOTSTRAP, "Legal", "", "r")
    await ops.keywords.add_keyword(BOOTSTRAP, legal.id, "tutela", raises_priority=True, reason="r")
    result = await json_of(await ops.call("viewer", "POST", "/api/text/analyse",
                                          {"text": "Nadie responde: pondré una TUTELA"}), 200)  # fmt: skip
    assert result["label"] == "negativo" and result["raises_priority"] == "palabra clave: tutela"
    assert [k["written"] for k in result["keywords"]] == ["TUTELA"]
    assert result["words"][0] == {"text": "Nadie responde", "weight": -0.8}


async def test_the_pages_are_served_and_linked_from_the_console(ops: Ops) -> None:
    for name, media in (("keywords.html", "text/html"), ("keywords.js", "text/javascript"),
                        ("incidents.html", "text/html"), ("incidents.js", "text/javascript")):  # fmt: skip
        response = await ops.client.get(f"/console/{name}")
        assert response.status == 200 and response.content_type == media
        assert "Content-Security-Policy" in response.headers
    pages = await json_of(await ops.call("viewer", "GET", "/api/console/pages"), 200)
    titles = {p["title"] for p in pages["pages"]}
    assert {"Palabras clave", "Reportes de incidente"} <= titles


async def test_the_openapi_document_describes_the_routes(ops: Ops) -> None:
    doc = await json_of(await ops.client.get("/api/openapi.json"), 200)
    for path in ("/api/keyword-lists", "/api/keywords/{id}", "/api/incident-reports",
                 "/api/incident-reports/{id}", "/api/text/analyse"):  # fmt: skip
        assert path in doc["paths"]
    assert "IncidentReportCreate" in doc["components"]["schemas"]


# --- incident reports ---------------------------------------------------------------------------
def form(**changes: Any) -> dict[str, Any]:
    base = {
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "channels": ["telefono"],
        "description": "No carga el agendador",
        "error_message": "@SUM(1+1)*cmd|' /C calc'!A0",
        "consent": True, "document_type": "CC", "document": "1020304050",
        "affiliate_name": "Ana María Rojas", "affiliate_phone": "3001234567",
    }  # fmt: skip
    return {**base, **changes}


async def test_an_operator_files_a_report_a_viewer_sees_it_masked(ops: Ops) -> None:
    filed = await json_of(await ops.call("operator", "POST", "/api/incident-reports", form()), 201)
    assert filed["document"] == "1020304050" and filed["affiliate_phone"] == "+573001234567"
    assert filed["incident"]["active"] is False and filed["reported_by"] == "token:operator"
    listed = await json_of(await ops.call("viewer", "GET", "/api/incident-reports"), 200)
    [shown] = listed["reports"]
    assert (shown["document"], shown["affiliate_name"], shown["masked"]) == ("*******050", "Ana M. R.", True)  # fmt: skip
    as_viewer = await json_of(await ops.call("viewer", "GET", f"/api/incident-reports/{filed['id']}"), 200)  # fmt: skip
    as_operator = await json_of(await ops.call("operator", "GET", f"/api/incident-reports/{filed['id']}"), 200)  # fmt: skip
    assert as_viewer["document"] == "*******050" and as_operator["document"] == "1020304050"
    await json_of(await ops.call("viewer", "GET", "/api/incident-reports/99"), 404)


async def test_the_exports_are_neutralised_and_masked_unless_an_admin_asks(ops: Ops) -> None:
    await json_of(await ops.call("operator", "POST", "/api/incident-reports", form()), 201)
    response = await ops.call("viewer", "GET", "/api/incident-reports?format=csv")
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    [header, row] = list(csv.reader(io.StringIO(await response.text(), newline="")))
    cells = dict(zip(header, row, strict=True))
    assert cells["Mensaje de error"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert cells["Documento"] == "*******050"

    response = await ops.call("viewer", "GET", "/api/incident-reports?format=xlsx")
    assert response.status == 200 and response.content_type == XLSX_MEDIA_TYPE
    sheet = load_workbook(BytesIO(await response.read())).worksheets[0]
    [xheader, xrow] = [[(c.value, c.data_type) for c in r] for r in sheet.iter_rows()]
    xcells = dict(zip([v for v, _ in xheader], xrow, strict=True))
    assert xcells["Mensaje de error"] == ("'@SUM(1+1)*cmd|' /C calc'!A0", "s")

    await json_of(await ops.call("operator", "GET", "/api/incident-reports?format=csv&personal=full"), 403)  # fmt: skip
    full = await ops.call("admin", "GET", "/api/incident-reports?format=csv&personal=full")
    assert full.status == 200 and "1020304050" in await full.text()


REPORT_REFUSED = [
    ("viewer files", "viewer", form(), 403, "forbidden"),
    ("no consent", "operator", form(consent=False), 422, "invalid"),
    ("future", "operator", form(occurred_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()), 422, "invalid"),
    ("no offset", "operator", form(occurred_at="2026-11-30T08:00:00"), 422, "invalid_body"),
    ("no channel", "operator", form(channels=[]), 422, "invalid_body"),
    ("unknown channel", "operator", form(channels=["fax"]), 422, "invalid_body"),
    ("no error message", "operator", form(error_message=""), 422, "invalid_body"),
    ("bad case", "operator", form(case_numbers=["12"]), 422, "invalid"),
    ("unknown field", "operator", form(extra_field=1), 422, "invalid_body"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "role", "body", "status", "error"), REPORT_REFUSED, ids=[r[0] for r in REPORT_REFUSED])  # fmt: skip
async def test_a_refused_report_is_not_written(ops: Ops, case: str, role: str, body: Any, status: int, error: str) -> None:  # fmt: skip
    answer = await json_of(await ops.call(role, "POST", "/api/incident-reports", body), status)
    assert answer["error"] == error
    assert (await json_of(await ops.call("viewer", "GET", "/api/incident-reports"), 200))[
        "reports"
    ] == []


@pytest.mark.parametrize(
    "query", ["channel=fax", "since=ayer", "incident=quizas", "limit=0", "format=pdf", "personal=x", "color=rojo"]
)  # fmt: skip
async def test_a_bad_filter_is_refused(ops: Ops, query: str) -> None:
    answer = await json_of(await ops.call("viewer", "GET", f"/api/incident-reports?{query}"), 422)
    assert answer["error"] == "invalid_parameter"
