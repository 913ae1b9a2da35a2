"""The ops HTTP API and web console (aiohttp), over :class:`FlagService`.

The routes are :data:`ivr.ops.openapi.OPERATIONS`: each declares the role it
needs and its body schema, and :func:`build_ops_app` adds it wrapped in the
checks, in this order: token (401), role (403), body against the OpenAPI
document's schema (422); then the service applies its own rules (the flag's
role, the value, the reason, the window) before anything is written, so a
refused request changes nothing. Every error answer is::

    {"error": "<stable id>", "message": "...", "details": [{"field": ..., "message": ...}]}

    401 unauthorized        no token, or not a valid one (with WWW-Authenticate: Bearer)
    403 forbidden           the role is too low
    404 not_found           no such flag / window / token / route
    405 method_not_allowed
    422 invalid_body        not JSON, wrong type, unknown or missing field
    422 invalid_parameter   a query parameter (or one the route does not have)
    409 conflict            a chat hand-off taken by another agent or released already,
                            or a conversation that is not with an agent
    422 invalid             the service refused the change (value, reason, window, or a
                            rule across flags broken at some instant: details carry
                            ``rule`` and ``at``)
    503 store_unavailable   the database cannot be reached
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from jsonschema import Draft202012Validator

from ivr.chat.store import (
    STATES,
    ChatDeskError,
    ConversationNotFound,
    ConversationStore,
    HandoffNotFound,
)
from ivr.ops.controllers import ControllerStore, registry_json
from ivr.ops.flags import ROLE_WORDS, Role
from ivr.ops.metrics import CONTENT_TYPE_LATEST, Metrics
from ivr.ops.openapi import (
    CONSOLE_MEDIA,
    MAX_ID,
    OPERATIONS,
    BodyValidator,
    Operation,
    openapi_document,
)
from ivr.ops.service import (
    Actor,
    FlagService,
    Forbidden,
    InvalidChange,
    NotFound,
    OpsError,
    audit_csv,
)
from ivr.ops.store import utcnow
from ivr.store import StoreUnavailable
from ivr.store.records import CallRecordStore

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
# common.js: what every console page shares (the token, api(), the error box); a part's
# page loads it before its own script (docs/desk/core.md).
CONSOLE_ASSETS = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "common.js": "text/javascript",
    "nodes.js": "text/javascript",
}
CONSOLE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
WWW_AUTHENTICATE = 'Bearer realm="citas-ops"'
MAX_BODY = 64 * 1024

Readiness = Callable[[], Mapping[str, bool] | Awaitable[Mapping[str, bool]]]
Breaker = Callable[[], Mapping[str, object]]


class ApiError(Exception):
    """An answer other than 2xx, raised by the API layer itself."""

    def __init__(
        self,
        status: int,
        error_id: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


OPS_STATUS: dict[type[OpsError], int] = {Forbidden: 403, NotFound: 404, InvalidChange: 422}


@dataclass
class Call:
    """What a handler gets besides the request: who calls, and the checked body."""

    actor: Actor | None
    body: dict[str, Any] = field(default_factory=dict)
    # An extension route's path and query parameters, checked against their schemas
    # and converted (integers, booleans), defaults applied; absent ones left out.
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def who(self) -> Actor:
        assert self.actor is not None, "the route needs a token"
        return self.actor


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConsolePage:
    """A page of the console's navigation: ``file`` (one of the extension's
    ``console_files``, served at ``/console/<file>``) and its link's ``title``
    (Spanish, as operators read it)."""

    file: str
    title: str


@dataclass(frozen=True)
class ApiExtension:
    """Routes a part adds to the ops API without editing it (``ivr.ops`` imports
    no part; the composition root passes extensions to :func:`build_ops_app`).

    ``operations``: its routes, described like :data:`OPERATIONS` (role, body
    schema, parameters, statuses) and documented in ``/api/openapi.json``;
    ``schemas``: its component schemas (bodies and answers, JSON Schema 2020-12,
    ``$ref`` to ``#/components/schemas/...`` allowed, core ones included);
    ``handlers(api)``: operation id → handler, given the :class:`OpsApi` (its
    ``service``, ``metrics``, ``bodies``); ``console_files``: file name →
    path, served at ``/console/<name>`` (``.html``, ``.js``, ``.css``, ``.svg``,
    ``.json``) with the console's headers; ``pages``: the files linked from the
    console's navigation (``GET /api/console/pages``); ``errors``: the part's
    exception classes → (status, error id), answered like core errors
    (``{"error", "message": str(exc), "details": []}``); ``on_shutdown``: coroutine
    functions awaited when the server stops, before it waits for the requests in
    progress (a route that streams ends its streams there).

    Every extension route gets the core's checks in the same order: token
    (401), role (403), unknown query parameter (422 ``invalid_parameter``), path
    and query parameters against their schemas (422 ``invalid_parameter``),
    body against its schema (422 ``invalid_body``).
    """

    name: str
    operations: Sequence[Operation]
    handlers: Callable[[OpsApi], Mapping[str, Handler]]
    schemas: Mapping[str, Any] = field(default_factory=dict)
    console_files: Mapping[str, Path] = field(default_factory=dict)
    pages: Sequence[ConsolePage] = ()
    errors: Mapping[type[Exception], tuple[int, str]] = field(default_factory=dict)
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()


class OpsApi:
    """The handlers, with what they use passed in (no globals)."""

    def __init__(
        self,
        service: FlagService,
        metrics: Metrics,
        readiness: Readiness,
        breaker: Breaker | None,
        chats: ConversationStore | None = None,
        calls: CallRecordStore | None = None,
        extensions: Sequence[ApiExtension] = (),
    ) -> None:
        self.service = service
        self.chats = chats
        self.calls = calls
        self.metrics = metrics
        self.readiness = readiness
        self.breaker = breaker
        self.extensions = tuple(extensions)
        self.console_files: dict[str, tuple[Path, str]] = {
            name: (CONSOLE_DIR / name, media) for name, media in CONSOLE_ASSETS.items()
        }
        for ext in self.extensions:
            for name, path in ext.console_files.items():
                suffix = name.rpartition(".")[2]
                if name in self.console_files or suffix not in CONSOLE_MEDIA or "/" in name:
                    raise ValueError(f"extension {ext.name}: console file {name!r} is taken or not "
                                     f"one of .{', .'.join(CONSOLE_MEDIA)}")  # fmt: skip
                self.console_files[name] = (path, CONSOLE_MEDIA[suffix])
            for page in ext.pages:
                if page.file not in ext.console_files:
                    raise ValueError(f"extension {ext.name}: page {page.file} is not among its files")
        schemas: dict[str, Any] = {}
        for ext in self.extensions:
            for name, schema in ext.schemas.items():
                if name in schemas:
                    raise ValueError(f"schema {name} is defined twice")
                schemas[name] = schema
        self.document = openapi_document(
            service.registry,
            extra_operations=[op for ext in self.extensions for op in ext.operations],
            extra_schemas=schemas,
            console_files=[n for ext in self.extensions for n in ext.console_files],
        )
        self.bodies = BodyValidator(self.document)

    def handlers(self) -> dict[str, Handler]:
        return {
            "live": self.live, "ready": self.ready, "metrics": self.metrics_text,
            "openapi": self.openapi, "whoami": self.whoami,
            "list_flags": self.list_flags, "get_flag": self.get_flag,
            "set_flag": self.set_flag, "reset_flag": self.reset_flag,
            "list_windows": self.list_windows, "create_window": self.create_window,
            "cancel_window": self.cancel_window, "set_incident": self.set_incident,
            "audit": self.audit, "alerts": self.alerts, "breaker": self.breaker_state,
            "controllers": self.controllers,
            "list_tokens": self.list_tokens, "create_token": self.create_token,
            "revoke_token": self.revoke_token,
            "list_handoffs": self.list_handoffs, "take_handoff": self.take_handoff,
            "release_conversation": self.release_conversation,
            "list_conversations": self.list_conversations, "chat_summary": self.chat_summary,
            "call_summary": self.call_summary, "console_pages": self.console_pages,
            "root": self.root, "console": self.console, "console_asset": self.console_asset,
        }  # fmt: skip

    # --- the checks around every route ---------------------------------------------
    def route(self, op: Operation, handler: Handler, *, check_params: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:  # fmt: skip
        """``handler`` behind the checks; ``check_params`` (extension routes) also
        checks path and query parameters against their schemas into ``Call.params``."""
        queries = {p.name for p in op.params if p.where == "query"}

        async def handle(request: web.Request) -> web.StreamResponse:
            actor = None
            if op.min_role is not None:
                actor = await self._actor(request)
                if actor.role < op.min_role:
                    raise Forbidden(
                        f"su rol ({ROLE_WORDS[actor.role]}) no permite {op.method} {op.path}: "
                        f"hace falta el rol {ROLE_WORDS[op.min_role]}"
                    )
            unknown = sorted(set(request.query) - queries)
            if unknown:  # a misspelt filter must not silently list everything
                raise ApiError(422, "invalid_parameter",
                               "parámetro desconocido: " + ", ".join(repr(n) for n in unknown),
                               [{"field": n, "message": "desconocido"} for n in unknown])  # fmt: skip
            params = _checked_params(op, request) if check_params else {}
            body = await self._body(request, op.body) if op.body else {}
            return await handler(request, Call(actor, body, params))

        return handle

    async def _actor(self, request: web.Request) -> Actor:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "falta el token de acceso (Authorization: Bearer …)",
                           headers={"WWW-Authenticate": WWW_AUTHENTICATE})  # fmt: skip
        actor = await self.service.authenticate(token.strip())
        if actor is None:
            raise ApiError(401, "unauthorized", "el token de acceso no es válido (desconocido o revocado)",
                           headers={"WWW-Authenticate": WWW_AUTHENTICATE + ', error="invalid_token"'})  # fmt: skip
        return actor

    async def _body(self, request: web.Request, schema: str) -> dict[str, Any]:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ApiError(422, "invalid_body", f"el cuerpo pasa de {MAX_BODY} bytes")
        try:
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(422, "invalid_body", f"el cuerpo no es JSON: {exc}",
                           [{"field": "body", "message": "not JSON"}]) from None  # fmt: skip
        if body is None:
            raise ApiError(422, "invalid_body", "el cuerpo debe ser un objeto JSON",
                           [{"field": "body", "message": "required"}])  # fmt: skip
        problems = self.bodies.problems(schema, body)
        if problems:
            raise ApiError(422, "invalid_body", f"el cuerpo no es un {schema} válido", problems)
        assert isinstance(body, dict)
        return body

    def _value(self, name: str, value: object) -> None:
        problems = self.bodies.value_problems(name, value)
        if problems:
            raise ApiError(422, "invalid_body", problems[0]["message"], problems)

    def _changed(self, actor: Actor, action: str, name: str | None, reason: str) -> None:
        self.metrics.flag_changes.labels(action=action).inc()
        logger.info("ops change by %s (%s): %s %s, reason: %s",
                    actor.name, actor.role.label, action, name or "-", reason)  # fmt: skip

    # --- health, metrics, meta ----------------------------------------------------------
    async def live(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request, call: Call) -> web.StreamResponse:
        result = self.readiness()
        checks = dict(await result if inspect.isawaitable(result) else result)
        if all(checks.values()):
            return web.json_response({"status": "ok", "checks": checks})
        failing = [k for k, ok in checks.items() if not ok]
        return web.json_response(
            {"status": "not_ready", "checks": checks, "error": "not_ready",
             "message": "not ready: " + ", ".join(failing),
             "details": [{"field": k, "message": "failing"} for k in failing]},
            status=503,
        )  # fmt: skip

    async def metrics_text(self, request: web.Request, call: Call) -> web.StreamResponse:
        if self.chats is not None:  # the active count lives in the database
            try:
                self.metrics.chat_active.set((await self.chats.summary()).active)
            except StoreUnavailable as exc:
                logger.debug("chat metrics not refreshed: %s", exc)
        response = web.Response(body=self.metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response(self.document)

    async def whoami(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"name": call.who.name, "role": call.who.role.label})

    # --- flags -------------------------------------------------------------------------------
    async def list_flags(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"flags": [f.as_json() for f in await self.service.flags()]})

    async def get_flag(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response((await self.service.flag(request.match_info["name"])).as_json())

    async def set_flag(self, request: web.Request, call: Call) -> web.StreamResponse:
        name = request.match_info["name"]
        await self.service.flag(name)  # 404 before judging the value
        self._value(name, call.body["value"])
        view = await self.service.set_flag(call.who, name, call.body["value"], call.body["reason"])
        self._changed(call.who, "set", name, call.body["reason"])
        return web.json_response(view.as_json())

    async def reset_flag(self, request: web.Request, call: Call) -> web.StreamResponse:
        name = request.match_info["name"]
        view = await self.service.reset_flag(call.who, name, call.body["reason"])
        self._changed(call.who, "reset", name, call.body["reason"])
        return web.json_response(view.as_json())

    async def set_incident(self, request: web.Request, call: Call) -> web.StreamResponse:
        active: bool = call.body["active"]
        view = await self.service.set_incident(call.who, active, call.body["reason"])
        action = "incident_on" if active else "incident_off"
        self._changed(call.who, action, view.definition.name, call.body["reason"])
        return web.json_response(view.as_json())

    # --- windows ----------------------------------------------------------------------------
    async def list_windows(self, request: web.Request, call: Call) -> web.StreamResponse:
        include_past = _flag_param(request, "include_past")
        windows = await self.service.windows(include_past=include_past)
        now = self.service.clock()
        return web.json_response({"windows": [w.as_json(now) for w in windows]})

    async def create_window(self, request: web.Request, call: Call) -> web.StreamResponse:
        body = call.body
        self._value(body["name"], body["value"])
        now = self.service.clock()
        starts_at = _instant(body["starts_at"], "starts_at") if "starts_at" in body else now
        if "ends_at" in body:
            ends_at = _instant(body["ends_at"], "ends_at")
        else:
            ends_at = max(starts_at, now) + timedelta(seconds=body["duration_s"])
        window = await self.service.schedule(
            call.who, body["name"], body["value"], starts_at, ends_at, body["reason"]
        )
        self._changed(call.who, "schedule", window.name, body["reason"])
        return web.json_response(window.as_json(self.service.clock()), status=201)

    async def cancel_window(self, request: web.Request, call: Call) -> web.StreamResponse:
        window = await self.service.cancel_window(
            call.who, request.match_info["id"], call.body["reason"]
        )
        self._changed(call.who, "cancel_window", window.name, call.body["reason"])
        return web.json_response(window.as_json(self.service.clock()))

    # --- audit, alerts, breaker ----------------------------------------------------------------
    async def audit(self, request: web.Request, call: Call) -> web.StreamResponse:
        query = request.query
        since = _instant(query["since"], "since") if "since" in query else None
        until = _instant(query["until"], "until") if "until" in query else None
        limit = _int_param(request, "limit", 1000, 1, 10000)
        form = query.get("format", "json")
        if form not in ("json", "csv"):
            raise ApiError(422, "invalid_parameter", "format is json or csv",
                           [{"field": "format", "message": "json or csv"}])  # fmt: skip
        name = query.get("name") or None
        if name is not None and name not in self.service.registry:
            raise ApiError(422, "invalid_parameter", f"unknown flag {name!r}",
                           [{"field": "name", "message": "unknown flag"}])  # fmt: skip
        entries = await self.service.history(name=name, since=since, until=until, limit=limit)
        if form == "csv" or "text/csv" in request.headers.get("Accept", ""):
            return web.Response(
                text=audit_csv(entries),
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": "attachment; filename=citas-audit.csv"},
            )
        return web.json_response({"entries": [e.as_json() for e in entries]})

    async def alerts(self, request: web.Request, call: Call) -> web.StreamResponse:
        found = await self.service.store.alerts(open_only=_flag_param(request, "open"))
        return web.json_response({"alerts": [a.as_json() for a in found]})

    async def breaker_state(self, request: web.Request, call: Call) -> web.StreamResponse:
        if self.breaker is None:
            raise NotFound("this process has no booking-service breaker")
        return web.json_response(dict(self.breaker()))

    async def controllers(self, request: web.Request, call: Call) -> web.StreamResponse:
        registry = await ControllerStore(self.service.store.db).registry()
        return web.json_response(registry_json(registry, utcnow()))

    # --- tokens --------------------------------------------------------------------------------
    async def list_tokens(self, request: web.Request, call: Call) -> web.StreamResponse:
        tokens = await self.service.store.tokens()
        return web.json_response({"tokens": [
            {"name": t.name, "role": t.role, "created_at": t.created_at.isoformat(),
             "created_by": t.created_by,
             "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None}
            for t in tokens
        ]})  # fmt: skip

    async def create_token(self, request: web.Request, call: Call) -> web.StreamResponse:
        name, role = call.body["name"], Role.parse(call.body["role"])
        token = await self.service.create_token(call.who, name, role, call.body["reason"])
        self._changed(call.who, "token_created", None, call.body["reason"])
        return web.json_response({"name": name, "role": role.label, "token": token}, status=201)

    async def revoke_token(self, request: web.Request, call: Call) -> web.StreamResponse:
        await self.service.revoke_token(call.who, request.match_info["name"], call.body["reason"])
        self._changed(call.who, "token_revoked", None, call.body["reason"])
        return web.json_response({"status": "revoked"})

    # --- calls ---------------------------------------------------------------------------------
    async def call_summary(self, request: web.Request, call: Call) -> web.StreamResponse:
        if self.calls is None:
            raise NotFound("este proceso no tiene los registros de llamadas")
        return web.json_response((await self.calls.summary()).as_json())

    # --- chat hand-off ---------------------------------------------------------------------------
    def _chats(self) -> ConversationStore:
        if self.chats is None:
            raise NotFound("este proceso no atiende conversaciones de chat")
        return self.chats

    async def list_handoffs(self, request: web.Request, call: Call) -> web.StreamResponse:
        handoffs = await self._chats().open_handoffs()
        return web.json_response({"handoffs": [h.as_json() for h in handoffs]})

    async def take_handoff(self, request: web.Request, call: Call) -> web.StreamResponse:
        raw = request.match_info["id"]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_ID:
            raise ApiError(422, "invalid_parameter", f"id: se espera un número de transferencia, no {raw!r}",
                           [{"field": "id", "message": f"un entero de 1 a {MAX_ID}"}])  # fmt: skip
        handoff = await self._chats().take(int(raw), call.who.name)
        return web.json_response(handoff.as_json())

    async def release_conversation(self, request: web.Request, call: Call) -> web.StreamResponse:
        chats = self._chats()
        wa_id = request.match_info["wa_id"]
        if not (wa_id.isascii() and wa_id.isdigit() and 6 <= len(wa_id) <= 15):
            raise ApiError(422, "invalid_parameter", "wa_id: se esperan de 6 a 15 dígitos, sin +",
                           [{"field": "wa_id", "message": "de 6 a 15 dígitos"}])  # fmt: skip
        conversation = await chats.release(wa_id)
        return web.json_response(conversation.as_json())

    async def list_conversations(self, request: web.Request, call: Call) -> web.StreamResponse:
        chats = self._chats()
        state = request.query.get("state")  # given empty: refused, not read as "any"
        if state is not None and state not in STATES:
            raise ApiError(422, "invalid_parameter", "state: se espera bot, agent o closed",
                           [{"field": "state", "message": "bot, agent o closed"}])  # fmt: skip
        found = await chats.conversations(
            state=state,
            outcome=request.query.get("outcome") or None,
            active=_flag_param(request, "active"),
            limit=_int_param(request, "limit", 100, 1, 1000),
        )
        return web.json_response({"conversations": [c.as_json() for c in found]})

    async def chat_summary(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response((await self._chats().summary()).as_json())

    # --- console -------------------------------------------------------------------------------
    async def root(self, request: web.Request, call: Call) -> web.StreamResponse:
        raise web.HTTPFound("/console")

    async def console(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.Response(
            body=(CONSOLE_DIR / "index.html").read_bytes(),
            content_type="text/html",
            charset="utf-8",
            headers=CONSOLE_HEADERS,
        )

    async def console_asset(self, request: web.Request, call: Call) -> web.StreamResponse:
        name = request.match_info["file"]
        if name not in self.console_files:
            raise NotFound(f"no console file {name!r}")
        path, media = self.console_files[name]
        return web.Response(
            body=path.read_bytes(),
            content_type=media,
            charset="utf-8",
            headers=CONSOLE_HEADERS,
        )

    async def console_pages(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"pages": [
            {"file": p.file, "title": p.title, "href": f"/console/{p.file}"}
            for ext in self.extensions for p in ext.pages
        ]})  # fmt: skip


def _error(
    status: int,
    error_id: str,
    message: str,
    details: list[dict[str, str]],
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": error_id, "message": message, "details": details},
        status=status,
        headers=headers,
    )


ExtensionErrors = Mapping[type[Exception], tuple[int, str]]


def errors_middleware(extra: ExtensionErrors) -> Middleware:
    """:func:`error_middleware` that also answers the extensions' own errors
    (exception class → status and error id; the first class that matches wins)."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await error_middleware(request, handler)
        except Exception as exc:
            for cls, (status, error_id) in extra.items():
                if isinstance(exc, cls):
                    return _error(status, error_id, str(exc), [])
            raise

    return middleware


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error as ``{"error", "message", "details"}`` with its status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.error_id, exc.message, exc.details, exc.headers)
    except OpsError as exc:
        status = next((s for cls, s in OPS_STATUS.items() if isinstance(exc, cls)), 422)
        return _error(status, exc.error_id, exc.message, exc.details)
    except (HandoffNotFound, ConversationNotFound) as exc:
        return _error(404, "not_found", str(exc), [])
    except ChatDeskError as exc:
        return _error(409, "conflict", str(exc), [])
    except StoreUnavailable as exc:
        logger.warning("ops API: %s", exc)
        return _error(503, "store_unavailable", "the database cannot be reached", [])
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_id = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
        return _error(exc.status, error_id, exc.reason, [], allow)


def _flag_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()  # given empty: refused, not read as false
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ApiError(422, "invalid_parameter", f"{name} is true or false",
                   [{"field": name, "message": "true or false"}])  # fmt: skip


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ApiError(422, "invalid_parameter", f"{name} is an integer from {lo} to {hi}",
                       [{"field": name, "message": f"{lo} to {hi}"}])  # fmt: skip
    return value


def _checked_params(op: Operation, request: web.Request) -> dict[str, Any]:
    """An extension route's path and query parameters, converted to their schema's
    type and checked against it (format included); 422 ``invalid_parameter``
    naming every bad one. Absent query parameters take the schema's ``default``.
    An integer beyond the databases' 32-bit INTEGER is refused whatever the schema
    says (observed: a hand-off id of 20 digits overflowed SQLite, a 500)."""
    values: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for param in op.params:
        source = request.match_info if param.where == "path" else request.query
        if param.name not in source:
            if "default" in param.schema:
                values[param.name] = param.schema["default"]
            continue
        raw = source[param.name]
        value: Any = _converted(raw, param.schema)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
            problems.append({"field": param.name, "message": f"{raw!r}: más allá de ±{MAX_ID}"})
            continue
        errors = list(Draft202012Validator(
            param.schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).iter_errors(value))  # fmt: skip
        if not errors and not _formatted(value, param.schema.get("format")):
            problems.append({"field": param.name, "message": f"{raw!r}: not a valid {param.schema['format']}"
                             + (" (ISO 8601 with offset)" if param.schema["format"] == "date-time" else "")})  # fmt: skip
        elif errors:
            problems.append({"field": param.name, "message": f"{raw!r}: {errors[0].message}"})
        else:
            values[param.name] = value
    if problems:
        raise ApiError(422, "invalid_parameter",
                       "parámetro inválido: " + ", ".join(p["field"] for p in problems), problems)  # fmt: skip
    return values


def _formatted(value: Any, form: str | None) -> bool:
    """``date-time`` (with its offset) and ``date`` checked here: jsonschema checks
    them only when optional packages are installed."""
    if not isinstance(value, str) or form not in ("date-time", "date"):
        return True
    try:
        if form == "date":
            date.fromisoformat(value)
            return len(value) == 10
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _converted(raw: str, schema: Mapping[str, Any]) -> Any:
    """A parameter's text as its schema's type (left as text when it is not one)."""
    kinds = schema.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if not raw.isascii():  # int() and float() would read other scripts' digits
        return raw
    if "integer" in kinds and raw.removeprefix("-").isdigit():
        return int(raw)
    if "number" in kinds:
        try:
            return float(raw)
        except ValueError:
            return raw
    if "boolean" in kinds and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    return raw


def _instant(raw: object, name: str) -> datetime:
    """An ISO 8601 instant with its UTC offset (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiError(422, "invalid_parameter" if name in ("since", "until") else "invalid_body",
                       f"{name}: expected an ISO 8601 time with offset, got {raw!r}",
                       [{"field": name, "message": "ISO 8601 with offset"}])  # fmt: skip
    return value


OPS_API = web.AppKey("ops_api", OpsApi)  # the handlers, for whoever embeds the app


def build_ops_app(
    service: FlagService,
    metrics: Metrics,
    *,
    readiness: Readiness,
    breaker: Breaker | None = None,
    chats: ConversationStore | None = None,
    calls: CallRecordStore | None = None,
    extensions: Sequence[ApiExtension] = (),
) -> web.Application:
    """The ops HTTP app: health, metrics, the API and the console.

    ``readiness`` returns named checks (or an awaitable of them): ``/health/ready``
    answers 200 when all are true. ``breaker`` returns the booking-service
    breaker's state for ``/api/breaker`` (404 when None). ``chats``: the chat
    conversations for the hand-off routes ``/api/chat/…`` (404 when None).
    ``calls``: the call records, for ``/api/calls/summary`` (404 when None).
    ``extensions``: the parts' routes, console files and errors (:class:`ApiExtension`);
    ``ValueError`` when one lacks a handler for an operation, or has one too many.
    """
    api = OpsApi(service, metrics, readiness, breaker, chats, calls, extensions)
    errors: dict[type[Exception], tuple[int, str]] = {}
    for ext in extensions:
        errors.update(ext.errors)
    middleware = errors_middleware(errors) if errors else error_middleware
    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY)
    app[OPS_API] = api
    handlers = api.handlers()
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, api.route(op, handlers[op.operation_id]))
    for ext in extensions:
        own = dict(ext.handlers(api))
        ids = {op.operation_id for op in ext.operations}
        if set(own) != ids:
            raise ValueError(f"extension {ext.name}: handlers for {sorted(own)}, "
                             f"operations {sorted(ids)}")  # fmt: skip
        for op in ext.operations:
            route = api.route(op, own[op.operation_id], check_params=True)
            app.router.add_route(op.method, op.path, route)
        for hook in ext.on_shutdown:
            app.on_shutdown.append(_shutdown_hook(hook))
    return app


def _shutdown_hook(hook: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def run(_app: web.Application) -> None:
        await hook()

    return run


async def start_ops_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on host:port; the caller cleans the runner up when done."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("ops API and console on http://%s:%d/console", host, port)
    return runner
