"""From the call to the chat (issue 10 §5): the SMS link's prefilled text carries
a short reference of the call, and a chat that quotes it, from the number the SMS
went to and before it expires, finds the call's decisions (``ivr.chat.callref``)."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.chat.callref import (
    ALPHABET,
    CARRIED,
    LENGTH,
    REFERENCE_TTL,
    find_reference,
    new_reference,
    resolve_reference,
)
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.reference import load_line
from ivr.settings import REPO_ROOT
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from ivr.store.records import CallRecordStore
from ivr.yamlsrc import ConfigError
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_phone_boundaries import TODAY, actions, directory_file, state

LINE = REPO_ROOT / "config" / "citas" / "line.yaml"
codes = st.text(alphabet=ALPHABET, min_size=LENGTH, max_size=LENGTH)


def test_a_new_reference_is_five_characters_without_look_alikes() -> None:
    seen = {new_reference() for _ in range(200)}
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) for c in seen)
    assert not set("01OIL") & set(ALPHABET)
    assert len(seen) > 190  # random, not a counter or a constant


@given(code=codes)
def test_the_reference_is_found_in_the_configured_prefilled_text(code: str) -> None:
    prefilled = load_line(LINE).whatsapp_prefilled.format(ref=code)
    assert find_reference(prefilled) == code
    # WhatsApp users may retype it: any case, with or without the dot or a colon.
    assert find_reference(f"hola REF: {code.lower()}") == code
    assert find_reference(f"ref {code} gracias") == code


@pytest.mark.parametrize(
    "text",
    ["Hola", "ref. K7Q", "referencia", "ref. K7Q2M9", "mi ref es K7Q2M", "ref. K7Q0M", ""],
)
def test_text_without_a_well_formed_reference_has_none(text: str) -> None:
    assert find_reference(text) is None


def test_a_prefilled_text_with_another_placeholder_is_refused_at_load(tmp_path: Path) -> None:
    bad = LINE.read_text(encoding="utf-8").replace("(ref. {ref})", "(ref. {call})")
    path = tmp_path / "line.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_line(path)
    assert "whatsapp.prefilled_text" in str(err.value) and "line.yaml" in str(err.value)


@pytest.fixture
def outbox(db: Database) -> SmsOutbox:
    return SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)


async def sms_call(tmp_path: Path, outbox: SmsOutbox) -> tuple[CallRecordStore, str, str]:
    """A call identified by caller ID that ends with the WhatsApp SMS: (records, code, journey)."""
    directory = YamlAffiliateDirectory.load(directory_file(tmp_path, "3001234567"), TODAY)
    citas = actions(outbox, directory)
    call = state("+573001234567")
    assert await citas.identify_by_caller_id(call, {}) == "found"
    call.set("service_key", "1")
    assert await citas.select_service(call, {}) == "ok"
    await citas.evaluate_eligibility(call, {})
    assert await citas.send_whatsapp_sms(call, {}) == "queued"
    assert await citas.send_whatsapp_sms(call, {}) == "queued"  # the node again: same code
    records = CallRecordStore(outbox.db)
    record = await records.open(
        channel_id="c1", flow="citas", sip_call_id=None, caller_number="+573001234567"
    )
    record.variables.update(call.record.variables)
    await records.close(record, outcome="redirected_whatsapp", reason="hangup")
    (message,) = await outbox.list()
    link_text = urllib.parse.unquote(message.text.split("?text=", 1)[1])
    code = find_reference(link_text)
    assert code is not None and code == call.variables["chat_ref"]
    assert call.variables["chat_ref_to"] == "+573001234567"
    return records, code, record.id


async def test_the_sms_link_carries_the_call_and_the_chat_finds_its_decisions(
    tmp_path: Path, outbox: SmsOutbox
) -> None:
    _, code, journey = await sms_call(tmp_path, outbox)

    found = await resolve_reference(outbox.db, code, sender="+573001234567")

    assert found is not None and found.journey_id == journey
    assert set(found.variables) <= set(CARRIED)
    assert found.variables["affiliate_id"] and found.variables["cups"]
    assert found.variables["segment"] in {"target", "non-target"}
    assert "offered_ids" not in found.variables and "chat_ref" not in found.variables


async def test_a_reference_from_another_number_unknown_or_expired_is_none(
    tmp_path: Path, outbox: SmsOutbox
) -> None:
    _, code, _ = await sms_call(tmp_path, outbox)
    db = outbox.db
    other = "Z" if code[0] != "Z" else "Y"
    assert await resolve_reference(db, code, sender="+573109876543") is None
    assert await resolve_reference(db, other + code[1:], sender="+573001234567") is None
    late = datetime.now(UTC) + REFERENCE_TTL + timedelta(minutes=1)
    assert await resolve_reference(db, code, sender="+573001234567", now=late) is None
    early = datetime.now(UTC) + REFERENCE_TTL - timedelta(minutes=1)
    assert await resolve_reference(db, code, sender="+573001234567", now=early) is not None
