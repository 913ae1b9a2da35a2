"""Filing a case end to end (issue 11 §1 and §8): a sipp call through the real
Asterisk and controller finds no slot, the search changes band and doctor, the
caller files a case and hears its number; a second call for the same specialty
hears the open case; a chat through the WhatsApp simulator files one too. The
case row is read from the sandbox's database."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from ivr.cases.model import Case
from ivr.cases.number import is_valid
from ivr.cases.setup import case_store
from ivr.store import Database
from tests.e2e.conftest import ControllerProcess, Sandbox, ok

pytestmark = pytest.mark.e2e

LUCIA, MATEO, NORA = "1313131313", "1414141414", "1515151515"  # config/citas/affiliates.yaml


def open_case(sandbox: Sandbox, affiliate_id: str) -> Case:
    async def read() -> Case | None:
        db = Database(sandbox.settings.database_url)
        try:
            return await case_store(sandbox.settings, db).open_for(affiliate_id, "general")
        finally:
            await db.close()

    case = asyncio.run(read())
    assert case is not None, f"no open case for {affiliate_id}"
    return case


def assert_filed_right(case: Case, channel: str) -> None:
    assert is_valid(case.number) and len(case.number) == 7
    assert case.channel == channel and case.consent and case.state == "open"
    assert (case.specialty, case.cups, case.site_id) == ("general", "890201", "sur")
    # The search tried each time band with any doctor and found nothing.
    tried = {(e["time_band"], e["exclude_doctor_id"], e["found"]) for e in case.search_evidence}
    assert {("morning", None, 0), ("afternoon", None, 0)} <= tried
    # Due at the end of the 5th business day after filing, in Bogotá's calendar.
    assert case.due_at > case.filed_at
    assert 5 <= (case.due_at - case.filed_at).days <= 12  # weekends and holidays between


def spoken_number(record: dict[str, Any], number: str) -> int:
    media = [m for s in record["path"] if s["kind"] == "prompt" for m in s["media"]]
    return media.count(f"digits:{number[:3]}") + media.count(f"digits:{number[3:]}")


@pytest.mark.timeout(300)  # two calls one after the other: about 60 s and 35 s, slower under load
def test_a_call_files_a_case_and_a_second_call_hears_it(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = ok(sandbox.call("case-filed"))
    (record,) = report["records"]
    case = open_case(sandbox, LUCIA)
    assert_filed_right(case, "voice")
    assert record["variables"]["case_number"] == case.number
    assert (case.call_id, case.journey_id) == (record["id"], record["id"])
    assert case.contact_email == "lucia@example.org"
    assert spoken_number(record, case.number) == 4  # two groups, said twice
    (sms,) = report["sms"]
    assert case.number in sms["text"] and sms["status"] == "sent"

    again = ok(sandbox.call("case-open"))
    (second,) = again["records"]
    assert second["variables"]["case_number"] == case.number
    assert datetime.fromisoformat(second["variables"]["case_due_at"]) == case.due_at
    assert spoken_number(second, case.number) == 4
    assert open_case(sandbox, LUCIA).id == case.id  # still the one case


@pytest.mark.timeout(240)  # a chat of eleven turns through the simulator
def test_a_chat_files_a_case(sandbox: Sandbox, controller: ControllerProcess) -> None:
    report = sandbox.scenario("chat", "case-filed", timeout=180)
    assert report["ok"] and report["exit_code"] == 0, "\n".join(report["transcript"])
    case = open_case(sandbox, MATEO)
    assert_filed_right(case, "chat")
    assert case.contact_email == "mateo@example.org" and case.wa_id == "573001414141"
    assert case.journey_id == report["conversation"]["journey_id"]
    said = [line for line in report["transcript"] if line.lstrip().startswith("<")]
    assert any(case.number in line for line in said)  # the number, in the conversation


@pytest.mark.timeout(240)  # one call of about 70 s, slower under load
def test_a_caller_who_changed_band_and_doctor_and_declined_files_a_case(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    """The issue's path word for word: the caller changes the time band (3) and the
    doctor (4) herself, declines (0), then files; the evidence is her own searches."""
    report = ok(sandbox.call("case-after-changes"))
    (record,) = report["records"]
    case = open_case(sandbox, NORA)
    assert is_valid(case.number) and case.channel == "voice" and case.consent
    assert (case.specialty, case.site_id, case.contact_email) == ("general", "norte", None)
    assert case.contact_phone == "+573001515151"
    bands = {e["time_band"] for e in case.search_evidence}
    doctors = {e["exclude_doctor_id"] for e in case.search_evidence} - {None}
    assert "afternoon" in bands and doctors, case.search_evidence  # her own changes
    assert record["variables"]["case_number"] == case.number
    assert spoken_number(record, case.number) == 4
    (sms,) = report["sms"]
    assert case.number in sms["text"]
