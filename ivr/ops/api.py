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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.chat.store import (
    STATES,
    ChatDeskError,
    ConversationNotFound,
    ConversationStore,
    HandoffNotFound,
)
from ivr.ops.flags import Role
from ivr.ops.metrics import CONTENT_TYPE_LATEST, Metrics
from ivr.ops.openapi import OPERATIONS, BodyValidator, Operation, openapi_document
from ivr.ops.service import (
    Actor,
    FlagService,
    Forbidden,
    InvalidChange,
    NotFound,
    OpsError,
    audit_csv,
)
from ivr.store import StoreUnavailable

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
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

    @property
    def who(self) -> Actor:
        assert self.actor is not None, "the route needs a token"
        return self.actor


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]


class OpsApi:
    """The handlers, with what they use passed in (no globals)."""

    def __init__(
        self,
        service: FlagService,
        metrics: Metrics,
        readiness: Readiness,
        breaker: Breaker | None,
        chats: ConversationStore | None = None,
    ) -> None:
        self.service = service
        self.chats = chats
        self.metrics = metrics
        self.readiness = readiness
        self.breaker = breaker
        self.document = openapi_document(service.registry)
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
            "list_tokens": self.list_tokens, "create_token": self.create_token,
            "revoke_token": self.revoke_token,
            "list_handoffs": self.list_handoffs, "take_handoff": self.take_handoff,
            "release_conversation": self.release_conversation,
            "list_conversations": self.list_conversations, "chat_summary": self.chat_summary,
            "root": self.root, "console": self.console, "console_asset": self.console_asset,
        }  # fmt: skip

    # --- the checks around every route ---------------------------------------------
    def route(self, op: Operation, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:  # fmt: skip
        queries = {p.name for p in op.params if p.where == "query"}

        async def handle(request: web.Request) -> web.StreamResponse:
            actor = None
            if op.min_role is not None:
                actor = await self._actor(request)
                if actor.role < op.min_role:
                    raise Forbidden(
                        f"{actor.role.label} cannot use {op.method} {op.path} "
                        f"(needs {op.min_role.label})"
                    )
            unknown = sorted(set(request.query) - queries)
            if unknown:  # a misspelt filter must not silently list everything
                raise ApiError(422, "invalid_parameter",
                               "parámetro desconocido: " + ", ".join(repr(n) for n in unknown),
                               [{"field": n, "message": "desconocido"} for n in unknown])  # fmt: skip
            body = await self._body(request, op.body) if op.body else {}
            return await handler(request, Call(actor, body))

        return handle

    async def _actor(self, request: web.Request) -> Actor:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "a token is required (Authorization: Bearer …)",
                           headers={"WWW-Authenticate": WWW_AUTHENTICATE})  # fmt: skip
        actor = await self.service.authenticate(token.strip())
        if actor is None:
            raise ApiError(401, "unauthorized", "the token is not valid (unknown or revoked)",
                           headers={"WWW-Authenticate": WWW_AUTHENTICATE + ', error="invalid_token"'})  # fmt: skip
        return actor

    async def _body(self, request: web.Request, schema: str) -> dict[str, Any]:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ApiError(422, "invalid_body", f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(422, "invalid_body", f"the body is not JSON: {exc}",
                           [{"field": "body", "message": "not JSON"}]) from None  # fmt: skip
        if body is None:
            raise ApiError(422, "invalid_body", "a JSON object body is required",
                           [{"field": "body", "message": "required"}])  # fmt: skip
        problems = self.bodies.problems(schema, body)
        if problems:
            raise ApiError(422, "invalid_body", f"the body is not a valid {schema}", problems)
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

    # --- chat hand-off ---------------------------------------------------------------------------
    def _chats(self) -> ConversationStore:
        if self.chats is None:
            raise NotFound("este proceso no atiende conversaciones de chat")
        return self.chats

    async def list_handoffs(self, request: web.Request, call: Call) -> web.StreamResponse:
        handoffs = await self._chats().open_handoffs()
        return web.json_response({"handoffs": [h.as_json() for h in handoffs]})

    async def take_handoff(self, request: web.Request, call: Call) -> web.StreamResponse:
        chats = self._chats()
        raw = request.match_info["id"]
        if not raw.isdigit() or int(raw) < 1:
            raise ApiError(422, "invalid_parameter", f"id: se espera un número de transferencia, no {raw!r}",
                           [{"field": "id", "message": "un entero positivo"}])  # fmt: skip
        handoff = await chats.take(int(raw), call.who.name)
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
        if name not in CONSOLE_ASSETS:
            raise NotFound(f"no console file {name!r}")
        return web.Response(
            body=(CONSOLE_DIR / name).read_bytes(),
            content_type=CONSOLE_ASSETS[name],
            charset="utf-8",
            headers=CONSOLE_HEADERS,
        )


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
) -> web.Application:
    """The ops HTTP app: health, metrics, the API and the console.

    ``readiness`` returns named checks (or an awaitable of them): ``/health/ready``
    answers 200 when all are true. ``breaker`` returns the booking-service
    breaker's state for ``/api/breaker`` (404 when None). ``chats``: the chat
    conversations for the hand-off routes ``/api/chat/…`` (404 when None).
    """
    api = OpsApi(service, metrics, readiness, breaker, chats)
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[OPS_API] = api
    handlers = api.handlers()
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, api.route(op, handlers[op.operation_id]))
    return app


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
