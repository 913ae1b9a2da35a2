"""The case-survey worker on SQLite and PostgreSQL (``db`` runs each test on both),
with the real CaseStore, SmsOutbox and ConversationStore: a closed case is
surveyed once whatever the number of workers and passes (the kind: "a survey
sent twice or never"), on WhatsApp inside the 24-hour window, by SMS outside
it, failed without a contact. Then the dialogue through the real ChatRunner,
the signed webhook and the WhatsApp simulator (SQLite)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.model import SYSTEM, Actor, NewCase
from ivr.cases.store import CaseStore
from ivr.chat.store import SERVICE_WINDOW, ConversationStore, InboundMessage
from ivr.prompts import load_prompt_texts
from ivr.settings import Settings
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import Database
from ivr.surveys.chat import SurveyReplies
from ivr.surveys.store import CASE_MAX_AGE, SurveyStore
from ivr.surveys.tables import FAILED, SENT, SMS, WHATSAPP
from ivr.surveys.worker import SurveyWorker
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.eventually import eventually
from tests.unit.test_chat_runner import ANA, Chat, chat, shown  # noqa: F401 (the fixture)

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
BACKOFFICE = Actor("ana.backoffice", "operator")
ASSISTANT = "+573001110000"
TEXTS = {
    pid: getattr(p, "chat", None) or p.text
    for pid, p in load_prompt_texts(Settings().prompts_file).items()
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def config() -> CasesConfig:
    return load_cases_config()


def new_case(
    affiliate: str, *, phone: str | None = "+573001234567", wa_id: str | None = None
) -> NewCase:
    return NewCase(
        affiliate_id=affiliate, specialty="general", service_id="mg_first", cups="890201",
        site_id="norte", channel="chat" if wa_id else "voice",
        summary="Cita de medicina general; no hay cupos.", journey_id=str(uuid.uuid4()),
        contact_email="paciente@example.org", contact_phone=phone, consent=True, wa_id=wa_id,
        search_evidence=[
            {"time_band": "morning", "exclude_doctor_id": None, "found": 0, "at": NOW.isoformat()},
            {"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0, "at": NOW.isoformat()},
        ],
    )  # fmt: skip


async def closed_case(cases: CaseStore, affiliate: str, **kw: str | None) -> str:
    case = await cases.file(new_case(affiliate, **kw))
    await cases.close(case.number, resolution="Se asignó la cita por agenda.", actor=BACKOFFICE)
    return case.number


def worker(db: Database, clock: Clock, chats: ConversationStore | None = None) -> SurveyWorker:
    return SurveyWorker(
        SurveyStore(db, clock=clock), SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S, clock=clock), TEXTS,
        chats=chats, whatsapp_number=ASSISTANT, clock=clock,
    )  # fmt: skip


async def test_closed_cases_are_surveyed_once_by_concurrent_workers_and_passes(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    numbers = [await closed_case(cases, f"10100000{i:02d}") for i in range(3)]
    still_open = await cases.file(new_case("1010000099"))
    workers = [worker(db, clock) for _ in range(3)]
    sent = await asyncio.gather(*(w.run_once() for w in workers))
    sent += await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(sent) == 3
    surveys = await SurveyStore(db).list(kind="case")
    assert sorted(s.case_number or "" for s in surveys) == sorted(numbers)
    assert still_open.number not in {s.case_number for s in surveys}
    assert {(s.state, s.channel, s.agent) for s in surveys} == {(SENT, SMS, "ana.backoffice")}
    for survey in surveys:
        assert survey.case_id is not None
        assert await SurveyStore(db).for_case(survey.case_id) == survey
    messages = await SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S).list()
    assert sorted(m.dedupe_key for m in messages) == sorted(f"survey:{s.id}" for s in surveys)
    for message in messages:
        link = unquote(message.text)
        assert "https://wa.me/573001110000?text=Encuesta del caso " in link


async def test_a_worker_that_died_before_marking_sends_the_same_message_again(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    await closed_case(cases, "1010000001")
    first = worker(db, clock)
    await first.store.ensure_for_closed_cases()
    (pending,) = await first.store.pending()
    assert await first.send(pending) == 1
    assert await worker(db, clock).send(pending) == 0  # the same keyed row again: no new SMS
    assert len(await SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S).list()) == 1
    assert (await first.store.get(pending.survey.id)).state == SENT


@pytest.mark.parametrize(
    ("since_last_message", "channel"),
    [(timedelta(hours=1), WHATSAPP), (SERVICE_WINDOW - timedelta(seconds=1), WHATSAPP),
     (SERVICE_WINDOW, SMS), (timedelta(days=3), SMS)],
)  # fmt: skip
async def test_whatsapp_inside_the_window_else_sms(
    db: Database, config: CasesConfig, clock: Clock, since_last_message: timedelta, channel: str
) -> None:
    wa_id = "573001234567"
    chats = ConversationStore(db, flow="citas", clock=clock)
    await chats.receive(InboundMessage("wamid.1", wa_id, "text", NOW - since_last_message, "hola"))
    async with chats.turn(wa_id):
        pass  # the assistant took the message: the conversation's window starts then
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    number = await closed_case(cases, "1010000001", wa_id=wa_id)
    assert await worker(db, clock, chats).run_once() == 1
    (survey,) = await SurveyStore(db).list()
    assert (survey.channel, survey.case_number) == (channel, number)
    queued = await chats.outbound_of((await chats.conversation(wa_id)).id)  # type: ignore[union-attr]
    sms = await SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S).list()
    if channel == WHATSAPP:
        assert [o.key for o in queued] == [f"survey:{survey.id}"] and sms == []
        assert number in queued[0].payload["text"]["body"]
    else:
        assert queued == [] and [m.to_number for m in sms] == ["+573001234567"]


@pytest.mark.parametrize("where", ["at_a_question", "with_an_agent"])
async def test_a_chat_mid_dialogue_is_not_interrupted_the_survey_waits(
    db: Database, config: CasesConfig, clock: Clock, where: str
) -> None:
    wa_id = "573001234567"
    chats = ConversationStore(db, flow="citas", clock=clock)
    await chats.receive(InboundMessage("wamid.1", wa_id, "text", NOW, "hola"))
    async with chats.turn(wa_id) as turn:
        if where == "at_a_question":
            turn.conversation.node = "main_menu"  # a "1" now is a menu choice
        else:
            turn.hand_to_agent("asked", {})
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    await closed_case(cases, "1010000001", wa_id=wa_id)
    assert await worker(db, clock, chats).run_once() == 0
    (survey,) = await SurveyStore(db).list()
    assert survey.state == "pending"
    clock.now = NOW + SERVICE_WINDOW  # the window closed meanwhile: the SMS goes
    assert await worker(db, clock, chats).run_once() == 1
    assert (await SurveyStore(db).get(survey.id)).channel == SMS


@pytest.mark.parametrize(("phone", "why"), [(None, "sin WhatsApp abierto ni móvil"),
                                             ("+5716012345", "sin WhatsApp abierto ni móvil")])  # fmt: skip
async def test_without_whatsapp_or_a_mobile_the_survey_fails_with_why(
    db: Database, config: CasesConfig, clock: Clock, phone: str | None, why: str
) -> None:
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    await closed_case(cases, "1010000001", phone=phone)
    assert await worker(db, clock).run_once() == 0
    (survey,) = await SurveyStore(db).list()
    assert (survey.state, survey.detail) == (FAILED, why)
    assert await worker(db, clock).run_once() == 0  # failed once: not tried again


async def test_cases_closed_before_the_age_limit_are_not_surveyed(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    await closed_case(cases, "1010000001")
    clock.now = NOW + CASE_MAX_AGE + timedelta(seconds=1)
    assert await worker(db, clock).run_once() == 0
    assert await SurveyStore(db).list() == []


async def test_a_case_closed_by_the_system_is_not_surveyed_one_closed_by_a_person_is(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    """Regression (the newcomer's review): the scenario seeds reset test data by closing
    cases as the system, and each reset sent the affiliate a survey about an answer nobody
    gave. Only a case a person closed is surveyed."""
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    by_system = await cases.file(new_case("1010000002"))
    await cases.close(by_system.number, resolution="Datos de prueba reiniciados", actor=SYSTEM)
    by_person = await closed_case(cases, "1010000003")
    assert await worker(db, clock).run_once() == 1
    (survey,) = await SurveyStore(db).list()
    assert survey.case_number == by_person


# --- the dialogue, through the real runner ------------------------------------------------
async def survey_sent_to(chat: Chat, number_of: str = ANA, by_sms: bool = False) -> str:  # noqa: F811
    """A closed case of ANA's surveyed by the worker; its number."""
    config = load_cases_config()
    cases = CaseStore(chat.db, config.calendar_for, config)
    number = await closed_case(cases, "1010101010", wa_id=None if by_sms else number_of)
    chats = None if by_sms else chat.store
    assert await worker(chat.db, Clock(datetime.now(UTC)), chats).run_once() == 1
    chat.runner._wake.set()
    return number


@pytest.fixture
def surveyed_chat(chat: Chat) -> Chat:  # noqa: F811
    chat.runner.takers = (SurveyReplies(SurveyStore(chat.db), TEXTS),)
    return chat


async def test_a_rating_and_a_comment_are_taken_without_starting_the_flow(
    surveyed_chat: Chat,
) -> None:
    talk = surveyed_chat
    await talk.says(ANA, "hola")
    await talk.sees(ANA, "pedir una cita")
    await talk.says(ANA, "2")  # her appointments: listed, and the chat ends
    await talk.sees(ANA, "citas pendientes")
    ended = await talk.store.conversation(ANA)
    assert ended is not None and ended.node is None
    number = await survey_sent_to(talk)
    await talk.sees(ANA, f"su caso {number} fue cerrado")
    await talk.says(ANA, "le doy un 9")
    await talk.sees(ANA, "¿desea dejar un comentario?")
    await talk.says(ANA, "Muy amables, gracias")
    await talk.sees(ANA, "gracias por su opinión")
    (survey,) = await SurveyStore(talk.db).list()
    assert (survey.rating, survey.comment, survey.channel) == (9, "Muy amables, gracias", WHATSAPP)
    after = await talk.store.conversation(ANA)
    assert after is not None
    assert (after.state, after.node, after.outcome) == (ended.state, None, ended.outcome)
    await talk.says(ANA, "hola")  # the survey done, the assistant answers again
    await eventually(lambda: len([m for m in talk.simulator.messages_to(ANA)
                                  if "pedir una cita" in shown(m)]) == 2, within=10)  # fmt: skip


async def test_two_replies_without_a_rating_give_the_contact_back_to_the_assistant(
    surveyed_chat: Chat,
) -> None:
    talk = surveyed_chat
    await talk.says(ANA, "hola")
    await talk.sees(ANA, "pedir una cita")
    await talk.says(ANA, "2")
    await talk.sees(ANA, "citas pendientes")
    await survey_sent_to(talk)
    await talk.says(ANA, "👍")
    await talk.sees(ANA, "responda con un número del 1 al 10")
    await talk.says(ANA, "1")  # a rating after all? no: 1 is a rating
    await talk.sees(ANA, "¿desea dejar un comentario?")
    await talk.says(ANA, "NO")
    await talk.sees(ANA, "gracias por su opinión")
    (survey,) = await SurveyStore(talk.db).list()
    assert (survey.rating, survey.comment) == (1, None)


async def test_an_sms_survey_is_answered_from_the_links_prefilled_text(surveyed_chat: Chat) -> None:
    talk = surveyed_chat
    number = await survey_sent_to(talk, by_sms=True)
    (sms,) = await SmsOutbox(talk.db, timeout=TEST_DB_TIMEOUT_S).list()
    prefilled = unquote(sms.text.split("?text=")[1])
    await talk.says("573009998877", prefilled + "10")  # another number: not its survey
    await talk.says(ANA, prefilled + "8")
    await talk.sees(ANA, "¿desea dejar un comentario?")
    (survey,) = await SurveyStore(talk.db).list()
    assert (survey.case_number, survey.rating, survey.channel) == (number, 8, SMS)
    assert not any("comentario" in shown(m) for m in talk.simulator.messages_to("573009998877"))


async def test_the_sms_links_text_alone_gets_the_question_then_the_rating_counts(
    surveyed_chat: Chat,
) -> None:
    talk = surveyed_chat
    number = await survey_sent_to(talk, by_sms=True)
    (sms,) = await SmsOutbox(talk.db, timeout=TEST_DB_TIMEOUT_S).list()
    await talk.says(ANA, unquote(sms.text.split("?text=")[1]))
    await talk.sees(ANA, f"su caso {number} fue cerrado")
    await talk.says(ANA, "diez")
    await talk.sees(ANA, "¿desea dejar un comentario?")
    (survey,) = await SurveyStore(talk.db).list()
    assert (survey.rating, survey.attempts) == (10, 0)


async def test_the_case_history_tells_the_survey_and_a_history_that_fails_sends_it_anyway(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    from ivr.cases.store import CaseNotFound

    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    told = await closed_case(cases, "1010000001")
    lost = await closed_case(cases, "1010000002")

    async def history(number: str, action: str, detail: str) -> None:
        if number == lost:
            raise CaseNotFound(number)
        await cases.add_event(number, action, actor=SYSTEM, detail=detail)

    surveys = worker(db, clock)
    surveys.case_events = history
    assert await surveys.run_once() == 2
    assert [
        (e.action, e.detail) for e in await cases.events(told) if e.action.startswith("survey")
    ] == [("survey_sent", "encuesta por SMS")]
    assert len(await SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S).list()) == 2
