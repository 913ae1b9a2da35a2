"""The scripts' routes on the ops API: versions (admins) and the agent's script panel.

Plugged in through the ops API's extension hook (``ivr.ops`` knows nothing of the
desk). Admins (role ``admin``)::

    GET  /api/desk/scripts                     the versions, newest first, which one is live
    GET  /api/desk/scripts/{version}           one version: its tree (JSON) and the same as YAML
    POST /api/desk/scripts/validate            {tree | yaml}: the validator's messages, nothing saved
    POST /api/desk/scripts                     {tree | yaml, note}: a new draft (422 with the details)
    POST /api/desk/scripts/{version}/publish   the draft goes live; the previous one is retired

Agents (role ``operator``; the token's name is the agent's ``user`` in desk.yaml)::

    POST /api/desk/contacts/{id}/script/start   open or resume the script (ScriptRunner.start)
    POST /api/desk/contacts/{id}/script/answer  {node_id, answer}: one step stored, move on
    POST /api/desk/contacts/{id}/close          {disposition, note}: required, and allowed here

Errors (the ops API's shape, Spanish messages)::

    403 forbidden       a call type outside the profile, another agent's contact
    404 not_found       no such contact or version; the token is not a desk agent
    409 conflict        a stale node (the script moved on), a closed contact, a published version
    422 invalid         a tree that does not validate (details: one per defect), a wrong
                        answer, a disposition missing or not allowed here, no live script
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ivr.desk.config import load_desk_config, token_user
from ivr.desk.errors import (
    AgentNotAllowed,
    ContactConflict,
    ContactNotFound,
    DispositionRequired,
    ScriptInvalid,
    ScriptVersionNotFound,
    UnknownAgent,
)
from ivr.desk.model import ScriptVersion
from ivr.desk.script_runner import (
    DispositionRefused,
    FactsSource,
    NoScript,
    ScriptRunner,
    StaleNode,
)
from ivr.desk.scripts import WrongAnswer, load_script_file, validate_tree
from ivr.desk.store import DeskStore, ScriptStore
from ivr.ops.api import ApiError, ApiExtension, Call, ConsolePage, Handler
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param
from ivr.store.db import Database
from ivr.yamlsrc import ConfigError, load_yaml, load_yaml_file

logger = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"
CONSOLE_FILES = {name: CONSOLE_DIR / name for name in ("guiones.html", "guiones.js", "guiones.css", "desk-script.js")}
MAX_TREE_TEXT = 60_000

VERSION = Param("version", "path", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "The script version.")
CONTACT = Param("id", "path", {"type": "string", "minLength": 1, "maxLength": 36}, "The contact's id.")

A, OP = Role.ADMIN, Role.OPERATOR
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/desk/scripts", "list_scripts", "The script versions, newest first, and which one is live.", A, response="ScriptVersionList", tag="desk"),
    Operation("POST", "/api/desk/scripts/validate", "validate_script", "Check a tree (JSON `tree` or YAML `yaml`) without saving: the validator's messages in Spanish.", A, body="ScriptDraft", response="ScriptCheck", tag="desk"),
    Operation("GET", "/api/desk/scripts/{version}", "get_script", "One version with its tree, as JSON and as YAML.", A, response="ScriptVersionDetail", params=(VERSION,), tag="desk"),
    Operation("POST", "/api/desk/scripts", "create_script", "A new draft version from a tree (422 with one detail per defect).", A, body="ScriptDraft", ok=201, response="ScriptVersionDetail", tag="desk"),
    Operation("POST", "/api/desk/scripts/{version}/publish", "publish_script", "Publish a draft: it becomes the live script; the previous one is retired.", A, response="ScriptVersionDetail", params=(VERSION,), tag="desk", extra_errors=(409,)),
    Operation("POST", "/api/desk/contacts/{id}/script/start", "start_script", "Open the contact's script at the node its IVR context implies, or resume where it is.", OP, response="ScriptPanel", params=(CONTACT,), tag="desk"),
    Operation("POST", "/api/desk/contacts/{id}/script/answer", "answer_script", "Answer the current node: the step is stored with its time, the script moves on (409 if the node is stale).", OP, body="ScriptAnswer", response="ScriptPanel", params=(CONTACT,), tag="desk", extra_errors=(409,)),
    Operation("POST", "/api/desk/contacts/{id}/close", "close_contact", "Close the contact with a disposition the reached procedure allows (required).", OP, body="ContactClose", response="ContactClosed", params=(CONTACT,), tag="desk", extra_errors=(409,)),
)  # fmt: skip

STRING = {"type": "string"}
SCHEMAS: dict[str, Any] = {
    "ScriptVersion": {"type": "object", "required": ["version", "state"], "properties": {
        "version": {"type": "integer"}, "state": {"type": "string", "enum": ["draft", "published", "retired"]},
        "note": STRING, "created_by": STRING, "created_at": STRING,
        "published_by": {"type": ["string", "null"]}, "published_at": {"type": ["string", "null"]}}},
    "ScriptVersionList": {"type": "object", "required": ["versions", "live"], "properties": {
        "versions": {"type": "array", "items": {"$ref": "#/components/schemas/ScriptVersion"}},
        "live": {"type": ["integer", "null"], "description": "The published version agents follow."}}},
    "ScriptVersionDetail": {"type": "object", "required": ["version", "tree", "yaml"], "properties": {
        "version": {"type": "integer"}, "tree": {"type": "object"},
        "yaml": {"type": "string", "description": "The tree as YAML, for the console's editor."}}},
    "ScriptDraft": {"type": "object", "additionalProperties": False, "properties": {
        "tree": {"type": "object", "description": "The tree (ivr/schemas/scripts.json)."},
        "yaml": {"type": "string", "minLength": 1, "maxLength": MAX_TREE_TEXT, "description": "The tree as YAML text."},
        "note": {"type": "string", "maxLength": 500, "description": "What changed (required to save)."}},
        "oneOf": [{"required": ["tree"]}, {"required": ["yaml"]}]},
    "ScriptCheck": {"type": "object", "required": ["valid", "details"], "properties": {
        "valid": {"type": "boolean"}, "details": {"type": "array", "items": STRING}}},
    "ScriptAnswer": {"type": "object", "additionalProperties": False, "required": ["node_id", "answer"], "properties": {
        "node_id": {"type": "string", "minLength": 1, "maxLength": 250},
        "answer": {"type": "string", "minLength": 1, "maxLength": 64}}},
    "ContactClose": {"type": "object", "additionalProperties": False, "required": ["disposition"], "properties": {
        "disposition": {"type": "string", "maxLength": 64}, "note": {"type": "string", "maxLength": 4000}}},
    "ScriptPanel": {"type": "object", "required": ["contact_id", "version", "node", "path", "dispositions"], "properties": {
        "contact_id": STRING, "state": STRING, "version": {"type": "integer"},
        "node": {"type": "object", "description": "id, kind (choice, text, question, disposition), label, text (with the IVR values), answers [{id, label}]."},
        "closing": {"type": "boolean", "description": "At the procedure's end: the disposition form."},
        "path": {"type": "array", "items": {"type": "object"}, "description": "The stored steps, oldest first, with their seconds."},
        "labels": {"type": "object"}, "dispositions": {"type": "array", "items": {"type": "object"}},
        "notice": {"type": ["string", "null"]}}},
    "ContactClosed": {"type": "object", "required": ["contact"], "properties": {"contact": {"type": "object"}}},
}  # fmt: skip


def _problem(status: int, error_id: str, exc: Exception) -> ApiError:
    return ApiError(status, error_id, str(exc))


def _errors(handler: Handler) -> Handler:
    """The desk's exceptions as the ops API's error answers (Spanish messages)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request, call: Call) -> web.StreamResponse:
        try:
            return await handler(request, call)
        except ScriptInvalid as exc:
            raise ApiError(422, "invalid", "el guion no es válido",
                           [{"field": d.split(": ", 1)[0], "message": d} for d in exc.details]) from None  # fmt: skip
        except (ContactNotFound, ScriptVersionNotFound, UnknownAgent) as exc:
            raise _problem(404, "not_found", exc) from None
        except AgentNotAllowed as exc:
            raise _problem(403, "forbidden", exc) from None
        except (StaleNode, ContactConflict) as exc:
            raise _problem(409, "conflict", exc) from None
        except (WrongAnswer, DispositionRefused, DispositionRequired, NoScript) as exc:
            raise _problem(422, "invalid", exc) from None

    return wrapped


def _tree_of(body: dict[str, Any]) -> dict[str, Any]:
    """The body's tree: ``tree`` as given, or ``yaml`` parsed (422 naming the line)."""
    if "tree" in body:
        tree: dict[str, Any] = body["tree"]
        return tree
    try:
        parsed = load_yaml(body["yaml"], "guion")
    except ConfigError as exc:
        raise ScriptInvalid([f"línea {exc.line}: el YAML no se puede leer: {exc.problem}"]) from None
    if not isinstance(parsed, dict):
        raise ScriptInvalid(["guion: el YAML debe ser un objeto (call_types, procedures, dispositions…)"])
    plain: dict[str, Any] = json.loads(json.dumps(parsed))
    return plain


def agent_user(call: Call) -> str:
    """The desk.yaml ``user`` a request acts as: its token's name (the ops API names
    a token's actor ``token:<name>``)."""
    return token_user(call.who.name)


def tree_yaml(tree: Any) -> str:
    return str(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False, width=100))


def default_tree(path: Path) -> dict[str, Any] | None:
    """The line's ``scripts.yaml`` as plain JSON, validated; None when the file does
    not exist (agents get no script until an admin publishes one). ``ConfigError``
    (file, line, every problem) for a file that does not validate: at start."""
    if not path.exists():
        logger.warning("no default call script at %s: agents have none until an admin publishes one", path)
        return None
    load_script_file(path)
    tree: dict[str, Any] = json.loads(json.dumps(load_yaml_file(path)))
    return tree


class ScriptRoutes:
    def __init__(self, scripts: ScriptStore, runner: ScriptRunner, seed: Mapping[str, Any] | None = None) -> None:
        self.scripts, self.runner, self.seed = scripts, runner, seed
        self._seeded = seed is None
        self._seeding = asyncio.Lock()

    async def seeded(self) -> None:
        """Publish ``seed`` as version 1 when the database has no script version
        (``ScriptStore.seed``, race-safe), once, before the first request is answered."""
        if self._seeded or self.seed is None:
            return
        async with self._seeding:
            if not self._seeded:
                await self.scripts.seed(self.seed)
                self._seeded = True

    def handlers(self) -> dict[str, Handler]:
        routes: dict[str, Handler] = {
            "list_scripts": self.list_scripts, "validate_script": self.validate_script,
            "get_script": self.get_script, "create_script": self.create_script,
            "publish_script": self.publish_script, "start_script": self.start_script,
            "answer_script": self.answer_script, "close_contact": self.close_contact,
        }  # fmt: skip
        return {name: _errors(self._after_seed(handler)) for name, handler in routes.items()}

    def _after_seed(self, handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request, call: Call) -> web.StreamResponse:
            await self.seeded()
            return await handler(request, call)

        return wrapped

    async def list_scripts(self, request: web.Request, call: Call) -> web.StreamResponse:
        versions = await self.scripts.versions()
        live = await self.scripts.active()
        return web.json_response({
            "versions": [{k: v for k, v in s.as_json().items() if k != "tree"} for s in versions],
            "live": live.version if live else None,
        })  # fmt: skip

    async def _detail(self, version: int, status: int = 200) -> web.StreamResponse:
        found = await self.scripts.get(version)
        if found is None:
            raise ScriptVersionNotFound(version)
        return web.json_response({**found.as_json(), "yaml": tree_yaml(found.tree)}, status=status)

    async def get_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        return await self._detail(call.params["version"])

    async def validate_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        try:
            validate_tree(_tree_of(call.body))
        except ScriptInvalid as exc:
            return web.json_response({"valid": False, "details": exc.details})
        return web.json_response({"valid": True, "details": []})

    async def create_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        note = str(call.body.get("note", "")).strip()
        if not note:
            raise ApiError(422, "invalid", "escriba una nota: qué cambió en esta versión",
                           [{"field": "note", "message": "requerida"}])  # fmt: skip
        created = await self.scripts.create(_tree_of(call.body), note=note, author=call.who.name)
        return await self._detail(created.version, status=201)

    async def publish_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        published = await self.scripts.publish(call.params["version"], author=call.who.name)
        return await self._detail(published.version)

    async def start_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        view = await self.runner.start(call.params["id"], agent_user(call))
        return web.json_response(view.as_json())

    async def answer_script(self, request: web.Request, call: Call) -> web.StreamResponse:
        body = call.body
        view = await self.runner.answer(call.params["id"], agent_user(call), body["node_id"], body["answer"])
        return web.json_response(view.as_json())

    async def close_contact(self, request: web.Request, call: Call) -> web.StreamResponse:
        body = call.body
        contact = await self.runner.close(call.params["id"], agent_user(call),
                                          body["disposition"], body.get("note", ""))  # fmt: skip
        return web.json_response({"contact": contact.as_json()})


def scripts_extension(
    scripts: ScriptStore, runner: ScriptRunner, seed: Mapping[str, Any] | None = None
) -> ApiExtension:
    """The scripts as an ops API extension: routes, schemas, the ``Guiones`` page,
    and ``desk-script.js`` (the agent desktop's script panel, ``mountScript``).
    ``seed``: the line's default tree (:func:`default_tree`), published as version 1
    before the first request when the database has no version."""
    routes = ScriptRoutes(scripts, runner, seed)
    return ApiExtension(
        name="desk-scripts",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        console_files=CONSOLE_FILES,
        pages=(ConsolePage("guiones.html", "Guiones"),),
    )


def scripts_extension_for(db: Database, citas_dir: Path, facts: FactsSource | None = None) -> ApiExtension:
    """The scripts' extension over ``db`` for a line whose files are in ``citas_dir``
    (``desk.yaml``: agents and profiles; ``scripts.yaml``: the default tree);
    ``facts``: the line's IVR codes of a contact (where its script opens)."""
    scripts = ScriptStore(db, validate_tree)
    runner = ScriptRunner(DeskStore(db), scripts, load_desk_config(citas_dir / "desk.yaml"), facts)
    return scripts_extension(scripts, runner, default_tree(citas_dir / "scripts.yaml"))


async def seed_default_scripts(db: Database, citas_dir: Path) -> ScriptVersion | None:
    """At start (``ivr serve``): publish the line's ``scripts.yaml`` as version 1 when
    the database has no script version. ``ConfigError`` for a bad file."""
    tree = await asyncio.to_thread(default_tree, citas_dir / "scripts.yaml")
    return await ScriptStore(db, validate_tree).seed(tree) if tree is not None else None
