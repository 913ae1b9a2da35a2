"""Service levels on the ops API: escalate a contact, the escalation choices, a journey's hops.

Plugged in by the composition root as an ``ApiExtension`` (``ivr.ops`` knows no desk).
Who may escalate: the agent of the contact (the token's name is the agent's
``user`` in desk.yaml) or an admin. Errors have the ops API's shape, Spanish
messages::

    403 forbidden      not the contact's agent (nor an admin)
    404 not_found      no such contact
    409 conflict       the contact is not in progress (hung up, closed, escalated
                       already) or the caller hung up meanwhile
    422 invalid        no escalation to that area from this level; no reason
    503 telephony_unavailable  Asterisk's AMI did not take the move: the call
                       stays with the agent, nothing was written
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.desk.config import FILE_NAME, load_desk_for_line
from ivr.desk.errors import ContactConflict, ContactNotFound, ReasonRequired
from ivr.desk.levels import (
    AmiActions,
    EventSource,
    Levels,
    NoEscalationTarget,
    TelephonyUnavailable,
    build_levels,
    seconds_per_level,
)
from ivr.desk.model import ACTIVE, Contact
from ivr.desk.store import DeskStore
from ivr.ops.api import ApiError, ApiExtension, Call, Handler
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param
from ivr.prompts import load_prompt_texts
from ivr.settings import Settings
from ivr.store.db import Database

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_FILES = {"desk-levels.js": CONSOLE_DIR / "desk-levels.js"}

CONTACT_ID = Param("id", "path", {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
                   "The desk contact's id (uuid).")  # fmt: skip
JOURNEY_KEY = Param("key", "path", {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$"},
                    "The journey key: the caller's Asterisk Uniqueid, or the chat's conversation id.")  # fmt: skip

V, OP = Role.VIEWER, Role.OPERATOR
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/desk/contacts/{id}/escalation", "desk_escalation_options", "Where this contact may be escalated (areas of the next level and their queues) and its escalations so far.", V, response="DeskEscalationOptions", params=(CONTACT_ID,), tag="desk", extra_errors=(404,)),
    Operation("POST", "/api/desk/contacts/{id}/escalate", "desk_escalate", "Hand the caller up a level: the caller is moved to the area's queue (voice, over AMI) or the chat goes back to the queue for that level; the contact becomes `escalated`. The contact's agent or an admin.", OP, body="DeskEscalate", response="DeskEscalated", params=(CONTACT_ID,), tag="desk", extra_errors=(404, 409)),
    Operation("GET", "/api/desk/journeys/{key}", "desk_journey", "Every hop of one caller (oldest first): each contact, its script steps, time queued, time at its level, its escalation and outcome; and the seconds per level.", V, response="DeskJourney", params=(JOURNEY_KEY,), tag="desk", extra_errors=(404,)),
)  # fmt: skip

STRING = {"type": "string"}
SCHEMAS: dict[str, Any] = {
    "DeskEscalate": {"type": "object", "additionalProperties": False, "required": ["area", "reason"], "properties": {
        "area": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The area of the next level (`tecnico`, `clinico`, `comercial`)."},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S", "description": "Why (Spanish, the agent's words)."}}},
    "DeskEscalationTarget": {"type": "object", "required": ["area", "queue", "name", "level"], "properties": {
        "area": STRING, "queue": STRING, "name": STRING, "level": {"type": "integer"}}},
    "DeskEscalationOptions": {"type": "object", "required": ["contact_id", "state", "level", "can_escalate", "targets", "escalations"], "properties": {
        "contact_id": STRING, "state": STRING, "level": {"type": "integer"},
        "can_escalate": {"type": "boolean"},
        "targets": {"type": "array", "items": {"$ref": "#/components/schemas/DeskEscalationTarget"}},
        "escalations": {"type": "array", "items": {"type": "object"}}}},
    "DeskEscalated": {"type": "object", "required": ["contact", "escalation"], "properties": {
        "contact": {"type": "object"}, "escalation": {"type": "object"}}},
    "DeskJourney": {"type": "object", "required": ["journey_key", "hops", "seconds_per_level"], "properties": {
        "journey_key": STRING,
        "hops": {"type": "array", "items": {"type": "object"}},
        "seconds_per_level": {"type": "object", "additionalProperties": {"type": "number"},
                              "description": "Level (as text) → seconds answered at that level."}}},
}  # fmt: skip


def _spanish_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: web.Request, call: Call) -> web.StreamResponse:
        try:
            return await handler(request, call)
        except ContactNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except ContactConflict as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except NoEscalationTarget as exc:
            raise ApiError(422, "invalid", str(exc), [{"field": "area", "message": str(exc)}]) from None
        except ReasonRequired as exc:
            raise ApiError(422, "invalid", str(exc), [{"field": "reason", "message": str(exc)}]) from None
        except TelephonyUnavailable as exc:
            raise ApiError(503, "telephony_unavailable", str(exc)) from None

    return wrapped


@dataclass
class LevelRoutes:
    levels: Levels

    def handlers(self) -> dict[str, Handler]:
        routes = {
            "desk_escalation_options": self.options,
            "desk_escalate": self.escalate,
            "desk_journey": self.journey,
        }
        return {name: _spanish_errors(h) for name, h in routes.items()}

    def _agent_of(self, contact: Contact, call: Call) -> str:
        """The acting agent's extension; 403 unless it is the contact's agent or an admin."""
        who = call.who
        agent = self.levels.config.agent_for_actor(who.name)
        if agent is not None and agent.extension == contact.agent:
            return agent.extension
        if who.role >= Role.ADMIN:
            return who.name
        raise ApiError(403, "forbidden",
                       f"solo el asesor del contacto ({contact.agent_name}) o un administrador puede escalarlo")  # fmt: skip

    async def options(self, request: web.Request, call: Call) -> web.StreamResponse:
        contact = await self.levels.contact(call.params["id"])
        targets = self.levels.targets(contact)
        escalations = await self.levels.log.of_journey(contact.journey_key)
        return web.json_response({
            "contact_id": contact.id, "state": contact.state, "level": contact.level,
            "can_escalate": contact.state == ACTIVE and bool(targets),
            "targets": [{"area": area, "queue": q.id, "name": q.name, "level": q.level}
                        for area, q in targets.items()],
            "escalations": [e.as_json() for e in escalations if e.contact_id == contact.id],
        })  # fmt: skip

    async def escalate(self, request: web.Request, call: Call) -> web.StreamResponse:
        contact = await self.levels.contact(call.params["id"])
        agent = self._agent_of(contact, call)
        escalated, escalation = await self.levels.escalate(
            contact.id, area=call.body["area"], reason=call.body["reason"], agent=agent
        )
        return web.json_response({"contact": escalated.as_json(), "escalation": escalation.as_json()})

    async def journey(self, request: web.Request, call: Call) -> web.StreamResponse:
        key = call.params["key"]
        hops = await self.levels.journey(key)
        if not hops:
            raise ApiError(404, "not_found", f"no hay contactos del recorrido {key}")
        return web.json_response({
            "journey_key": key,
            "hops": [h.as_json() for h in hops],
            "seconds_per_level": {str(k): v for k, v in seconds_per_level(hops).items()},
        })  # fmt: skip


def levels_extension(levels: Levels) -> ApiExtension:
    """The service levels' routes and the desktop's escalation module (``desk-levels.js``)."""
    routes = LevelRoutes(levels)
    return ApiExtension(
        name="desk-levels",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        console_files=CONSOLE_FILES,
        errors={ContactNotFound: (404, "not_found"), ContactConflict: (409, "conflict")},
    )


def levels_extension_for(
    settings: Settings, db: Database, *, ami: AmiActions | None = None,
    events: EventSource | None = None, contacts: DeskStore | None = None,
) -> ApiExtension | None:  # fmt: skip
    """The extension over the deployment's desk.yaml and prompts, or None without
    desk.yaml (the desk is off). ``ivr serve`` passes its AMI connection as ``ami`` and
    ``events``; ``ivr ops serve`` has none: a voice escalation there answers 503, a
    chat one works. ``ConfigError`` for a bad desk.yaml."""
    if not (settings.citas_dir / FILE_NAME).exists():
        return None
    config = load_desk_for_line(settings.citas_dir)
    prompts = load_prompt_texts(settings.prompts_file).keys()
    levels = build_levels(config, contacts or DeskStore(db), db, ami=ami, prompts=prompts,
                          events=events)  # fmt: skip
    return levels_extension(levels)
