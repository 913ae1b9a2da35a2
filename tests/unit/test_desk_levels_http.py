"""The service levels' routes on the ops API (ivr.desk.levels_http) over a real socket
and a real database, AMI replaced by the recorder of test_desk_levels.

The kinds of fault: an escalation by someone who is not the contact's agent (nor an
admin); an answer whose status does not say what went wrong (404 / 409 / 422 /
503, each with a Spanish message); a choice of areas that offers a target the level
does not reach. Each over its range: every role and agent, every refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.desk.escalations import EscalationLog
from ivr.desk.levels import AmiCallMover, Levels
from ivr.desk.levels_http import levels_extension
from ivr.desk.model import ESCALATED
from ivr.desk.store import DeskStore
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.unit.test_desk_levels import CONFIG, PROMPTS, Clock, RecordingAmi, voice

BOOTSTRAP = Actor("cli:test", Role.ADMIN)
# desk.yaml users: ana (7001, recepción), bruno (7002, recepción), carla (7003, clínico L2).
ROLES = {"ana": Role.OPERATOR, "bruno": Role.OPERATOR, "carla": Role.OPERATOR,
         "vera": Role.VIEWER, "jefa": Role.ADMIN}  # fmt: skip


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    levels: Levels
    ami: RecordingAmi

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )
        return response.status, await response.json()


@pytest.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    clock, ami = Clock(), RecordingAmi()
    levels = Levels(CONFIG, DeskStore(db, clock=clock), EscalationLog(db, clock=clock),
                    mover=AmiCallMover(ami), prompts=PROMPTS)  # fmt: skip
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {name: await service.create_token(BOOTSTRAP, name, role, "pruebas")
              for name, role in ROLES.items()}  # fmt: skip
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[levels_extension(levels)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Api(client, tokens, levels, ami)


WHO = [("ana", 200), ("jefa", 200), ("bruno", 403), ("carla", 403), ("vera", 403)]


@pytest.mark.parametrize(("who", "status"), WHO, ids=[w for w, _ in WHO])
async def test_only_the_contacts_agent_or_an_admin_escalates(api: Api, who: str, status: int) -> None:
    contact = await api.levels.contacts.open_contact(voice())  # agent 7001, ana
    code, answer = await api.call(who, "POST", f"/api/desk/contacts/{contact.id}/escalate",
                                  {"area": "clinico", "reason": "Consulta clínica"})  # fmt: skip
    assert code == status, answer
    if status == 200:
        assert answer["contact"]["state"] == ESCALATED
        assert answer["escalation"]["to_queue"] == "l2_clinico"
        assert answer["escalation"]["outcome"] == "pending"
        assert [a["Action"] for a in api.ami.actions][-1] == "Redirect"
    else:
        assert api.ami.actions == [] and answer["message"]


async def test_every_refusal_has_its_status_and_a_spanish_message(api: Api) -> None:
    contact = await api.levels.contacts.open_contact(voice())
    path = f"/api/desk/contacts/{contact.id}/escalate"
    cases: list[tuple[str, Any, int, str]] = [
        ("unknown area", {"area": "juridico", "reason": "x"}, 422, "no se escala al área"),
        ("blank reason", {"area": "clinico", "reason": "   "}, 422, ""),
        ("no reason", {"area": "clinico"}, 422, ""),
        ("extra field", {"area": "clinico", "reason": "x", "queue": "l3_clinico"}, 422, ""),
    ]
    for what, body, status, words in cases:
        code, answer = await api.call("ana", "POST", path, body)
        assert code == status, (what, answer)
        assert words in answer["message"], (what, answer)
    code, answer = await api.call("ana", "POST", "/api/desk/contacts/00000000-0000-0000-0000-000000000000/escalate",
                                  {"area": "clinico", "reason": "x"})  # fmt: skip
    assert code == 404 and "no existe el contacto" in answer["message"]
    api.ami.healthy = False
    code, answer = await api.call("ana", "POST", path, {"area": "clinico", "reason": "x"})
    assert code == 503 and answer["error"] == "telephony_unavailable"
    assert "La llamada sigue con usted" in answer["message"]
    api.ami.healthy = True
    code, _ = await api.call("ana", "POST", path, {"area": "clinico", "reason": "x"})
    assert code == 200
    code, answer = await api.call("ana", "POST", path, {"area": "clinico", "reason": "x"})
    assert code == 409 and "escalado" in answer["message"]


@pytest.mark.parametrize("queue", sorted(CONFIG.queues))
async def test_the_choice_offers_exactly_the_targets_of_the_level(api: Api, queue: str) -> None:
    contact = await api.levels.contacts.open_contact(voice(queue))
    code, answer = await api.call("vera", "GET", f"/api/desk/contacts/{contact.id}/escalation")
    assert code == 200
    expected = CONFIG.escalation.get(CONFIG.queue(queue).level, {})
    assert {t["area"]: t["queue"] for t in answer["targets"]} == expected
    assert answer["can_escalate"] == bool(expected)


async def test_the_journey_lists_the_hops_with_their_times(api: Api) -> None:
    first = await api.levels.contacts.open_contact(voice())
    await api.call("ana", "POST", f"/api/desk/contacts/{first.id}/escalate",
                   {"area": "clinico", "reason": "Consulta clínica"})  # fmt: skip
    code, answer = await api.call("vera", "GET", f"/api/desk/journeys/{first.journey_key}")
    assert code == 200
    [hop] = answer["hops"]
    assert hop["contact"]["id"] == first.id and hop["queued_seconds"] == 9.0
    assert hop["escalations"][0]["reason"] == "Consulta clínica"
    assert answer["seconds_per_level"] == {"1": 0.0}
    code, answer = await api.call("vera", "GET", "/api/desk/journeys/nadie")
    assert code == 404
