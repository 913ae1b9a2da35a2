"""The agents' presence on the ops API: who is logged in, and login / logout / pause / unpause.

An ops-API extension (``ivr.ops.api.ApiExtension``; ``ivr.ops`` knows nothing of
the desk), over ``ivr.desk.ami.QueueControl``::

    GET  /api/desk/agents                         every agent: logged in, paused + reason,
                                                  device, in a call, queues; the pause reasons
    POST /api/desk/agents/{extension}/login       -> the agent's status
    POST /api/desk/agents/{extension}/logout
    POST /api/desk/agents/{extension}/pause       body {"reason": "almuerzo"} (desk.yaml pause_reasons)
    POST /api/desk/agents/{extension}/unpause

Who may act (the rule of issue 12's desk design): the agent whose desk.yaml
``user`` is the token's name (any role: an agent's own token needs no operator
rights), or an admin for any agent. Reading the list takes a viewer. Errors have
the ops API's shape, Spanish messages::

    403 forbidden            another agent's presence, not an admin
    404 not_found            no such agent in desk.yaml
    409 conflict             pause/unpause of an agent who is not logged in
    422 invalid              an unknown pause reason
    503 unavailable          Asterisk's AMI is down or did not answer in time
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.desk.ami import (
    AmiHealth,
    DeskAmiUnavailable,
    NotLoggedIn,
    QueueControl,
    UnknownPauseReason,
)
from ivr.desk.config import token_user
from ivr.desk.errors import UnknownAgent
from ivr.ops.api import ApiError, ApiExtension, Call, Handler
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param

EXTENSION = Param("extension", "path", {"type": "string", "pattern": "^[0-9]{3,15}$"},
                  "The agent's extension (desk.yaml `agents`), e.g. 7001.")  # fmt: skip
V = Role.VIEWER
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/desk/agents", "desk_agents", "Every desk agent as Asterisk's queues see it now: logged in, paused and why, device state, in a call, queues; and the pause reasons.", V, response="DeskAgents", tag="desk"),
    Operation("POST", "/api/desk/agents/{extension}/login", "desk_agent_login", "Log the agent into every queue of its profile (the agent itself, or an admin).", V, response="DeskAgent", params=(EXTENSION,), tag="desk", extra_errors=(403, 404, 503)),
    Operation("POST", "/api/desk/agents/{extension}/logout", "desk_agent_logout", "Log the agent out of every desk queue.", V, response="DeskAgent", params=(EXTENSION,), tag="desk", extra_errors=(403, 404, 503)),
    Operation("POST", "/api/desk/agents/{extension}/pause", "desk_agent_pause", "Pause the agent in all its queues with a reason (desk.yaml `pause_reasons`).", V, body="DeskPause", response="DeskAgent", params=(EXTENSION,), tag="desk", extra_errors=(403, 404, 409, 503)),
    Operation("POST", "/api/desk/agents/{extension}/unpause", "desk_agent_unpause", "End the agent's pause.", V, response="DeskAgent", params=(EXTENSION,), tag="desk", extra_errors=(403, 404, 409, 503)),
)  # fmt: skip

STRING = {"type": "string"}
SCHEMAS: dict[str, Any] = {
    "DeskAgent": {"type": "object", "required": ["extension", "name", "logged_in", "paused", "device", "in_call", "queues"], "properties": {
        "extension": STRING, "name": STRING, "logged_in": {"type": "boolean"},
        "paused": {"type": "boolean"}, "pause_reason": {"type": ["string", "null"], "description": "The reason's Spanish label while paused."},
        "device": {"type": "string", "description": "The phone's state for app_queue: not_inuse, inuse, ringing, unavailable (not registered)..."},
        "device_label": STRING, "in_call": {"type": "boolean"},
        "queues": {"type": "array", "items": STRING}}},
    "DeskAgents": {"type": "object", "required": ["agents", "pause_reasons"], "properties": {
        "agents": {"type": "array", "items": {"$ref": "#/components/schemas/DeskAgent"}},
        "pause_reasons": {"type": "array", "items": {"type": "object", "required": ["id", "label"], "properties": {"id": STRING, "label": STRING}}},
        "ami": {"type": ["object", "null"], "description": "The desk's AMI session: connected, since, reconnects, last_error."}}},
    "DeskPause": {"type": "object", "required": ["reason"], "additionalProperties": False, "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": 64, "description": "A pause reason id of desk.yaml (almuerzo, capacitacion, pausa_activa, backoffice...)."}}},
}  # fmt: skip


def _spanish_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: web.Request, call: Call) -> web.StreamResponse:
        try:
            return await handler(request, call)
        except UnknownAgent as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except NotLoggedIn as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except UnknownPauseReason as exc:
            raise ApiError(422, "invalid", str(exc),
                           [{"field": "reason", "message": str(exc)}]) from None  # fmt: skip
        except DeskAmiUnavailable as exc:
            raise ApiError(503, "unavailable", str(exc)) from None

    return wrapped


@dataclass
class AgentRoutes:
    control: QueueControl
    health: Callable[[], AmiHealth] | None = None

    def handlers(self) -> dict[str, Handler]:
        routes: dict[str, Callable[[web.Request, Call], Awaitable[web.StreamResponse]]] = {
            "desk_agents": self.agents, "desk_agent_login": self.login,
            "desk_agent_logout": self.logout, "desk_agent_pause": self.pause,
            "desk_agent_unpause": self.unpause,
        }  # fmt: skip
        return {name: _spanish_errors(handler) for name, handler in routes.items()}

    async def agents(self, request: web.Request, call: Call) -> web.StreamResponse:
        status = await self.control.status()
        reasons = [{"id": k, "label": v} for k, v in self.control.pause_reasons.items()]
        return web.json_response({"agents": [s.as_json() for s in status], "pause_reasons": reasons,
                                  "ami": self._health()})  # fmt: skip

    async def login(self, request: web.Request, call: Call) -> web.StreamResponse:
        extension = self._allowed(request, call)
        status = await self.control.login(extension, actor=call.who.name)
        return web.json_response(status.as_json())

    async def logout(self, request: web.Request, call: Call) -> web.StreamResponse:
        extension = self._allowed(request, call)
        status = await self.control.logout(extension, actor=call.who.name)
        return web.json_response(status.as_json())

    async def pause(self, request: web.Request, call: Call) -> web.StreamResponse:
        extension = self._allowed(request, call)
        reason = str(call.body["reason"])
        status = await self.control.pause(extension, reason, actor=call.who.name)
        return web.json_response(status.as_json())

    async def unpause(self, request: web.Request, call: Call) -> web.StreamResponse:
        extension = self._allowed(request, call)
        status = await self.control.unpause(extension, actor=call.who.name)
        return web.json_response(status.as_json())

    def _health(self) -> dict[str, Any] | None:
        return self.health().as_json() if self.health is not None else None

    def _allowed(self, request: web.Request, call: Call) -> str:
        """The path's agent, if the caller may act for it (itself, or an admin)."""
        extension = request.match_info["extension"]
        agent = self.control.config.agent(extension)  # UnknownAgent: 404
        who = call.who
        if who.role < Role.ADMIN and token_user(who.name) != agent.user:
            raise ApiError(403, "forbidden",
                           f"Solo {agent.name} (usuario {agent.user}) o un administrador "
                           f"pueden cambiar la presencia del asesor {extension}.")  # fmt: skip
        return extension


def agents_extension(
    control: QueueControl, health: Callable[[], AmiHealth] | None = None
) -> ApiExtension:
    """The agents' presence routes as an ops API extension (``ivr.desk.queues`` builds it,
    the composition root passes it to the ops app); ``health``: the AMI session's."""
    routes = AgentRoutes(control, health)
    return ApiExtension(
        name="desk-agents",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        errors={UnknownAgent: (404, "not_found")},
    )
