"""The ops HTTP API over a real socket (aiohttp TestServer) and a real database."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from ivr.chat.store import ConversationStore
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import OPERATIONS, BodyValidator
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore, utcnow
from ivr.store.db import Database
from ivr.store.records import CallRecordStore

BOOTSTRAP = Actor("cli:test", Role.ADMIN)


@dataclass
class Ops:
    client: TestClient[Any, Any]
    service: FlagService
    metrics: Metrics
    tokens: dict[str, str]
    checks: dict[str, bool]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(
        self, role: str | None, method: str, path: str, body: Any = None, **kw: Any
    ) -> ClientResponse:
        headers = self.auth(role) if role else {}
        return await self.client.request(method, path, headers=headers, json=body, **kw)

    async def state(self) -> tuple[object, ...]:
        """Everything a refused request must leave as it was."""
        return (
            await self.service.store.revision(),
            [f.as_json() for f in await self.service.flags()],
            await self.service.history(),
            await self.service.windows(include_past=True),
            await self.service.store.tokens(),
        )

    def changes(self, action: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "citas_flag_changes_total", {"action": action}
        )
        return value or 0.0


@pytest.fixture
async def ops(db: Database) -> AsyncIterator[Ops]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {
        role.label: await service.create_token(BOOTSTRAP, role.label, role, "pruebas")
        for role in Role
    }
    metrics = Metrics()
    checks = {"database": True, "flags": True}
    breaker_state = {"state": "closed", "failures": 0}
    app = build_ops_app(
        service,
        metrics,
        readiness=lambda: checks,
        breaker=lambda: breaker_state,
        chats=ConversationStore(db, flow="citas"),
        calls=CallRecordStore(db),
    )
    async with TestClient(TestServer(app)) as client:
        yield Ops(client, service, metrics, tokens, checks)


async def json_of(response: ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


# --- health, metrics, meta -----------------------------------------------------------------
async def test_health_and_metrics_need_no_token(ops: Ops) -> None:
    assert await json_of(await ops.call(None, "GET", "/health/live"), 200) == {"status": "ok"}
    ready = await json_of(await ops.call(None, "GET", "/health/ready"), 200)
    assert ready == {"status": "ok", "checks": {"database": True, "flags": True}}
    ops.checks["flags"] = False
    not_ready = await json_of(await ops.call(None, "GET", "/health/ready"), 503)
    assert not_ready["checks"] == {"database": True, "flags": False}
    assert not_ready["error"] == "not_ready"
    metrics = await ops.call(None, "GET", "/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert (
        "citas_flag_changes_total" in await metrics.text() or "citas_calls" in await metrics.text()
    )


async def test_readiness_may_be_async(db: Database) -> None:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))

    async def readiness() -> Mapping[str, bool]:
        return {"database": False}

    app = build_ops_app(service, Metrics(), readiness=readiness)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health/ready")
        assert response.status == 503
        assert (await response.json())["checks"] == {"database": False}
        # No breaker in this process.
        token = await service.create_token(BOOTSTRAP, "v", Role.VIEWER, "x")
        breaker = await client.get("/api/breaker", headers={"Authorization": f"Bearer {token}"})
        assert (await json_of(breaker, 404))["error"] == "not_found"


async def test_whoami_and_breaker(ops: Ops) -> None:
    whoami = await json_of(await ops.call("operator", "GET", "/api/whoami"), 200)
    assert whoami == {"name": "token:operator", "role": "operator"}
    breaker = await json_of(await ops.call("viewer", "GET", "/api/breaker"), 200)
    assert breaker == {"state": "closed", "failures": 0}


async def test_root_redirects_to_the_console_which_is_served(ops: Ops) -> None:
    root = await ops.client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/console")
    page = await ops.client.get("/console")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "/console/console.js" in html and "/console/console.css" in html
    assert "Content-Security-Policy" in page.headers
    script = await ops.client.get("/console/console.js")
    assert script.status == 200 and "api(" in await script.text()
    common = await ops.client.get("/console/common.js")
    assert common.status == 200 and common.content_type == "text/javascript"
    assert "async function api(" in await common.text()
    assert html.index("/console/common.js") < html.index("/console/console.js")
    style = await ops.client.get("/console/console.css")
    assert style.status == 200 and style.content_type == "text/css"
    missing = await ops.client.get("/console/../api.py")
    assert missing.status == 404


# --- reading --------------------------------------------------------------------------------
async def test_flags_are_listed_with_their_effective_value(ops: Ops) -> None:
    listed = await json_of(await ops.call("viewer", "GET", "/api/flags"), 200)
    names = [f["name"] for f in listed["flags"]]
    assert names == ops.service.registry.names()
    first = listed["flags"][0]
    assert first["name"] == "self_service_booking"
    assert (first["value"], first["source"], first["min_role"]) == (True, "default", "operator")
    one = await json_of(await ops.call("viewer", "GET", "/api/flags/eligibility.age_min"), 200)
    assert one["min_role"] == "admin" and one["kind"] == "int"
    missing = await json_of(await ops.call("viewer", "GET", "/api/flags/nope"), 404)
    assert missing == {"error": "not_found", "message": "unknown flag 'nope'", "details": []}


# --- changing ---------------------------------------------------------------------------------
async def test_an_operator_sets_and_resets_a_flag(
    ops: Ops, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.ops.api")
    body = {"value": False, "reason": "caída del agendador"}
    flag = await json_of(
        await ops.call("operator", "PUT", "/api/flags/self_service_booking", body), 200
    )
    assert (flag["value"], flag["source"], flag["updated_by"]) == (False, "set", "token:operator")
    assert (await ops.service.flag("self_service_booking")).value is False
    assert ops.changes("set") == 1
    assert "token:operator" in caplog.text and "caída del agendador" in caplog.text
    assert all(token not in caplog.text for token in ops.tokens.values())

    reset = {"reason": "agendador de vuelta"}
    flag = await json_of(
        await ops.call("operator", "DELETE", "/api/flags/self_service_booking", reset), 200
    )
    assert (flag["value"], flag["source"]) == (True, "default")
    assert ops.changes("reset") == 1
    actions = [e.action for e in await ops.service.history(name="self_service_booking")]
    assert actions == ["reset", "set"]


async def test_an_admin_sets_admin_flags(ops: Ops) -> None:
    body = {"value": ["890201", "890301"], "reason": "alcance nuevo"}
    flag = await json_of(
        await ops.call("admin", "PUT", "/api/flags/eligibility.cups_in_scope", body), 200
    )
    assert flag["value"] == ["890201", "890301"]
    body = {"value": None, "reason": "sede reabierta"}
    flag = await json_of(
        await ops.call("operator", "PUT", "/api/flags/site.centro.phone_booking_closed_from", body),
        200,
    )
    assert flag["value"] is None


async def test_the_incident_switch(ops: Ops) -> None:
    on = await json_of(
        await ops.call("operator", "POST", "/api/incident", {"active": True, "reason": "caída"}),
        200,
    )
    assert on["name"] == "incident_mode" and on["value"] is True
    off = await json_of(
        await ops.call(
            "operator", "POST", "/api/incident", {"active": False, "reason": "resuelto"}
        ),
        200,
    )
    assert off["value"] is False
    assert (ops.changes("incident_on"), ops.changes("incident_off")) == (1, 1)
    assert [e.action for e in await ops.service.history()][:2] == ["incident_off", "incident_on"]


async def test_windows_are_created_listed_and_cancelled(ops: Ops) -> None:
    body = {"name": "promo_audio", "value": False, "duration_s": 600, "reason": "campaña pausada"}
    window = await json_of(await ops.call("operator", "POST", "/api/windows", body), 201)
    assert (window["name"], window["value"], window["state"]) == ("promo_audio", False, "active")
    ends = datetime.fromisoformat(window["ends_at"]) - datetime.fromisoformat(window["starts_at"])
    assert abs(ends - timedelta(seconds=600)) < timedelta(seconds=1)
    flag = await json_of(await ops.call("viewer", "GET", "/api/flags/promo_audio"), 200)
    assert (flag["value"], flag["source"], flag["window_id"]) == (False, "window", window["id"])

    later = utcnow() + timedelta(hours=1)
    body = {
        "name": "sms_redirect", "value": False, "reason": "mantenimiento SMS",
        "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    scheduled = await json_of(await ops.call("operator", "POST", "/api/windows", body), 201)
    assert scheduled["state"] == "scheduled"

    listed = await json_of(await ops.call("viewer", "GET", "/api/windows"), 200)
    assert {w["id"] for w in listed["windows"]} == {window["id"], scheduled["id"]}

    cancel = {"reason": "campaña retomada"}
    done = await json_of(
        await ops.call("operator", "DELETE", f"/api/windows/{window['id']}", cancel), 200
    )
    assert (done["state"], done["cancelled_by"]) == ("cancelled", "token:operator")
    assert (await ops.service.flag("promo_audio")).value is True
    listed = await json_of(await ops.call("viewer", "GET", "/api/windows"), 200)
    assert [w["id"] for w in listed["windows"]] == [scheduled["id"]]
    everything = await json_of(
        await ops.call("viewer", "GET", "/api/windows?include_past=true"), 200
    )
    assert len(everything["windows"]) == 2
    assert (ops.changes("schedule"), ops.changes("cancel_window")) == (2, 1)


async def test_the_audit_as_json_and_csv(ops: Ops) -> None:
    await ops.call("operator", "PUT", "/api/flags/promo_audio", {"value": False, "reason": "uno"})
    await ops.call("operator", "PUT", "/api/flags/sms_redirect", {"value": False, "reason": "dos"})
    audit = await json_of(await ops.call("viewer", "GET", "/api/audit"), 200)
    assert [e["reason"] for e in audit["entries"]][:2] == ["dos", "uno"]
    only = await json_of(await ops.call("viewer", "GET", "/api/audit?name=promo_audio"), 200)
    assert [e["reason"] for e in only["entries"]] == ["uno"]
    limited = await json_of(await ops.call("viewer", "GET", "/api/audit?limit=1"), 200)
    assert len(limited["entries"]) == 1
    future = (utcnow() + timedelta(hours=1)).isoformat()
    none = await json_of(
        await ops.call("viewer", "GET", "/api/audit", params={"since": future}), 200
    )
    assert none["entries"] == []
    past = await json_of(
        await ops.call("viewer", "GET", "/api/audit", params={"until": future}), 200
    )
    assert len(past["entries"]) == len(audit["entries"])

    for response in (
        await ops.call("viewer", "GET", "/api/audit?format=csv"),
        await ops.client.get("/api/audit", headers={**ops.auth("viewer"), "Accept": "text/csv"}),
    ):
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert response.headers["Content-Disposition"] == "attachment; filename=citas-audit.csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert [r["reason"] for r in rows][:2] == ["dos", "uno"]


async def test_alerts(ops: Ops) -> None:
    now = datetime.now(UTC)
    await ops.service.store.raise_alert("breaker_open", "booking", "5 fallos seguidos", now)
    await ops.service.store.raise_alert("sms_failing", "sms", "gateway caído", now)
    await ops.service.store.resolve_alerts("sms_failing", "sms", now)
    every = await json_of(await ops.call("viewer", "GET", "/api/alerts"), 200)
    assert len(every["alerts"]) == 2
    open_ = await json_of(await ops.call("viewer", "GET", "/api/alerts?open=true"), 200)
    assert [a["kind"] for a in open_["alerts"]] == ["breaker_open"]


async def test_admins_manage_tokens(ops: Ops) -> None:
    created = await json_of(
        await ops.call("admin", "POST", "/api/tokens", {"name": "noche", "role": "operator", "reason": "turno"}), 201
    )  # fmt: skip
    assert (created["name"], created["role"]) == ("noche", "operator")
    whoami = await ops.client.get(
        "/api/whoami", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert (await json_of(whoami, 200))["name"] == "token:noche"
    listed = await json_of(await ops.call("admin", "GET", "/api/tokens"), 200)
    assert "noche" in [t["name"] for t in listed["tokens"]]
    assert created["token"] not in str(listed)
    await json_of(
        await ops.call("admin", "DELETE", "/api/tokens/noche", {"reason": "fin del turno"}), 200
    )
    whoami = await ops.client.get(
        "/api/whoami", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert whoami.status == 401


# --- refusals change nothing ------------------------------------------------------------------
ENGLISH = re.compile(r"\b(the|is|are|cannot|required|needs|not|unknown|must|only|no such)\b", re.IGNORECASE)
WINDOW = {"name": "promo_audio", "value": False, "duration_s": 60, "reason": "x"}
REFUSED = [
    # (role, method, path, body, status, error id)
    (None, "GET", "/api/flags", None, 401, "unauthorized"),
    (None, "PUT", "/api/flags/promo_audio", {"value": False, "reason": "x"}, 401, "unauthorized"),
    ("bogus", "POST", "/api/incident", {"active": True, "reason": "x"}, 401, "unauthorized"),
    ("viewer", "PUT", "/api/flags/promo_audio", {"value": False, "reason": "x"}, 403, "forbidden"),
    ("viewer", "DELETE", "/api/flags/promo_audio", {"reason": "x"}, 403, "forbidden"),
    ("viewer", "POST", "/api/incident", {"active": True, "reason": "x"}, 403, "forbidden"),
    ("viewer", "POST", "/api/windows", WINDOW, 403, "forbidden"),
    ("operator", "PUT", "/api/flags/eligibility.age_min", {"value": 12, "reason": "x"}, 403, "forbidden"),
    ("operator", "DELETE", "/api/flags/eligibility.age_min", {"reason": "x"}, 403, "forbidden"),
    ("operator", "POST", "/api/windows", {**WINDOW, "name": "eligibility.age_min", "value": 12}, 403, "forbidden"),
    ("operator", "GET", "/api/tokens", None, 403, "forbidden"),
    ("operator", "POST", "/api/tokens", {"name": "x", "role": "admin", "reason": "x"}, 403, "forbidden"),
    ("operator", "PUT", "/api/flags/nope", {"value": False, "reason": "x"}, 404, "not_found"),
    ("operator", "DELETE", "/api/flags/nope", {"reason": "x"}, 404, "not_found"),
    ("operator", "DELETE", "/api/windows/nope", {"reason": "x"}, 404, "not_found"),
    ("admin", "DELETE", "/api/tokens/nobody", {"reason": "x"}, 404, "not_found"),
    ("operator", "GET", "/api/nothing", None, 404, "not_found"),
    ("operator", "PATCH", "/api/flags/promo_audio", {"value": False, "reason": "x"}, 405, "method_not_allowed"),
    ("operator", "PUT", "/api/flags/promo_audio", "not json", 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", None, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", [False], 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", {"value": False}, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", {"value": False, "reason": "   "}, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", {"value": "off", "reason": "x"}, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/promo_audio", {"value": False, "reason": "x", "by": "me"}, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/booking_down_route", {"value": "sms", "reason": "x"}, 422, "invalid_body"),
    ("admin", "PUT", "/api/flags/eligibility.age_min", {"value": 60, "reason": "x"}, 422, "invalid"),
    ("admin", "PUT", "/api/flags/eligibility.age_min", {"value": 500, "reason": "x"}, 422, "invalid_body"),
    ("operator", "PUT", "/api/flags/site.norte.phone_booking_closed_from", {"value": "2025-02-30", "reason": "x"}, 422, "invalid_body"),
    ("operator", "POST", "/api/incident", {"active": "yes", "reason": "x"}, 422, "invalid_body"),
    ("operator", "POST", "/api/windows", {**WINDOW, "name": "nope"}, 422, "invalid_body"),
    ("operator", "POST", "/api/windows", {k: v for k, v in WINDOW.items() if k != "duration_s"}, 422, "invalid_body"),
    ("operator", "POST", "/api/windows", {**WINDOW, "ends_at": "2030-01-01T00:00:00+00:00"}, 422, "invalid_body"),
    ("operator", "POST", "/api/windows", {**{k: v for k, v in WINDOW.items() if k != "duration_s"}, "ends_at": "2030-01-01T00:00:00"}, 422, "invalid_body"),
    ("operator", "POST", "/api/windows", {**{k: v for k, v in WINDOW.items() if k != "duration_s"}, "ends_at": "2020-01-01T00:00:00Z"}, 422, "invalid"),
    ("operator", "POST", "/api/windows", {**WINDOW, "duration_s": 0}, 422, "invalid_body"),
    ("operator", "GET", "/api/audit?limit=0", None, 422, "invalid_parameter"),
    ("operator", "GET", "/api/audit?since=yesterday", None, 422, "invalid_parameter"),
    ("operator", "GET", "/api/audit?name=nope", None, 422, "invalid_parameter"),
    ("operator", "GET", "/api/audit?format=xml", None, 422, "invalid_parameter"),
    ("operator", "GET", "/api/windows?include_past=maybe", None, 422, "invalid_parameter"),
    ("admin", "POST", "/api/tokens", {"name": "x", "role": "root", "reason": "x"}, 422, "invalid_body"),
    ("admin", "POST", "/api/tokens", {"name": "admin", "role": "admin", "reason": "x"}, 422, "invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("role", "method", "path", "body", "status", "error"), REFUSED)
async def test_a_refused_request_changes_nothing(
    ops: Ops, role: str | None, method: str, path: str, body: Any, status: int, error: str
) -> None:
    ops.tokens["bogus"] = "not-a-token"
    before = await ops.state()
    headers = ops.auth(role) if role else {}
    if isinstance(body, str):
        response = await ops.client.request(method, path, headers=headers, data=body)
    else:
        response = await ops.client.request(method, path, headers=headers, json=body)
    answer = await json_of(response, status)
    assert answer["error"] == error
    assert isinstance(answer["message"], str) and answer["message"]
    # Read by operators and desk agents in the console ("Sin acceso: …"): Spanish, like the
    # rest of what they read (issue 12 review: "viewer cannot use POST … (needs operator)").
    if status in (401, 403) or answer["message"].startswith(("el cuerpo", "the body")):
        assert not ENGLISH.search(answer["message"]), answer["message"]
    assert isinstance(answer["details"], list)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await ops.state() == before
    assert all(
        s.value == 0
        for m in ops.metrics.flag_changes.collect()
        for s in m.samples
        if s.name.endswith("_total")
    )


async def test_errors_name_the_field(ops: Ops) -> None:
    answer = await json_of(
        await ops.call("operator", "PUT", "/api/flags/promo_audio", {"value": 1}), 422
    )
    assert {"field": "reason", "message": "'reason' is a required property"} in answer["details"]
    assert {d["field"] for d in answer["details"]} == {"reason", "value"} or answer["details"][0][
        "field"
    ] == "reason"
    answer = await json_of(
        await ops.call(
            "admin", "PUT", "/api/flags/eligibility.age_min", {"value": 60, "reason": "x"}
        ),
        422,
    )
    assert answer["details"][0]["field"] == "value"
    assert "quedaría por encima de" in answer["message"]
    assert answer["details"][0]["rule"] == "eligibility.age_band"


# --- the OpenAPI document ---------------------------------------------------------------------
async def test_the_openapi_document_is_valid_and_matches_the_routes(ops: Ops) -> None:
    doc = await json_of(await ops.client.get("/api/openapi.json"), 200)
    Draft202012Validator(OPENAPI_31).validate(doc)
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    documented = {(m.upper(), p) for p, ops_ in doc["paths"].items() for m in ops_}
    app = ops.client.server.app
    assert app is not None
    routed = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    assert routed == documented
    assert doc["components"]["schemas"]["FlagValues"]["properties"].keys() == set(
        ops.service.registry.names()
    )
    assert doc["paths"]["/health/live"]["get"]["security"] == []
    assert doc["paths"]["/api/flags/{name}"]["put"]["x-min-role"] == "operator"


async def test_answers_match_the_documented_schemas(ops: Ops) -> None:
    await ops.call("operator", "PUT", "/api/flags/promo_audio", {"value": False, "reason": "x"})
    await ops.call("operator", "POST", "/api/windows", WINDOW)
    await ops.service.store.raise_alert("breaker_open", "booking", "x", datetime.now(UTC))
    doc = await json_of(await ops.client.get("/api/openapi.json"), 200)
    bodies = BodyValidator(doc)
    checked = 0
    for op in OPERATIONS:
        if op.method != "GET" or "{" in op.path or op.response is None:
            continue
        response = await ops.call("admin", "GET", op.path)
        assert response.status == op.ok, op.path
        assert bodies.problems(op.response, await response.json()) == [], op.path
        checked += 1
    flag = await json_of(await ops.call("admin", "GET", "/api/flags/promo_audio"), 200)
    assert bodies.problems("Flag", flag) == []
    error = await json_of(await ops.call("admin", "GET", "/api/flags/nope"), 404)
    assert bodies.problems("Error", error) == []
    assert checked >= 10


async def test_a_change_that_breaks_a_rule_under_a_window_is_refused(ops: Ops) -> None:
    # Issue 9 §5, through HTTP: a one-hour window age_max = 30, then age_min = 40.
    window = await json_of(
        await ops.call("admin", "POST", "/api/windows", {
            "name": "eligibility.age_max", "value": 30, "duration_s": 3600, "reason": "prueba",
        }), 201,
    )  # fmt: skip
    before = await ops.state()
    answer = await json_of(
        await ops.call(
            "admin", "PUT", "/api/flags/eligibility.age_min", {"value": 40, "reason": "ampliar"}
        ),
        422,
    )
    assert answer["error"] == "invalid"
    [detail] = answer["details"]
    assert (detail["field"], detail["rule"]) == ("value", "eligibility.age_band")
    at = datetime.fromisoformat(detail["at"])  # now: the window is active
    assert (
        datetime.fromisoformat(window["starts_at"])
        <= at
        < datetime.fromisoformat(window["ends_at"])
    )
    assert answer["message"].startswith("el cambio rompería la regla")
    assert (
        "eligibility.age_min (40) quedaría por encima de eligibility.age_max (30)"
        in (answer["message"])
    )
    assert window["id"] in answer["message"]
    doc = await json_of(await ops.client.get("/api/openapi.json"), 200)
    assert BodyValidator(doc).problems("Error", answer) == []
    assert await ops.state() == before


async def test_cancelling_a_window_that_a_rule_needs_is_refused(ops: Ops) -> None:
    wide = await json_of(
        await ops.call("admin", "POST", "/api/windows", {
            "name": "eligibility.age_max", "value": 60, "duration_s": 7200, "reason": "campaña",
        }), 201,
    )  # fmt: skip
    await json_of(
        await ops.call("admin", "POST", "/api/windows", {
            "name": "eligibility.age_min", "value": 58, "duration_s": 3600, "reason": "campaña",
        }), 201,
    )  # fmt: skip
    before = await ops.state()
    answer = await json_of(
        await ops.call("admin", "DELETE", f"/api/windows/{wide['id']}", {"reason": "fin"}), 422
    )
    assert (answer["error"], answer["details"][0]["field"]) == ("invalid", "window_id")
    assert (
        "eligibility.age_min (58) quedaría por encima de eligibility.age_max (54)"
        in (answer["message"])
    )
    assert await ops.state() == before


# --- the controller registry (ivr/ops/controllers.py) ----------------------------------------
async def test_controllers_are_listed_by_node_with_health_revision_and_alerts(
    ops: Ops, db: Database
) -> None:
    from ivr.ops.controllers import (
        STALE_AFTER_S,
        ControllerIdentity,
        ControllerStatus,
        ControllerStore,
    )

    now = utcnow()
    store = ControllerStore(db)
    await ops.service.set_flag(BOOTSTRAP, "promo_audio", False, "campaña pausada")
    revision = await ops.service.store.revision()

    def who(node: str, pid: int) -> ControllerIdentity:
        return ControllerIdentity(f"{node}@box:{pid}", node, "box", pid, "citas-ivr",
                                  now - timedelta(minutes=5))  # fmt: skip

    await store.beat(who("lab-n1", 11), ControllerStatus(revision, "open", 4, True), now)
    stale = now - timedelta(seconds=STALE_AFTER_S + 5)
    await store.beat(who("lab-n2", 21), ControllerStatus(revision - 1, "closed", 0, False), stale)
    await ops.service.store.raise_alert("booking_breaker_open", "lab-n1@box:11", "5 fallos", now)

    assert (await ops.call(None, "GET", "/api/controllers")).status == 401
    answer = await json_of(await ops.call("viewer", "GET", "/api/controllers"), 200)
    doc = await json_of(await ops.client.get("/api/openapi.json"), 200)
    assert not BodyValidator(doc).problems("ControllerRegistry", answer)
    assert answer["flags_revision"] == revision
    one, two = answer["nodes"]
    assert (one["node"], two["node"]) == ("lab-n1@box", "lab-n2@box")
    (first,) = one["controllers"]
    assert (first["health"], first["flags_current"], first["breaker"]) == ("active", True, "open")
    assert [a["kind"] for a in first["alerts"]] == ["booking_breaker_open"]
    (second,) = two["controllers"]
    assert (second["health"], second["flags_current"]) == ("unresponsive", False)
    assert second["ari_connected"] is False and second["alerts"] == []
