"""The assistant's runner (``ivr.chat.runner``) on the real citas flow, actions and
booking store (SQLite), the real signed webhook on a loopback server and the
WhatsApp simulator playing Meta: a chat books, hands off, goes back to the
menu, answers media, continues a call from its SMS reference, and sends only
the template outside the 24-hour window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import update

from ivr.booking.db import DbSlotSource
from ivr.chat.callref import resolve_reference
from ivr.chat.runner import ChatLine, ChatRunner
from ivr.chat.store import ConversationStore
from ivr.chat.tables import ConversationRow
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.controller import CHAT_FLOW, CHAT_RESUME_NODE, build_actions, load_all_flows
from ivr.flow.engine import FlowEngine
from ivr.ops.flags import StaticFlags
from ivr.prompts import load_prompt_texts
from ivr.settings import Settings
from ivr.store.db import Database
from ivr.store.records import CallRecordStore
from ivr.whatsapp.client import RetryPolicy, WhatsAppClient
from ivr.whatsapp.simulator import SentMessage, WhatsAppSimulator
from ivr.whatsapp.webhook import add_webhook_routes
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.eventually import eventually

APP_SECRET, VERIFY, TOKEN = "secret-runner-tests", "verify-runner-tests", "token-runner-tests"
ANA = "573001234567"  # in the demo directory (document 1010101010, site norte)
STRANGER = "573009998877"  # not in it


def shown(message: SentMessage) -> str:
    """What the contact reads: the body and the titles of the options (lower case)."""
    action = message.payload.get("interactive", {}).get("action", {})
    titles = [b["reply"]["title"] for b in action.get("buttons", ())]
    titles += [r["title"] for sec in action.get("sections", ()) for r in sec.get("rows", ())]
    return "\n".join([message.text, *titles]).lower()


@dataclass
class Chat:
    simulator: WhatsAppSimulator
    runner: ChatRunner
    store: ConversationStore
    db: Database

    async def says(self, wa_id: str, text: str) -> None:
        await self.simulator.send_text(wa_id, text)

    async def sees(self, wa_id: str, words: str, within: float = 10.0) -> SentMessage:
        def found() -> SentMessage | None:
            return next((m for m in self.simulator.messages_to(wa_id) if words.lower() in shown(m)), None)

        await eventually(lambda: found() is not None, within=within)
        message = found()
        assert message is not None
        return message

    async def node(self, wa_id: str) -> str | None:
        conv = await self.store.conversation(wa_id)
        return conv.node if conv else None


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    settings = Settings(state_dir=tmp_path)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S)
    await db.migrate()
    reference = load_reference(settings.citas_dir)
    registry = flag_registry(reference)
    flags = StaticFlags(registry)
    slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S)
    actions, _ = await build_actions(settings, db, slots, flags, reference)
    prompts = load_prompt_texts(settings.prompts_file)
    engine = FlowEngine(actions, default_vdn="5550001", flags=flags.value, texts=prompts)
    flows = load_all_flows(settings, registry)
    texts = {pid: getattr(p, "chat", None) or p.text for pid, p in prompts.items()}
    line = ChatLine(flows[CHAT_FLOW], texts, CHAT_RESUME_NODE)
    store = ConversationStore(db, flow=CHAT_FLOW)
    simulator = WhatsAppSimulator(app_secret=APP_SECRET, token=TOKEN, statuses=())
    await simulator.start()
    client = WhatsAppClient(
        token=TOKEN, phone_number_id=simulator.phone_number_id, api_base=simulator.base_url,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05),
    )  # fmt: skip

    async def references(code: str, sender: str):  # type: ignore[no-untyped-def]
        return await resolve_reference(db, code, sender=sender)

    runner = ChatRunner(store, engine, line, client, references=references)
    app = web.Application()
    add_webhook_routes(app, path="/wh", verify_token=VERIFY, app_secret=APP_SECRET,
                       handler=runner.on_events)  # fmt: skip
    server = TestServer(app)
    await server.start_server()
    simulator.webhook_url = str(server.make_url("/wh"))
    task = asyncio.create_task(runner.run())
    try:
        yield Chat(simulator, runner, store, db)
    finally:
        await runner.stop()
        await task
        await client.close()
        await server.close()
        await simulator.stop()
        await db.close()


async def test_a_chat_books_the_first_slot(chat: Chat) -> None:
    await chat.says(ANA, "Hola")
    await chat.sees(ANA, "pedir una cita")
    await chat.says(ANA, "1")
    await chat.sees(ANA, "medicina general")
    await chat.says(ANA, "1")
    await chat.sees(ANA, "Tenemos disponible")
    await chat.says(ANA, "1")
    await chat.sees(ANA, "quedó asignada")
    conv = await chat.store.conversation(ANA)
    assert conv is not None and (conv.state, conv.outcome) == ("closed", "booked")
    pending = await DbSlotSource(chat.db, timeout=TEST_DB_TIMEOUT_S).pending_for("1010101010")
    assert len(pending) == 1
    assert conv.journey_id  # a chat that opens without a call is its own journey


async def test_an_unknown_number_is_asked_its_document(chat: Chat) -> None:
    await chat.says(STRANGER, "Hola")
    await chat.sees(STRANGER, "documento")
    await chat.says(STRANGER, "1.010.101.010")  # Ana's, with separators
    await chat.sees(STRANGER, "pedir una cita")


@pytest.mark.parametrize("words", ["asesor", "quiero hablar con un asesor"])
async def test_asesor_hands_off_and_the_bot_goes_silent(chat: Chat, words: str) -> None:
    await chat.says(ANA, "Hola")
    await chat.sees(ANA, "pedir una cita")
    await chat.says(ANA, words)
    await chat.sees(ANA, "una persona le responderá")
    (handoff,) = await chat.store.open_handoffs()
    assert handoff.reason == "asked" and handoff.wa_id == ANA
    before = len(chat.simulator.messages_to(ANA))
    await chat.says(ANA, "¿hay alguien?")
    await eventually(lambda: chat.runner._workers.get(ANA) is None, within=5)
    conv = await chat.store.conversation(ANA)
    assert conv is not None and conv.state == "agent"
    assert len(chat.simulator.messages_to(ANA)) == before


# Seen in the review of issue 10: "asesor" as the first message of a conversation
# (a new contact, or one whose conversation went idle) got the main menu, not a person.
@pytest.mark.parametrize(
    ("contact", "words"),
    [(ANA, "asesor"), (ANA, "quiero hablar con un asesor"), (STRANGER, "asesor")],
)
async def test_asesor_as_the_first_message_hands_off(chat: Chat, contact: str, words: str) -> None:
    await chat.says(contact, words)
    await chat.sees(contact, "una persona le responderá")
    (handoff,) = await chat.store.open_handoffs()
    assert handoff.reason == "asked" and handoff.wa_id == contact


@pytest.mark.parametrize("words", ["menú", "0"])
async def test_menu_goes_back_to_the_main_menu_from_anywhere(chat: Chat, words: str) -> None:
    await chat.says(ANA, "Hola")
    await chat.sees(ANA, "pedir una cita")
    await chat.says(ANA, "1")
    await chat.sees(ANA, "medicina general")
    count = sum("pedir una cita" in shown(m) for m in chat.simulator.messages_to(ANA))
    await chat.says(ANA, words)
    await eventually(
        lambda: sum("pedir una cita" in shown(m) for m in chat.simulator.messages_to(ANA)) > count,
        within=10,
    )
    assert await chat.node(ANA) == "main_menu"


async def test_media_gets_a_polite_text_and_the_same_question(chat: Chat) -> None:
    await chat.says(ANA, "Hola")
    question = await chat.sees(ANA, "pedir una cita")
    await chat.simulator.send_media(ANA, "sticker")
    polite = await chat.sees(ANA, "solo podemos leer")
    await eventually(lambda: chat.simulator.messages_to(ANA)[-1].index > polite.index, within=10)
    again = chat.simulator.messages_to(ANA)[-1]
    assert (again.type, again.text) == (question.type, question.text)
    assert await chat.node(ANA) == "main_menu"


async def test_a_chat_opened_with_a_call_s_reference_offers_slots_at_once(chat: Chat) -> None:
    records = CallRecordStore(chat.db)
    record = await records.open(
        channel_id="c1", flow="citas", sip_call_id=None, caller_number="+" + ANA
    )
    record.variables.update({
        "affiliate_id": "1010101010", "site_id": "norte", "plan": "PBS", "age": 30,
        "service_key": "1", "service": "mg_primera", "cups": "890201", "specialty": "general",
        "segment": "target", "eligibility_route": "target_digital", "agent_vdn": "5550001",
        "chat_ref": "K7Q2M", "chat_ref_to": "+" + ANA,
    })  # fmt: skip
    await records.close(record, outcome="redirected_whatsapp", reason="hangup")

    await chat.says(ANA, "Hola, quiero agendar una cita médica (ref. K7Q2M)")
    await chat.sees(ANA, "Tenemos disponible")
    conv = await chat.store.conversation(ANA)
    assert conv is not None and conv.journey_id == record.id
    assert "main_menu" not in conv.variables["chat_path"]
    await chat.says(ANA, "1")
    await chat.sees(ANA, "quedó asignada")


async def test_another_number_with_the_reference_starts_from_the_beginning(chat: Chat) -> None:
    records = CallRecordStore(chat.db)
    record = await records.open(channel_id="c2", flow="citas", sip_call_id=None, caller_number=None)
    record.variables.update({"affiliate_id": "1010101010", "chat_ref": "M3N4P",
                             "chat_ref_to": "+" + ANA})  # fmt: skip
    await records.close(record, outcome="redirected_whatsapp", reason="hangup")
    await chat.says(STRANGER, "Hola (ref. M3N4P)")
    await chat.sees(STRANGER, "documento")
    conv = await chat.store.conversation(STRANGER)
    assert conv is not None and conv.journey_id != record.id


async def test_outside_the_24_hour_window_only_the_template_is_sent(chat: Chat) -> None:
    await chat.says(ANA, "Hola")
    await chat.sees(ANA, "pedir una cita")
    conv = await chat.store.conversation(ANA)
    assert conv is not None
    async with chat.db.sessions.begin() as session:
        await session.execute(
            update(ConversationRow)
            .where(ConversationRow.wa_id == ANA)
            .values(last_inbound_at=datetime.now(UTC) - timedelta(hours=25))
        )
    await chat.store.queue_outbound(conv, "late-1", {"messaging_product": "whatsapp", "to": ANA,
                                    "type": "text", "text": {"body": "tarde"}})  # fmt: skip
    chat.runner._wake.set()
    await eventually(lambda: chat.simulator.messages_to(ANA)[-1].type == "template", within=10)
    assert chat.simulator.messages_to(ANA)[-1].payload["template"]["name"] == "citas_retomar"
