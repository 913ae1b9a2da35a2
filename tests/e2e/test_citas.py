"""The citas line end to end: sipp callers through the real Asterisk and controller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.store import Database
from tests.e2e.conftest import ControllerProcess, Sandbox, ok

pytestmark = pytest.mark.e2e


def path_kinds(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in record["path"] if s["kind"] == kind]


def bookings_for_call(sandbox: Sandbox, record_id: str) -> int:
    from sqlalchemy import text

    async def count() -> int:
        db = Database(sandbox.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                result = await conn.execute(
                    text("SELECT count(*) FROM bookings WHERE call_id = :c"), {"c": record_id}
                )
                return int(result.scalar_one())
        finally:
            await db.close()

    return asyncio.run(count())


def test_target_caller_books_the_first_slot(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("target-booked"))["records"]
    assert record["variables"]["booking_id"]
    assert bookings_for_call(sandbox, record["id"]) == 1
    offer = next(
        s for s in path_kinds(record, "prompt") if "sound:citas/slot_offer_intro" in s["media"]
    )
    media = offer["media"]
    # Date, time, doctor and site are read with Asterisk's Spanish sounds and our prompts.
    assert any(m.startswith("sound:digits/mon-") for m in media)
    assert any(m.startswith("sound:citas/doctor_") for m in media)
    assert "sound:citas/site_norte" in media
    # Hidden variables are recorded with their reasons, never spoken.
    assert record["variables"]["eligibility_reasons"] == []
    assert not any("890201" in m for s in path_kinds(record, "prompt") for m in s["media"])


def test_target_without_slots_gets_whatsapp_sms_once(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = ok(sandbox.call("target-no-slots"))
    (sms,) = report["sms"]
    assert sms["status"] == "sent" and sms["gateway_lines"] == 1 and sms["attempts"] == 1
    assert "https://wa.me/" in sms["text"] and "text=" in sms["text"]


def test_non_target_declines_and_reaches_agent_with_context(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = ok(sandbox.call("non-target-agent"))
    (record,) = report["records"]
    assert record["variables"]["eligibility_reasons"] == ["age_out_of_band:70"]
    assert report["agent_headers"]["X-Citas-Call-Id"].startswith(report["call_id_prefix"])
    transfer = path_kinds(record, "transfer")[0]
    assert transfer == {**transfer, "vdn": "5550001", "reason": "non-target"}


def test_invalid_and_silent_input_end_with_an_agent(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = ok(sandbox.call("invalid-input-agent"))
    (record,) = report["records"]
    attempts = [(s["digits"], s["ended_by"]) for s in path_kinds(record, "digits")]
    assert attempts[0] == ("12", "terminator")  # too short: fewer than 5 digits
    assert [e for _, e in attempts[1:]] == ["no_input", "no_input"]
    assert path_kinds(record, "prompt")[-1]["media"] == ["sound:citas/max_retries_agent"]


def test_document_typed_with_sip_info_is_masked_in_the_record(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("document-booked"))["records"]
    typed = path_kinds(record, "digits")[0]
    assert typed["digits"] == "*******010" and typed["ended_by"] == "terminator"
    assert "1010101010" not in str(record["path"])


def test_hangup_midflow_closes_record_without_booking(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("hangup-midflow"))["records"]
    assert record["end_reason"] == "caller_hangup"
    assert "booking_id" not in record["variables"]
    assert bookings_for_call(sandbox, record["id"]) == 0


def test_two_callers_race_for_the_last_slot(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    records = ok(sandbox.call("race-last-slot"))["records"]
    winner = next(r for r in records if r["outcome"] == "booked")
    loser = next(r for r in records if r["outcome"] == "redirected_whatsapp")
    assert winner["variables"]["slot_id"] == loser["variables"]["offered_ids"][0]
    assert any(s.get("outcome") == "taken" for s in path_kinds(loser, "action"))
    assert bookings_for_call(sandbox, winner["id"]) == 1
    assert bookings_for_call(sandbox, loser["id"]) == 0


def test_next_slot_and_time_band_change_then_book(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("target-change-band"))["records"]
    offered = record["variables"]["offered_ids"]
    assert len(offered) == 3 and len(set(offered)) == 3  # never the same slot twice
    assert record["variables"]["slot_id"] == offered[-1]
    assert (
        "T14:" in record["variables"]["slot_starts_at"]
        or "T15:" in record["variables"]["slot_starts_at"]
    )
    assert bookings_for_call(sandbox, record["id"]) == 1


# --- A patient's own appointments (issue 9, section 3) ------------------------------
ANA = "1010101010"  # caller ID 3001234567 in config/citas/affiliates.yaml


def bookings_of(sandbox: Sandbox, affiliate_id: str) -> list[tuple[str, str]]:
    """(slot id, call id) of every booking the patient holds in the sandbox database."""
    from ivr.booking.db import DbSlotSource

    async def fetch() -> list[tuple[str, str]]:
        db = Database(sandbox.settings.database_url)
        try:
            bookings = await DbSlotSource(db, timeout=5).bookings_for(affiliate_id)
            return [(b.slot.id, str(b.call_id)) for b in bookings]
        finally:
            await db.close()

    return asyncio.run(fetch())


def heard(record: dict[str, Any]) -> list[str]:
    return [m for s in path_kinds(record, "prompt") for m in s["media"]]


@pytest.mark.timeout(240)  # two calls of about 35 s each, one after the other
def test_observed_same_affiliate_by_caller_id_then_document_is_not_booked_twice(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    """The observation: two calls of one affiliate booked her twice at the same time
    with two doctors. Now the second call hears the appointment she has."""
    (first,) = ok(sandbox.call("target-booked"))["records"]
    held = bookings_of(sandbox, ANA)
    assert held == [(first["variables"]["slot_id"], first["id"])]

    (second,) = ok(sandbox.call("patient-overlap-document"))["records"]
    offered = second["variables"]["slot_id"]
    assert offered != held[0][0]
    assert offered[-12:] == held[0][0][-12:]  # the same date and time (slot ids end with it)
    assert "booking_id" not in second["variables"]
    assert second["variables"]["appointment_media"] == first["variables"]["slot_media"]
    assert "sound:citas/has_appointment_booking" in heard(second)
    assert heard(second)[-1] == "sound:citas/goodbye"
    assert bookings_of(sandbox, ANA) == held


@pytest.mark.timeout(240)  # two calls of about 35 s each, one after the other
def test_same_service_again_hears_the_pending_appointment_at_the_search(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (first,) = ok(sandbox.call("target-booked"))["records"]

    (again,) = ok(sandbox.call("patient-has-appointment"))["records"]
    assert "offer_slot" not in [s.get("node") for s in again["path"] if s["kind"] == "node"]
    assert again["variables"]["appointment_id"] == first["variables"]["booking_id"]
    assert again["variables"]["appointment_media"] == first["variables"]["slot_media"]
    assert "sound:citas/has_appointment_service" in heard(again)
    assert bookings_of(sandbox, ANA) == [(first["variables"]["slot_id"], first["id"])]


def test_two_simultaneous_calls_of_one_affiliate_book_once(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    records = ok(sandbox.call("patient-double-call"))["records"]
    winner = next(r for r in records if r["outcome"] == "booked")
    other = next(r for r in records if r["outcome"] == "has_appointment")
    assert bookings_of(sandbox, ANA) == [(winner["variables"]["slot_id"], winner["id"])]
    assert other["variables"]["appointment_id"] == winner["variables"]["booking_id"]
    assert bookings_for_call(sandbox, other["id"]) == 0


# --- Phone numbers from the network (issue 9, section 2) -----------------------------
def sql_rows(sandbox: Sandbox, query: str, **params: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    async def fetch() -> list[tuple[Any, ...]]:
        db = Database(sandbox.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(query), params)]
        finally:
            await db.close()

    return asyncio.run(fetch())


def sms_queued(sandbox: Sandbox, record_id: str) -> list[str]:
    """The destinations of the SMS a call queued (its dedupe key is the record id)."""
    query = "SELECT to_number FROM sms_outbox WHERE dedupe_key = :k"
    return [str(r[0]) for r in sql_rows(sandbox, query, k=f"whatsapp:{record_id}")]


WHATSAPP_DIGITS = ["digits:300", "digits:111", "digits:2233"]  # config/citas/line.yaml


def test_withheld_caller_id_hears_the_whatsapp_number_and_gets_no_sms(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    # Issue 9 §2: "anonymous" got an SMS queued to `anonymous` and heard that it was coming.
    (record,) = ok(sandbox.call("withheld-no-sms"))["records"]
    assert sql_rows(
        sandbox, "SELECT caller_number FROM call_records WHERE id = :i", i=record["id"]
    ) == [("anonymous",)]  # Asterisk handed the withheld caller ID through as sent
    assert sms_queued(sandbox, record["id"]) == []
    assert sql_rows(sandbox, "SELECT id FROM sms_outbox WHERE to_number = 'anonymous'") == []
    heard = [m for s in path_kinds(record, "prompt") for m in s["media"]]
    assert "sound:citas/no_slots_whatsapp" not in heard  # never told an SMS is coming
    assert path_kinds(record, "prompt")[-1]["media"] == [
        "sound:citas/no_slots_whatsapp_number", *WHATSAPP_DIGITS,
        "sound:citas/whatsapp_number_again", *WHATSAPP_DIGITS, "sound:citas/goodbye",
    ]  # fmt: skip


def test_international_caller_id_is_found_and_texted_in_e164(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    # The directory says 3003333333; the network sends +573003333333.
    report = ok(sandbox.call("caller-id-international"))
    (record,) = report["records"]
    assert sql_rows(
        sandbox, "SELECT caller_number FROM call_records WHERE id = :i", i=record["id"]
    ) == [("+573003333333",)]
    assert sms_queued(sandbox, record["id"]) == ["+573003333333"]
    (sms,) = report["sms"]
    assert "https://wa.me/573001112233?text=" in sms["text"]


def test_fixed_line_is_found_by_caller_id_and_never_texted(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("fixed-line-no-sms"))["records"]
    assert record["variables"]["affiliate_id"] == "1212121212"
    assert sms_queued(sandbox, record["id"]) == []
    assert path_kinds(record, "prompt")[-1]["media"][1:4] == WHATSAPP_DIGITS
