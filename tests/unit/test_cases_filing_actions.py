"""Filing a case (issue 11 §1), run by the engine over the shipped flow file, the
real actions, the real case store and a real database (SQLite; PostgreSQL when
``CITAS_TEST_PG_URL`` names one), with a scripted caller. The calls themselves:
tests/e2e/test_cases_filing.py.

The kinds:
- a case filed with something missing or wrong (evidence, consent, e-mail,
  phone, service, CUPS, specialty, site, channel, journey), or filed where the
  caller declined; its number not said twice or not sent;
- a second attempt for the same specialty searching slots instead of hearing
  the open case, also when two attempts race (``OpenCaseExists``);
- the widened search not widening (another band, any doctor) or filing when
  a slot was there.
Its range: every answer of the case offer, the consent and the e-mail menus,
callers with and without an e-mail and a mobile, both channels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Slot
from ivr.booking.seed import BOGOTA
from ivr.cases.config import load_cases_config
from ivr.cases.model import Case
from ivr.cases.number import is_valid
from ivr.cases.store import CaseStore
from ivr.channel import CallEnded, DigitResult
from ivr.chat.channel import ChatChannel
from ivr.citas.actions import CitasActions
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.cases import bands_exhausted, number_groups
from ivr.citas.flags import flag_registry
from ivr.citas.reference import CITAS_DIR, load_reference
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine
from ivr.flow.model import CallState
from ivr.ops.flags import StaticFlags
from ivr.settings import REPO_ROOT
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_flow_engine import ScriptedChannel, new_state

CITAS = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 in Bogotá
LUCIA, LUCIA_PHONE = "1313131313", "3001313131"  # site sur (no slots), lucia@example.org
KAREN = "9090909090"  # site sur, no phone, no e-mail
ANA = "1010101010"  # site norte
BOOK, GENERAL = "1", "1"  # main menu, service (medicina general primera vez)


class Caller(ScriptedChannel):
    """A scripted voice caller with its own caller ID."""

    def __init__(self, number: str | None, *keys: str) -> None:
        super().__init__(*[DigitResult(k, "complete") for k in keys])
        self.number = number

    @property
    def caller_number(self) -> str | None:
        return self.number

    def played(self) -> list[str]:
        return [m for entry in self.log if entry[0].startswith("play") for m in entry[1:]]


class Line:
    """The citas line over ``db``: its actions with a case store, at ``NOW``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        config = load_cases_config(CITAS_DIR / "cases.yaml")
        self.cases = CaseStore(db, config.calendar_for, config, clock=lambda: NOW)
        self.slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: NOW)
        self.outbox = SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)
        self.flags = StaticFlags(flag_registry(load_reference()), {"promo_audio": False})
        self.actions = CitasActions(
            load_reference(),
            YamlAffiliateDirectory.load(CITAS_DIR / "affiliates.yaml", NOW.date()),
            self.slots,
            self.outbox,
            flags=self.flags,
            clock=lambda: NOW.astimezone(BOGOTA),
            cases=self.cases,
        )
        self.engine = FlowEngine(
            self.actions.registry(), default_vdn="5550001", flags=self.flags.value
        )

    async def call(self, caller: Caller, **variables: str) -> CallState:
        state = new_state(caller, CITAS, **variables)
        try:
            await self.engine.run(state)
        except CallEnded:
            pass
        return state

    async def sms(self) -> list[Any]:
        return list(await self.outbox.list())


def nodes(state: CallState) -> list[str]:
    return [str(s.detail.get("node")) for s in state.record.path if s.kind == "node"]


@pytest.fixture
def line(db: Database) -> Line:
    return Line(db)


async def filed(line: Line, affiliate_id: str) -> Case:
    case = await line.cases.open_for(affiliate_id, "general")
    assert case is not None
    return case


# --- filing by phone ---------------------------------------------------------------------
async def test_a_caller_with_no_slot_files_a_case_and_hears_its_number_twice(line: Line) -> None:
    caller = Caller(LUCIA_PHONE, BOOK, GENERAL, "1", "1", "1")  # case, consent, keep e-mail
    state = await line.call(caller)

    assert state.record.outcome == "case_filed"
    case = await filed(line, LUCIA)
    assert is_valid(case.number) and len(case.number) == 7
    assert state.variables["case_number"] == case.number
    # What it carries.
    assert (case.specialty, case.service_id, case.cups, case.site_id) == (
        "general", "mg_first", "890201", "sur",
    )  # fmt: skip
    assert (case.channel, case.call_id, case.journey_id) == ("voice", "rec-1", "rec-1")
    assert (case.contact_email, case.contact_phone) == ("lucia@example.org", "+573001313131")
    assert case.consent and case.consent_at is not None and case.state == "open"
    assert "Medicina general primera vez" in case.summary
    # The evidence: the first search, then every band with any doctor, nothing found.
    bands = [(s["time_band"], s["exclude_doctor_id"], s["found"]) for s in case.search_evidence]
    assert bands == [(None, None, 0), ("morning", None, 0), ("afternoon", None, 0)]
    assert bands_exhausted(case.search_evidence)
    # Said digit by digit, twice, with the due date (5 business days: Monday 7 December).
    played = caller.played()
    for group in number_groups(case.number):
        assert played.count(f"digits:{group}") == 2
    assert case.due_at.astimezone(BOGOTA).date() == datetime(2026, 12, 7).date()
    due = played.index("sound:citas/case_due")
    assert played[due + 1 : due + 5] == [
        "sound:digits/day-1", "sound:digits/7", "sound:digits/es-de", "sound:digits/mon-11",
    ]  # fmt: skip
    assert "sound:citas/case_sms_sent" in played
    # Sent by SMS once, under the case's key.
    (sms,) = await line.sms()
    assert sms.to_number == "+573001313131" and case.number in sms.text
    assert "7 de diciembre" in sms.text
    assert (await line.cases.events(case.number))[0].action == "filed"


@pytest.mark.parametrize(
    ("keys", "outcome"),
    [
        pytest.param(["2"], "redirected_whatsapp", id="offer: the WhatsApp link"),
        pytest.param(["9"], "redirected_whatsapp", id="offer: a wrong key"),
        pytest.param([], "redirected_whatsapp", id="offer: silence"),
        pytest.param(["1", "2"], "redirected_whatsapp", id="consent refused"),
        pytest.param(["1", "9", "9"], "redirected_whatsapp", id="consent never given"),
    ],
)
async def test_a_caller_who_does_not_file_leaves_as_before(
    line: Line, keys: list[str], outcome: str
) -> None:
    caller = Caller(LUCIA_PHONE, BOOK, GENERAL, *keys)
    caller.script += [DigitResult("", "no_input")] * 3  # then silence
    state = await line.call(caller)

    assert state.record.outcome == outcome
    assert await line.cases.open_for(LUCIA, "general") is None
    (sms,) = await line.sms()
    assert "wa.me" in sms.text  # the WhatsApp link, not a case number


async def test_an_email_no_longer_used_files_without_it_and_answers_by_sms(line: Line) -> None:
    state = await line.call(Caller(LUCIA_PHONE, BOOK, GENERAL, "1", "1", "2"))

    assert state.record.outcome == "case_filed"
    case = await filed(line, LUCIA)
    assert case.contact_email is None and case.contact_phone == "+573001313131"


async def test_no_mobile_no_email_files_and_promises_no_sms(line: Line) -> None:
    caller = Caller("anonymous", "9090909090#", BOOK, GENERAL, "1", "1")
    caller.script[0] = DigitResult("9090909090", "terminator")
    state = await line.call(caller)

    assert state.record.outcome == "case_filed"
    case = await filed(line, KAREN)
    assert case.contact_email is None and case.contact_phone is None
    assert state.variables["sms"] == "no_mobile"
    assert await line.sms() == []
    played = caller.played()
    assert "sound:citas/case_no_contact" in played  # keep the number: nothing to send to
    assert "sound:citas/case_sms_only" not in played
    assert "sound:citas/case_sms_sent" not in played


# --- one open case per affiliate and specialty ------------------------------------------
async def test_a_second_call_hears_the_open_case_instead_of_a_search(line: Line) -> None:
    await line.call(Caller(LUCIA_PHONE, BOOK, GENERAL, "1", "1", "1"))
    first = await filed(line, LUCIA)

    caller = Caller(LUCIA_PHONE, BOOK, "2")  # control de medicina general: the same specialty
    state = await line.call(caller)

    assert state.record.outcome == "case_open"
    assert "find_slot" not in nodes(state)
    assert state.variables["case_number"] == first.number
    for group in number_groups(first.number):
        assert caller.played().count(f"digits:{group}") == 2
    assert len(await line.cases.list(state="open")) == 1


async def test_another_specialty_still_searches(line: Line) -> None:
    await line.call(Caller(LUCIA_PHONE, BOOK, GENERAL, "1", "1", "1"))
    state = await line.call(Caller(LUCIA_PHONE, BOOK, "3", "2"))  # pediatrics, then the link

    assert "find_slot" in nodes(state) and state.record.outcome != "case_open"


async def test_two_attempts_racing_the_loser_hears_the_winners_case(line: Line) -> None:
    # The other attempt files between this one's check and its filing.
    state = new_state(Caller(LUCIA_PHONE), CITAS)
    for name, value in {
        "affiliate_id": LUCIA, "site_id": "sur", "service": "mg_first", "cups": "890201",
        "specialty": "general", "case_consent": "1", "email_keep": "1", "segment": "target",
    }.items():  # fmt: skip
        state.set(name, value)
    state.set("search_evidence", [
        {"time_band": None, "exclude_doctor_id": None, "found": 0, "at": NOW.isoformat()},
    ])  # fmt: skip
    registry = line.actions.registry()
    assert await registry["file_case"](state, {}) == "filed"
    winner = state.variables["case_number"]

    again = new_state(Caller(LUCIA_PHONE), CITAS)
    for name, value in state.variables.items():
        if not name.startswith("case_") or name == "case_consent":
            again.set(name, value)
    assert await registry["file_case"](again, {}) == "open"
    assert again.variables["case_number"] == winner
    assert len(await line.cases.list()) == 1


# --- the widened search -----------------------------------------------------------------
MONDAY_0800 = datetime(2026, 12, 7, 8, 0, tzinfo=BOGOTA)


async def test_the_widened_search_finds_a_slot_in_the_other_band_with_any_doctor(
    line: Line,
) -> None:
    afternoon = Slot(
        "pm", "norte", "dr_gomez", "890201", MONDAY_0800 + timedelta(hours=6), "afternoon"
    )
    await line.slots.seed_slots([afternoon])
    state = new_state(Caller("3001234567"), CITAS)
    for name, value in {"affiliate_id": ANA, "site_id": "norte", "cups": "890201"}.items():
        state.set(name, value)
    state.set("time_band", "morning")
    state.set("exclude_doctor_id", "dr_gomez")

    assert await line.actions.registry()["widen_search"](state, {}) == "found"
    assert state.variables["slot_id"] == "pm"
    evidence = state.variables["search_evidence"]
    assert [(e["time_band"], e["exclude_doctor_id"], e["found"]) for e in evidence] == [
        ("morning", None, 0), ("afternoon", None, 1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("evidence", "outcome"),
    [
        pytest.param(
            [("afternoon", None, 1), (None, "dr_gomez", 1)], "tried", id="band and doctor"
        ),
        pytest.param([(None, None, 1), ("afternoon", None, 1)], "declined", id="band only"),
        pytest.param([(None, None, 1)], "declined", id="the first offer"),
    ],
)
async def test_a_decline_allows_a_case_only_after_band_and_doctor(
    line: Line, evidence: list[tuple[str | None, str | None, int]], outcome: str
) -> None:
    state = new_state(Caller("3001234567"), CITAS)
    state.set("search_evidence", [
        {"time_band": b, "exclude_doctor_id": d, "found": f, "at": NOW.isoformat()}
        for b, d, f in evidence
    ])  # fmt: skip
    assert await line.actions.registry()["widen_search"](state, {"after": "declined"}) == outcome


# --- filing in a chat --------------------------------------------------------------------
async def test_a_chat_files_with_the_typed_email_and_its_journey(line: Line) -> None:
    chat = ChatChannel("conv-9", "573001414141", {})
    state = new_state(Caller(None), CITAS)
    state.channel = chat
    for name, value in {
        "affiliate_id": "1414141414", "site_id": "sur", "service": "mg_first", "cups": "890201",
        "specialty": "general", "case_consent": "1",
    }.items():  # fmt: skip
        state.set(name, value)
    state.variables["_contact_email"] = "mateo@example.org"
    state.variables["_journey_id"] = "journey-7"
    state.set("search_evidence", [
        {"time_band": b, "exclude_doctor_id": None, "found": 0, "at": NOW.isoformat()}
        for b in ("morning", "afternoon")
    ])  # fmt: skip

    assert await line.actions.registry()["file_case"](state, {}) == "filed"
    case = await filed(line, "1414141414")
    assert (case.channel, case.wa_id, case.call_id) == ("chat", "573001414141", None)
    assert case.journey_id == "journey-7" and case.contact_email == "mateo@example.org"
    assert await line.sms() == []  # the chat has it in the conversation


async def test_no_case_without_consent_or_evidence_even_if_the_flow_were_wrong(
    line: Line,
) -> None:
    state = new_state(Caller(LUCIA_PHONE), CITAS)
    for name, value in {
        "affiliate_id": LUCIA, "site_id": "sur", "service": "mg_first", "cups": "890201",
        "specialty": "general",
    }.items():  # fmt: skip
        state.set(name, value)
    file_case = line.actions.registry()["file_case"]
    assert await _fails(file_case(state, {}))  # no consent
    state.set("case_consent", "1")
    assert await _fails(file_case(state, {}))  # no evidence
    assert await line.cases.list() == []


async def _fails(call: Any) -> bool:
    from ivr.flow.model import ActionFailed

    try:
        await call
    except ActionFailed:
        return True
    return False
