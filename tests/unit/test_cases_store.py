"""CaseStore on a real database (SQLite, and PostgreSQL when CITAS_TEST_PG_URL is set).

The kinds of fault: a state change without its event (or the reverse), two
open cases for one affiliate and specialty, a number given twice, a change on
a stale view that overwrites another's, a transition the life of a case does
not allow. Each is tested over its range: every transition of the state table,
concurrent filings, the index written directly (not through the store).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from ivr.cases.calendar import BOGOTA
from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.model import SYSTEM, Actor, NewCase
from ivr.cases.number import is_valid
from ivr.cases.store import CaseConflict, CaseNotFound, CaseStore, OpenCaseExists
from ivr.cases.tables import CaseEventRow, CaseRow
from ivr.masking import mask_number
from ivr.store.db import Database, alembic_config
from ivr.store.models import Base

# Friday 4 December 2026, 10:00 in Bogotá: Tuesday 8 December is a holiday.
FRIDAY = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
OPERATOR = Actor("ana", "operator")
CASE_TABLES = {"cases", "case_events", "case_sequence"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def config() -> CasesConfig:
    return load_cases_config()


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY)


@pytest.fixture
def store(db: Database, config: CasesConfig, clock: Clock) -> CaseStore:
    return CaseStore(db, config.calendar_for, config, clock=clock)


def new_case(affiliate: str = "1012345678", specialty: str = "general", **kw: object) -> NewCase:
    fields: dict[str, object] = dict(
        affiliate_id=affiliate, specialty=specialty, service_id="mg_first", cups="890201",
        site_id="norte", channel="voice", summary="Cita de medicina general; no hay cupos.",
        journey_id=str(uuid.uuid4()), contact_email="paciente@example.org",
        contact_phone="+573001234567", consent=True,
        search_evidence=[
            {"time_band": "morning", "exclude_doctor_id": None, "found": 0, "at": FRIDAY.isoformat()},
            {"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0, "at": FRIDAY.isoformat()},
        ],
    )  # fmt: skip
    fields.update(kw)
    return NewCase(**fields)  # type: ignore[arg-type]


# --- filing ------------------------------------------------------------------------------
async def test_filing_sets_number_promise_clocks_and_its_event(store: CaseStore) -> None:
    case = await store.file(new_case())
    assert case.number == "0000013" and is_valid(case.number)
    assert case.state == "open" and case.group == "citas" and case.version == 1
    # 5 business days after Friday 4 Dec: Mon 7, (Tue 8 holiday), Wed 9, Thu 10, Fri 11, Mon 14;
    # the end of the day's working hours, 17:00 in Bogotá.
    assert case.due_at == datetime(2026, 12, 14, 22, 0, tzinfo=UTC)
    assert case.resolution_due_at == case.due_at  # resolution: 5d
    # 8 h of business time from Friday 10:00: 7 h on Friday, 1 h on Saturday from 08:00.
    assert case.first_response_due_at == datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    assert case.consent_at == FRIDAY and case.filed_at == FRIDAY
    assert case.search_evidence[1]["exclude_doctor_id"] == "d1"
    events = await store.events(case.number)
    assert [(e.action, e.actor, e.role) for e in events] == [("filed", "sistema", "system")]
    assert events[0].new["number"] == case.number
    assert await store.get(case.number) == case
    assert await store.open_for("1012345678", "general") == case
    assert await store.open_for("1012345678", "pediatrics") is None


async def test_numbers_follow_the_sequence_and_a_refused_filing_gives_its_number_back(
    store: CaseStore,
) -> None:
    first = await store.file(new_case("1"))
    with pytest.raises(OpenCaseExists) as refused:
        await store.file(new_case("1"))
    assert refused.value.existing == first
    second = await store.file(new_case("2"))
    third = await store.file(new_case("1", "pediatrics"))
    assert [c.number[:6] for c in (first, second, third)] == ["000001", "000002", "000003"]
    assert all(is_valid(c.number) for c in (first, second, third))


async def test_a_closed_case_lets_the_affiliate_file_again(store: CaseStore) -> None:
    first = await store.file(new_case())
    await store.close(first.number, resolution="Se asignó cita por agenda extra.", actor=OPERATOR)
    second = await store.file(new_case())
    assert second.number != first.number and second.state == "open"
    assert await store.open_for("1012345678", "general") == second


@pytest.mark.parametrize(
    "field,value", [("channel", "fax"), ("priority", "urgent"), ("group", "nadie")]
)
async def test_filing_refuses_unknown_values(store: CaseStore, field: str, value: str) -> None:
    with pytest.raises(ValueError):
        await store.file(new_case(**{field: value}))
    assert await store.list() == []


BAD_EVIDENCE = [
    {"time_band": "night", "exclude_doctor_id": None, "found": 0, "at": "2026-12-04T15:00:00+00:00"},
    {"time_band": None, "exclude_doctor_id": 7, "found": 0, "at": "2026-12-04T15:00:00+00:00"},
    {"time_band": None, "exclude_doctor_id": None, "found": -1, "at": "2026-12-04T15:00:00+00:00"},
    {"time_band": None, "exclude_doctor_id": None, "found": True, "at": "2026-12-04T15:00:00+00:00"},
    {"time_band": None, "exclude_doctor_id": None, "found": 0},
    {"time_band": None, "exclude_doctor_id": None, "found": 0, "at": datetime(2026, 12, 4)},
    {"time_band": None, "exclude_doctor_id": None, "found": 0, "at": "x", "extra": {1, 2}},
]  # fmt: skip


@pytest.mark.parametrize("entry", BAD_EVIDENCE)
async def test_evidence_the_back_office_could_not_read_is_refused(
    store: CaseStore, entry: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="search_evidence"):
        await store.file(new_case(search_evidence=[entry]))
    assert await store.list() == []


async def test_an_evidence_instant_is_stored_as_iso_text(store: CaseStore) -> None:
    at = datetime(2026, 12, 4, 10, 0, tzinfo=BOGOTA)
    entry = {"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0, "at": at}
    case = await store.file(new_case(search_evidence=[entry]))
    assert case.search_evidence == [{**entry, "at": "2026-12-04T15:00:00+00:00"}]


async def test_concurrent_filings_for_one_affiliate_and_specialty_make_one_case(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    # Separate stores (as separate processes would be) filing at once.
    stores = [CaseStore(db, config.calendar_for, config, clock=clock) for _ in range(4)]
    results = await asyncio.gather(
        *(s.file(new_case(journey_id=str(i))) for i, s in enumerate(stores)),
        return_exceptions=True,
    )
    filed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, OpenCaseExists)]
    assert len(filed) == 1 and len(refused) == 3, results
    assert all(r.existing == filed[0] for r in refused)
    # Different affiliates at once: each its own number, none twice.
    many = await asyncio.gather(*(stores[i % 4].file(new_case(f"9{i}")) for i in range(8)))
    numbers = [c.number for c in many] + [filed[0].number]
    assert len(set(numbers)) == 9 and all(is_valid(n) for n in numbers)


async def test_the_database_itself_refuses_a_second_open_case(
    store: CaseStore, db: Database
) -> None:
    # Written around the store (no sequence, no check): the partial unique index holds.
    case = await store.file(new_case())
    row = {c.name: getattr(await _row(db, case.number), c.name) for c in CaseRow.__table__.columns}
    row.update(id=str(uuid.uuid4()), number="0000998", seq=998)
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert(CaseRow.__table__).values(**row))
    # Closed cases do not count: the same row closed goes in.
    row.update(state="closed")
    async with db.engine.begin() as conn:
        await conn.execute(insert(CaseRow.__table__).values(**row))


async def _row(db: Database, number: str) -> CaseRow:
    async with db.sessions() as session:
        found = await session.scalar(select(CaseRow).where(CaseRow.number == number))
        assert found is not None
        return found


# --- the life of a case ------------------------------------------------------------------
async def test_assign_answer_close_each_with_its_event(store: CaseStore, clock: Clock) -> None:
    case = await store.file(new_case())
    clock.now += timedelta(hours=1)
    assigned = await store.assign(case.number, to="ana", group=None, actor=OPERATOR)
    assert (assigned.state, assigned.assignee, assigned.version) == ("assigned", "ana", 2)
    clock.now += timedelta(hours=1)
    answered = await store.record_answer(
        case.number,
        text="Le asignamos cita el 10 de diciembre.",
        channels=["email"],
        actor=OPERATOR,
    )
    assert answered.state == "answered"
    assert answered.first_response_at == answered.answered_at == FRIDAY + timedelta(hours=2)
    clock.now += timedelta(hours=1)
    again = await store.record_answer(
        case.number, text="Corrección.", channels=["whatsapp"], actor=OPERATOR
    )
    assert again.first_response_at == FRIDAY + timedelta(hours=2)
    assert again.answered_at == FRIDAY + timedelta(hours=3)
    closed = await store.close(case.number, resolution="Cita asignada.", actor=OPERATOR)
    assert (closed.state, closed.closed_by, closed.resolution) == (
        "closed",
        "ana",
        "Cita asignada.",
    )
    events = await store.events(case.number)
    assert [e.action for e in events] == ["filed", "assigned", "answered", "answered", "closed"]
    assert events[1].old == {"assignee": None, "group": "citas", "state": "open"}
    assert events[1].new == {"assignee": "ana", "group": "citas", "state": "assigned"}
    assert events[2].new["channels"] == ["email"] and events[2].detail.startswith("Le asignamos")
    assert all(e.actor == "ana" for e in events[1:])
    assert await store.get(case.number) == closed


# Every (state, operation) pair: allowed or CaseConflict, and the state it leads to.
TRANSITIONS = [
    ("open", "assign", "assigned"), ("open", "unassign", "open"), ("open", "answer", "answered"),
    ("open", "close", "closed"), ("open", "raise", "open"),
    ("assigned", "assign", "assigned"), ("assigned", "unassign", "open"),
    ("assigned", "answer", "answered"), ("assigned", "close", "closed"), ("assigned", "raise", "assigned"),
    ("answered", "assign", "answered"), ("answered", "unassign", "answered"),
    ("answered", "answer", "answered"), ("answered", "close", "closed"), ("answered", "raise", "answered"),
    ("closed", "assign", None), ("closed", "unassign", None), ("closed", "answer", None),
    ("closed", "close", None), ("closed", "raise", None),
]  # fmt: skip


async def _bring_to(store: CaseStore, state: str) -> str:
    number = (await store.file(new_case())).number
    if state == "assigned":
        await store.assign(number, to="ana", group=None, actor=OPERATOR)
    elif state == "answered":
        await store.record_answer(number, text="Respuesta.", channels=["email"], actor=OPERATOR)
    elif state == "closed":
        await store.close(number, resolution="Resuelto.", actor=OPERATOR)
    return number


async def _do(store: CaseStore, operation: str, number: str) -> object:
    match operation:
        case "assign":
            return await store.assign(number, to="luis", group="citas", actor=OPERATOR)
        case "unassign":
            return await store.assign(number, to=None, group=None, actor=OPERATOR)
        case "answer":
            return await store.record_answer(
                number, text="Otra.", channels=["email"], actor=OPERATOR
            )
        case "close":
            return await store.close(number, resolution="Cerrado.", actor=OPERATOR)
        case "raise":
            return await store.raise_priority(number, reason="palabra: tutela", actor=SYSTEM)
    raise AssertionError(operation)


@pytest.mark.parametrize("state,operation,after", TRANSITIONS)
async def test_every_transition_is_allowed_or_refused_with_nothing_written(
    store: CaseStore, state: str, operation: str, after: str | None
) -> None:
    number = await _bring_to(store, state)
    before, events_before = await store.get(number), await store.events(number)
    if after is None:
        with pytest.raises(CaseConflict):
            await _do(store, operation, number)
        assert await store.get(number) == before
        assert await store.events(number) == events_before
        return
    await _do(store, operation, number)
    changed = await store.get(number)
    assert changed is not None and before is not None
    assert changed.state == after and changed.version == before.version + 1
    assert len(await store.events(number)) == len(events_before) + 1


async def test_a_stale_version_is_refused(store: CaseStore) -> None:
    case = await store.file(new_case())
    await store.assign(case.number, to="ana", group=None, actor=OPERATOR)
    with pytest.raises(CaseConflict):
        await store.close(
            case.number, resolution="x", actor=OPERATOR, expected_version=case.version
        )
    closed = await store.close(case.number, resolution="x", actor=OPERATOR, expected_version=2)
    assert closed.version == 3


async def test_concurrent_changes_one_wins_the_other_conflicts(store: CaseStore) -> None:
    case = await store.file(new_case())
    results = await asyncio.gather(
        store.close(case.number, resolution="a", actor=OPERATOR, expected_version=1),
        store.close(
            case.number, resolution="b", actor=Actor("luis", "operator"), expected_version=1
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, CaseConflict) for r in results) == 1, results
    assert [e.action for e in await store.events(case.number)].count("closed") == 1


async def test_raise_priority_is_idempotent(store: CaseStore) -> None:
    case = await store.file(new_case())
    raised = await store.raise_priority(case.number, reason="palabra clave: tutela", actor=SYSTEM)
    assert (raised.priority, raised.priority_reason) == ("high", "palabra clave: tutela")
    again = await store.raise_priority(case.number, reason="otra", actor=SYSTEM)
    assert again == raised
    assert [e.action for e in await store.events(case.number)] == ["filed", "priority_raised"]


async def test_concurrent_raises_write_one_event(store: CaseStore) -> None:
    # Two keyword matches at once (sentiment on a case text and a survey comment).
    case = await store.file(new_case())
    raised = await asyncio.gather(
        *(store.raise_priority(case.number, reason=f"palabra {i}", actor=SYSTEM) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, CaseConflict) or r.priority == "high" for r in raised), raised
    actions = [e.action for e in await store.events(case.number)]
    assert actions == ["filed", "priority_raised"]


async def test_unknown_numbers_and_bad_arguments(store: CaseStore) -> None:
    for call in (
        store.assign("0000013", to="a", group=None, actor=OPERATOR),
        store.close("0000013", resolution="x", actor=OPERATOR),
        store.record_answer("0000013", text="x", channels=[], actor=OPERATOR),
        store.raise_priority("0000013", reason="x", actor=OPERATOR),
        store.add_event("0000013", "sla_warning", actor=SYSTEM),
        store.events("0000013"),
    ):
        with pytest.raises(CaseNotFound):
            await call
    assert await store.get("0000013") is None
    case = await store.file(new_case())
    with pytest.raises(ValueError):
        await store.close(case.number, resolution="  ", actor=OPERATOR)
    with pytest.raises(ValueError):
        await store.record_answer(case.number, text="", channels=["email"], actor=OPERATOR)
    with pytest.raises(ValueError):
        await store.assign(case.number, to=None, group="nadie", actor=OPERATOR)


async def test_other_parts_add_events(store: CaseStore) -> None:
    case = await store.file(new_case())
    await store.add_event(
        case.number, "sla_warning", actor=SYSTEM, new={"clock": "first_response", "percent": 50}
    )
    events = await store.events(case.number)
    assert events[-1].action == "sla_warning" and events[-1].new == {
        "clock": "first_response",
        "percent": 50,
    }
    assert (await store.get(case.number)) == case  # the case itself unchanged


# --- the queue ---------------------------------------------------------------------------
async def test_list_filters_and_orders_by_due(store: CaseStore, clock: Clock) -> None:
    a = await store.file(new_case("1", site_id="norte"))
    clock.now += timedelta(days=3)  # Monday 7 Dec: due later
    b = await store.file(
        new_case("2", site_id="sur", service_id="ped_first", specialty="pediatrics")
    )
    c = await store.file(new_case("3", site_id="norte"))
    await store.assign(c.number, to="ana", group=None, actor=OPERATOR)
    await store.close(a.number, resolution="ok", actor=OPERATOR)
    numbers = lambda cases: [x.number for x in cases]  # noqa: E731
    assert numbers(await store.list()) == [a.number, b.number, c.number]
    assert numbers(await store.list(state="open")) == [b.number]
    assert numbers(await store.list(state=["open", "assigned"])) == [b.number, c.number]
    assert numbers(await store.list(site_id="norte")) == [a.number, c.number]
    assert numbers(await store.list(service_id="ped_first")) == [b.number]
    assert numbers(await store.list(assignee="ana")) == [c.number]
    assert numbers(await store.list(group="citas", state="closed")) == [a.number]
    assert numbers(await store.list(due_before=b.due_at)) == [a.number]
    assert numbers(await store.list(limit=1, offset=1)) == [b.number]
    with pytest.raises(ValueError):
        await store.list(state="abierto")
    assert await store.count() == 3 and await store.count(site_id="norte") == 2
    assert await store.count(state=["open", "assigned"]) == 2


async def test_the_monitors_filters(store: CaseStore, clock: Clock) -> None:
    # What the SLA monitor, the surveys and the reports ask for.
    a = await store.file(new_case("1"))  # Friday 10:00: first response due Saturday 09:00
    clock.now += timedelta(days=3)  # Monday 7 Dec, 10:00
    b = await store.file(new_case("2"))
    await store.record_answer(b.number, text="Respuesta.", channels=["email"], actor=OPERATOR)
    clock.now += timedelta(hours=2)
    await store.close(a.number, resolution="ok", actor=OPERATOR)
    numbers = lambda cases: [x.number for x in cases]  # noqa: E731
    assert numbers(await store.list(without_first_response=True)) == [a.number]
    saturday = datetime(2026, 12, 5, 14, 0, 1, tzinfo=UTC)
    assert numbers(await store.list(first_response_due_before=saturday)) == [a.number]
    assert numbers(await store.list(resolution_due_before=b.resolution_due_at)) == [a.number]
    assert numbers(await store.list(filed_since=b.filed_at)) == [b.number]
    assert numbers(await store.list(filed_before=b.filed_at)) == [a.number]
    assert numbers(await store.list(closed_since=clock.now)) == [a.number]
    assert numbers(await store.list(closed_since=clock.now + timedelta(seconds=1))) == []
    assert await store.count(without_first_response=True, state="closed") == 1


# --- masking -----------------------------------------------------------------------------
async def test_as_json_masks_document_and_phones(store: CaseStore) -> None:
    case = await store.file(new_case(wa_id="573001234567", channel="chat"))
    shown = case.as_json()
    assert shown["affiliate_id"] == mask_number("1012345678") == "*******678"
    assert shown["contact_phone"] == mask_number("+573001234567")
    assert shown["wa_id"] == mask_number("573001234567")
    assert "1012345678" not in str(shown) and "3001234567" not in str(shown)
    assert shown["number"] == case.number and shown["due_at"] == case.due_at.isoformat()


async def test_logs_never_show_the_document(
    store: CaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="ivr.cases.store")
    case = await store.file(new_case())
    await store.close(case.number, resolution="ok", actor=OPERATOR)
    assert case.number in caplog.text and "1012345678" not in caplog.text


# --- migration 0007 ----------------------------------------------------------------------
def _case_diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        items = diff if isinstance(diff, list) else [diff]
        for item in items:
            if any(getattr(x, "name", None) in CASE_TABLES or
                   getattr(getattr(x, "table", None), "name", None) in CASE_TABLES
                   or x in CASE_TABLES for x in item[1:]):  # fmt: skip
                found.append(item)
    return found


async def test_migration_0007_matches_the_tables_and_downgrades(db: Database) -> None:
    import ivr.cases.tables  # noqa: F401  (the ORM tables in Base.metadata)

    async with db.engine.begin() as conn:
        assert await conn.run_sync(_case_diffs) == []
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0006"))
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert names & CASE_TABLES == set() and "conversations" in names
    await db.migrate()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CaseEventRow)) == 0
