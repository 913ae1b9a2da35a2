"""The keyword lists over the ops API, and the console page "Palabras clave".

Routes (tag ``keywords``), plugged into the ops app through its extension hook;
errors, roles and body validation behave as the core routes' (``ivr.ops.api``)::

    GET    /api/keyword-lists                    viewer  every list with its keywords
    POST   /api/keyword-lists                    admin   a new list            (201)
    PUT    /api/keyword-lists/{id}               admin   rename / describe it
    DELETE /api/keyword-lists/{id}               admin   delete it and its keywords
    POST   /api/keyword-lists/{id}/keywords      admin   add a keyword         (201)
    PUT    /api/keywords/{id}                    admin   whether it raises priority
    DELETE /api/keywords/{id}                    admin   remove it
    GET    /api/keyword-audit                    viewer  who changed what, why (newest first)
    POST   /api/text/analyse                     viewer  try a text: sentiment and keywords
    /console/keywords.html, /console/keywords.js         the page, linked from the console

Every change needs a ``reason`` and is audited (``ivr.text.keyword_store``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.ops.api import ApiExtension, Call, ConsolePage, Handler, _int_param
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param
from ivr.ops.service import MAX_REASON
from ivr.text.keyword_store import MAX_DESCRIPTION, MAX_NAME, KeywordStore
from ivr.text.keywords import MAX_PHRASE, KeywordMatcher, priority_reason
from ivr.text.sentiment import analyse

CONSOLE = Path(__file__).parent / "console"
PAGE, SCRIPT = CONSOLE / "keywords.html", CONSOLE / "keywords.js"
MAX_ANALYSE = 4000

V, A = Role.VIEWER, Role.ADMIN
LIST_ID = Param("id", "path", {"type": "string"}, "The list's id.")
KEYWORD_ID = Param("id", "path", {"type": "string"}, "The keyword's id.")
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200}, "At most this many entries.")  # fmt: skip
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/keyword-lists", "list_keyword_lists", "Every keyword list with its keywords.", V, response="KeywordLists", tag="keywords"),
    Operation("POST", "/api/keyword-lists", "create_keyword_list", "A new keyword list.", A, body="KeywordListCreate", ok=201, response="KeywordList", tag="keywords"),
    Operation("PUT", "/api/keyword-lists/{id}", "change_keyword_list", "Rename a list or change its description.", A, body="KeywordListCreate", response="KeywordList", params=(LIST_ID,), tag="keywords"),
    Operation("DELETE", "/api/keyword-lists/{id}", "delete_keyword_list", "Delete a list and its keywords (kept in the audit).", A, body="KeywordReason", response="KeywordStatus", params=(LIST_ID,), tag="keywords"),
    Operation("POST", "/api/keyword-lists/{id}/keywords", "add_keyword", "Add a keyword (word or phrase) to a list.", A, body="KeywordCreate", ok=201, response="Keyword", params=(LIST_ID,), tag="keywords"),
    Operation("PUT", "/api/keywords/{id}", "change_keyword", "Whether a keyword raises a case's priority.", A, body="KeywordChange", response="Keyword", params=(KEYWORD_ID,), tag="keywords"),
    Operation("DELETE", "/api/keywords/{id}", "remove_keyword", "Remove a keyword.", A, body="KeywordReason", response="KeywordStatus", params=(KEYWORD_ID,), tag="keywords"),
    Operation("GET", "/api/keyword-audit", "keyword_audit", "Changes to the keyword lists, newest first.", V, response="KeywordAudit", params=(LIMIT,), tag="keywords"),
    Operation("POST", "/api/text/analyse", "analyse_text", "The sentiment of a text and the keywords found in it (changes nothing).", V, body="TextToAnalyse", response="TextAnalysis", tag="keywords"),
)  # fmt: skip

_STRING = {"type": "string"}
_REASON = {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": r"\S",
           "description": "Why (kept in the keywords' audit)."}  # fmt: skip


def _obj(props: dict[str, Any], required: tuple[str, ...], closed: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    return out


_KEYWORD = _obj({"id": _STRING, "list_id": _STRING, "list": _STRING, "phrase": _STRING,
                 "raises_priority": {"type": "boolean"}},
                ("id", "list_id", "phrase", "raises_priority"), closed=False)  # fmt: skip
_KEYWORD_LIST = _obj({"id": _STRING, "name": _STRING, "description": _STRING,
                      "keywords": {"type": "array", "items": {"$ref": "#/components/schemas/Keyword"}},
                      "updated_at": {"type": "string", "format": "date-time"}},
                     ("id", "name", "keywords"), closed=False)  # fmt: skip
SCHEMAS: dict[str, Any] = {
    "KeywordReason": _obj({"reason": _REASON}, ("reason",)),
    "KeywordListCreate": _obj({
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": r"\S"},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
        "reason": _REASON,
    }, ("name", "reason")),
    "KeywordCreate": _obj({
        "phrase": {"type": "string", "minLength": 1, "maxLength": MAX_PHRASE, "pattern": r"\w"},
        "raises_priority": {"type": "boolean"},
        "reason": _REASON,
    }, ("phrase", "raises_priority", "reason")),
    "KeywordChange": _obj({"raises_priority": {"type": "boolean"}, "reason": _REASON},
                          ("raises_priority", "reason")),
    "TextToAnalyse": _obj({"text": {"type": "string", "maxLength": MAX_ANALYSE}}, ("text",)),
    "Keyword": _KEYWORD,
    "KeywordList": _KEYWORD_LIST,
    "KeywordLists": _obj({"lists": {"type": "array", "items": {"$ref": "#/components/schemas/KeywordList"}}}, ("lists",), closed=False),
    "KeywordStatus": _obj({"status": _STRING}, ("status",), closed=False),
    "KeywordAudit": _obj({"entries": {"type": "array", "items": _obj({
        "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "actor": _STRING, "role": _STRING, "action": _STRING,
        "list_id": {"type": ["string", "null"]}, "keyword_id": {"type": ["string", "null"]},
        "old_value": {}, "new_value": {}, "reason": _STRING,
    }, ("id", "at", "actor", "action", "reason"), closed=False)}}, ("entries",), closed=False),
    "TextAnalysis": _obj({
        "score": {"type": "number", "minimum": -1, "maximum": 1},
        "label": {"type": "string", "enum": ["negativo", "neutral", "positivo"]},
        "words": {"type": "array", "items": _obj({"text": _STRING, "weight": {"type": "number"}}, ("text", "weight"))},
        "keywords": {"type": "array", "items": {"type": "object"}},
        "raises_priority": {"type": ["string", "null"], "description": "The reason a case with this text would get high priority."},
    }, ("score", "label", "words", "keywords"), closed=False),
}  # fmt: skip


class KeywordRoutes:
    """The handlers, over one :class:`KeywordStore`."""

    def __init__(self, store: KeywordStore) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        return {
            "list_keyword_lists": self.lists, "create_keyword_list": self.create_list,
            "change_keyword_list": self.change_list, "delete_keyword_list": self.delete_list,
            "add_keyword": self.add_keyword, "change_keyword": self.change_keyword,
            "remove_keyword": self.remove_keyword, "keyword_audit": self.audit,
            "analyse_text": self.analyse,
        }  # fmt: skip

    async def lists(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response({"lists": [k.as_json() for k in await self.store.lists()]})

    async def create_list(self, request: web.Request, call: Call) -> web.StreamResponse:
        b = call.body
        created = await self.store.create_list(call.who, b["name"], b.get("description", ""), b["reason"])  # fmt: skip
        return web.json_response(created.as_json(), status=201)

    async def change_list(self, request: web.Request, call: Call) -> web.StreamResponse:
        b = call.body
        changed = await self.store.update_list(
            call.who, request.match_info["id"], name=b["name"],
            description=b.get("description", ""), reason=b["reason"],
        )  # fmt: skip
        return web.json_response(changed.as_json())

    async def delete_list(self, request: web.Request, call: Call) -> web.StreamResponse:
        await self.store.delete_list(call.who, request.match_info["id"], call.body["reason"])
        return web.json_response({"status": "deleted"})

    async def add_keyword(self, request: web.Request, call: Call) -> web.StreamResponse:
        b = call.body
        added = await self.store.add_keyword(
            call.who, request.match_info["id"], b["phrase"],
            raises_priority=b["raises_priority"], reason=b["reason"],
        )  # fmt: skip
        return web.json_response(added.as_json(), status=201)

    async def change_keyword(self, request: web.Request, call: Call) -> web.StreamResponse:
        b = call.body
        changed = await self.store.update_keyword(
            call.who, request.match_info["id"], raises_priority=b["raises_priority"], reason=b["reason"]
        )  # fmt: skip
        return web.json_response(changed.as_json())

    async def remove_keyword(self, request: web.Request, call: Call) -> web.StreamResponse:
        await self.store.remove_keyword(call.who, request.match_info["id"], call.body["reason"])
        return web.json_response({"status": "deleted"})

    async def audit(self, request: web.Request, call: Call) -> web.StreamResponse:
        entries = await self.store.history(limit=_int_param(request, "limit", 200, 1, 1000))
        return web.json_response({"entries": [e.as_json() for e in entries]})

    async def analyse(self, request: web.Request, call: Call) -> web.StreamResponse:
        text: str = call.body["text"]
        matches = KeywordMatcher(await self.store.keywords()).find(text)
        return web.json_response({
            **analyse(text).as_json(),
            "keywords": [m.as_json() for m in matches],
            "raises_priority": priority_reason(matches),
        })  # fmt: skip


def keyword_extension(store: KeywordStore) -> ApiExtension:
    """The keyword routes and the page «Palabras clave», for ``build_ops_app(extensions=...)``."""
    routes = KeywordRoutes(store)
    return ApiExtension(
        name="keywords",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        console_files={"keywords.html": PAGE, "keywords.js": SCRIPT},
        pages=(ConsolePage("keywords.html", "Palabras clave"),),
    )
