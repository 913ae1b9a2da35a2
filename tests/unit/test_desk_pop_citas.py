"""The citas screen pop (ivr.citas.desk.CitasPopSource) over real stores on SQLite and
PostgreSQL: the call record the transfer wrote, the booking's appointments, the open case,
the chat of the same journey; everything in words and masked."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Slot
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.desk import (
    PENDING_PATH,
    TRANSFER_REASONS,
    CitasPopSource,
    ConversationHistory,
    eligibility_words,
    path_words,
)
from ivr.citas.reference import CITAS_DIR, load_reference
from ivr.controller import load_all_flows
from ivr.desk.pop import CallKeys, ChatKeys
from ivr.flow.model import chat_text
from ivr.prompts import load_prompt_texts
from ivr.settings import Settings
from ivr.store.db import Database
from ivr.store.records import CallRecordStore
from tests.unit.cases_office import MONDAY, WA, office_on
from tests.unit.databases import TEST_DB_TIMEOUT_S

BRUNO = "2020202020"  # 70 years old: non-target by age (config/citas/affiliates.yaml)
BRUNO_PHONE = "+573002222222"


def source_on(db: Database, *, chats: bool = True) -> tuple[CitasPopSource, CallRecordStore, DbSlotSource]:
    reference = load_reference()
    records = CallRecordStore(db)
    slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S)
    office = office_on(db)
    texts = load_prompt_texts(Settings().prompts_file)
    flow = load_all_flows()["citas"]
    source = CitasPopSource(
        reference, YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", MONDAY.date()),
        records, appointments=slots, cases=office.cases,
        chats=ConversationHistory(db, ZoneInfo("America/Bogota")) if chats else None,
        flow=flow, title=lambda pid: chat_text(texts[pid]),
    )  # fmt: skip
    return source, records, slots


async def transferred_call(records: CallRecordStore, sip_call_id: str = "sip-1") -> str:
    record = await records.open(channel_id="ch-1", flow="citas", sip_call_id=sip_call_id,
                                caller_number=BRUNO_PHONE)  # fmt: skip
    record.step("digits", node="main_menu", attempt=1, digits="1", ended_by="max_digits")
    record.step("digits", node="ask_service", attempt=1, digits="1", ended_by="max_digits")
    record.step("action", action="evaluate_eligibility", outcome="non_target", next="x")
    record.step("digits", node="offer_slot", attempt=1, digits="0", ended_by="max_digits")
    record.step("transfer", vdn="5550002", reason="non-target")
    record.variables.update({
        "affiliate_id": BRUNO, "segment": "non_target", "service": "mg_first",
        "specialty": "general", "cups": "890201", "age": 70,
        "eligibility_reasons": ["age_out_of_band:70"],
    })  # fmt: skip
    await record.checkpoint()
    return record.id


def keys(sip_call_id: str | None = "sip-1", **variables: str) -> CallKeys:
    return CallKeys(
        uniqueid="1700000000.1", sip_call_id=sip_call_id, caller_number=BRUNO_PHONE,
        variables={"CITAS_SEGMENT": "non_target", "CITAS_REASON": "non-target",
                   "CITAS_AFFILIATE": BRUNO, "CITAS_CUPS": "890201", **variables},
    )  # fmt: skip


async def test_the_pop_of_a_transferred_non_target_call(db: Database) -> None:
    source, records, slots = source_on(db)
    record_id = await transferred_call(records)
    start = MONDAY + timedelta(days=3)
    await slots.seed_slots([Slot("s1", "norte", "d1", "890201", start, "morning")])
    await slots.book("s1", affiliate_id=BRUNO, call_id=None)
    office = office_on(db)
    await office.file(BRUNO)

    details = await source.for_call(keys())

    assert details.pending == [] and details.call_record_id == record_id
    assert details.caller["name"] == "Bruno"
    assert details.caller["document"] == "*******020" and details.caller["phone"] == "+*********222"
    assert details.segment == {"code": "non_target", "label": "Población no objetivo"}
    assert details.ivr_reason == TRANSFER_REASONS["non-target"]
    assert details.reasons == [TRANSFER_REASONS["non-target"], "Edad fuera de la franja: 70 años"]
    assert details.path == [
        "Menú principal: 1 — Pedir una cita",
        "Servicio: 1 — Medicina general 1.ª vez",
        "Evaluado: población no objetivo",
        "Cupo ofrecido: 0 — Ninguna",
        f"Transferido: {TRANSFER_REASONS['non-target']}",
    ]
    [appointment] = details.appointments
    assert appointment["state"] == "pendiente" and appointment["when"].startswith("2026-12-03")
    assert details.open_case is not None and details.open_case["state"] == "abierto"
    stored = json.dumps(details.as_json(), ensure_ascii=False)
    assert BRUNO not in stored and "3002222222" not in stored  # masked everywhere


async def test_the_chat_of_the_same_journey_is_in_the_call_pop(db: Database) -> None:
    source, records, _ = source_on(db)
    record_id = await transferred_call(records)
    office = office_on(db)
    await office.writes(WA)
    async with office.chats.turn(WA) as turn:
        turn.conversation.journey_id = record_id
        turn.queue_outbound("k1", {"type": "text", "text": {"body": "Hola, soy Lina."}})
    details = await source.for_call(keys())
    assert [(m["from"], m["text"]) for m in details.chat] == [("persona", "hola"), ("Lina", "Hola, soy Lina.")]


async def test_a_record_not_written_yet_leaves_the_path_pending(db: Database) -> None:
    source, _, _ = source_on(db)
    details = await source.for_call(keys("sip-not-yet"))
    assert details.pending == [PENDING_PATH] and details.path == []
    # What the channel variables say is shown at once.
    assert details.segment["code"] == "non_target" and details.caller["name"] == "Bruno"
    assert details.ivr_reason == TRANSFER_REASONS["non-target"]


async def test_a_call_that_never_went_through_the_ivr(db: Database) -> None:
    source, _, _ = source_on(db)
    details = await source.for_call(CallKeys("1.2", None, {}, None))
    assert details.segment == {"code": "unknown", "label": "Sin clasificar (no se evaluó)"}
    assert details.caller == {"name": None, "document": "-", "phone": "-"}
    assert details.pending == [PENDING_PATH]


async def test_the_pop_of_a_chat_hand_off(db: Database) -> None:
    source, _, _ = source_on(db)
    office = office_on(db)
    await office.writes(WA)
    conversation = await office.chats.conversation(WA)
    assert conversation is not None
    details = await source.for_chat(ChatKeys(
        conversation.id, WA, None, "non-target",
        {"segment": "non_target", "affiliate_id": BRUNO, "eligibility_reasons": ["age_out_of_band:70"]},
    ))  # fmt: skip
    assert details.caller["name"] == "Bruno" and details.caller["phone"] == "+*********567"
    assert details.facts[0] == {"label": "Canal", "value": "WhatsApp (Lina)"}
    assert details.reasons[1] == "Edad fuera de la franja: 70 años"
    assert [m["text"] for m in details.chat] == ["hola"]


@pytest.mark.parametrize(("reason", "words"), [
    ("age_out_of_band:9", "Edad fuera de la franja: 9 años"),
    ("risk_marking:gestante", "Marcación de riesgo: gestante"),
    ("cups_not_in_scope:890301", "Servicio (CUPS 890301) fuera del alcance"),
    ("plan_not_in_scope:PAC", "Plan fuera del alcance: PAC"),
    ("site_phone_booking_closed", "Su sede ya no agenda por teléfono (migración a canales digitales)"),
])  # fmt: skip
def test_every_eligibility_reason_has_words(reason: str, words: str) -> None:
    assert eligibility_words(reason) == words


def test_every_transfer_reason_of_the_flow_has_words() -> None:
    from ivr.flow.nodes.transfer import TransferNode

    for flow in load_all_flows().values():
        for node in flow.nodes.values():
            if isinstance(node, TransferNode):
                assert node.reason in TRANSFER_REASONS, (flow.name, node.id)


def test_every_menu_of_the_flow_has_a_name_and_every_key_a_title() -> None:
    from ivr.citas.desk import MENUS
    from ivr.flow.nodes.menu import MenuNode

    flow = load_all_flows()["citas"]
    texts = load_prompt_texts(Settings().prompts_file)
    for node in flow.nodes.values():
        if isinstance(node, MenuNode):
            assert node.id in MENUS, node.id
            for key in node.options:
                [line] = path_words([{"kind": "digits", "node": node.id, "digits": key}], flow,
                                    lambda pid: chat_text(texts[pid]))  # fmt: skip
                assert line.startswith(f"{MENUS[node.id]}: {key}")


@pytest.mark.parametrize(("step", "line"), [
    ({"kind": "digits", "node": "main_menu", "digits": ""}, "Menú principal: sin respuesta"),
    ({"kind": "digits", "node": "main_menu", "digits": "9"}, "Menú principal: opción no válida (9)"),
    ({"kind": "digits", "node": "ask_document", "digits": "1010101010"}, "Digitó su documento: *******010"),
    ({"kind": "digits", "node": "ask_document", "digits": ""}, "No digitó su documento"),
    ({"kind": "max_retries", "node": "main_menu"}, "Menú principal: agotó los intentos"),
    ({"kind": "prompt", "media": ["sound:x"]}, None),
    ({"kind": "caller_hangup"}, "Colgó"),
])  # fmt: skip
def test_path_steps_in_words(step: dict[str, str], line: str | None) -> None:
    flow = load_all_flows()["citas"]
    assert path_words([step], flow, str) == ([line] if line else [])
