"""The SLA monitor on a real database, a fake clock and scripted calls.

The kinds of fault: a clock that counts a weekend or a holiday, a warning
given twice or never, a ladder that calls twice (two monitors, a restart),
calls in quiet hours, stalls on a dead call, or goes on after an
acknowledgement. The clock is run across the 2026-12-08 holiday weekend
(Friday 4 → Monday 7 → Tuesday 8, Inmaculada Concepción → Wednesday 9), on
SQLite and, when CITAS_TEST_PG_URL is set, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.model import SYSTEM, NewCase
from ivr.cases.store import CaseStore
from ivr.cases.tables import CaseEventRow
from ivr.escalation.monitor import ALERT_OVERRUN, ALERT_UNACKNOWLEDGED, SlaMonitor
from ivr.escalation.order import CallOrder, CallOutcome
from ivr.escalation.tables import (
    ACKNOWLEDGED,
    FAILED,
    NO_ANSWER,
    SKIPPED_QUIET_HOURS,
    EscalationAttemptRow,
)
from ivr.ops.tables import AlertRow
from ivr.store.db import Database
from tests.unit.databases import BACKENDS, migrated_database
from tests.unit.eventually import eventually

BOGOTA = ZoneInfo("America/Bogota")
CASES_YAML = """
answer_within_business_days: 5
default_group: citas
groups:
  citas:
    name: Agendamiento de citas
    working_hours: {mon-fri: ["07:00-17:00"]}
    sla: {first_response: 16h, resolution: 5d}
    quiet_hours: ["20:00-07:00"]
    warnings: [50, 75, 100]
    ladder:
      - {person: lider_citas, wait: 10m}
      - {person: coordinadora, wait: 10m}
people:
  lider_citas: {name: Líder de citas, extension: "6001"}
  coordinadora: {name: Coordinadora, extension: "6002"}
"""


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=BOGOTA).astimezone(UTC)


FRIDAY_4PM = local(4, 16)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ScriptedCalls:
    """Each person's outcome; ``hold`` keeps a call going until released."""

    def __init__(self, clock: Clock, outcomes: dict[str, str]) -> None:
        self.clock, self.outcomes = clock, outcomes
        self.orders: list[CallOrder] = []
        self.hold: asyncio.Event | None = None

    async def place(self, order: CallOrder) -> CallOutcome:
        self.orders.append(order)
        if self.hold is not None:
            await self.hold.wait()
        result = self.outcomes.get(order.person, NO_ANSWER)
        if result == ACKNOWLEDGED:
            return CallOutcome(ACKNOWLEDGED, self.clock(), self.clock(), "Marcó 1.")
        return CallOutcome(result, detail="causa 19 (Normal, unspecified)")


@pytest.fixture
def config(tmp_path: Path) -> CasesConfig:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES_YAML, encoding="utf-8")
    return load_cases_config(path)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def clock() -> Clock:
    return Clock(FRIDAY_4PM)


async def file_case(db: Database, config: CasesConfig, clock: Clock) -> str:
    store = CaseStore(db, config.calendar_for, config, clock=clock)
    case = await store.file(NewCase(
        affiliate_id=f"1{uuid.uuid4().int % 10**9:09d}", specialty="general",
        service_id="general_first", cups="890201", site_id="norte", channel="voice",
        summary="Sin cita tras cambiar franja y médico.",
    ))  # fmt: skip
    return case.number


def monitor(db: Database, config: CasesConfig, calls: ScriptedCalls, clock: Clock) -> SlaMonitor:
    return SlaMonitor(CaseStore(db, config.calendar_for, config), calls, clock=clock)


async def warnings(db: Database) -> list[tuple[str, int]]:
    async def op(session):  # type: ignore[no-untyped-def]
        rows = await session.execute(
            select(CaseEventRow).where(CaseEventRow.action == "sla_warning").order_by(CaseEventRow.id)
        )
        return [(r.new["clock"], r.new["percent"]) for r in rows.scalars()]

    return await db.run("read warnings", op)  # type: ignore[no-any-return]


async def attempts(db: Database) -> list[tuple[int, str, str, str | None]]:
    async def op(session):  # type: ignore[no-untyped-def]
        rows = await session.execute(
            select(EscalationAttemptRow).order_by(EscalationAttemptRow.started_at, EscalationAttemptRow.step)
        )
        return [(r.step, r.kind, r.person, r.result) for r in rows.scalars()]

    return await db.run("read attempts", op)  # type: ignore[no-any-return]


async def alerts(db: Database) -> list[str]:
    async def op(session):  # type: ignore[no-untyped-def]
        return [r.kind for r in (await session.execute(select(AlertRow).order_by(AlertRow.id))).scalars()]

    return await db.run("read alerts", op)  # type: ignore[no-any-return]


async def test_the_first_response_clock_skips_the_weekend_and_the_holiday(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    """16 business hours from Friday 16:00: 1 h on Friday, none on Saturday or Sunday,
    10 h on Monday, none on Tuesday 8 (holiday), 5 h on Wednesday: due Wednesday 12:00.
    50 % (8 h) is Monday 14:00, 75 % (12 h) Wednesday 08:00."""
    await file_case(db, config, clock)
    calls = ScriptedCalls(clock, {"lider_citas": ACKNOWLEDGED})
    sla = monitor(db, config, calls, clock)
    fr = "first_response"
    timeline = [
        (local(5, 12), []),  # Saturday: 1 h
        (local(7, 13, 59), []),  # Monday: 7 h 59
        (local(7, 14), [50]),  # 8 h
        (local(8, 16), [50]),  # Tuesday 8, the holiday: still 11 h (69 %)
        (local(9, 7, 59), [50]),  # Wednesday: 11 h 59
        (local(9, 8), [50, 75]),  # 12 h
        (local(9, 11, 59), [50, 75]),
        (local(9, 12), [50, 75, 100]),  # 16 h: the clock ran out
        (local(9, 12, 30), [50, 75, 100]),  # each warning once
    ]
    for instant, expected in timeline:
        clock.now = instant
        await sla.tick()
        await sla.idle()
        assert await warnings(db) == [(fr, p) for p in expected], instant
        assert len(calls.orders) == (1 if instant >= local(9, 12) else 0), instant

    order = calls.orders[0]
    assert (order.person, order.extension, order.clock, order.step) == ("lider_citas", "6001", fr, 0)
    assert order.summary.left == timedelta(hours=51 - 16)  # to the resolution due, Mon 14 17:00
    assert await alerts(db) == [ALERT_OVERRUN]
    assert await attempts(db) == [(0, "call", "lider_citas", ACKNOWLEDGED)]


async def overrun_case(db: Database, config: CasesConfig, clock: Clock) -> str:
    number = await file_case(db, config, clock)
    clock.now = local(9, 12)  # the first-response clock runs out (test above)
    return number


async def test_no_answer_moves_to_the_next_person_after_the_wait_and_1_stops_the_ladder(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    await overrun_case(db, config, clock)
    calls = ScriptedCalls(clock, {"lider_citas": NO_ANSWER, "coordinadora": ACKNOWLEDGED})
    sla = monitor(db, config, calls, clock)
    for minutes in (0, 5, 9, 10, 11, 30, 59):
        clock.now = local(9, 12, minutes)
        await sla.tick()
        await sla.idle()
        if minutes < 10:
            assert [o.person for o in calls.orders] == ["lider_citas"], minutes

    assert [o.person for o in calls.orders] == ["lider_citas", "coordinadora"]
    assert await attempts(db) == [(0, "call", "lider_citas", NO_ANSWER),
                                  (1, "call", "coordinadora", ACKNOWLEDGED)]  # fmt: skip
    acked = await events_named(db, "escalation_acknowledged")
    assert [(e.actor, e.new["person"]) for e in acked] == [("coordinadora", "coordinadora")]


async def test_nobody_acknowledges_the_ladder_ends_with_one_alert(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    await overrun_case(db, config, clock)
    calls = ScriptedCalls(clock, {})
    sla = monitor(db, config, calls, clock)
    for minutes in range(0, 40, 5):
        clock.now = local(9, 12, minutes)
        await sla.tick()
        await sla.idle()

    assert [o.step for o in calls.orders] == [0, 1]
    assert await alerts(db) == [ALERT_OVERRUN, ALERT_UNACKNOWLEDGED]
    assert len(await events_named(db, "escalation_exhausted")) == 1


async def test_quiet_hours_skip_once_and_call_when_they_end(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    await overrun_case(db, config, clock)
    calls = ScriptedCalls(clock, {"lider_citas": ACKNOWLEDGED})
    sla = monitor(db, config, calls, clock)
    for instant in (local(9, 20), local(9, 23), local(10, 6, 59), local(10, 7)):
        clock.now = instant  # overrun noticed at 20:00 (the monitor was down until then)
        await sla.tick()
        await sla.idle()
        assert len(calls.orders) == (1 if instant == local(10, 7) else 0), instant

    assert await attempts(db) == [(0, "skip", "lider_citas", SKIPPED_QUIET_HOURS),
                                  (0, "call", "lider_citas", ACKNOWLEDGED)]  # fmt: skip


async def test_two_monitors_at_once_call_once(db: Database, config: CasesConfig, clock: Clock) -> None:
    await overrun_case(db, config, clock)
    calls_a, calls_b = ScriptedCalls(clock, {}), ScriptedCalls(clock, {})
    a, b = monitor(db, config, calls_a, clock), monitor(db, config, calls_b, clock)

    await asyncio.gather(a.tick(), b.tick())
    await asyncio.gather(a.idle(), b.idle())

    assert len(calls_a.orders) + len(calls_b.orders) == 1
    assert len(await warnings(db)) == 3  # 50, 75 and 100 once, whoever wrote them
    assert [k for _, k, _, _ in await attempts(db)].count("call") == 1


async def test_a_restart_during_a_call_does_not_call_again_and_a_dead_call_is_given_up(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    await overrun_case(db, config, clock)
    first = ScriptedCalls(clock, {})
    first.hold = asyncio.Event()  # the call is still going when the controller dies
    before = monitor(db, config, first, clock)
    await before.tick()
    await asyncio.sleep(0)
    running = asyncio.create_task(before.idle())
    after_calls = ScriptedCalls(clock, {"coordinadora": ACKNOWLEDGED})
    after = monitor(db, config, after_calls, clock)  # the restarted controller

    clock.now = local(9, 12, 2)
    await after.tick()
    assert after_calls.orders == []  # step 0 is claimed: not called twice
    clock.now = local(9, 12, 5)  # STALE_CALL after the call was placed
    await after.tick()
    assert (await attempts(db))[0][3] == FAILED
    clock.now = local(9, 12, 10)
    await after.tick()
    await after.idle()

    assert [o.person for o in after_calls.orders] == ["coordinadora"]
    for task in list(before._calls):  # the dead controller's call, ended for the test's sake
        task.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert [r for _, _, _, r in await attempts(db)] == [FAILED, ACKNOWLEDGED]


async def test_an_answer_stops_the_first_response_clock_no_more_warnings_nor_calls(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    number = await file_case(db, config, clock)
    sla = monitor(db, config, ScriptedCalls(clock, {}), clock)
    clock.now = local(7, 14)
    await sla.tick()
    store = CaseStore(db, config.calendar_for, config, clock=clock)
    await store.record_answer(number, text="Le asignamos cita el jueves.", channels=["email"], actor=SYSTEM)
    clock.now = local(9, 12)  # when the first response would have run out
    await sla.tick()
    await sla.idle()

    assert await warnings(db) == [("first_response", 50)]
    assert await attempts(db) == []


async def events_named(db: Database, action: str) -> list[CaseEventRow]:
    async def op(session):  # type: ignore[no-untyped-def]
        rows = await session.execute(select(CaseEventRow).where(CaseEventRow.action == action))
        return list(rows.scalars())

    return await db.run("read events", op)  # type: ignore[no-any-return]


async def test_a_case_of_a_group_cases_yaml_no_longer_has_is_left_alone(
    db: Database, config: CasesConfig, clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await file_case(db, config, clock)
    other = tmp_path / "other.yaml"
    other.write_text(CASES_YAML.replace("default_group: citas", "default_group: otro")
                     .replace("  citas:", "  otro:"), encoding="utf-8")  # fmt: skip
    calls = ScriptedCalls(clock, {})
    sla = monitor(db, load_cases_config(other), calls, clock)
    for day in (9, 10):
        clock.now = local(day, 12)
        await sla.tick()

    assert calls.orders == [] and await warnings(db) == []
    assert sum("does not define" in r.message for r in caplog.records) == 1


async def test_stopping_the_monitor_ends_its_call_and_records_it_failed(
    db: Database, config: CasesConfig, clock: Clock
) -> None:
    await overrun_case(db, config, clock)
    calls = ScriptedCalls(clock, {})
    calls.hold = asyncio.Event()  # the person is still listening when ivr serve stops
    sla = SlaMonitor(CaseStore(db, config.calendar_for, config), calls, clock=clock, interval_s=0.01)
    running = asyncio.create_task(sla.run())
    await eventually(lambda: bool(calls.orders), within=5)

    sla.stop()
    await asyncio.wait_for(running, 5)

    assert await attempts(db) == [(0, "call", "lider_citas", FAILED)]
    [result] = await events_named(db, "escalation_result")
    assert result.new["result"] == FAILED and "detenido" in result.detail
