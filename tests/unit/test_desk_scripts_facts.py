"""Where a voice contact's script opens, from the call's record (the citas line's
facts source, ``ivr.citas.script_facts``) on a real database (SQLite, and
PostgreSQL when CITAS_TEST_PG_URL is set).

The kind of fault: the script opens at the call types (or elsewhere) although the
call's record says why the IVR sent the caller. Over its range: every transfer
reason and eligibility reason of the flow, a main-menu choice, a record with no
transfer, a chat contact, an unknown call, the pop's own codes winning.
"""

from __future__ import annotations

import doctest
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import ivr.citas.script_facts
from ivr.citas.script_facts import CallRecordFacts
from ivr.desk.config import load_desk_config
from ivr.desk.model import VOICE, NewContact
from ivr.desk.script_runner import ScriptRunner
from ivr.desk.scripts import validate_tree
from ivr.desk.scripts_http import default_tree
from ivr.desk.store import DeskStore, ScriptStore
from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from ivr.store.records import CallRecordStore

CITAS = Path(__file__).resolve().parents[2] / "config" / "citas"
T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
async def runner(db: Database) -> ScriptRunner:
    scripts = ScriptStore(db, validate_tree)
    tree = default_tree(CITAS / "scripts.yaml")
    assert tree is not None and await scripts.seed(tree) is not None
    return ScriptRunner(DeskStore(db), scripts, load_desk_config(CITAS / "desk.yaml"),
                        CallRecordFacts(CallRecordStore(db)))  # fmt: skip


async def record(db: Database, sip_call_id: str, variables: dict[str, Any], path: list[dict[str, Any]]) -> None:
    async with db.sessions.begin() as session:
        session.add(CallRecordRow(
            id=str(uuid.uuid4()), channel_id=f"chan-{sip_call_id}", sip_call_id=sip_call_id, flow="citas",
            caller_number="3001234567", started_at=T0, ended_at=None, outcome="transferred",
            end_reason=None, steps=len(path), path=path, variables=variables,
        ))  # fmt: skip


async def open_at(runner: ScriptRunner, sip_call_id: str | None, context: dict[str, Any] | None = None) -> str:
    key = sip_call_id or str(uuid.uuid4())
    contact = await runner.desk.open_contact(NewContact(
        kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="general", level=1, area="recepcion",
        journey_key=key, answered_at=T0, sip_call_id=sip_call_id, context=context or {}, source_key=f"{key}/7001",
    ))  # fmt: skip
    return (await runner.start(contact.id, "ana")).node.id


def transfer(reason: str) -> list[dict[str, Any]]:
    return [{"kind": "node", "node": "main_menu"}, {"kind": "digits", "node": "main_menu", "digits": "1"},
            {"kind": "transfer", "vdn": "5550001", "reason": reason}]  # fmt: skip


CASES = [  # (variables, transfer reason, where the default tree opens)
    ({"segment": "non_target", "eligibility_reasons": ["age_out_of_band:70"]}, "non-target", "agendamiento/no_objetivo/edad/saludo"),
    ({"segment": "non_target", "eligibility_reasons": ["risk_marking:gestante"]}, "non-target", "agendamiento/no_objetivo/riesgo/saludo"),
    ({"segment": "non_target", "eligibility_reasons": ["plan_not_in_scope:PAC"]}, "non-target", "agendamiento/no_objetivo/plan/saludo"),
    ({"segment": "non_target", "eligibility_reasons": ["cups_not_in_scope:99"]}, "non-target", "agendamiento/no_objetivo/servicio/saludo"),
    ({"segment": "target", "eligibility_reasons": ["site_phone_booking_closed"]}, "redirect-off", "agendamiento/sede_cerrada/migracion_digital/saludo"),
    ({"segment": "target", "main_choice": "1"}, "redirect-off", "agendamiento/no_pudo_agendar/sin_cupo/saludo"),
    ({}, "invalid-input", "agendamiento/no_pudo_agendar/no_marco/saludo"),
    ({"main_choice": "3"}, "self-service-off", "agendamiento/cancelar_reprogramar/cancelar/saludo"),
    ({"main_choice": "2"}, "self-service-off", "informacion/consulta_citas/mis_citas/saludo"),
    ({}, "service-unavailable", "incidente/falla_agenda/agenda_caida/saludo"),
    ({}, "incident", "incidente/falla_linea/general/saludo"),
    ({}, "self-service-off", "agendamiento/no_pudo_agendar/autoservicio_suspendido/saludo"),
    ({"segment": "target"}, "ivr-unavailable", "inicio"),
]  # fmt: skip


@pytest.mark.parametrize(("variables", "reason", "node"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
async def test_the_script_opens_where_the_calls_record_says(
    runner: ScriptRunner, db: Database, variables: dict[str, Any], reason: str, node: str,
) -> None:  # fmt: skip
    sip = f"{uuid.uuid4()}@127.0.0.1"
    await record(db, sip, variables, transfer(reason))
    assert await open_at(runner, sip) == node


async def test_no_record_no_call_id_or_no_transfer_opens_at_the_call_types(runner: ScriptRunner, db: Database) -> None:
    assert await open_at(runner, None) == "inicio"  # a chat
    assert await open_at(runner, "nadie@127.0.0.1") == "inicio"
    await record(db, "sin-transfer@127.0.0.1", {"segment": "target"}, [{"kind": "node", "node": "main_menu"}])
    assert await open_at(runner, "sin-transfer@127.0.0.1") == "inicio"


async def test_the_pops_own_codes_win_over_the_record(runner: ScriptRunner, db: Database) -> None:
    sip = "pop@127.0.0.1"
    await record(db, sip, {"segment": "non_target", "eligibility_reasons": ["age_out_of_band:70"]}, transfer("non-target"))
    assert await open_at(runner, sip, {"ivr": {"reason": "incident"}}) == "incidente/falla_linea/general/saludo"


def test_the_modules_examples_run() -> None:
    result = doctest.testmod(ivr.citas.script_facts)
    assert result.failed == 0 and result.attempted >= 1
