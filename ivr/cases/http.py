"""The back office's routes on the ops API: the case queue, one case, assign, answer, close.

Declared as data like the core routes (``ivr.ops.openapi.Operation``) and
plugged in by the composition root through the ops API's extension hook, so
``ivr.ops`` knows nothing of cases. Roles as the rest of the ops API: a
viewer reads the queue and a case's history; an operator assigns, answers
and closes. Errors have the ops API's shape, with Spanish messages::

    404 not_found   no such case
    409 conflict    the case's state does not allow it (closed), or it changed
                    since the console read it (``expected_version``)
    422 invalid     the answer cannot go as asked (no channel, no e-mail, the
                    WhatsApp window closed), an unknown group, an empty text
    422 invalid_parameter   a filter that is not valid (unknown state, bad date)

Every change is written with its case event in one transaction by
``ivr.cases.store.CaseStore`` (the history ``GET /api/cases/{number}`` shows).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.cases.answers import ANSWER_CHANNELS, MAX_ANSWER, AnswerDelivery, AnswerRefused
from ivr.cases.model import ASSIGNED, CLOSED, OPEN, STATES, Actor, Case
from ivr.cases.number import is_valid
from ivr.cases.store import CaseConflict, CaseNotFound, CaseStore
from ivr.ops.api import ApiError, ApiExtension, Call, ConsolePage, Handler
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_FILES = {name: CONSOLE_DIR / name for name in ("cases.html", "cases.js", "cases.css")}
MAX_LIST = 500

NUMBER = Param("number", "path", {"type": "string", "pattern": "^[0-9]{7}$"},
               "The case number: 7 digits, the last a Damm check digit.")  # fmt: skip
LIST_PARAMS = (
    Param("state", "query", {"type": "string", "enum": list(STATES)}, "Only cases in this state."),
    Param("site", "query", {"type": "string"}, "Only cases of this site (`site_id`)."),
    Param("service", "query", {"type": "string"}, "Only cases of this service (`service_id`)."),
    Param("group", "query", {"type": "string"}, "Only cases of this support group."),
    Param("assignee", "query", {"type": "string"}, "Only cases assigned to this person."),
    Param("due_before", "query", {"type": "string", "format": "date-time"}, "Only cases whose promised answer (`due_at`) is before this instant (ISO 8601 with offset)."),
    Param("overdue", "query", {"type": "boolean", "default": False}, "Only cases not answered yet (open or assigned) whose promised answer is past."),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": 200}, "At most this many, the soonest due first."),
    Param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}, "Skip this many (paging)."),
)  # fmt: skip

V, OP = Role.VIEWER, Role.OPERATOR
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/cases", "list_cases", "The case queue, the soonest due first, with each case's SLA marks.", V, response="CaseList", params=LIST_PARAMS, tag="cases"),
    Operation("GET", "/api/case-options", "case_options", "What the console offers: states, support groups and people (cases config).", V, response="CaseOptions", tag="cases"),
    Operation("GET", "/api/cases/{number}", "get_case", "One case with its history (events, oldest first) and whether WhatsApp can answer it now.", V, response="CaseDetail", params=(NUMBER,), tag="cases"),
    Operation("POST", "/api/cases/{number}/assign", "assign_case", "Give the case to a person and/or a support group (`assignee` null: back to the group's queue).", OP, body="CaseAssign", response="CaseDetail", params=(NUMBER,), tag="cases", extra_errors=(409,)),
    Operation("POST", "/api/cases/{number}/answer", "answer_case", "Answer the case by e-mail and/or WhatsApp (WhatsApp only inside the 24-hour window); the sends are queued, their outcome becomes events.", OP, body="CaseAnswer", response="CaseDetail", params=(NUMBER,), tag="cases", extra_errors=(409,)),
    Operation("POST", "/api/cases/{number}/close", "close_case", "Close the case with its resolution.", OP, body="CaseClose", response="CaseDetail", params=(NUMBER,), tag="cases", extra_errors=(409,)),
)  # fmt: skip

STRING, NULL_STRING = {"type": "string"}, {"type": ["string", "null"]}
VERSION = {"type": "integer", "minimum": 1,
           "description": "The case's version the console showed: refused (409) if it changed since."}  # fmt: skip
SCHEMAS: dict[str, Any] = {
    "Case": {"type": "object", "required": ["number", "state", "due_at", "sla"], "properties": {
        "number": STRING, "state": {"type": "string", "enum": list(STATES)},
        "sla": {"type": "object", "description": "Marks computed now: `due_overdue` (not answered and the promised date is past), `first_response_overdue`, `resolution_overdue`."},
    }},
    "CaseList": {"type": "object", "required": ["cases"], "properties": {
        "cases": {"type": "array", "items": {"$ref": "#/components/schemas/Case"}}}},
    "CaseEvent": {"type": "object", "required": ["id", "at", "actor", "action"], "properties": {
        "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "actor": STRING, "role": STRING, "action": STRING, "old": {}, "new": {}, "detail": STRING}},
    "CaseDetail": {"type": "object", "required": ["case", "events", "whatsapp"], "properties": {
        "case": {"$ref": "#/components/schemas/Case"},
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/CaseEvent"}},
        "whatsapp": {"type": "object", "required": ["open", "reason"], "properties": {
            "open": {"type": "boolean"}, "reason": STRING,
            "ends_at": {"type": ["string", "null"], "format": "date-time"}},
            "description": "Whether a WhatsApp answer may be sent now (Meta's 24-hour customer-service window) and, if not, why (Spanish)."},
    }},
    "CaseOptions": {"type": "object", "required": ["states", "groups", "people", "timezone"], "properties": {
        "states": {"type": "array", "items": STRING},
        "timezone": {"type": "string", "description": "The cases' IANA time zone (cases.yaml `timezone`): the console shows and reads every instant in it, whatever the browser's zone."},
        "groups": {"type": "array", "items": {"type": "object"}},
        "people": {"type": "array", "items": {"type": "object"}},
        "channels": {"type": "array", "items": STRING}}},
    "CaseAssign": {"type": "object", "additionalProperties": False, "properties": {
        "assignee": {"type": ["string", "null"], "minLength": 1, "maxLength": 128, "pattern": r"\S"},
        "group": {"type": "string", "minLength": 1, "maxLength": 64},
        "expected_version": VERSION},
        "anyOf": [{"required": ["assignee"]}, {"required": ["group"]}]},
    "CaseAnswer": {"type": "object", "additionalProperties": False, "required": ["text", "channels"], "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_ANSWER, "pattern": r"\S"},
        "channels": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "enum": list(ANSWER_CHANNELS)}},
        "expected_version": VERSION}},
    "CaseClose": {"type": "object", "additionalProperties": False, "required": ["resolution"], "properties": {
        "resolution": {"type": "string", "minLength": 1, "maxLength": 4000, "pattern": r"\S"},
        "expected_version": VERSION}},
}  # fmt: skip


def sla_marks(case: Case, now: datetime) -> dict[str, bool]:
    """What the queue flags in red. The promise (``due_at``) is overdue while the
    case is not answered (open, assigned) past it; the first response while there
    is none past its clock; the resolution while not closed past its clock."""
    waiting = case.state in (OPEN, ASSIGNED)
    return {
        "due_overdue": waiting and now >= case.due_at,
        "first_response_overdue": case.first_response_at is None
        and case.state != CLOSED
        and now >= case.first_response_due_at,
        "resolution_overdue": case.state != CLOSED and now >= case.resolution_due_at,
    }


def case_json(case: Case, now: datetime) -> dict[str, Any]:
    return {**case.as_json(), "sla": sla_marks(case, now)}


def _actor(call: Call) -> Actor:
    return Actor(call.who.name, call.who.role.label)


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not is_valid(number):
        raise ApiError(422, "invalid_parameter", f"número de caso no válido: {number!r}",
                       [{"field": "number", "message": "7 dígitos con dígito de verificación"}])  # fmt: skip
    return number


def _spanish_errors(handler: Handler) -> Handler:
    """The cases' exceptions as the ops API's error answers."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request, call: Call) -> web.StreamResponse:
        try:
            return await handler(request, call)
        except CaseNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except CaseConflict as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except AnswerRefused as exc:
            raise ApiError(422, "invalid", exc.message,
                           [{"field": exc.field, "message": exc.message}]) from None  # fmt: skip
        except ValueError as exc:
            raise ApiError(422, "invalid", _spanish_value_error(str(exc))) from None

    return wrapped


def _spanish_value_error(message: str) -> str:
    if message.startswith("unknown support group"):
        return "grupo de soporte desconocido: " + message.removeprefix("unknown support group ")
    return f"valor no válido: {message}"


@dataclass
class CaseRoutes:
    """The handlers, over the case store and the answer delivery."""

    cases: CaseStore
    answers: AnswerDelivery

    def handlers(self) -> dict[str, Handler]:
        routes: dict[str, Callable[[web.Request, Call], Awaitable[web.StreamResponse]]] = {
            "list_cases": self.list_cases, "case_options": self.case_options,
            "get_case": self.get_case, "assign_case": self.assign_case,
            "answer_case": self.answer_case, "close_case": self.close_case,
        }  # fmt: skip
        return {name: _spanish_errors(handler) for name, handler in routes.items()}

    async def list_cases(self, request: web.Request, call: Call) -> web.StreamResponse:
        params, now = call.params, self.cases.clock()
        state: str | tuple[str, ...] | None = params.get("state")
        due_before = (
            _instant(params["due_before"], "due_before") if "due_before" in params else None
        )
        if params.get("overdue"):
            due_before = min(due_before, now) if due_before else now
            if state is None:
                state = (OPEN, ASSIGNED)
            elif state not in (OPEN, ASSIGNED):
                state = ()  # answered or closed: never overdue
        found = [] if state == () else await self.cases.list(
            state=state, site_id=params.get("site") or None,
            service_id=params.get("service") or None, group=params.get("group") or None,
            assignee=params.get("assignee") or None, due_before=due_before,
            limit=params["limit"], offset=params["offset"],
        )  # fmt: skip
        return web.json_response({"cases": [case_json(c, now) for c in found]})

    async def case_options(self, request: web.Request, call: Call) -> web.StreamResponse:
        config = self.cases.config
        return web.json_response({
            "states": list(STATES),
            "groups": [{"id": gid, "name": g.name} for gid, g in config.groups.items()],
            "people": [{"id": pid, "name": p.name} for pid, p in config.people.items()],
            "channels": list(ANSWER_CHANNELS),
            "timezone": config.timezone,
        })  # fmt: skip

    async def get_case(self, request: web.Request, call: Call) -> web.StreamResponse:
        return await self._detail(_number(request))

    async def assign_case(self, request: web.Request, call: Call) -> web.StreamResponse:
        number, body = _number(request), call.body
        current = await self._case(number)
        to = body["assignee"] if "assignee" in body else current.assignee
        await self.cases.assign(number, to=to, group=body.get("group"), actor=_actor(call),
                                expected_version=body.get("expected_version"))  # fmt: skip
        return await self._detail(number)

    async def answer_case(self, request: web.Request, call: Call) -> web.StreamResponse:
        number, body = _number(request), call.body
        await self.answers.answer(number, text=body["text"], channels=body["channels"],
                                  actor=_actor(call), expected_version=body.get("expected_version"))  # fmt: skip
        return await self._detail(number)

    async def close_case(self, request: web.Request, call: Call) -> web.StreamResponse:
        number, body = _number(request), call.body
        await self.cases.close(number, resolution=body["resolution"], actor=_actor(call),
                               expected_version=body.get("expected_version"))  # fmt: skip
        return await self._detail(number)

    async def _case(self, number: str) -> Case:
        case = await self.cases.get(number)
        if case is None:
            raise CaseNotFound(f"no existe el caso {number}")
        return case

    async def _detail(self, number: str) -> web.StreamResponse:
        case = await self._case(number)
        events = await self.cases.events(number)
        window = await self.answers.window(case) if case.state != CLOSED else None
        return web.json_response({
            "case": case_json(case, self.cases.clock()),
            "events": [e.as_json() for e in events],
            "whatsapp": window.as_json() if window else
            {"open": False, "ends_at": None, "reason": "El caso está cerrado."},
        })  # fmt: skip


def _instant(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiError(422, "invalid_parameter",
                       f"{name}: se espera una fecha y hora ISO 8601 con zona, no {raw!r}",
                       [{"field": name, "message": "ISO 8601 con zona horaria"}])  # fmt: skip
    return value


def cases_extension(cases: CaseStore, answers: AnswerDelivery) -> ApiExtension:
    """The back office as an ops API extension (the composition root passes it to
    ``build_ops_app``): its routes, schemas, the ``Casos`` page and its errors."""
    routes = CaseRoutes(cases, answers)
    return ApiExtension(
        name="cases-backoffice",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        console_files=CONSOLE_FILES,
        pages=(ConsolePage("cases.html", "Casos"),),
        errors={CaseNotFound: (404, "not_found"), CaseConflict: (409, "conflict")},
    )
