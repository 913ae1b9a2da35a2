"""From queue events to the agent's screen (ivr.desk.screen.ScreenPop) and the desktop's
routes (ivr.desk.pop_http): real DeskStore on SQLite and PostgreSQL, a line source that
records what it is asked (the line's own source is tested in test_desk_pop_citas)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ivr.chat.store import InboundMessage
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.desk.config import DEFAULT_PATH, load_desk_config
from ivr.desk.events import QueueEvent, parse_event
from ivr.desk.pop import CallKeys, ChatKeys, PopDetails
from ivr.desk.pop_http import desk_pop_extension
from ivr.desk.push import PushHub, Subscription
from ivr.desk.screen import ScreenPop
from ivr.desk.store import DeskStore
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.unit.cases_office import BOOTSTRAP, WA, office_on
from tests.unit.eventually import eventually

CONFIG = load_desk_config(DEFAULT_PATH)


class Source:
    """Answers with the channel variables; ``pending`` for the first ``late`` calls."""

    def __init__(self, late: int = 0) -> None:
        self.late = late
        self.calls: list[CallKeys] = []

    async def for_call(self, call: CallKeys) -> PopDetails:
        self.calls.append(call)
        pending = ["recorrido"] if len(self.calls) <= self.late else []
        return PopDetails(
            segment={"code": call.variables.get("CITAS_SEGMENT", ""), "label": "Población no objetivo"},
            ivr_reason="No tomó un cupo", reasons=["No tomó un cupo"],
            path=[] if pending else ["Menú principal: 1 — Pedir una cita"], pending=pending,
            call_record_id=None if pending else "rec-1",
        )  # fmt: skip

    async def for_chat(self, chat: ChatKeys) -> PopDetails:
        return PopDetails(segment={"code": "unknown", "label": "Sin clasificar"}, ivr_reason=chat.reason)


def ami(name: str, uniqueid: str = "1764500000.10", interface: str = "PJSIP/7001", **more: str) -> QueueEvent:
    fields = {
        "Event": name, "Queue": "l1_general", "Uniqueid": uniqueid, "Linkedid": uniqueid,
        "Channel": "PJSIP/caller-00000001", "CallerIDNum": "3002222222",
        "Interface": interface, "MemberName": "Ana Gómez", "DestUniqueid": f"{uniqueid}1",
        "HoldTime": "4", "RingTime": "1", "TalkTime": "30", "Reason": "caller",
        "ChanVariable": "CITAS_CALL_ID=sip-1\nCITAS_SEGMENT=non_target\nCITAS_REASON=non-target\nCITAS_DESK_PREV=",
        **more,
    }  # fmt: skip
    event = parse_event(fields)
    assert event is not None
    return event


def screen_on(db: Database, source: Source | None = None) -> ScreenPop:
    return ScreenPop(DeskStore(db), CONFIG, source or Source(), PushHub(), refresh_s=0.01)


def pushes(sub: Subscription) -> list[tuple[str, Any]]:
    found = []
    while not sub.queue.empty():
        push = sub.queue.get_nowait()
        found.append((push.event, push.data))
    return found


async def test_agent_connect_opens_the_contact_and_pops_it_to_the_agent(db: Database) -> None:
    screen = screen_on(db)
    ana, bruno = screen.hub.subscribe("7001"), screen.hub.subscribe("7002")
    await screen.on_event(ami("AgentConnect"))
    [(event, data)] = pushes(ana)
    assert event == "pop" and pushes(bruno) == []
    contact, pop = data["contact"], data["pop"]
    assert (contact["agent"], contact["kind"], contact["queue"], contact["level"]) == ("7001", "voice", "l1_general", 1)
    assert contact["journey_key"] == "1764500000.10" and contact["sip_call_id"] == "sip-1"
    assert contact["hold_seconds"] == 4 and contact["ring_seconds"] == 1
    assert pop["segment"]["code"] == "non_target" and pop["path"] == ["Menú principal: 1 — Pedir una cita"]
    assert pop["queue"] == {"id": "l1_general", "name": CONFIG.queues["l1_general"].name, "level": 1, "area": "recepcion"}
    assert pop["hops"] == [] and pop["agent_name"] == "Ana Gómez"


async def test_a_redelivered_agent_connect_is_the_same_contact(db: Database) -> None:
    screen = screen_on(db)
    first = await screen.connected(ami("AgentConnect"))  # type: ignore[arg-type]
    again = await screen.connected(ami("AgentConnect"))  # type: ignore[arg-type]
    assert first is not None and again is not None and first.id == again.id
    assert len(await screen.store.by_uniqueid("1764500000.10")) == 1


async def test_agent_complete_puts_the_contact_in_wrapup_and_says_so(db: Database) -> None:
    screen = screen_on(db)
    sub = screen.hub.subscribe("7001")
    await screen.on_event(ami("AgentConnect"))
    await screen.on_event(ami("AgentComplete"))
    events = pushes(sub)
    assert [e for e, _ in events] == ["pop", "wrapup"]
    assert events[1][1]["contact"]["state"] == "wrapup" and events[1][1]["reason"] == "caller"
    current = await screen.current("7001")
    assert current["contact"]["state"] == "wrapup" and current["pop"]["segment"]["code"] == "non_target"


async def test_a_short_call_s_events_are_handled_in_order(db: Database) -> None:
    # AmiConnection runs each event in its own task: the complete must not overtake the connect.
    for n in range(5):
        screen = screen_on(db)
        uid = f"1764500001.{n}"
        await asyncio.gather(screen.on_event(ami("AgentConnect", uid)), screen.on_event(ami("AgentComplete", uid)))
        [contact] = await screen.store.by_uniqueid(uid)
        assert contact.state == "wrapup", n


async def test_a_member_that_is_no_desk_agent_pops_nothing(db: Database) -> None:
    screen = screen_on(db)
    assert await screen.connected(ami("AgentConnect", interface="PJSIP/agent")) is None  # type: ignore[arg-type]
    assert await screen.connected(ami("AgentConnect", interface="PJSIP/7999")) is None  # type: ignore[arg-type]
    assert await screen.store.by_uniqueid("1764500000.10") == []


async def test_an_escalated_call_pops_with_the_previous_hop_and_its_steps(db: Database) -> None:
    screen = screen_on(db)
    first = await screen.connected(ami("AgentConnect"))  # type: ignore[arg-type]
    assert first is not None
    await screen.store.record_step(first.id, node_id="s1", node_kind="text", label="Saludo", agent="7001")
    await screen.store.escalate(first.id, reason="Requiere médico", to_queue="l2_clinico", agent="7001")
    sub = screen.hub.subscribe("7003")
    variables = f"CITAS_CALL_ID=sip-1\nCITAS_SEGMENT=non_target\nCITAS_DESK_PREV={first.id}"
    second = await screen.connected(ami(  # type: ignore[arg-type]
        "AgentConnect", "1764500000.10", "PJSIP/7003", Queue="l2_clinico", MemberName="Carla Ruiz",
        ChanVariable=variables, DestUniqueid="1764500000.20",
    ))  # fmt: skip
    assert second is not None and second.id != first.id
    assert second.previous_contact_id == first.id and second.journey_key == first.journey_key
    assert second.level == 2
    [(event, data)] = pushes(sub)
    assert event == "pop"
    [hop] = data["pop"]["hops"]
    assert hop["contact_id"] == first.id and hop["level"] == 1 and hop["escalation_reason"] == "Requiere médico"
    assert [s["label"] for s in hop["steps"]] == ["Saludo"]
    # The agent reads the queue's name, not its id (review: "Ana Gómez (l1_general)").
    assert (hop["queue"], hop["queue_name"]) == (first.queue, screen.config.queues[first.queue].name)
    assert hop["queue_name"] != hop["queue"]


async def test_a_pop_whose_record_is_late_is_pushed_at_once_then_updated(db: Database) -> None:
    source = Source(late=1)
    screen = screen_on(db, source)
    sub = screen.hub.subscribe("7001")
    contact = await screen.connected(ami("AgentConnect"))  # type: ignore[arg-type]
    assert contact is not None
    [(event, first)] = pushes(sub)
    assert event == "pop"
    assert first["pop"]["pending"] == ["recorrido"] and first["pop"]["path"] == []
    got: list[tuple[str, Any]] = []

    def updated() -> bool:
        got.extend(pushes(sub))
        return bool(got)

    await eventually(updated)
    assert got[0][0] == "pop" and got[0][1]["pop"]["path"] == ["Menú principal: 1 — Pedir una cita"]
    stored = await screen.store.get(contact.id)
    assert stored is not None and stored.context["pending"] == [] and stored.call_record_id == "rec-1"
    await screen.close()


async def test_ringing_and_presence_reach_the_agent(db: Database) -> None:
    screen = screen_on(db)
    sub = screen.hub.subscribe("7001")
    await screen.on_event(ami("AgentCalled"))
    await screen.on_event(ami("AgentRingNoAnswer"))
    await screen.on_event(ami("QueueMemberPause", Paused="1", PausedReason="Almuerzo"))
    await screen.on_event(ami("QueueMemberStatus", Status="1", Paused="0"))
    events = pushes(sub)
    assert [e for e, _ in events] == ["ringing", "ring_no_answer", "presence", "presence"]
    assert events[0][1]["caller"] == "*******222"  # masked
    assert events[2][1]["paused"] is True and events[2][1]["paused_reason"] == "Almuerzo"
    assert events[3][1]["status_words"] == "libre"


# --- the routes ---------------------------------------------------------------------------
@dataclass
class Desktop:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    screen: ScreenPop

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@asynccontextmanager
async def desktop_on(db: Database) -> AsyncIterator[Desktop]:
    office = office_on(db)
    screen = screen_on(db)
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    roles = {"ana": Role.OPERATOR, "vera": Role.VIEWER, "admin": Role.ADMIN}
    tokens = {name: await service.create_token(BOOTSTRAP, name, role, "pruebas")
              for name, role in roles.items()}  # fmt: skip
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True}, chats=office.chats,
                        extensions=[desk_pop_extension(screen, CONFIG, heartbeat_s=0.05)])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Desktop(client, tokens, screen)


async def read_events(response: Any, count: int) -> list[tuple[str, Any]]:
    """The next ``count`` events of an SSE body (comments counted as ``("ping", None)``)."""
    found: list[tuple[str, Any]] = []
    buffer = b""
    while len(found) < count:
        buffer += await asyncio.wait_for(response.content.readany(), 5)
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            lines = frame.decode().split("\n")
            if lines[0].startswith(":"):
                found.append(("ping", None))
                continue
            event = next(line[7:] for line in lines if line.startswith("event: "))
            data = json.loads(next(line[6:] for line in lines if line.startswith("data: ")))
            found.append((event, data))
    return found


async def test_the_stream_says_hello_pings_and_pushes_the_pop(db: Database) -> None:
    async with desktop_on(db) as desk:
        response = await desk.client.get("/api/desk/stream", headers=desk.auth("ana"))
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        [(hello, data)] = await read_events(response, 1)
        assert hello == "hello" and data["agent"]["extension"] == "7001" and data["agent"]["chat"] is True
        await eventually(lambda: desk.screen.hub.listeners("7001") == 1)
        await desk.screen.on_event(ami("AgentConnect"))
        events = [e for e in await read_events(response, 3) if e[0] != "ping"]
        if not events:
            events = [e for e in await read_events(response, 3) if e[0] != "ping"]
        assert events[0][0] == "pop" and events[0][1]["pop"]["segment"]["code"] == "non_target"
        response.close()
        await eventually(lambda: desk.screen.hub.listeners("7001") == 0)


async def test_the_stream_sends_heartbeats(db: Database) -> None:
    async with desktop_on(db) as desk:
        response = await desk.client.get("/api/desk/stream", headers=desk.auth("ana"))
        events = await read_events(response, 3)
        assert events[0][0] == "hello" and events[1:] == [("ping", None), ("ping", None)]
        response.close()


async def test_current_is_what_a_reconnecting_desktop_reads(db: Database) -> None:
    async with desktop_on(db) as desk:
        empty = await (await desk.client.get("/api/desk/current", headers=desk.auth("ana"))).json()
        assert empty["contact"] is None and empty["pop"] is None and empty["agent"]["name"] == "Ana Gómez"
        await desk.screen.on_event(ami("AgentConnect"))
        current = await (await desk.client.get("/api/desk/current", headers=desk.auth("ana"))).json()
        assert current["contact"]["agent"] == "7001" and current["pop"]["path"]


async def test_who_may_see_which_desktop(db: Database) -> None:
    async with desktop_on(db) as desk:
        vera = await desk.client.get("/api/desk/current", headers=desk.auth("vera"))
        assert vera.status == 403 and (await vera.json())["error"] == "not_an_agent"
        other = await desk.client.get("/api/desk/current?agent=7002", headers=desk.auth("ana"))
        assert other.status == 403
        admin = await desk.client.get("/api/desk/current?agent=7002", headers=desk.auth("admin"))
        assert admin.status == 200 and (await admin.json())["agent"]["name"] == "Bruno Díaz"
        unknown = await desk.client.get("/api/desk/current?agent=7999", headers=desk.auth("admin"))
        assert unknown.status == 404
        bad = await desk.client.get("/api/desk/current?agent=x", headers=desk.auth("admin"))
        assert bad.status == 422
        anonymous = await desk.client.get("/api/desk/stream")
        assert anonymous.status == 401


async def test_taking_a_chat_hand_off_pops_it_like_a_call(db: Database) -> None:
    async with desktop_on(db) as desk:
        office = office_on(db)
        await office.chats.receive(InboundMessage("wamid.1", WA, "text", office.clock(), text="quiero un asesor"))
        async with office.chats.turn(WA) as turn:
            turn.hand_to_agent("non-target", {"segment": "non_target"})
        [handoff] = await office.chats.open_handoffs()
        response = await desk.client.get("/api/desk/stream", headers=desk.auth("ana"))
        await read_events(response, 1)
        took = await desk.client.post(f"/api/desk/handoffs/{handoff.id}/take", headers=desk.auth("ana"))
        answer = await took.json()
        assert took.status == 200, answer
        assert answer["contact"]["kind"] == "chat" and answer["pop"]["kind"] == "chat"
        assert answer["contact"]["wa_id"] == "*********567"
        events = [e for e in await read_events(response, 2) if e[0] != "ping"] or \
            [e for e in await read_events(response, 2) if e[0] != "ping"]
        assert events[0][0] == "pop" and events[0][1]["contact"]["id"] == answer["contact"]["id"]
        again = await desk.client.post(f"/api/desk/handoffs/{handoff.id}/take", headers=desk.auth("admin"))
        assert again.status == 403  # admin is no desk agent
        missing = await desk.client.post("/api/desk/handoffs/999/take", headers=desk.auth("ana"))
        assert missing.status == 404
        response.close()


async def test_a_stopping_server_ends_the_streams(db: Database) -> None:
    async with desktop_on(db) as desk:
        response = await desk.client.get("/api/desk/stream", headers=desk.auth("ana"))
        await read_events(response, 1)
        await eventually(lambda: desk.screen.hub.listeners("7001") == 1)
        await desk.screen.hub.close()  # what the app's on_shutdown runs
        events = [e for e, _ in await read_events(response, 1)]
        assert events in (["closing"], ["ping"])
        body = await asyncio.wait_for(response.content.read(), 5)  # the handler returned: EOF
        assert b"event: pop" not in body
        assert desk.screen.hub.listeners("7001") == 0
