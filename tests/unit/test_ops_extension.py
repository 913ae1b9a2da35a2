"""The ops API extension hook (``ApiExtension``): a part's routes get exactly the core's checks.

The kind of fault: an extension route that skips a check the core routes make
(token, role, unknown or malformed parameter, body schema), answers errors in
another shape, or is missing from (or differs from) the OpenAPI document.
Every check is exercised on an extension route, over a real socket and a real
database, next to the same check on a core route where one exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import ApiExtension, Call, ConsolePage, Handler, OpsApi, build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import BodyValidator, Operation, Param
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database

BOOTSTRAP = Actor("cli:test", Role.ADMIN)


class NoteMissing(Exception):
    pass


class NoteClosed(Exception):
    pass


NOTE_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "The note's id.")
OPERATIONS = (
    Operation("GET", "/api/notes", "list_notes", "Notes.", Role.VIEWER, response="NoteList", tag="notes",
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}, "At most."),
                      Param("since", "query", {"type": "string", "format": "date-time"}, "From."),
                      Param("open", "query", {"type": "boolean", "default": False}, "Only open."))),
    Operation("POST", "/api/notes", "create_note", "A note.", Role.OPERATOR, body="NoteCreate", ok=201, response="Note", tag="notes"),
    Operation("GET", "/api/notes/{id}", "get_note", "One note.", Role.VIEWER, response="Note", params=(NOTE_ID,), tag="notes"),
    Operation("POST", "/api/notes/{id}/close", "close_note", "Close a note.", Role.ADMIN, response="Note", params=(NOTE_ID,), tag="notes", extra_errors=(409,)),
)  # fmt: skip
SCHEMAS = {
    "NoteCreate": {
        "type": "object", "additionalProperties": False, "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 200},
                       "priority": {"type": "string", "enum": ["normal", "high"]}},
    },
    "Note": {
        "type": "object", "required": ["id", "text", "by"],
        "properties": {"id": {"type": "integer"}, "text": {"type": "string"}, "by": {"type": "string"},
                       "closed": {"type": "boolean"}},
    },
    "NoteList": {"type": "object", "required": ["notes", "params"],
                 "properties": {"notes": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}},
                                "params": {"type": "object"}}},
}  # fmt: skip


class Notes:
    """A tiny part: notes in memory (the hook is what is tested, not a store)."""

    def __init__(self) -> None:
        self.notes: dict[int, dict[str, Any]] = {}
        self.api: OpsApi | None = None

    def handlers(self, api: OpsApi) -> Mapping[str, Handler]:
        self.api = api
        return {"list_notes": self.list, "create_note": self.create,
                "get_note": self.get, "close_note": self.close}  # fmt: skip

    async def list(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"notes": list(self.notes.values()), "params": call.params})

    async def create(self, request: web.Request, call: Call) -> web.StreamResponse:
        note = {
            "id": len(self.notes) + 1,
            "text": call.body["text"],
            "by": call.who.name,
            "closed": False,
        }
        self.notes[note["id"]] = note
        return web.json_response(note, status=201)

    def _note(self, call: Call) -> dict[str, Any]:
        note = self.notes.get(call.params["id"])
        if note is None:
            raise NoteMissing(f"no existe la nota {call.params['id']}")
        return note

    async def get(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response(self._note(call))

    async def close(self, request: web.Request, call: Call) -> web.StreamResponse:
        note = self._note(call)
        if note["closed"]:
            raise NoteClosed(f"la nota {note['id']} ya está cerrada")
        note["closed"] = True
        return web.json_response(note)


def extension(notes: Notes, files: Path) -> ApiExtension:
    (files / "notes.html").write_text("<!doctype html><title>Notas</title>", encoding="utf-8")
    (files / "notes.js").write_text("console.log('notas');", encoding="utf-8")
    return ApiExtension(
        name="notes",
        operations=OPERATIONS,
        handlers=notes.handlers,
        schemas=SCHEMAS,
        console_files={"notes.html": files / "notes.html", "notes.js": files / "notes.js"},
        pages=(ConsolePage("notes.html", "Notas"),),
        errors={NoteMissing: (404, "not_found"), NoteClosed: (409, "conflict")},
    )


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    notes: Notes

    async def call(
        self, role: str | None, method: str, path: str, body: Any = None
    ) -> ClientResponse:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return await self.client.request(method, path, headers=headers, json=body)


@pytest.fixture
async def api(db: Database, tmp_path: Path) -> AsyncIterator[Api]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {r.label: await service.create_token(BOOTSTRAP, r.label, r, "pruebas") for r in Role}
    notes = Notes()
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[extension(notes, tmp_path)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Api(client, tokens, notes)


async def answer(response: ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


def error_shape(body: Any) -> None:
    assert set(body) == {"error", "message", "details"} and isinstance(body["details"], list)


async def test_an_extension_route_needs_a_token_and_the_role(api: Api) -> None:
    for path, method in (
        ("/api/notes", "GET"),
        ("/api/notes", "POST"),
        ("/api/notes/1/close", "POST"),
    ):
        refused = await api.call(None, method, path, {"text": "x"})
        error_shape(await answer(refused, 401))
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    error_shape(await answer(await api.call("viewer", "POST", "/api/notes", {"text": "x"}), 403))
    error_shape(await answer(await api.call("operator", "POST", "/api/notes/1/close"), 403))
    # The core route refuses the same way.
    core = await answer(
        await api.call(
            "viewer", "POST", "/api/tokens", {"name": "x", "role": "viewer", "reason": "x"}
        ),
        403,
    )
    assert core["error"] == "forbidden"
    assert api.notes.notes == {}


@pytest.mark.parametrize("body,field", [
    (None, "body"), ({}, "text"), ({"text": ""}, "text"), ({"text": "x", "color": "red"}, "color"),
    ({"text": "x", "priority": "urgent"}, "priority"), ([1], "body"),
])  # fmt: skip
async def test_an_extension_body_is_checked_against_its_schema(
    api: Api, body: Any, field: str
) -> None:
    refused = await answer(await api.call("operator", "POST", "/api/notes", body), 422)
    error_shape(refused)
    assert refused["error"] == "invalid_body" and refused["details"][0]["field"] == field
    assert api.notes.notes == {}


@pytest.mark.parametrize("path,field", [
    ("/api/notes?limit=0", "limit"), ("/api/notes?limit=abc", "limit"), ("/api/notes?limit=51", "limit"),
    ("/api/notes?since=ayer", "since"), ("/api/notes?since=2026-12-04T10:00:00", "since"), ("/api/notes?open=quizas", "open"), ("/api/notes?limt=5", "limt"),
    ("/api/notes/abc", "id"), ("/api/notes/0", "id"), ("/api/notes/71485548947351339008", "id"),
    ("/api/notes/2147483648", "id"), ("/api/notes/%D9%A3", "id"),
])  # fmt: skip
async def test_extension_parameters_are_checked(api: Api, path: str, field: str) -> None:
    refused = await answer(await api.call("viewer", "GET", path), 422)
    error_shape(refused)
    assert refused["error"] == "invalid_parameter" and refused["details"][0]["field"] == field


@pytest.mark.parametrize("raw", ["71485548947351339008", "2147483648", "0", "٣", "-1"])
async def test_a_core_integer_id_beyond_the_database_is_a_422(api: Api, raw: str) -> None:
    # Observed (schemathesis, test_fuzz_ops_api): a 20-digit hand-off id overflowed
    # SQLite's INTEGER, a 500. The kind: an integer path parameter outside the
    # columns' range; the extension routes are bounded by the same rule (above).
    refused = await answer(
        await api.call("operator", "POST", f"/api/chat/handoffs/{raw}/take"), 422
    )
    assert refused["error"] == "invalid_parameter"


async def test_an_extension_route_works_with_its_checked_values(api: Api) -> None:
    created = await answer(await api.call("operator", "POST", "/api/notes", {"text": "hola"}), 201)
    assert created == {"id": 1, "text": "hola", "by": "token:operator", "closed": False}
    listed = await answer(
        await api.call(
            "viewer", "GET", "/api/notes?limit=5&open=true&since=2026-12-04T10:00:00-05:00"
        ),
        200,
    )
    assert listed["params"] == {"limit": 5, "open": True, "since": "2026-12-04T10:00:00-05:00"}
    assert (await answer(await api.call("viewer", "GET", "/api/notes"), 200))["params"] == {
        "limit": 10,
        "open": False,
    }
    assert (await answer(await api.call("viewer", "GET", "/api/notes/1"), 200))["text"] == "hola"
    assert (await answer(await api.call("admin", "POST", "/api/notes/1/close"), 200))[
        "closed"
    ] is True
    assert api.notes.api is not None and api.notes.api.service is not None


async def test_extension_errors_have_the_core_shape(api: Api) -> None:
    missing = await answer(await api.call("viewer", "GET", "/api/notes/7"), 404)
    assert missing == {"error": "not_found", "message": "no existe la nota 7", "details": []}
    await api.call("operator", "POST", "/api/notes", {"text": "x"})
    await api.call("admin", "POST", "/api/notes/1/close")
    conflict = await answer(await api.call("admin", "POST", "/api/notes/1/close"), 409)
    assert conflict["error"] == "conflict" and conflict["details"] == []


async def test_extension_routes_and_schemas_are_in_the_openapi_document(api: Api) -> None:
    doc = await answer(await api.client.get("/api/openapi.json"), 200)
    Draft202012Validator(OPENAPI_31).validate(doc)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app = api.client.server.app
    assert app is not None
    routed = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.method != "HEAD"}  # fmt: skip
    assert routed == documented and ("POST", "/api/notes/{id}/close") in documented
    close = doc["paths"]["/api/notes/{id}/close"]["post"]
    assert close["x-min-role"] == "admin" and {"401", "403", "404", "409", "422"} <= set(
        close["responses"]
    )
    assert doc["paths"]["/api/notes"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/NoteCreate"}
    assert {"NoteCreate", "Note", "NoteList", "Flag"} <= set(doc["components"]["schemas"])
    files = doc["paths"]["/console/{file}"]["get"]["parameters"][0]["schema"]["enum"]
    assert {"console.js", "console.css", "common.js", "nodes.js", "notes.html", "notes.js"} == set(
        files
    )
    # The answers match the documented schemas.
    bodies = BodyValidator(doc)
    await api.call("operator", "POST", "/api/notes", {"text": "x"})
    listed = await answer(await api.call("viewer", "GET", "/api/notes"), 200)
    assert bodies.problems("NoteList", listed) == []


async def test_console_files_and_pages_are_served(api: Api) -> None:
    page = await api.client.get("/console/notes.html")
    assert page.status == 200 and page.content_type == "text/html"
    assert page.headers["X-Content-Type-Options"] == "nosniff" and "Notas" in await page.text()
    script = await api.client.get("/console/notes.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await api.client.get("/console/other.html")).status == 404
    pages = await answer(await api.client.get("/api/console/pages"), 200)
    assert pages == {
        "pages": [{"file": "notes.html", "title": "Notas", "href": "/console/notes.html"}]
    }


async def test_a_malformed_extension_is_refused_at_build(db: Database, tmp_path: Path) -> None:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    good = extension(Notes(), tmp_path)

    def build(*extensions: ApiExtension) -> web.Application:
        return build_ops_app(service, Metrics(), readiness=lambda: {}, extensions=extensions)

    lacking = ApiExtension("lacking", OPERATIONS, lambda api: {}, SCHEMAS)
    with pytest.raises(ValueError, match="handlers"):
        build(lacking)
    with pytest.raises(ValueError, match="twice"):  # the same operations again
        build(good, ApiExtension("again", OPERATIONS, Notes().handlers))
    with pytest.raises(ValueError, match="twice"):  # a core operation id
        build(
            ApiExtension(
                "core",
                (Operation("GET", "/api/x", "list_flags", "x", Role.VIEWER),),
                lambda api: {},
            )
        )
    with pytest.raises(ValueError, match="twice"):  # a core schema name
        build(ApiExtension("schema", (), lambda api: {}, {"Flag": {"type": "object"}}))
    with pytest.raises(ValueError, match="console file"):
        build(
            ApiExtension(
                "file", (), lambda api: {}, console_files={"console.js": tmp_path / "notes.js"}
            )
        )
    no_page = ApiExtension("page", (), lambda api: {}, pages=(ConsolePage("nope.html", "x"),))
    with pytest.raises(ValueError, match="page"):
        build(no_page)
