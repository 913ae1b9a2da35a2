"""Surveys end to end (issue 11 §4): a sipp call through the real Asterisk ends with
the keypad survey when operations switch ``call_survey`` on, and its rating is
stored against the call; a closed case's survey reaches the contact through the
sandbox's WhatsApp simulator and the contact's replies ("9", then a comment) are
stored, without moving the assistant's flow."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ControllerProcess, Sandbox, ok, wait_until
from tests.e2e.ops_peers import OpsApi, create_token
from tests.e2e.test_chat import fresh, sql

pytestmark = pytest.mark.e2e

FLAG = "call_survey"


@pytest.fixture
def survey_on(sandbox: Sandbox, controller: ControllerProcess) -> Iterator[OpsApi]:
    """The ``call_survey`` flag switched on through the ops API (as an operator
    would), applied by the controller; back to its default afterwards."""
    api = OpsApi(sandbox.settings.ports.ops_http, create_token(sandbox.env, "e2e-surveys", "admin"))
    before = api.metric("citas_flags_revision")
    api.ok("PUT", f"/api/flags/{FLAG}", {"value": True, "reason": "e2e: keypad survey"})
    wait_until(lambda: api.metric("citas_flags_revision") > before, 5, "the flag to apply")
    try:
        yield api
    finally:
        api.ok("DELETE", f"/api/flags/{FLAG}", {"reason": "e2e: back to default"})


def test_a_booked_call_ends_with_the_keypad_survey_and_its_rating_is_stored(
    sandbox: Sandbox, survey_on: OpsApi
) -> None:
    (record,) = ok(sandbox.call("survey-after-booking"))["records"]
    assert record["outcome"] == "booked"
    rows = sql(
        sandbox,
        "SELECT kind, channel, state, rating, journey_id FROM surveys WHERE call_id = :c",
        c=record["id"],
    )
    assert rows == [("call", "voice", "answered", 9, record["id"])]


# --- after a closed case, on WhatsApp ------------------------------------------------------
def simulator(sandbox: Sandbox, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{sandbox.settings.ports.whatsapp_sim}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def texts_to(sandbox: Sandbox, wa_id: str) -> list[str]:
    found = simulator(sandbox, f"/_simulator/messages?to={wa_id}")["messages"]
    return [
        str(m["payload"].get("text", {}).get("body", ""))
        or str(m["payload"].get("interactive", {}).get("body", {}).get("text", ""))
        for m in found
    ]


def wait_for_text(sandbox: Sandbox, wa_id: str, words: str, after: int, within: float = 30) -> int:
    """Wait for a message to ``wa_id`` past the first ``after`` that contains ``words``;
    returns how many messages there are then."""
    seen: list[str] = []

    def arrived() -> bool:
        seen[:] = texts_to(sandbox, wa_id)
        return any(words in t for t in seen[after:])

    try:
        wait_until(arrived, within, f"{words!r} on WhatsApp")
    except AssertionError:
        raise AssertionError(f"{words!r} never came; messages: {seen}") from None
    return len(seen)


def say(sandbox: Sandbox, wa_id: str, text: str) -> None:
    simulator(sandbox, "/_simulator/inbound", {"from": wa_id, "text": text})


def close_a_case_of(sandbox: Sandbox, wa_id: str) -> str:
    """File and close a case in the sandbox's database, as the filing and back-office
    parts do (their own e2e tests drive those through the phone and the console);
    returns its number."""
    import asyncio
    import uuid
    from datetime import UTC, datetime

    from ivr.cases.config import load_cases_config
    from ivr.cases.model import Actor, NewCase
    from ivr.cases.store import CaseStore
    from ivr.store import Database

    async def go() -> str:
        db = Database(sandbox.settings.database_url)
        config = load_cases_config()
        cases = CaseStore(db, config.calendar_for, config)
        try:
            now = datetime.now(UTC).isoformat()
            case = await cases.file(
                NewCase(
                    affiliate_id=f"e2e-{uuid.uuid4().hex[:8]}", specialty="general",
                    service_id="mg_first", cups="890201", site_id="norte", channel="chat",
                    summary="Cita de medicina general; no hay cupos.",
                    journey_id=str(uuid.uuid4()), contact_email="paciente@example.org",
                    contact_phone=f"+{wa_id}", consent=True, wa_id=wa_id,
                    search_evidence=[
                        {"time_band": "morning", "exclude_doctor_id": None, "found": 0, "at": now},
                        {"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0, "at": now},
                    ],
                )
            )  # fmt: skip
            await cases.close(
                case.number, resolution="Cita asignada.", actor=Actor("e2e", "operator")
            )
            return case.number
        finally:
            await db.close()

    return asyncio.run(go())


def test_a_closed_case_s_survey_reaches_whatsapp_and_the_rating_and_comment_are_stored(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    wa_id = "573001234567"  # Ana, known by her number
    fresh(sandbox, wa_id)  # no booking, no conversation left by another test
    seen = len(texts_to(sandbox, wa_id))
    say(sandbox, wa_id, "hola")  # the contact writes: the 24-hour window is open
    seen = wait_for_text(sandbox, wa_id, "¿Qué desea hacer?", seen)  # the main menu
    say(sandbox, wa_id, "2")  # her appointments: listed, and the chat ends
    seen = wait_for_text(sandbox, wa_id, "citas pendientes", seen)
    (before,) = sql(sandbox, "SELECT state, node, version FROM conversations WHERE wa_id = :w",
                    w=wa_id)  # fmt: skip
    number = close_a_case_of(sandbox, wa_id)
    seen = wait_for_text(sandbox, wa_id, f"Su caso {number} fue cerrado", seen)
    say(sandbox, wa_id, "9")
    seen = wait_for_text(sandbox, wa_id, "¿Desea dejar un comentario?", seen)
    say(sandbox, wa_id, "Me atendieron muy rápido")
    wait_for_text(sandbox, wa_id, "Gracias por su opinión", seen)
    rows = sql(
        sandbox,
        "SELECT s.kind, s.channel, s.state, s.rating, s.comment FROM surveys s "
        "JOIN cases c ON c.id = s.case_id WHERE c.number = :n",
        n=number,
    )
    assert rows == [("case", "whatsapp", "answered", 9, "Me atendieron muy rápido")]
    # The replies were the survey's: they did not start the assistant's flow again.
    ((state, node, _),) = sql(
        sandbox, "SELECT state, node, version FROM conversations WHERE wa_id = :w", w=wa_id
    )
    assert (state, node) == (before[0], None)
