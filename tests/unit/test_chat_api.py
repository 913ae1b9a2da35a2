"""The chat hand-off routes of the ops API over a real socket (aiohttp TestServer)
and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.chat.store import ConversationStore, InboundMessage
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import OPERATIONS, BodyValidator, Operation, openapi_document
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database

BOOTSTRAP = Actor("cli:test", Role.ADMIN)
WA = "573001234567"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@dataclass
class Desk:
    client: TestClient[Any, Any]
    chats: ConversationStore
    tokens: dict[str, str]  # token name -> secret
    bodies: BodyValidator

    async def call(self, who: str | None, method: str, path: str) -> ClientResponse:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return await self.client.request(method, path, headers=headers)


@pytest.fixture
async def desk(db: Database) -> AsyncIterator[Desk]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    roles = {"ana": Role.OPERATOR, "beto": Role.OPERATOR, "vera": Role.VIEWER, "root": Role.ADMIN}
    tokens = {name: await service.create_token(BOOTSTRAP, name, role, "pruebas")
              for name, role in roles.items()}  # fmt: skip
    chats = ConversationStore(db, flow="citas", clock=lambda: T0)
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True}, chats=chats)
    async with TestClient(TestServer(app)) as client:
        yield Desk(client, chats, tokens, BodyValidator(openapi_document(service.registry)))


async def answer(response: ClientResponse, status: int, schema: str, desk: Desk) -> Any:
    body = await response.json()
    assert response.status == status, body
    assert desk.bodies.problems(schema, body) == []
    return body


async def handed_off(desk: Desk, wa_id: str = WA) -> int:
    await desk.chats.receive(InboundMessage(f"wamid.{wa_id}", wa_id, "text", T0, text="asesor"))
    async with desk.chats.turn(wa_id) as turn:
        turn.conversation.node = "agent_transfer"
        turn.hand_to_agent("solicitud", {"motivo": "quiere hablar con un asesor"})
    [handoff] = [h for h in await desk.chats.open_handoffs() if h.wa_id == wa_id]
    return handoff.id


async def test_an_agent_takes_a_handoff_and_gives_the_chat_back_to_the_bot(desk: Desk) -> None:
    handoff_id = await handed_off(desk)
    queue = await answer(await desk.call("vera", "GET", "/api/chat/handoffs"), 200,
                         "HandoffList", desk)  # fmt: skip
    [queued] = queue["handoffs"]
    assert (queued["id"], queued["wa_id"], queued["taken_by"]) == (handoff_id, WA, None)
    assert queued["context"] == {"motivo": "quiere hablar con un asesor"}

    taken = await answer(
        await desk.call("ana", "POST", f"/api/chat/handoffs/{handoff_id}/take"),
        200,
        "Handoff",
        desk,
    )
    assert taken["taken_by"] == "token:ana"  # the actor, as the audit trail names it
    lost = await answer(
        await desk.call("beto", "POST", f"/api/chat/handoffs/{handoff_id}/take"), 409, "Error", desk
    )
    assert lost["error"] == "conflict" and "ya la tomó token:ana" in lost["message"]

    agents = await answer(await desk.call("vera", "GET", "/api/chat/conversations?state=agent"),
                          200, "ConversationList", desk)  # fmt: skip
    assert [(c["wa_id"], c["assigned_agent"]) for c in agents["conversations"]] == [
        (WA, "token:ana")
    ]

    back = await answer(
        await desk.call("ana", "POST", f"/api/chat/conversations/{WA}/release"), 200,
        "Conversation", desk,
    )  # fmt: skip
    assert (back["state"], back["assigned_agent"], back["node"]) == ("bot", None, None)
    queue = await answer(await desk.call("vera", "GET", "/api/chat/handoffs"), 200,
                         "HandoffList", desk)  # fmt: skip
    assert queue["handoffs"] == []
    again = await answer(
        await desk.call("ana", "POST", f"/api/chat/conversations/{WA}/release"), 409, "Error", desk
    )
    assert "no está con un agente" in again["message"]
    closed = await answer(
        await desk.call("beto", "POST", f"/api/chat/handoffs/{handoff_id}/take"), 409, "Error", desk
    )
    assert "ya fue liberada" in closed["message"]


@pytest.mark.parametrize(
    ("who", "method", "path", "status", "error"),
    [
        (None, "GET", "/api/chat/handoffs", 401, "unauthorized"),
        (None, "POST", "/api/chat/handoffs/1/take", 401, "unauthorized"),
        ("vera", "POST", "/api/chat/handoffs/1/take", 403, "forbidden"),
        ("vera", "POST", f"/api/chat/conversations/{WA}/release", 403, "forbidden"),
        ("ana", "POST", "/api/chat/handoffs/999/take", 404, "not_found"),
        ("ana", "POST", "/api/chat/handoffs/uno/take", 422, "invalid_parameter"),
        ("ana", "POST", "/api/chat/handoffs/0/take", 422, "invalid_parameter"),
        ("ana", "POST", "/api/chat/conversations/573009999999/release", 404, "not_found"),
        ("ana", "POST", "/api/chat/conversations/+573001234567/release", 422, "invalid_parameter"),
        ("ana", "POST", "/api/chat/conversations/12345/release", 422, "invalid_parameter"),
        ("vera", "GET", "/api/chat/conversations?state=open", 422, "invalid_parameter"),
        ("vera", "GET", "/api/chat/conversations?state=", 422, "invalid_parameter"),  # fuzz
        ("vera", "GET", "/api/chat/conversations?limit=0", 422, "invalid_parameter"),
        ("vera", "GET", "/api/chat/conversations?active=quizas", 422, "invalid_parameter"),
    ],
)
async def test_refused_requests_change_nothing(
    desk: Desk, who: str | None, method: str, path: str, status: int, error: str
) -> None:
    handoff_id = await handed_off(desk)
    before = (await desk.chats.open_handoffs(), await desk.chats.conversation(WA))
    body = await answer(await desk.call(who, method, path), status, "Error", desk)
    assert body["error"] == error
    assert (await desk.chats.open_handoffs(), await desk.chats.conversation(WA)) == before
    assert before[0][0].id == handoff_id and before[0][0].taken_by is None


async def test_conversations_by_outcome_and_the_active_ones(desk: Desk) -> None:
    await handed_off(desk, "573000000001")
    async with desk.chats.turn("573000000002") as turn:
        turn.conversation.state, turn.conversation.outcome = "closed", "completed"
    async with desk.chats.turn("573000000003") as turn:
        turn.conversation.node = "menu"
    path = "/api/chat/conversations"
    done = await answer(await desk.call("vera", "GET", path + "?outcome=completed"), 200,
                        "ConversationList", desk)  # fmt: skip
    assert [c["wa_id"] for c in done["conversations"]] == ["573000000002"]
    active = await answer(await desk.call("vera", "GET", path + "?active=true"), 200,
                          "ConversationList", desk)  # fmt: skip
    assert sorted(c["wa_id"] for c in active["conversations"]) == ["573000000001", "573000000003"]
    window = active["conversations"][0]
    assert window["service_window_ends_at"] in (None, "2026-12-01T08:00:00+00:00")


async def test_a_process_without_chats_answers_404(db: Database) -> None:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    token = await service.create_token(BOOTSTRAP, "vera", Role.VIEWER, "pruebas")
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True})
    async with TestClient(TestServer(app)) as client:
        response = await client.get(
            "/api/chat/handoffs", headers={"Authorization": f"Bearer {token}"}
        )
        body = await response.json()
    assert response.status == 404 and body["error"] == "not_found"
    assert body["message"] == "este proceso no atiende conversaciones de chat"


GETS = [
    op for op in OPERATIONS if op.method == "GET" and op.min_role is not None and "{" not in op.path
]


@pytest.mark.parametrize("query", ["nope=1", "=0.0", "stat=agent"])
@pytest.mark.parametrize("op", GETS, ids=lambda op: op.path)
async def test_a_query_parameter_the_route_does_not_have_is_refused(
    desk: Desk, op: Operation, query: str
) -> None:
    # Found by the ops API fuzz (GET /api/audit?=0.0 answered 200): a misspelt
    # filter (``stat=agent``) must not silently list everything.
    body = await answer(await desk.call("root", "GET", f"{op.path}?{query}"), 422, "Error", desk)
    assert body["error"] == "invalid_parameter"
    assert body["message"].startswith("parámetro desconocido")


BOOLEAN_PARAMS = [
    (op.path, p.name)
    for op in GETS
    for p in op.params
    if p.where == "query" and p.schema.get("type") == "boolean"
]


@pytest.mark.parametrize(("path", "name"), BOOLEAN_PARAMS)
@pytest.mark.parametrize("value", ["", "quizas", "2"])
async def test_a_boolean_query_parameter_given_empty_or_not_boolean_is_refused(
    desk: Desk, path: str, name: str, value: str
) -> None:
    # Found by the ops API fuzz: GET /api/chat/conversations?active= answered 200
    # (an empty value was read as false); the same held for include_past and open.
    body = await answer(
        await desk.call("root", "GET", f"{path}?{name}={value}"), 422, "Error", desk
    )
    assert body["error"] == "invalid_parameter"


def test_every_boolean_query_parameter_is_covered() -> None:
    assert {name for _, name in BOOLEAN_PARAMS} == {"include_past", "open", "active"}
