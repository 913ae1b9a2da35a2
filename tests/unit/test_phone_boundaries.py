"""Every boundary a phone number crosses uses ``ivr.phone`` (issue 9 §2).

The table of forms (``tests/unit/test_phone.py``'s ``FORMS``) is run through
each boundary: the affiliate directory file, the caller-ID lookup, the SMS
outbox, the WhatsApp redirect action, line.yaml's WhatsApp number. And the
citas flow never plays "an SMS is on its way" on a path where none was queued.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from ivr.booking.db import DbSlotSource
from ivr.channel import Phrase
from ivr.citas.actions import OUTCOMES, CitasActions, whatsapp_link
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.reference import CITAS_DIR, load_line, load_reference
from ivr.controller import flow_loader
from ivr.flow.engine import CallState
from ivr.flow.model import Flow, targets
from ivr.flow.nodes import ActionNode, HangupNode
from ivr.phone import InvalidPhoneNumber
from ivr.schemas import schema
from ivr.settings import REPO_ROOT
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from ivr.yamlsrc import ConfigError
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_flow_engine import ScriptedChannel, new_state
from tests.unit.test_phone import FORMS

TODAY = date(2026, 11, 23)
CASES = list(FORMS.values())
IDS = list(FORMS.keys())


class CallerChannel(ScriptedChannel):
    def __init__(self, caller: str | None) -> None:
        super().__init__()
        self.caller = caller

    @property
    def caller_number(self) -> str | None:
        return self.caller


def admitted_by_schema(raw: str, kind: str) -> bool:
    """Whether the file's schema (ivr/schemas/, part 7) admits this way of writing a
    number: digits, spaces and a leading +. Those forms must become E.164 or be refused
    by the loader; the others are refused by the schema, both naming file, line, field."""
    props = schema(kind)["properties"]
    field = (
        props["affiliates"]["items"]["properties"]["phone"]
        if kind == "affiliates"
        else props["whatsapp"]["properties"]["number"]
    )
    return re.search(field["pattern"], raw) is not None


def directory_file(tmp_path: Path, phone: str | None, document: str = "1010101010") -> Path:
    path = tmp_path / "affiliates.yaml"
    path.write_text(
        "affiliates:\n"
        f"  - document: '{document}'\n"
        "    name: Ana\n"
        + (f"    phone: {json.dumps(phone)}\n" if phone is not None else "")
        + "    age: 30\n    plan: PBS\n    site: sur\n",
        encoding="utf-8",
    )
    return path


def state(caller: str | None) -> CallState:
    return new_state(CallerChannel(caller), Flow("t", "t.yaml", "x", {}))


@pytest.fixture
def outbox(db: Database) -> SmsOutbox:
    return SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)


def actions(outbox: SmsOutbox, directory: YamlAffiliateDirectory) -> CitasActions:
    return CitasActions(
        load_reference(), directory, DbSlotSource(outbox.db, timeout=TEST_DB_TIMEOUT_S), outbox
    )


# --- the directory file ----------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164", "sms"), CASES, ids=IDS)
async def test_directory_numbers_load_as_e164_and_are_found_in_any_form(
    tmp_path: Path, raw: str, e164: str | None, sms: bool
) -> None:
    path = directory_file(tmp_path, raw)
    if e164 is None or not admitted_by_schema(raw, "affiliates"):
        with pytest.raises(ConfigError) as caught:
            YamlAffiliateDirectory.load(path, TODAY)
        assert (caught.value.file, caught.value.line, caught.value.field) == (
            str(path), 4, "affiliates[0].phone"
        )  # fmt: skip
    else:
        directory = YamlAffiliateDirectory.load(path, TODAY)
        (ana,) = directory._by_doc.values()
        assert ana.phone == e164
        for other, same, _ in CASES:
            if same == e164:
                assert await directory.by_phone(other) is ana


def test_the_demo_directory_is_e164() -> None:
    directory = YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", TODAY)
    phones = [a.phone for a in directory._by_doc.values()]
    assert None in phones  # Karen: the withheld-no-sms scenario's affiliate
    assert all(p.startswith("+57") for p in phones if p is not None)


# --- the caller-ID lookup --------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164", "sms"), CASES, ids=IDS)
async def test_the_caller_id_lookup_finds_any_form_and_refuses_the_rest(
    tmp_path: Path, outbox: SmsOutbox, raw: str, e164: str | None, sms: bool
) -> None:
    # The directory holds every valid number of the table, each written nationally or as is.
    entries = {e for _, e, _ in CASES if e is not None}
    lines = ["affiliates:"] + [
        f"  - {{document: '{n:010d}', phone: {json.dumps(e)}, name: X, age: 30, plan: PBS, site: sur}}"
        for n, e in enumerate(sorted(entries))
    ]
    path = tmp_path / "affiliates.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    citas = actions(outbox, YamlAffiliateDirectory.load(path, TODAY))
    call = state(raw)

    outcome = await citas.identify_by_caller_id(call, {})

    assert outcome == ("found" if e164 else "not_found")
    if e164:
        assert call.variables["_affiliate"].phone == e164
        assert call.variables["identified_by"] == "caller_id"


async def test_a_missing_caller_id_is_not_found(tmp_path: Path, outbox: SmsOutbox) -> None:
    citas = actions(outbox, YamlAffiliateDirectory.load(directory_file(tmp_path, None), TODAY))
    assert await citas.identify_by_caller_id(state(None), {}) == "not_found"


# --- the SMS outbox --------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164", "sms"), CASES, ids=IDS)
async def test_the_outbox_takes_only_e164_mobiles(
    outbox: SmsOutbox, raw: str, e164: str | None, sms: bool
) -> None:
    if sms and raw == e164:
        assert await outbox.enqueue(to_number=raw, text="hola", dedupe_key="k")
        (message,) = await outbox.list()
        assert message.to_number == e164
        return
    with pytest.raises(InvalidPhoneNumber):
        await outbox.enqueue(to_number=raw, text="hola", dedupe_key="k")
    with pytest.raises(InvalidPhoneNumber):
        await outbox.enqueue_or_hold(to_number=raw, text="hola", dedupe_key="k")
    assert await outbox.list() == [] and not outbox.held


# --- the WhatsApp redirect -------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164", "sms"), CASES, ids=IDS)
async def test_the_redirect_texts_a_mobile_caller_id_and_never_anything_else(
    tmp_path: Path, outbox: SmsOutbox, raw: str, e164: str | None, sms: bool
) -> None:
    citas = actions(outbox, YamlAffiliateDirectory.load(directory_file(tmp_path, None), TODAY))
    call = state(raw)  # no directory phone: the caller ID decides

    outcome = await citas.send_whatsapp_sms(call, {})

    assert call.variables["whatsapp_number_media"] == Phrase(
        "spoken", "300 111 2233", ("digits:300", "digits:111", "digits:2233")
    )
    messages = await outbox.list()
    if sms:
        assert (outcome, call.variables["sms"]) == ("queued", "queued")
        assert [m.to_number for m in messages] == [e164]
        assert "https://wa.me/573001112233?text=" in messages[0].text
    else:
        assert (outcome, call.variables["sms"]) == ("no_mobile", "no_mobile")
        assert messages == [] and "sms_id" not in call.variables


@pytest.mark.parametrize(
    ("listed", "caller", "to"),
    [
        ("3001234567", "+573109876543", "+573001234567"),  # the directory's mobile first
        ("6015551234", "573109876543", "+573109876543"),  # its fixed line: the caller's mobile
        ("6015551234", "anonymous", None),  # fixed line and withheld: nobody to text
        (None, "sip:anonymous@anonymous.invalid", None),  # the observation
    ],
)
async def test_the_redirect_prefers_the_directory_mobile_then_the_caller_id(
    tmp_path: Path, outbox: SmsOutbox, listed: str | None, caller: str, to: str | None
) -> None:
    directory = YamlAffiliateDirectory.load(directory_file(tmp_path, listed), TODAY)
    citas = actions(outbox, directory)
    call = state(caller)
    assert await citas.identify_by_caller_id(call, {}) == "not_found"
    call.set("document", "1010101010")
    assert await citas.identify_by_document(call, {}) == "found"

    outcome = await citas.send_whatsapp_sms(call, {})

    assert outcome == ("queued" if to else "no_mobile")
    assert [m.to_number for m in await outbox.list()] == ([to] if to else [])


# --- line.yaml's WhatsApp number ------------------------------------------------------------
@pytest.mark.parametrize(("raw", "e164", "sms"), CASES, ids=IDS)
def test_the_whatsapp_number_in_line_yaml_is_e164_or_refused(
    tmp_path: Path, raw: str, e164: str | None, sms: bool
) -> None:
    text = (CITAS_DIR / "line.yaml").read_text(encoding="utf-8")
    assert '  number: "573001112233"\n' in text
    path = tmp_path / "line.yaml"
    path.write_text(text.replace('  number: "573001112233"\n', f"  number: {json.dumps(raw)}\n"))
    if e164 is None or not admitted_by_schema(raw, "line"):
        with pytest.raises(ConfigError) as caught:
            load_line(path)
        number_line = next(
            n for n, line in enumerate(path.read_text().splitlines(), 1) if "  number:" in line
        )
        assert (caught.value.file, caught.value.line, caught.value.field) == (
            str(path), number_line, "whatsapp.number"
        )  # fmt: skip
    else:
        line = load_line(path)
        assert line.whatsapp_number == e164
        assert whatsapp_link(line.whatsapp_number, "hola") == f"https://wa.me/{e164[1:]}?text=hola"


def test_a_spaced_whatsapp_number_makes_a_working_link(tmp_path: Path) -> None:
    # Issue 9 §7's observation: "+57 300 111 2233" produced a broken wa.me link.
    text = (CITAS_DIR / "line.yaml").read_text(encoding="utf-8")
    path = tmp_path / "line.yaml"
    path.write_text(text.replace('"573001112233"', '"+57 300 111 2233"'))
    line = load_line(path)
    assert whatsapp_link(line.whatsapp_number, "x") == "https://wa.me/573001112233?text=x"


# --- the flow: no promise without an SMS ----------------------------------------------------
def test_the_citas_flow_promises_an_sms_only_after_one_was_queued() -> None:
    flow = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")
    promising = {
        node.id
        for node in flow.nodes.values()
        if any(p.value == "no_slots_whatsapp" for p in getattr(node, "prompts", ()))
    }
    assert promising  # the redirect with SMS still exists
    into = [
        (source.id, edge)
        for source in flow.nodes.values()
        for edge, target in targets(source)
        if target in promising
    ]
    assert into == [("whatsapp_redirect", "outcomes.queued")]
    redirect = flow.nodes["whatsapp_redirect"]
    assert isinstance(redirect, ActionNode) and redirect.action == "send_whatsapp_sms"
    assert set(OUTCOMES["send_whatsapp_sms"]) == set(redirect.outcomes) == {"queued", "no_mobile"}
    spoken = flow.nodes[redirect.outcomes["no_mobile"]]
    assert redirect.on_failure == spoken.id
    assert isinstance(spoken, HangupNode) and spoken.outcome == "redirected_whatsapp_no_sms"
    media = [p.value for p in spoken.prompts if p.kind == "media"]
    assert media == ["{whatsapp_number_media}", "{whatsapp_number_media}"]
