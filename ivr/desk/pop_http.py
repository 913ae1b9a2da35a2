"""The desktop's routes on the ops API: the push stream, the current contact, taking a chat.

::

    GET  /api/desk/stream               server-sent events for one agent (text/event-stream)
    GET  /api/desk/current              the agent's active (or wrap-up) contact and its pop
    POST /api/desk/handoffs/{id}/take   take a chat hand-off: its contact opens and pops

The agent is the token's user (desk.yaml ``agents.<ext>.user``); an admin may
name one with ``?agent=7001`` (a supervisor's view). A token that is no desk
agent gets 403 ``not_an_agent``.

The stream: the first event is ``hello`` (the agent: extension, name, profile,
queues); then ``pop``, ``wrapup``, ``ringing``, ``ring_no_answer``,
``presence`` as they happen (:mod:`ivr.desk.screen`), and a comment line
(``: ping``) every ``heartbeat_s`` so proxies keep the connection and the page
notices a dead one. Nothing is replayed: a desktop that (re)connects reads
``GET /api/desk/current`` after ``hello`` (it subscribed first, so nothing falls
between the two). The page reads the stream with ``fetch`` and a reader, so the
token travels in the ``Authorization`` header, never in the URL (``EventSource``
cannot send headers, and a token in a URL ends up in logs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.chat.store import ChatDeskError, HandoffClosed, HandoffNotFound, HandoffTaken
from ivr.desk.config import DeskConfig, token_user
from ivr.desk.pop import ChatKeys
from ivr.desk.screen import ScreenPop
from ivr.ops.api import ApiError, ApiExtension, Call, ConsolePage, Handler, OpsApi
from ivr.ops.flags import Role
from ivr.ops.openapi import MAX_ID, Operation, Param

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_FILES = {n: CONSOLE_DIR / n for n in ("escritorio.html", "escritorio.js", "escritorio.css")}
HEARTBEAT_S = 15.0

AGENT = Param("agent", "query", {"type": "string", "pattern": "^[0-9]{2,8}$"},
              "The agent's extension (admins only; others are the agent of their token).")  # fmt: skip
HANDOFF = Param("id", "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "The hand-off's id.")
V, OP = Role.VIEWER, Role.OPERATOR
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/desk/stream", "desk_stream", "Server-sent events for the agent's desktop: hello, pop, wrapup, ringing, presence; `: ping` comments as heartbeats.", V, media="text/event-stream", params=(AGENT,), tag="desk", extra_errors=(404,)),
    Operation("GET", "/api/desk/current", "desk_current", "The agent's active or wrap-up contact with its screen pop (null when none): what a desktop reads when it (re)connects.", V, response="DeskCurrent", params=(AGENT,), tag="desk", extra_errors=(404,)),
    Operation("POST", "/api/desk/handoffs/{id}/take", "desk_take_handoff", "The agent takes a queued chat hand-off: the chat is theirs, its contact opens and its screen pop is pushed like a call's.", OP, response="DeskCurrent", params=(HANDOFF,), tag="desk", extra_errors=(404, 409)),
)  # fmt: skip
SCHEMAS: dict[str, Any] = {
    "DeskCurrent": {"type": "object", "required": ["contact", "pop"], "properties": {
        "agent": {"type": "object"},
        "contact": {"type": ["object", "null"], "description": "The contact (desk_contacts), or null."},
        "pop": {"type": ["object", "null"], "description": "The screen pop (ivr.desk.pop.Pop.as_json), or null."},
    }},
}  # fmt: skip


class NotAnAgent(Exception):
    """The token's user is no desk agent, or a non-admin named another agent."""


@dataclass
class DeskPopRoutes:
    screen: ScreenPop
    config: DeskConfig
    api: OpsApi
    heartbeat_s: float = HEARTBEAT_S

    def handlers(self) -> dict[str, Handler]:
        return {"desk_stream": self.stream, "desk_current": self.current,
                "desk_take_handoff": self.take_handoff}  # fmt: skip

    def agent_of(self, call: Call) -> str:
        """The extension this request acts as (see the module docstring)."""
        wanted = call.params.get("agent")
        if wanted is not None:
            if call.who.role < Role.ADMIN:
                raise NotAnAgent("solo un administrador puede ver el escritorio de otro asesor")
            if self.config.agents.get(str(wanted)) is None:
                raise ApiError(404, "not_found", f"no hay un asesor con la extensión {wanted}")
            return str(wanted)
        user = token_user(call.who.name)
        agent = self.config.agent_for_user(user)
        if agent is None:
            raise NotAnAgent(f"el usuario {user!r} no es un asesor del escritorio (desk.yaml)")
        return agent.extension

    def agent_json(self, ext: str) -> dict[str, Any]:
        agent = self.config.agents[ext]
        profile = self.config.profiles.get(agent.profile)
        return {
            "extension": ext, "name": agent.name, "user": agent.user, "profile": agent.profile,
            "profile_name": profile.name if profile else agent.profile,
            "queues": list(profile.queues) if profile else [],
            "chat": bool(profile.chat) if profile else False,
        }  # fmt: skip

    async def stream(self, request: web.Request, call: Call) -> web.StreamResponse:
        agent = self.agent_of(call)
        sub = self.screen.hub.subscribe(agent)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff",
        })  # fmt: skip
        try:
            await response.prepare(request)
            await response.write(_event("hello", {"agent": self.agent_json(agent)}))
            while True:
                try:
                    push = await asyncio.wait_for(sub.queue.get(), self.heartbeat_s)
                except TimeoutError:
                    if sub.dropped.is_set():
                        break
                    await response.write(b": ping\n\n")
                    continue
                await response.write(push.encode())
                if sub.dropped.is_set() and sub.queue.empty():
                    break
        except (ConnectionResetError, ConnectionError):
            logger.info("desk: desktop of agent %s disconnected", agent)
        finally:
            sub.close()
        return response

    async def current(self, request: web.Request, call: Call) -> web.StreamResponse:
        agent = self.agent_of(call)
        return web.json_response({"agent": self.agent_json(agent), **await self.screen.current(agent)})

    async def take_handoff(self, request: web.Request, call: Call) -> web.StreamResponse:
        agent = self.agent_of(call)
        chats = self.api.chats
        if chats is None:
            raise ApiError(404, "not_found", "este proceso no atiende conversaciones de chat")
        handoff_id = int(call.params["id"])
        try:
            handoff = await chats.take(handoff_id, call.who.name)
        except HandoffNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except (HandoffTaken, HandoffClosed) as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except ChatDeskError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        conversation = await chats.conversation(handoff.wa_id)
        keys = ChatKeys(
            conversation_id=handoff.conversation_id, wa_id=handoff.wa_id,
            journey_id=conversation.journey_id if conversation else None,
            reason=handoff.reason, context=handoff.context,
        )  # fmt: skip
        contact = await self.screen.chat_taken(agent=agent, handoff_id=handoff.id, keys=keys,
                                               queued_at=handoff.queued_at)  # fmt: skip
        pop = await self.screen.pop_of(contact)
        return web.json_response({"agent": self.agent_json(agent), "contact": contact.as_json(),
                                  "pop": pop.as_json()})  # fmt: skip


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def desk_pop_extension(screen: ScreenPop, config: DeskConfig, *, heartbeat_s: float = HEARTBEAT_S) -> ApiExtension:
    """The desktop's routes, page ("Escritorio") and errors, for ``build_ops_app``."""

    def handlers(api: OpsApi) -> dict[str, Handler]:
        return DeskPopRoutes(screen, config, api, heartbeat_s).handlers()

    return ApiExtension(
        name="desk-pop",
        operations=OPERATIONS,
        handlers=handlers,
        schemas=SCHEMAS,
        console_files=CONSOLE_FILES,
        pages=(ConsolePage("escritorio.html", "Escritorio"),),
        errors={NotAnAgent: (403, "not_an_agent")},
        on_shutdown=(screen.hub.close,),
    )

