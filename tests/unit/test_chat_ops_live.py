"""Operations apply to the chat, live (issue 10 §6): the incident switch, self-service
off and the booking-service breaker, changed through the ops HTTP API while
conversations are in progress, decide the next chat decision, without a restart.

The composition is the controller's (``ivr.controller.serve``/``build_chat``): one
SQLite database, ``OpsRuntime`` (live flags polled, the breaker in front of the
booking source, the ops HTTP server with the chat store and the WhatsApp webhook
mounted on it), the citas flow and actions reading ``ops.live``, and the
WhatsApp simulator playing Meta through the real signed webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Booking, BookingUnavailable, Slot
from ivr.chat.runner import ChatLine, ChatRunner
from ivr.chat.service import WEBHOOK_PATH, ChatService, WhatsAppEndpoint, whatsapp_client
from ivr.chat.store import ConversationStore
from ivr.citas.reference import load_reference
from ivr.controller import CHAT_FLOW, CHAT_RESUME_NODE, build_actions, load_all_flows
from ivr.flow.engine import FlowEngine
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.runtime import OpsRuntime
from ivr.ops.service import Actor
from ivr.prompts import load_prompt_texts
from ivr.settings import Ports, Settings
from ivr.store.db import Database
from ivr.whatsapp.simulator import SentMessage, WhatsAppSimulator
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.eventually import eventually

APP_SECRET, VERIFY, TOKEN = "secret-live-ops", "verify-live-ops", "token-live-ops"
ANA = "573001234567"  # in the demo directory: identified by her number
ADMIN = Actor("cli:test", Role.ADMIN)


def shown(message: SentMessage) -> str:
    """What the contact reads: the body and the titles of the options (lower case)."""
    action = message.payload.get("interactive", {}).get("action", {})
    titles = [b["reply"]["title"] for b in action.get("buttons", ())]
    titles += [r["title"] for sec in action.get("sections", ()) for r in sec.get("rows", ())]
    return "\n".join([message.text, *titles]).lower()


class SwitchableSource:
    """The demo booking store, which the test can break (every call raises
    ``BookingUnavailable``, as a dead web service would) and heal; counts calls."""

    def __init__(self, inner: DbSlotSource) -> None:
        self.inner = inner
        self.broken = False
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.broken:
            raise BookingUnavailable("the booking service does not answer (test)")

    async def find(self, *, site_id: str, cups: str, after: datetime | None = None,
                   time_band: str | None = None, doctor_id: str | None = None,
                   exclude_doctor_id: str | None = None, exclude_ids: Collection[str] = (),
                   limit: int = 1) -> list[Slot]:  # fmt: skip
        self._call()
        return await self.inner.find(
            site_id=site_id, cups=cups, after=after, time_band=time_band, doctor_id=doctor_id,
            exclude_doctor_id=exclude_doctor_id, exclude_ids=exclude_ids, limit=limit,
        )  # fmt: skip

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        self._call()
        return await self.inner.book(slot_id, affiliate_id=affiliate_id, call_id=call_id)

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        self._call()
        return await self.inner.pending_for(affiliate_id)

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        self._call()
        return await self.inner.cancel(booking_id, affiliate_id=affiliate_id, call_id=call_id)

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        self._call()
        return await self.inner.reschedule(
            booking_id, slot_id, affiliate_id=affiliate_id, call_id=call_id
        )

    async def health(self) -> bool:
        return not self.broken


@dataclass
class Line:
    ops: OpsRuntime
    store: ConversationStore
    simulator: WhatsAppSimulator
    source: SwitchableSource
    http: aiohttp.ClientSession
    url: str
    operator: str
    admin: str

    async def api(self, method: str, path: str, token: str, body: object = None) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            answer = await response.json()
            assert response.status == 200, (method, path, response.status, answer)
            return answer

    async def set_flag(self, name: str, value: object, token: str | None = None) -> None:
        """Through the API, then wait until this process's live flags use it (the
        poller's next tick: the controller's own 200 ms)."""
        token = token or self.operator
        if name == "incident_mode":
            await self.api("POST", "/api/incident", token, {"active": value, "reason": "prueba"})
        else:
            await self.api("PUT", f"/api/flags/{name}", token, {"value": value, "reason": "prueba"})
        await eventually(lambda: self.ops.live.value(name) == value, within=5)

    async def says(self, wa_id: str, text: str) -> None:
        await self.simulator.send_text(wa_id, text)

    async def sees(self, wa_id: str, words: str, after: int = 0, within: float = 10.0) -> None:
        """``words`` in a message to ``wa_id`` past the first ``after`` ones."""

        def found() -> bool:
            return any(words.lower() in shown(m) for m in self.simulator.messages_to(wa_id)[after:])

        try:
            await eventually(found, within=within)
        except TimeoutError:
            seen = [shown(m) for m in self.simulator.messages_to(wa_id)[after:]]
            raise AssertionError(f"{words!r} never sent; sent: {seen}") from None

    def count(self, wa_id: str) -> int:
        return len(self.simulator.messages_to(wa_id))

    async def conversation(self, wa_id: str) -> tuple[str, str | None, str | None]:
        conv = await self.store.conversation(wa_id)
        assert conv is not None
        return conv.state, conv.node, conv.outcome

    async def at_main_menu(self, wa_id: str) -> None:
        before = self.count(wa_id)
        await self.says(wa_id, "Hola")
        await self.sees(wa_id, "pedir una cita", after=before)
        assert (await self.conversation(wa_id))[1] == "main_menu"


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    settings = Settings(state_dir=tmp_path, ports=Ports(ops_http=unused_port()))
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S)
    await db.migrate()
    reference = load_reference(settings.citas_dir)
    from ivr.citas.flags import flag_registry

    registry = flag_registry(reference)
    metrics = Metrics()
    ops = OpsRuntime(settings, db, registry, metrics)
    await ops.start()
    source = SwitchableSource(DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S))
    slots = ops.guard(source)
    actions, _ = await build_actions(settings, db, slots, ops.live, reference)
    prompts = load_prompt_texts(settings.prompts_file)
    engine = FlowEngine(actions, default_vdn=reference.line.vdn_default, flags=ops.live.value,
                        texts=prompts)  # fmt: skip
    flows = load_all_flows(settings, registry)
    texts = {pid: getattr(p, "chat", None) or p.text for pid, p in prompts.items()}
    store = ConversationStore(db, flow=CHAT_FLOW)
    simulator = WhatsAppSimulator(app_secret=APP_SECRET, token=TOKEN, statuses=())
    await simulator.start()
    point = WhatsAppEndpoint(
        simulator.base_url, settings.whatsapp_api_version, simulator.phone_number_id, TOKEN,
        APP_SECRET, VERIFY, simulated=False,
    )  # fmt: skip
    runner = ChatRunner(store, engine, ChatLine(flows[CHAT_FLOW], texts, CHAT_RESUME_NODE),
                        whatsapp_client(point, 5.0))  # fmt: skip
    chat = ChatService(runner, point)
    metrics.watch_chat(lambda: runner.counts, chat.counters.snapshot)
    await ops.serve_http(lambda: {"database": True}, mount=chat.mount, chats=store)
    url = f"http://{settings.host}:{settings.ports.ops_http}"
    simulator.webhook_url = url + WEBHOOK_PATH
    chat.start()
    operator = await ops.service.create_token(ADMIN, "olga", Role.OPERATOR, "prueba")
    admin = await ops.service.create_token(ADMIN, "ana", Role.ADMIN, "prueba")
    http = aiohttp.ClientSession()
    try:
        yield Line(ops, store, simulator, source, http, url, operator, admin)
    finally:
        await http.close()
        await chat.stop()
        await ops.stop()
        await simulator.stop()
        await db.close()


async def test_the_incident_switch_reaches_the_next_chat_and_hands_it_to_a_person(
    line: Line,
) -> None:
    ana, beto, carla = ANA, "573001110001", "573001110002"
    await line.at_main_menu(ana)  # a conversation in progress when the switch goes on

    await line.set_flag("incident_mode", True)
    await line.says(beto, "Hola")
    await line.sees(beto, "falla técnica")
    await line.sees(beto, "una persona le responderá")
    assert await line.conversation(beto) == ("agent", None, "handed_off")
    queue = await line.api("GET", "/api/chat/handoffs", line.operator)
    assert [(h["wa_id_masked"], h["reason"]) for h in queue["handoffs"]] == [
        ("*********001", "incident")
    ]
    # As on the phone, the switch is read at the start: a chat past it goes on.
    before = line.count(ana)
    await line.says(ana, "1")
    await line.sees(ana, "medicina general", after=before)

    await line.set_flag("incident_mode", False)
    await line.says(carla, "Hola")
    await line.sees(carla, "documento")  # not in the directory: the flow, not the incident
    assert not any("falla técnica" in shown(m) for m in line.simulator.messages_to(carla))


# The self-service switch is read where the flow decides to book or look up
# appointments: each decision point, from a conversation already in the menu.
@pytest.mark.parametrize(
    ("choice", "gate"), [("1", "self_service_gate"), ("3", "appointments_gate")]
)
async def test_self_service_off_sends_the_next_chat_decision_to_a_person(
    line: Line, choice: str, gate: str
) -> None:
    await line.at_main_menu(ANA)
    if choice == "1":
        await line.says(ANA, "1")
        await line.sees(ANA, "medicina general")
        choice = "1"  # medicina general: the answer that reaches the gate

    await line.set_flag("self_service_booking", False)
    before, calls = line.count(ANA), line.source.calls
    await line.says(ANA, choice)
    await line.sees(ANA, "no es posible asignar citas", after=before)
    await line.sees(ANA, "una persona le responderá", after=before)
    assert await line.conversation(ANA) == ("agent", None, "handed_off")
    (handoff,) = (await line.api("GET", "/api/chat/handoffs", line.operator))["handoffs"]
    assert handoff["reason"] == "self-service-off"
    assert line.source.calls == calls  # the booking service was not asked
    path = (await line.store.conversation(ANA)).variables["chat_path"]  # type: ignore[union-attr]
    assert gate in path and path[-1] == "agent_self_service_off"

    # Back on, and the operator gives the chat back: the same contact books.
    await line.set_flag("self_service_booking", True)
    await line.api("POST", f"/api/chat/handoffs/{handoff['id']}/take", line.operator)
    await line.api("POST", f"/api/chat/conversations/{ANA}/release", line.operator)
    await line.at_main_menu(ANA)
    before = line.count(ANA)
    await line.says(ANA, "1")
    await line.sees(ANA, "medicina general", after=before)
    await line.says(ANA, "1")
    await line.sees(ANA, "tenemos disponible", after=before)


async def test_the_booking_breaker_opens_on_a_live_threshold_and_the_next_chat_skips_the_service(
    line: Line,
) -> None:
    ana, beto, carla = ANA, "573001110003", "573001110004"
    # An admin lowers the breaker's thresholds through the API, live.
    await line.set_flag("booking_breaker.failure_threshold", 1, line.admin)
    await line.set_flag("booking_breaker.open_seconds", 1, line.admin)
    # On the phone, target callers are sent to WhatsApp when booking is down; in a
    # chat that is where they are already: the operator sends them to a person.
    await line.set_flag("booking_down_route", "agent")
    line.source.broken = True

    await line.at_main_menu(ana)
    await line.says(ana, "1")
    await line.sees(ana, "medicina general")
    before = line.count(ana)
    await line.says(ana, "1")
    await line.sees(ana, "no está disponible", after=before)  # the service failed once
    breaker = await line.api("GET", "/api/breaker", line.operator)
    assert (breaker["state"], breaker["threshold"]) == ("open", 1)  # opened at the new threshold
    state, _, outcome = await line.conversation(ana)
    assert (state, outcome) == ("agent", "handed_off")

    # The next chat reaching the booking service is not made to wait on it.
    calls = line.source.calls
    for wa_id, text in ((beto, "Hola"), (beto, "1.010.101.010")):
        await line.says(wa_id, text)
    await line.sees(beto, "pedir una cita")
    await line.says(beto, "1")
    await line.sees(beto, "medicina general")
    before = line.count(beto)
    await line.says(beto, "1")
    await line.sees(beto, "no está disponible", after=before)
    assert line.source.calls == calls  # the breaker answered, the service was not called

    # Healed: the breaker's probe (every open_seconds, 1 s now) closes it; the next chat books.
    line.source.broken = False
    await eventually(lambda: line.ops.breaker is not None and line.ops.breaker.state == "closed",
                     within=10)  # fmt: skip
    await line.says(carla, "Hola")
    await line.sees(carla, "documento")
    await line.says(carla, "1.010.101.010")
    await line.sees(carla, "pedir una cita")
    await line.says(carla, "1")
    await line.sees(carla, "medicina general")
    await line.says(carla, "1")
    await line.sees(carla, "tenemos disponible")


async def test_the_chat_counters_are_on_the_ops_metrics(line: Line) -> None:
    await line.at_main_menu(ANA)
    async with line.http.post(line.url + WEBHOOK_PATH, data=b"{}") as refused:
        assert refused.status == 401  # unsigned
    async with line.http.get(line.url + "/metrics") as response:
        text = await response.text()
    assert 'citas_chat_messages_total{direction="in"} 1.0' in text
    sent = [
        ln
        for ln in text.splitlines()
        if ln.startswith('citas_chat_messages_total{direction="out"}')
    ]
    assert sent and float(sent[0].split()[-1]) >= 1
    assert 'citas_whatsapp_webhook_refused_total{reason="unsigned"} 1.0' in text
    assert "citas_chat_active_conversations 1.0" in text
    summary = await line.api("GET", "/api/chat/summary", line.operator)
    assert summary == {"active": 1, "by_state": {"bot": 1}, "by_outcome": {}}
