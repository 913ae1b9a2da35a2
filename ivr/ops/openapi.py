"""The ops API described as data: its operations, and the OpenAPI 3.1 document.

:data:`OPERATIONS` is the one list of routes: the HTTP app (``ivr.ops.api``)
adds a route for each, with the role it needs and the schema its body must
match, and :func:`openapi_document` turns the same list into the document
served at ``GET /api/openapi.json``. Request bodies are validated against the
document's own schemas (:class:`BodyValidator`), so what the document says is
what the API checks.

A flag's value has a type that depends on the flag: the schema ``FlagValues``
has one property per flag (from :meth:`FlagDef.value_schema`), and a value is
checked as ``{name: value}`` against it.

>>> from ivr.ops.flags import FlagDef, FlagRegistry
>>> doc = openapi_document(FlagRegistry([FlagDef("promo_audio", "bool", True, "Promo.")]))
>>> doc["components"]["schemas"]["FlagValues"]["properties"]["promo_audio"]
{'type': 'boolean'}
>>> BodyValidator(doc).problems("FlagChange", {"value": 1})
[{'field': 'reason', 'message': "'reason' is a required property"}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ivr.ops.flags import FlagRegistry, Role
from ivr.ops.service import MAX_REASON, MAX_WINDOW

DOC_URI = "urn:citas:ops-api"
ERROR_STATUSES = {
    400: "The request cannot be read.",
    401: "No token, or the token is not valid (see `WWW-Authenticate`).",
    403: "The token's role is too low for this change.",
    404: "No such flag, window, token, hand-off, conversation or case (or whatever the path names).",
    409: "The hand-off, conversation or case is not in a state that allows this (taken by another agent, released, not with an agent, closed, changed since read).",
    422: "The body or a parameter is not valid; nothing was changed.",
    503: "The database cannot be reached.",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    min_role: Role | None  # None: no token needed
    body: str | None = None  # a schema in components.schemas
    ok: int = 200
    response: str | None = None  # a schema in components.schemas (JSON)
    media: str = "application/json"
    params: tuple[Param, ...] = ()
    other_media: tuple[str, ...] = ()  # more answer types, each a text (CSV, script, style)
    tag: str = "flags"
    extra_errors: tuple[int, ...] = ()  # statuses beyond those the checks imply


FLAG_NAME = Param("name", "path", {"type": "string"}, "The flag's name.")
WINDOW_ID = Param("id", "path", {"type": "string"}, "The window's id.")
TOKEN_NAME = Param("name", "path", {"type": "string"}, "The token's name.")
AUDIT_PARAMS = (
    Param("name", "query", {"type": "string"}, "Only this flag's entries."),
    Param("since", "query", {"type": "string", "format": "date-time"}, "From this instant on (ISO 8601 with offset)."),
    Param("until", "query", {"type": "string", "format": "date-time"}, "Before this instant."),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}, "At most this many entries, newest first."),
    Param("format", "query", {"type": "string", "enum": ["json", "csv"]}, "`csv` (or `Accept: text/csv`) for a CSV file."),
)  # fmt: skip

# The databases' INTEGER columns (PostgreSQL: 32 bits): a larger id names nothing.
MAX_ID = 2**31 - 1
HANDOFF_ID = Param("id", "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "The hand-off's id.")
WA_ID = Param(
    "wa_id",
    "path",
    {"type": "string", "pattern": "^[0-9]{6,15}$"},
    "The contact's WhatsApp id: the number, E.164 digits without `+`.",
)
CONVERSATION_PARAMS = (
    Param("state", "query", {"type": "string", "enum": ["bot", "agent", "closed"]}, "Only conversations in this state."),
    Param("outcome", "query", {"type": "string"}, "Only conversations with this outcome (`completed`, `expired`...)."),
    Param("active", "query", {"type": "boolean", "default": False}, "Only active ones: with an agent, or with the bot in the middle of a flow."),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "At most this many, most recently active first."),
)  # fmt: skip

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/health/live", "live", "The process answers.", None, response="Status", tag="health"),
    Operation("GET", "/health/ready", "ready", "Every readiness check passes (else 503 with the checks).", None, response="Readiness", tag="health"),
    Operation("GET", "/metrics", "metrics", "Prometheus metrics.", None, media="text/plain", tag="health"),
    Operation("GET", "/api/openapi.json", "openapi", "This document.", None, response="Object", tag="meta"),
    Operation("GET", "/api/whoami", "whoami", "The token's actor and role.", V, response="Whoami", tag="meta"),
    Operation("GET", "/api/flags", "list_flags", "Every flag with its effective value.", V, response="FlagList"),
    Operation("GET", "/api/flags/{name}", "get_flag", "One flag.", V, response="Flag", params=(FLAG_NAME,)),
    Operation("PUT", "/api/flags/{name}", "set_flag", "Set a flag's value (role: the flag's `min_role`).", OP, body="FlagChange", response="Flag", params=(FLAG_NAME,)),
    Operation("DELETE", "/api/flags/{name}", "reset_flag", "Reset a flag to its default.", OP, body="Reason", response="Flag", params=(FLAG_NAME,)),
    Operation("GET", "/api/windows", "list_windows", "Contingency windows not over yet (all with `include_past`).", V, response="WindowList", params=(Param("include_past", "query", {"type": "boolean", "default": False}, "Include windows that are over or cancelled."),), tag="windows"),
    Operation("POST", "/api/windows", "create_window", "A value for a while; the flag reverts by itself at `ends_at`.", OP, body="WindowCreate", ok=201, response="Window", tag="windows"),
    Operation("DELETE", "/api/windows/{id}", "cancel_window", "Cancel a window; the flag reverts now.", OP, body="Reason", response="Window", params=(WINDOW_ID,), tag="windows"),
    Operation("POST", "/api/incident", "set_incident", "The incident switch: every new caller goes to the agents.", OP, body="IncidentChange", response="Flag", tag="incident"),
    Operation("GET", "/api/audit", "audit", "Who changed what, when and why (newest first).", V, response="AuditList", params=AUDIT_PARAMS, tag="audit", other_media=("text/csv",)),
    Operation("GET", "/api/alerts", "alerts", "Alerts (only unresolved ones with `open=true`).", V, response="AlertList", params=(Param("open", "query", {"type": "boolean", "default": False}, "Only unresolved alerts."),), tag="audit"),
    Operation("GET", "/api/controllers", "controllers", "Every controller process of every node, from their heartbeats: health (active, unresponsive after 3 missed beats, stopped), the flags revision each runs against the database's, breaker, calls, ARI, and their open alerts.", V, response="ControllerRegistry", tag="nodes"),
    Operation("GET", "/api/breaker", "breaker", "The booking-service circuit breaker of this process.", V, response="Object", tag="incident"),
    Operation("GET", "/api/tokens", "list_tokens", "API tokens (never their secret).", A, response="TokenList", tag="tokens"),
    Operation("POST", "/api/tokens", "create_token", "A new token; the secret is in this answer only.", A, body="TokenCreate", ok=201, response="TokenCreated", tag="tokens"),
    Operation("DELETE", "/api/tokens/{name}", "revoke_token", "Revoke a token.", A, body="Reason", response="Status", params=(TOKEN_NAME,), tag="tokens"),
    Operation("GET", "/api/chat/handoffs", "list_handoffs", "Chats handed to a person and not released yet, oldest first, with the context the bot left.", V, response="HandoffList", tag="chat", extra_errors=(404,)),
    Operation("POST", "/api/chat/handoffs/{id}/take", "take_handoff", "The caller (the token's name) takes a queued hand-off.", OP, response="Handoff", params=(HANDOFF_ID,), tag="chat", extra_errors=(409,)),
    Operation("POST", "/api/chat/conversations/{wa_id}/release", "release_conversation", "Give a conversation back to the bot (its next message starts the flow again).", OP, response="Conversation", params=(WA_ID,), tag="chat", extra_errors=(409,)),
    Operation("GET", "/api/chat/summary", "chat_summary", "Counts of chat conversations: active now, by state and by outcome.", V, response="ChatSummary", tag="chat", extra_errors=(404,)),
    Operation("GET", "/api/calls/summary", "call_summary", "Counts of calls: in progress now (no end, started in the last 2 h) and by outcome over the last 24 h (no outcome: `interrupted`).", V, response="CallSummary", tag="calls", extra_errors=(404,)),
    Operation("GET", "/api/chat/conversations", "list_conversations", "Chat conversations, most recently active first.", V, response="ConversationList", params=CONVERSATION_PARAMS, tag="chat", extra_errors=(404,)),
    Operation("GET", "/api/console/pages", "console_pages", "The pages the parts add to the console, for its navigation.", None, response="ConsolePages", tag="console"),
    Operation("GET", "/", "root", "Redirects to the console.", None, ok=302, media="", tag="console"),
    Operation("GET", "/console", "console", "The web console.", None, media="text/html", tag="console"),
    Operation("GET", "/console/{file}", "console_asset", "The console's scripts and style sheet.", None, media="text/javascript", params=(Param("file", "path", {"type": "string", "enum": ["console.js", "console.css", "common.js", "nodes.js"]}, "The file."),), tag="console", other_media=("text/css",)),
)  # fmt: skip


def _obj(
    props: dict[str, Any], required: tuple[str, ...] = (), closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(key: str, item: str) -> dict[str, Any]:
    return _obj({key: {"type": "array", "items": _ref(item)}}, (key,), closed=False)


STRING, NULL_STRING = {"type": "string"}, {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}
NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
ANY: dict[str, Any] = {"description": "A JSON value; its type depends on the flag (FlagValues)."}


def schemas(registry: FlagRegistry) -> dict[str, Any]:
    """The document's component schemas: bodies, answers and each flag's value."""
    reason = {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S",
              "description": "Why (kept in the audit trail)."}  # fmt: skip
    names = registry.names()
    role = {"type": "string", "enum": [r.label for r in Role]}
    return {
        "Error": _obj({
            "error": {"type": "string", "description": "A stable error id."},
            "message": STRING,
            "details": {"type": "array", "items": _obj({
                "field": STRING, "message": STRING,
                "rule": {"type": "string", "description": "A rule across flags the change would break (its stable id)."},
                "at": {**TIME, "description": "The first instant at which the rule would break."},
            }, ("field", "message"))},
        }, ("error", "message", "details")),
        "FlagValues": {
            "type": "object",
            "description": "Each flag's value schema, by flag name.",
            "properties": {d.name: d.value_schema() for d in registry},
            "additionalProperties": False,
        },
        "Reason": _obj({"reason": reason}, ("reason",)),
        "FlagChange": _obj({"value": ANY, "reason": reason}, ("value", "reason")),
        "IncidentChange": _obj({"active": {"type": "boolean"}, "reason": reason}, ("active", "reason")),
        "WindowCreate": {
            **_obj({
                "name": {"type": "string", "enum": names},
                "value": ANY,
                "starts_at": {**TIME, "description": "Default: now."},
                "ends_at": TIME,
                "duration_s": {"type": "integer", "minimum": 1, "maximum": int(MAX_WINDOW.total_seconds())},
                "reason": reason,
            }, ("name", "value", "reason")),
            "oneOf": [{"required": ["ends_at"]}, {"required": ["duration_s"]}],
        },
        "TokenCreate": _obj({
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_.@-]+$"},
            "role": role,
            "reason": reason,
        }, ("name", "role", "reason")),
        "Flag": _obj({
            "name": STRING, "kind": {"type": "string", "enum": ["bool", "int", "enum", "date", "codes"]},
            "default": ANY, "description": STRING, "min_role": role, "group": STRING,
            "nullable": {"type": "boolean"}, "choices": {"type": "array", "items": STRING},
            "minimum": {"type": "integer"}, "maximum": {"type": "integer"},
            "value": ANY, "set_value": ANY,
            "source": {"type": "string", "enum": ["default", "set", "window"]},
            "window_id": NULL_STRING, "window_ends_at": NULL_TIME,
            "updated_at": NULL_TIME, "updated_by": NULL_STRING,
        }, ("name", "kind", "value", "source"), closed=False),
        "FlagList": _list("flags", "Flag"),
        "Window": _obj({
            "id": STRING, "name": STRING, "value": ANY, "starts_at": TIME, "ends_at": TIME,
            "reason": STRING, "created_at": TIME, "created_by": STRING,
            "cancelled_at": NULL_TIME, "cancelled_by": NULL_STRING,
            "state": {"type": "string", "enum": ["scheduled", "active", "ended", "cancelled"]},
        }, ("id", "name", "value", "starts_at", "ends_at", "state"), closed=False),
        "WindowList": _list("windows", "Window"),
        "AuditEntry": _obj({
            "id": {"type": "integer"}, "at": TIME, "actor": STRING, "role": STRING,
            "action": STRING, "name": NULL_STRING, "old_value": ANY, "new_value": ANY,
            "reason": STRING, "window_id": NULL_STRING,
        }, ("id", "at", "actor", "action", "reason"), closed=False),
        "AuditList": _list("entries", "AuditEntry"),
        "Alert": _obj({
            "id": {"type": "integer"}, "at": TIME, "kind": STRING, "source": STRING,
            "detail": STRING, "resolved_at": NULL_TIME,
        }, ("id", "at", "kind"), closed=False),
        "AlertList": _list("alerts", "Alert"),
        "Token": _obj({
            "name": STRING, "role": role, "created_at": TIME, "created_by": STRING,
            "revoked_at": NULL_TIME,
        }, ("name", "role"), closed=False),
        "TokenList": _list("tokens", "Token"),
        "TokenCreated": _obj({"name": STRING, "role": role, "token": STRING}, ("name", "role", "token"), closed=False),
        "Handoff": _obj({
            "id": {"type": "integer"}, "conversation_id": STRING, "wa_id": STRING,
            "wa_id_masked": {**STRING, "description": "The number as the console shows it (ivr.masking)."},
            "reason": STRING, "context": {"type": "object"}, "queued_at": TIME,
            "taken_by": NULL_STRING, "taken_at": NULL_TIME, "released_at": NULL_TIME,
        }, ("id", "wa_id", "reason", "context", "queued_at"), closed=False),
        "HandoffList": _list("handoffs", "Handoff"),
        "Conversation": _obj({
            "id": STRING, "wa_id": STRING, "flow": STRING, "node": NULL_STRING,
            "wa_id_masked": {**STRING, "description": "The number as the console shows it (ivr.masking)."},
            "state": {"type": "string", "enum": ["bot", "agent", "closed"]},
            "outcome": NULL_STRING, "assigned_agent": NULL_STRING, "journey_id": NULL_STRING,
            "last_inbound_at": NULL_TIME,
            "service_window_ends_at": {**NULL_TIME, "description": "24 h after the contact's last message: until then free-form replies may be sent."},
            "last_activity_at": TIME, "created_at": TIME,
        }, ("id", "wa_id", "state", "last_activity_at"), closed=False),
        "ConversationList": _list("conversations", "Conversation"),
        "ChatSummary": _obj({
            "active": {"type": "integer", "minimum": 0, "description": "With an agent, or with the bot in the middle of the flow."},
            "by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_outcome": {"type": "object", "additionalProperties": {"type": "integer"}},
        }, ("active", "by_state", "by_outcome")),
        "CallSummary": _obj({
            "in_progress": {"type": "integer", "minimum": 0, "description": "Calls without an end that started in the last 2 hours."},
            "by_outcome": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "description": "Calls started in the window, by outcome; `interrupted`: no outcome (ended without one, or no end after 2 hours)."},
            "window_hours": {"type": "number", "description": "The window's length in hours (24)."},
            "since": TIME, "as_of": TIME,
        }, ("in_progress", "by_outcome", "window_hours", "since", "as_of")),
        "Controller": _obj({
            "source_id": {**STRING, "description": "instance@host:pid: the source of the alerts it raises."},
            "instance": STRING, "host": STRING, "pid": {"type": "integer"},
            "app": {**STRING, "description": "Its Stasis application (slot)."},
            "started_at": TIME, "seen_at": {**TIME, "description": "Its last heartbeat."},
            "stopped_at": {**NULL_TIME, "description": "When it stopped cleanly."},
            "seen_age_s": {"type": "number", "minimum": 0},
            "health": {"type": "string", "enum": ["active", "unresponsive", "stopped"]},
            "flags_revision": {"type": "integer", "description": "The flags revision it runs (-1: none read yet)."},
            "flags_current": {"type": "boolean", "description": "It runs the database's flags revision."},
            "breaker": {"type": ["string", "null"], "enum": ["closed", "open", "half_open", None]},
            "active_calls": {"type": "integer", "minimum": 0}, "ari_connected": {"type": "boolean"},
            "alerts": {"type": "array", "items": _ref("Alert"), "description": "Its open alerts."},
        }, ("source_id", "instance", "host", "pid", "app", "started_at", "seen_at", "stopped_at",
            "seen_age_s", "health", "flags_revision", "flags_current", "breaker", "active_calls",
            "ari_connected", "alerts")),
        "Node": _obj({
            "node": {**STRING, "description": "instance@host."}, "instance": STRING, "host": STRING,
            "controllers": {"type": "array", "items": _ref("Controller")},
            "alerts": {"type": "array", "items": _ref("Alert"), "description": "Open alerts of the node's instance (a broken flag rule found at a start)."},
        }, ("node", "instance", "host", "controllers", "alerts")),
        "ControllerRegistry": _obj({
            "as_of": TIME, "flags_revision": {"type": "integer", "description": "The database's flags revision."},
            "heartbeat_s": {"type": "number", "description": "Seconds between two heartbeats."},
            "stale_after_s": {"type": "number", "description": "A controller not seen for longer is unresponsive."},
            "nodes": {"type": "array", "items": _ref("Node")},
        }, ("as_of", "flags_revision", "heartbeat_s", "stale_after_s", "nodes")),
        "Whoami": _obj({"name": STRING, "role": role}, ("name", "role"), closed=False),
        "Status": _obj({"status": STRING}, ("status",), closed=False),
        "Readiness": _obj({"status": STRING, "checks": {"type": "object", "additionalProperties": {"type": "boolean"}}}, ("status",), closed=False),
        "Object": {"type": "object"},
        "ConsolePages": _list("pages", "ConsolePage"),
        "ConsolePage": _obj({"file": STRING, "title": STRING, "href": STRING}, ("file", "title", "href")),
    }  # fmt: skip


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.min_role is None:
        out["security"] = []
    else:
        out["description"] = f"Role: {op.min_role.label} or higher."
        out["x-min-role"] = op.min_role.label
    if op.params:
        out["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.where == "path",
             "schema": p.schema, "description": p.description}
            for p in op.params
        ]  # fmt: skip
    if op.body:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if op.response:
        ok["content"] = {op.media: {"schema": _ref(op.response)}}
    elif op.media:
        ok["content"] = {op.media: {"schema": {"type": "string"}}}
    for media in op.other_media:
        ok["content"][media] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(op.ok): ok}
    errors = [422] if op.body or op.params else []
    if op.min_role is not None:
        errors += [401, 403, 503]
    if any(p.where == "path" for p in op.params) or op.operation_id == "breaker":
        errors.append(404)
    errors += op.extra_errors
    for status in sorted(set(errors)):
        responses[str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    if op.operation_id == "ready":
        responses["503"] = {
            "description": "A check fails.",
            "content": {"application/json": {"schema": _ref("Readiness")}},
        }
    out["responses"] = responses
    return out


def openapi_document(
    registry: FlagRegistry,
    *,
    extra_operations: Sequence[Operation] = (),
    extra_schemas: Mapping[str, Any] | None = None,
    console_files: Sequence[str] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the ops API, with each flag's value schema.

    ``extra_operations`` and ``extra_schemas``: those of the API extensions
    (``ivr.ops.api.ApiExtension``), documented like the core's;
    ``console_files``: the extensions' console files, added to the names
    ``GET /console/{file}`` serves. ``ValueError`` when an extension reuses an
    operation id, a method and path, or a schema name."""
    operations = [*(_console_op(op, console_files) for op in OPERATIONS), *extra_operations]
    paths: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for op in operations:
        method = op.method.lower()
        if op.operation_id in ids or method in paths.get(op.path, {}):
            raise ValueError(f"operation {op.operation_id} ({op.method} {op.path}) is defined twice")
        ids.add(op.operation_id)
        paths.setdefault(op.path, {})[method] = _operation(op)
    components = schemas(registry)
    for name, schema in (extra_schemas or {}).items():
        if name in components:
            raise ValueError(f"schema {name} is defined twice")
        components[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Citas IVR operations API",
            "version": "1",
            "description": (
                "Flags, contingency windows, the incident switch, the audit trail and tokens "
                "of the citas line. Every change needs a reason and is audited. Errors are "
                '`{"error": id, "message": text, "details": [{"field", "message"}]}`; '
                "a change that would break a rule across flags at some instant (stored values "
                "and every window considered) is `invalid` with `rule` and `at` in its details; "
                "a refused request changes nothing. Taking and releasing a chat hand-off are "
                "recorded with the hand-off (who took it, when)."
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
        },
    }


def _console_op(op: Operation, console_files: Sequence[str]) -> Operation:
    """``console_asset`` with the extensions' files among the names it serves."""
    if op.operation_id != "console_asset" or not console_files:
        return op
    (param,) = op.params
    names = [*param.schema["enum"], *console_files]
    media = tuple(sorted({*op.other_media, *(CONSOLE_MEDIA[n.rpartition(".")[2]] for n in console_files)} - {op.media}))
    return replace(op, params=(replace(param, schema={**param.schema, "enum": names}),), other_media=media)


CONSOLE_MEDIA = {"html": "text/html", "js": "text/javascript", "css": "text/css",
                 "svg": "image/svg+xml", "json": "application/json"}  # fmt: skip


class BodyValidator:
    """Checks JSON bodies against the schemas of one OpenAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self._names = set(document["components"]["schemas"])

    def problems(self, schema: str, body: object) -> list[dict[str, str]]:
        """What is wrong with ``body`` as a ``schema`` (empty when it fits)."""
        validator = self._validator(schema)
        found = []
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
            field = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "required" or error.validator == "additionalProperties":
                field = field or _named_property(error.message)
            found.append({"field": field or "body", "message": error.message})
        return found

    def value_problems(self, flag: str, value: object) -> list[dict[str, str]]:
        """What is wrong with ``value`` as the value of ``flag``."""
        return [
            {"field": "value", "message": f"{flag}: {p['message']}"}
            for p in self.problems("FlagValues", {flag: value})
        ]

    def _validator(self, schema: str) -> Draft202012Validator:
        if schema not in self._names:
            raise KeyError(f"no schema {schema} in the document")
        if schema not in self._validators:
            self._validators[schema] = Draft202012Validator(
                {"$ref": f"{DOC_URI}#/components/schemas/{schema}"},
                registry=self._registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
        return self._validators[schema]


def _named_property(message: str) -> str:
    """The property a 'required'/'additionalProperties' message names, for ``field``."""
    parts = message.split("'")
    return parts[1] if len(parts) >= 3 else ""
