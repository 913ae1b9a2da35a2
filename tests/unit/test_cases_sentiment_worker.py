"""The analysis worker (ivr/text/analysis.py) on real cases (CaseStore) and survey rows:
every case text and survey comment analysed once, a keyword that raises priority raising
the case through CaseStore.raise_priority as the system (SQLite; PostgreSQL too)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.model import SYSTEM, Actor, NewCase
from ivr.cases.store import CaseStore
from ivr.ops.flags import Role
from ivr.ops.service import Actor as OpsActor
from ivr.store.db import Database
from ivr.surveys.tables import SurveyRow
from ivr.text.analysis import TextAnalysisWorker
from ivr.text.case_link import case_priority_raiser
from ivr.text.keyword_store import KeywordStore
from tests.unit.eventually import eventually

FRIDAY = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
ADMIN = OpsActor("token:ada", Role.ADMIN)
AGENT = Actor("ana", "operator")


class Clock:
    def __init__(self) -> None:
        self.now = FRIDAY

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def config() -> CasesConfig:
    return load_cases_config()


@pytest.fixture
def cases(db: Database, config: CasesConfig) -> CaseStore:
    return CaseStore(db, config.calendar_for, config, clock=Clock())


@pytest.fixture
async def keywords(db: Database) -> KeywordStore:
    store = KeywordStore(db, clock=Clock())
    legal = await store.create_list(ADMIN, "Jurídico", "", "plan")
    await store.add_keyword(ADMIN, legal.id, "tutela", raises_priority=True, reason="plan")
    await store.add_keyword(
        ADMIN, legal.id, "Superintendencia", raises_priority=True, reason="plan"
    )
    await store.add_keyword(ADMIN, legal.id, "demora", raises_priority=False, reason="plan")
    return store


def new_case(affiliate: str, summary: str, specialty: str = "general") -> NewCase:
    return NewCase(
        affiliate_id=affiliate, specialty=specialty, service_id="mg_first", cups="890201",
        site_id="norte", channel="voice", summary=summary, journey_id=str(uuid.uuid4()),
        contact_email="paciente@example.org", contact_phone="+573001234567", consent=True,
        search_evidence=[{"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0,
                          "at": FRIDAY.isoformat()}],
    )  # fmt: skip


def worker(db: Database, keywords: KeywordStore, cases: CaseStore, *, surveys: bool = False) -> TextAnalysisWorker:  # fmt: skip
    return TextAnalysisWorker(db, keywords, case_priority_raiser(cases), surveys=surveys,
                              idle_wait=0.05, clock=Clock())  # fmt: skip


async def test_each_case_text_is_analysed_once_and_a_keyword_raises_its_priority(
    db: Database, keywords: KeywordStore, cases: CaseStore
) -> None:
    legal = await cases.file(
        new_case("1001", "Nadie responde, voy a poner una TUTELA por la demora")
    )
    slow = await cases.file(new_case("1002", "Qué demora para una cita"))
    calm = await cases.file(new_case("1003", "Necesito una cita de control, gracias"))
    scan = worker(db, keywords, cases)

    assert await scan.run_once() == 3
    assert await scan.run_once() == 0  # one analysis per case

    raised = await cases.get(legal.number)
    assert raised is not None and (raised.priority, raised.priority_reason) == (
        "high",
        "palabra clave: tutela",
    )
    [event] = [e for e in await cases.events(legal.number) if e.action == "priority_raised"]
    assert (event.actor, event.role) == (SYSTEM.name, SYSTEM.role)
    for other in (slow, calm):  # "demora" is a keyword that does not raise
        found = await cases.get(other.number)
        assert found is not None and found.priority == "normal"

    legal_analysis = await scan.analysis("case", legal.id)
    assert legal_analysis is not None and legal_analysis.sentiment.label == "negativo"
    assert [m.keyword.phrase for m in legal_analysis.keywords] == ["tutela", "demora"]
    assert legal_analysis.sentiment.decisive_words[0].text == "Nadie responde"
    labels = {c.id: (await scan.analysis("case", c.id)).sentiment.label for c in (slow, calm)}  # type: ignore[union-attr]
    assert labels == {slow.id: "negativo", calm.id: "neutral"}


async def test_a_closed_case_is_analysed_but_not_raised(
    db: Database, keywords: KeywordStore, cases: CaseStore
) -> None:
    case = await cases.file(new_case("1004", "Me quejo ante la Superintendencia"))
    await cases.close(case.number, resolution="Se asignó la cita", actor=AGENT)
    scan = worker(db, keywords, cases)
    assert await scan.run_once() == 1
    closed = await cases.get(case.number)
    assert closed is not None and closed.priority == "normal"
    stored = await scan.analysis("case", case.id)
    assert stored is not None and [m.keyword.phrase for m in stored.keywords] == [
        "Superintendencia"
    ]


async def test_raise_priority_is_called_with_the_number_and_the_keywords(
    db: Database, keywords: KeywordStore, cases: CaseStore
) -> None:
    calls: list[tuple[str, str]] = []

    async def record(number: str, reason: str) -> None:
        calls.append((number, reason))

    case = await cases.file(new_case("1005", "Superintendencia y tutela ya"))
    await cases.file(new_case("1006", "gracias por todo"))
    scan = TextAnalysisWorker(db, keywords, record, surveys=False, clock=Clock())
    await scan.run_once()
    assert calls == [(case.number, "palabra clave: Superintendencia, tutela")]


async def add_survey(db: Database, case_id: str | None, comment: str | None) -> str:
    """An answered survey as the surveys part stores it (ivr.surveys.tables)."""
    survey_id = str(uuid.uuid4())
    async with db.sessions.begin() as session:
        session.add(SurveyRow(
            id=survey_id, kind="case" if case_id else "call", case_id=case_id, channel="whatsapp",
            state="answered", step="done", rating=2, comment=comment, attempts=0,
            created_at=FRIDAY, sent_at=FRIDAY, answered_at=FRIDAY + timedelta(hours=1),
        ))  # fmt: skip
    return survey_id


async def test_survey_comments_are_analysed_and_raise_an_open_case(
    db: Database, keywords: KeywordStore, cases: CaseStore
) -> None:
    open_case = await cases.file(new_case("1007", "Cita de pediatría", specialty="pediatrics"))
    closed_case = await cases.file(new_case("1008", "Cita general"))
    await cases.close(closed_case.number, resolution="ok", actor=AGENT)
    angry = await add_survey(db, open_case.id, "pésimo, pondré tutela")
    late = await add_survey(db, closed_case.id, "una tutela les llega")
    thanks = await add_survey(db, None, "Excelente atención, muchas gracias")
    await add_survey(db, None, None)  # no comment: nothing to analyse
    scan = worker(db, keywords, cases, surveys=True)
    assert await scan.run_once() == 5  # two case texts, three comments
    assert await scan.run_once() == 0
    raised = await cases.get(open_case.number)
    assert raised is not None and raised.priority == "high"
    untouched = await cases.get(closed_case.number)
    assert untouched is not None and untouched.priority == "normal"
    labels = {s: (await scan.analysis("survey", s)).sentiment.label for s in (angry, late, thanks)}  # type: ignore[union-attr]
    assert labels == {angry: "negativo", late: "negativo", thanks: "positivo"}


async def test_the_running_worker_picks_up_a_new_case_when_poked(
    db: Database, keywords: KeywordStore, cases: CaseStore
) -> None:
    scan = worker(db, keywords, cases)
    scan.idle_wait = 30  # only the poke can wake it in time
    task = asyncio.create_task(scan.run())
    try:
        await asyncio.sleep(0)
        case = await cases.file(new_case("1009", "voy a poner tutela"))
        scan.poke()
        found: list[object] = []

        async def analysed() -> None:
            found.append(await scan.analysis("case", case.id))

        async with asyncio.timeout(10):
            while not (found and found[-1] is not None):
                await analysed()
                await asyncio.sleep(0.02)  # polling the database with a deadline
        raised = await cases.get(case.number)
        assert raised is not None and raised.priority == "high"
    finally:
        scan.stop()
        await asyncio.wait_for(task, 5)
    await eventually(task.done)
