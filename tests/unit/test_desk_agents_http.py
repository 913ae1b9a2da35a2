"""The agents' presence routes (``ivr.desk.agents_http``) on the ops API, over a real
socket (aiohttp TestServer), real tokens and the real DeskStore (SQLite, PostgreSQL);
app_queue is tests/unit/test_desk_queue_control.py's model.

The kind of fault: someone changing an agent's presence who may not (another
agent, a token of no agent), or an error that reaches the agent in English or as
a 500. Checked for every (token, agent, action) combination of the shipped desk:
each agent's own token, another agent's, an operator's that is no agent, an
admin's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami import AmiTimeout
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.desk.agents_http import agents_extension
from ivr.desk.ami import AmiHealth, QueueControl
from ivr.desk.config import token_user
from ivr.desk.store import DeskStore
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.unit.test_desk_queue_control import CONFIG, FakeAppQueue

BOOTSTRAP = Actor("cli:test", Role.ADMIN)
ACTIONS = ("login", "pause", "unpause", "logout")


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    ami: FakeAppQueue
    store: DeskStore
    document: dict[str, Any]

    async def post(self, who: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        response = await self.client.post(path, json=body, headers=headers)
        return response.status, await response.json()

    async def get(self, who: str, path: str) -> tuple[int, Any]:
        response = await self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        return response.status, await response.json()


@pytest.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {}
    for agent in CONFIG.agents.values():  # each agent's own token: a viewer is enough
        tokens[agent.user] = await service.create_token(BOOTSTRAP, agent.user, Role.VIEWER, "pruebas")
    tokens["olga"] = await service.create_token(BOOTSTRAP, "olga", Role.OPERATOR, "pruebas")
    tokens["admin"] = await service.create_token(BOOTSTRAP, "jefa", Role.ADMIN, "pruebas")
    ami, store = FakeAppQueue(), DeskStore(db)
    health = AmiHealth(True, None, 0, None)
    control = QueueControl(ami, CONFIG, store, CONFIG.pause_reasons)
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[agents_extension(control, lambda: health)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        document = await (await client.get("/api/openapi.json")).json()
        yield Api(client, tokens, ami, store, document)


def body_for(action: str) -> dict[str, str] | None:
    return {"reason": "almuerzo"} if action == "pause" else None


@pytest.mark.parametrize("extension", sorted(CONFIG.agents))
async def test_an_agent_changes_its_own_presence_through_every_action(extension: str, api: Api) -> None:
    user = CONFIG.agent(extension).user
    for action in ACTIONS:
        status, body = await api.post(user, f"/api/desk/agents/{extension}/{action}", body_for(action))
        assert status == 200, (action, body)
    assert [(p.event, p.actor) for p in reversed(await api.store.presence_log(agent=extension))] == [
        (a, f"token:{user}") for a in ACTIONS
    ]


@pytest.mark.parametrize("who", ["bruno", "olga"])
@pytest.mark.parametrize("action", ACTIONS)
async def test_no_one_else_but_an_admin_changes_an_agents_presence(who: str, action: str, api: Api) -> None:
    status, body = await api.post(who, f"/api/desk/agents/7001/{action}", body_for(action))

    assert status == 403 and body["error"] == "forbidden", body
    assert body["message"] == ("Solo Ana Gómez (usuario ana) o un administrador pueden cambiar "
                               "la presencia del asesor 7001.")  # fmt: skip
    assert await api.store.presence_log(agent="7001") == []
    assert api.ami.sent == []

    status, body = await api.post("admin", "/api/desk/agents/7001/login")
    assert status == 200 and body["logged_in"]


async def test_the_list_shows_every_agent_the_reasons_and_the_ami_session(api: Api) -> None:
    await api.post("ana", "/api/desk/agents/7001/login")
    await api.post("ana", "/api/desk/agents/7001/pause", {"reason": "capacitacion"})

    status, body = await api.get("bruno", "/api/desk/agents")

    assert status == 200
    assert [a["extension"] for a in body["agents"]] == sorted(CONFIG.agents)
    ana = body["agents"][0]
    assert (ana["logged_in"], ana["paused"], ana["pause_reason"]) == (True, True, "Capacitación")
    assert {"id": "pausa_activa", "label": "Pausa activa"} in body["pause_reasons"]
    assert body["ami"]["connected"] is True
    paths = api.document["paths"]
    assert {"/api/desk/agents", "/api/desk/agents/{extension}/pause"} <= set(paths)


@pytest.mark.parametrize(
    ("path", "body", "status", "error", "words"),
    [
        ("/api/desk/agents/7999/login", None, 404, "not_found", "7999"),
        ("/api/desk/agents/7001/pause", {"reason": "siesta"}, 422, "invalid", "Motivo de pausa desconocido"),
        ("/api/desk/agents/7001/pause", {}, 422, "invalid_body", "reason"),
        ("/api/desk/agents/7001/unpause", None, 409, "conflict", "no ha iniciado sesión"),
        ("/api/desk/agents/70a1/login", None, 422, "invalid_parameter", "extension"),
    ],
)  # fmt: skip
async def test_refusals_have_the_ops_shape(
    path: str, body: Any, status: int, error: str, words: str, api: Api
) -> None:
    got, answer = await api.post("admin", path, body)

    assert (got, answer["error"]) == (status, error), answer
    assert words in answer["message"] + str(answer.get("details")), answer


async def test_when_asterisk_does_not_answer_the_agent_is_told_to_retry(api: Api) -> None:
    api.ami.down = AmiTimeout

    status, body = await api.post("ana", "/api/desk/agents/7001/login")

    assert (status, body["error"]) == (503, "unavailable")
    assert body["message"].startswith("La central telefónica no responde")
    assert await api.store.presence_log(agent="7001") == []


async def test_a_request_without_a_token_is_refused(api: Api) -> None:
    status, _ = await api.post("", "/api/desk/agents/7001/login")
    assert status == 401


@pytest.mark.parametrize(("name", "user"), [("token:ana", "ana"), ("ana", "ana"), ("cli:root", "cli:root")])
def test_the_token_user(name: str, user: str) -> None:
    assert token_user(name) == user
