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
