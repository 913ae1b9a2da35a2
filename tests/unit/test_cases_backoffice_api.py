"""The back office's routes (``ivr.cases.http``) on the ops API, over a real socket
and a real database (SQLite; PostgreSQL too with CITAS_TEST_PG_URL).

The kinds of fault: a filter that is ignored (a queue that lists everything),
a change made by a role that may only read, a refused request that still wrote
something, an error in English or in another shape, a case changed on a stale
view. Each filter and each refusal is exercised over its range (tables)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from ivr.cases.http import SCHEMAS, sla_marks
from ivr.cases.model import Actor
from ivr.ops.openapi import BodyValidator
from ivr.store.db import Database
from tests.unit.cases_office import MONDAY, WA, Desk, desk_on

OPERATOR = Actor("ana", "operator")


@pytest.fixture
async def desk(db: Database) -> AsyncIterator[Desk]:
    async with desk_on(db) as desk:
        yield desk


async def numbers(desk: Desk, query: str) -> list[str]:
    answer = await desk.ok("vera", "GET", f"/api/cases{query}")
    return [c["number"] for c in answer["cases"]]


async def test_each_filter_narrows_the_queue(desk: Desk) -> None:
    office = desk.office
    a = await office.file("1000000001", site_id="norte", service_id="mg_first")
    b = await office.file("1000000002", site_id="sur", service_id="mg_control")
    c = await office.file(
        "1000000003", site_id="sur", service_id="pd_first", specialty="pediatrics"
    )
    office.clock.now += timedelta(days=2)
    d = await office.file("1000000004", site_id="norte", service_id="mg_first")
    await office.cases.assign(b.number, to="beto", group=None, actor=OPERATOR)
    await office.cases.record_answer(c.number, text="Ya tiene cita.", channels=["email"], actor=OPERATOR)  # fmt: skip
    await office.cases.close(d.number, resolution="Duplicado", actor=OPERATOR)

    everything = await numbers(desk, "")
    assert sorted(everything) == sorted([a.number, b.number, c.number, d.number])
    cut = a.due_at + timedelta(seconds=1)
    table: dict[str, list[str]] = {
        "?state=open": [a.number],
        "?state=assigned": [b.number],
        "?state=answered": [c.number],
        "?state=closed": [d.number],
        "?site=sur": [b.number, c.number],
        "?service=mg_first": [a.number, d.number],
        "?group=citas": everything,
        "?group=otro": [],
        "?assignee=beto": [b.number],
        f"?due_before={cut.isoformat().replace('+', '%2B')}": [a.number, b.number, c.number],
        "?site=norte&state=open": [a.number],
        "?limit=2": everything[:2],
        "?limit=2&offset=2": everything[2:],
    }
    for query, expected in table.items():
        assert sorted(await numbers(desk, query)) == sorted(expected), query


async def test_overdue_lists_unanswered_cases_past_their_promise(desk: Desk) -> None:
    office = desk.office
    waiting = await office.file("1000000001")
    assigned = await office.file("1000000002")
    answered = await office.file("1000000003")
    await office.cases.assign(assigned.number, to="beto", group=None, actor=OPERATOR)
    await office.cases.record_answer(answered.number, text="Listo.", channels=["email"], actor=OPERATOR)  # fmt: skip

    assert await numbers(desk, "?overdue=true") == []
    office.clock.now = waiting.due_at + timedelta(minutes=1)
    assert sorted(await numbers(desk, "?overdue=true")) == sorted([waiting.number, assigned.number])
    assert await numbers(desk, "?overdue=true&state=assigned") == [assigned.number]
    assert await numbers(desk, "?overdue=true&state=answered") == []
    listed = (await desk.ok("vera", "GET", "/api/cases?overdue=true"))["cases"]
    assert all(c["sla"]["due_overdue"] for c in listed)


@pytest.mark.parametrize(
    ("query", "field"),
    [("?state=abierto", "state"), ("?due_before=mañana", "due_before"),
     ("?due_before=2026-12-01T10:00:00", "due_before"), ("?overdue=quizas", "overdue"),
     ("?limit=0", "limit"), ("?limit=501", "limit"), ("?offset=-1", "offset"),
     ("?estado=open", "estado")],
)  # fmt: skip
async def test_a_bad_filter_is_refused_never_ignored(desk: Desk, query: str, field: str) -> None:
    await desk.office.file()
    response = await desk.call("vera", "GET", f"/api/cases{query}")
    body = await response.json()

    assert response.status == 422, body
    assert body["error"] == "invalid_parameter"
    assert field in [d["field"] for d in body["details"]]


async def test_the_history_shows_every_change_with_who_made_it(desk: Desk) -> None:
    case = await desk.office.file()
    path = f"/api/cases/{case.number}"

    await desk.ok("ana", "POST", f"{path}/assign", {"assignee": "beto", "expected_version": 1})
    await desk.ok("beto", "POST", f"{path}/answer", {"text": "Le asignamos cita el martes.", "channels": ["email"]})  # fmt: skip
    closed = await desk.ok("beto", "POST", f"{path}/close", {"resolution": "Cita asignada por el grupo."})  # fmt: skip

    # The actor is the token's (ivr.ops: "token:<name>") and its role.
    assert closed["case"]["state"] == "closed" and closed["case"]["closed_by"] == "token:beto"
    events = [(e["action"], e["actor"], e["role"]) for e in closed["events"]]
    assert events == [("filed", "sistema", "system"), ("assigned", "token:ana", "operator"),
                      ("answered", "token:beto", "operator"), ("closed", "token:beto", "operator")]  # fmt: skip
    assert closed["events"][2]["detail"] == "Le asignamos cita el martes."
    assert closed["whatsapp"] == {"open": False, "ends_at": None, "reason": "El caso está cerrado."}
    assert BodyValidator_of(desk).problems("CaseDetail", closed) == []


def BodyValidator_of(desk: Desk) -> BodyValidator:
    document: dict[str, Any] = {"components": {"schemas": SCHEMAS}}
    return BodyValidator(document)


async def test_assign_to_nobody_returns_the_case_to_the_groups_queue(desk: Desk) -> None:
    case = await desk.office.file()
    path = f"/api/cases/{case.number}/assign"

    assigned = await desk.ok("ana", "POST", path, {"assignee": "ana", "group": "citas"})
    back = await desk.ok("ana", "POST", path, {"assignee": None})

    assert (assigned["case"]["state"], assigned["case"]["assignee"]) == ("assigned", "ana")
    assert (back["case"]["state"], back["case"]["assignee"]) == ("open", None)


async def test_a_viewer_reads_and_only_an_operator_changes(desk: Desk) -> None:
    case = await desk.office.file()
    path = f"/api/cases/{case.number}"
    changes = [("assign", {"assignee": "vera"}), ("answer", {"text": "x", "channels": ["email"]}),
               ("close", {"resolution": "x"})]  # fmt: skip

    for action, body in changes:
        viewer = await desk.call("vera", "POST", f"{path}/{action}", body)
        nobody = await desk.call(None, "POST", f"{path}/{action}", body)
        assert (viewer.status, nobody.status) == (403, 401), action
    for route in (path, "/api/cases", "/api/case-options"):
        assert (await desk.call("vera", "GET", route)).status == 200
        assert (await desk.call(None, "GET", route)).status == 401
    assert [e.action for e in await desk.office.cases.events(case.number)] == ["filed"]


async def refused(desk: Desk, who: str, path: str, body: Any, status: int, error: str, message: str) -> None:  # fmt: skip
    response = await desk.call(who, "POST", path, body)
    answer = await response.json()
    assert (response.status, answer["error"]) == (status, error), answer
    assert message in answer["message"]


async def test_refused_changes_say_why_in_spanish_and_write_nothing(desk: Desk) -> None:
    office = desk.office
    case = await office.file(contact_email=None)
    closed = await office.file("1000000009")
    await office.cases.close(closed.number, resolution="Resuelto", actor=OPERATOR)
    p, c = f"/api/cases/{case.number}", f"/api/cases/{closed.number}"
    table = [
        (f"{p}/answer", {"text": "Hola", "channels": ["email"]}, 422, "invalid", "no tiene correo de contacto"),
        (f"{p}/answer", {"text": "Hola", "channels": ["whatsapp"]}, 422, "invalid", "no ha escrito por WhatsApp"),
        (f"{p}/answer", {"text": "Hola", "channels": []}, 422, "invalid_body", ""),
        (f"{p}/answer", {"text": "Hola", "channels": ["sms"]}, 422, "invalid_body", ""),
        (f"{p}/answer", {"text": "   ", "channels": ["email"]}, 422, "invalid_body", ""),
        (f"{p}/assign", {"group": "otro"}, 422, "invalid", "grupo de soporte desconocido"),
        (f"{p}/assign", {}, 422, "invalid_body", ""),
        (f"{p}/assign", {"assignee": "ana", "expected_version": 7}, 409, "conflict", "vuelva a cargarlo"),
        (f"{p}/close", {"resolution": "x", "expected_version": 2}, 409, "conflict", "vuelva a cargarlo"),
        (f"{c}/assign", {"assignee": "ana"}, 409, "conflict", "está cerrado"),
        (f"{c}/answer", {"text": "Hola", "channels": ["email"]}, 409, "conflict", "está cerrado"),
        (f"{c}/close", {"resolution": "otra vez"}, 409, "conflict", "ya está cerrado"),
        ("/api/cases/0000010/close", {"resolution": "x"}, 422, "invalid_parameter", "número de caso no válido"),
        ("/api/cases/0009990/close", {"resolution": "x"}, 404, "not_found", "no existe el caso 0009990"),
        ("/api/cases/12345/close", {"resolution": "x"}, 422, "invalid_parameter", ""),
    ]  # fmt: skip
    before = [(await office.cases.get(n), await office.cases.events(n)) for n in (case.number, closed.number)]  # fmt: skip

    for path, body, status, error, message in table:
        await refused(desk, "ana", path, body, status, error, message)

    after = [(await office.cases.get(n), await office.cases.events(n)) for n in (case.number, closed.number)]  # fmt: skip
    assert after == before
    assert await office.mail.list() == []


async def test_the_options_list_the_groups_people_and_channels(desk: Desk) -> None:
    options = await desk.ok("vera", "GET", "/api/case-options")

    assert options["states"] == ["open", "assigned", "answered", "closed"]
    assert {"id": "citas", "name": "Agendamiento de citas"} in options["groups"]
    assert {"id": "lider_citas", "name": "Líder de citas"} in options["people"]
    assert options["channels"] == ["email", "whatsapp"]
    assert options["timezone"] == "America/Bogota"  # the console shows instants in it


async def test_the_detail_says_whether_whatsapp_can_answer_now(desk: Desk) -> None:
    office = desk.office
    case = await office.file()
    path = f"/api/cases/{case.number}"

    before = (await desk.ok("vera", "GET", path))["whatsapp"]
    await office.writes(WA)
    inside = (await desk.ok("vera", "GET", path))["whatsapp"]
    office.clock.now += timedelta(hours=24)
    after = (await desk.ok("vera", "GET", path))["whatsapp"]

    assert before["open"] is False and "no ha escrito" in before["reason"]
    assert inside == {
        "open": True,
        "reason": "",
        "ends_at": (MONDAY + timedelta(hours=24)).isoformat(),
    }
    assert after["open"] is False and "se cerró" in after["reason"]


async def test_the_openapi_document_describes_the_case_routes(desk: Desk) -> None:
    document = await desk.ok("vera", "GET", "/api/openapi.json")

    assert document["paths"]["/api/cases/{number}/answer"]["post"]["x-min-role"] == "operator"
    assert document["paths"]["/api/cases"]["get"]["x-min-role"] == "viewer"
    assert "CaseAnswer" in document["components"]["schemas"]
    pages = await desk.ok("vera", "GET", "/api/console/pages")
    assert {"file": "cases.html", "title": "Casos", "href": "/console/cases.html"} in pages["pages"]
    page = await desk.client.get("/console/cases.html")
    assert page.status == 200 and "Cola de casos" in await page.text()
    script = await desk.client.get("/console/cases.js")
    assert script.status == 200 and script.content_type == "text/javascript"


# --- the SLA marks: the kind (a mark shown when it should not be, or missing) over its range ---
@pytest.mark.parametrize(
    ("state", "answered", "minutes_past_due", "due", "first", "resolution"),
    [
        ("open", False, -1, False, False, False),
        ("open", False, 0, True, True, True),
        ("assigned", False, 60, True, True, True),
        ("answered", True, 60, False, False, True),
        ("closed", True, 60, False, False, False),
    ],
)  # fmt: skip
async def test_sla_marks(db: Database, state: str, answered: bool, minutes_past_due: int,
                         due: bool, first: bool, resolution: bool) -> None:  # fmt: skip
    async with desk_on(db) as desk:
        case = await desk.office.file()
    from dataclasses import replace

    shaped = replace(
        case, state=state, first_response_at=case.filed_at if answered else None,
        first_response_due_at=case.due_at, resolution_due_at=case.due_at,
    )  # fmt: skip
    marks = sla_marks(shaped, case.due_at + timedelta(minutes=minutes_past_due))
    assert marks == {"due_overdue": due, "first_response_overdue": first, "resolution_overdue": resolution}  # fmt: skip
