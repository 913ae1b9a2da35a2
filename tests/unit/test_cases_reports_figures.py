"""The dashboard's figures (``ivr.cases.reports``) on SQLite and PostgreSQL, over real rows.

The kinds of fault: a time averaged in wall time instead of business time (the
weekend, a Colombian Monday holiday, the hours outside the group's working
hours counted); an SLA verdict on the wrong side of its due time, or a running
clock counted as missed (or as met); a figure placed under the wrong day, week,
month, group, site or person (UTC vs Bogotá), or counted twice, or counted
under a filter it does not match. Tested on observed cases written out by hand
(the holiday weekend of 13–17 November 2026), every SLA boundary alone, every
dimension and filter, and the range: random cases against a plain count.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.cases.calendar import BusinessCalendar
from ivr.cases.reports import (
    NO_GROUP,
    NO_PERSON,
    CaseReports,
    Dimension,
    Figures,
    InvalidQuery,
    ReportQuery,
    sla_verdict,
)
from ivr.store.db import Database
from tests.unit import cases_report_tables as t
from tests.unit.cases_report_seed import (
    BOGOTA,
    add_rows,
    analysis,
    attempt,
    case,
    empty,
    event,
    local,
    report_database,
    survey,
)
from tests.unit.databases import BACKENDS

HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)
NOW = local(2026, 11, 30, 12, 0)  # Monday 30 November 2026, noon in Bogotá
CALENDAR = BusinessCalendar.standard()  # Mon–Fri 07–17, Sat 08–12, Colombian holidays


def calendar_for(group: str) -> BusinessCalendar:
    return CALENDAR


def reports(db: Database, now: datetime = NOW) -> CaseReports:
    return CaseReports(db, calendar_for, BOGOTA, clock=lambda: now)


def query(
    start: datetime, end: datetime, by: Dimension = Dimension.DAY, **filters: Any
) -> ReportQuery:
    return ReportQuery(start, end, by, **filters)


NOVEMBER = (local(2026, 11, 1, 0, 0), local(2026, 12, 1, 0, 0))


# --- business time across the holiday weekend (the observed instance) --------------------------
def test_the_holiday_weekend_in_the_calendar() -> None:
    # Monday 16 November 2026 is a holiday (Independencia de Cartagena, 11 November moved
    # to Monday by Law 51 of 1983): the business time of the weekend is Friday's last hour
    # and Saturday's morning only.
    assert CALENDAR.is_holiday(datetime(2026, 11, 16).date())
    friday, tuesday = local(2026, 11, 13, 16, 0), local(2026, 11, 17, 9, 0)
    assert CALENDAR.business_time_between(friday, tuesday) == 7 * HOUR


@pytest.mark.parametrize("backend", BACKENDS)
async def test_averages_are_in_business_time_across_the_holiday_weekend(
    backend: str, tmp_path: Path
) -> None:
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, t.CASES, [
            # Fri 16:00 → Tue 09:00: 1 h Fri + 4 h Sat + 0 Sun + 0 Mon (holiday) + 2 h Tue = 7 h;
            # closed Wed 10:00: + 8 h more on Tue + 3 h Wed = 18 h.
            case(local(2026, 11, 13, 16, 0), first_response_at=local(2026, 11, 17, 9, 0),
                 closed_at=local(2026, 11, 18, 10, 0)),
            # Mon 30 08:00 → 10:30: 2.5 h; still open.
            case(local(2026, 11, 30, 8, 0), first_response_at=local(2026, 11, 30, 10, 30)),
            # Filed at night, answered the next morning at 07:30: 30 min of business time.
            case(local(2026, 11, 23, 21, 0), first_response_at=local(2026, 11, 24, 7, 30)),
        ])  # fmt: skip
        report = await reports(db).figures(query(*NOVEMBER, Dimension.MONTH))
    total = report.total
    assert total.cases == 3 and total.first_responses == 3 and total.resolutions == 1
    assert total.first_response_avg_s == (7 + 2.5 + 0.5) / 3 * 3600
    assert total.resolution_avg_s == 18 * 3600
    assert [r.key for r in report.rows] == ["2026-11"]
    assert report.rows[0].as_json() == total.as_json() | {"key": "2026-11"}


# --- SLA verdicts: every boundary ---------------------------------------------------------------
FILED = local(2026, 11, 26, 9, 0)
DUE = local(2026, 11, 26, 17, 0)
VERDICTS = [
    ("answered before due", FILED + HOUR, DUE, NOW, "met"),
    ("answered exactly at due", DUE, DUE, NOW, "met"),
    ("answered a tick late", DUE + TICK, DUE, NOW, "missed"),
    ("unanswered, due passed", None, DUE, DUE + TICK, "missed"),
    ("unanswered, now is the due time", None, DUE, DUE, "pending"),
    ("unanswered, not due yet", None, DUE, DUE - HOUR, "pending"),
]


@pytest.mark.parametrize(
    ("name", "done", "due", "now", "verdict"), VERDICTS, ids=[v[0] for v in VERDICTS]
)
def test_an_sla_verdict(
    name: str, done: datetime | None, due: datetime, now: datetime, verdict: str
) -> None:
    assert sla_verdict(done, due, now) == verdict


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("name", "done", "due", "now", "verdict"), VERDICTS, ids=[v[0] for v in VERDICTS]
)
async def test_each_sla_boundary_alone_on_the_database(
    backend: str, tmp_path: Path, name: str, done: datetime | None, due: datetime, now: datetime,
    verdict: str,
) -> None:  # fmt: skip
    async with report_database(backend, tmp_path) as db:
        # The resolution clock is met for every case (closed before its due), so the
        # case's verdict is the first-response clock's.
        closed = (done or now) if verdict != "pending" else None
        await add_rows(db, t.CASES, [case(FILED, first_response_due_at=due, first_response_at=done,
                                          closed_at=closed, resolution_due_at=now + HOUR)])  # fmt: skip
        total = (await reports(db, now).figures(query(*NOVEMBER))).total
    assert (total.first_response_met, total.first_response_missed) == (
        int(verdict == "met"), int(verdict == "missed"))  # fmt: skip
    expected_pct = {"met": 100.0, "missed": 0.0, "pending": None}[verdict]
    assert total.sla_met_pct == expected_pct


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sla_met_percent_over_cases(backend: str, tmp_path: Path) -> None:
    day = local(2026, 11, 26, 8, 0)
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, t.CASES, [
            case(day, first_response_at=day + HOUR, closed_at=day + 2 * HOUR),  # met, met: met
            case(day, first_response_at=day + 9 * HOUR, closed_at=day + 10 * HOUR),  # fr late: missed
            case(day, first_response_due_at=day + HOUR),  # unanswered, overdue: missed
            case(day, first_response_at=day + HOUR, resolution_due_at=NOW + HOUR),  # res running: pending
            case(day, first_response_due_at=NOW + HOUR, resolution_due_at=NOW + 2 * HOUR),  # pending
        ])  # fmt: skip
        total = (await reports(db).figures(query(*NOVEMBER))).total
    assert (total.sla_met, total.sla_missed) == (1, 2)
    assert total.sla_met_pct == 33.3
    assert (total.first_response_met, total.first_response_missed) == (2, 2)
    assert (total.resolution_met, total.resolution_missed) == (2, 0)


# --- dimensions and filters ---------------------------------------------------------------------
async def seed_spread(db: Database) -> dict[str, str]:
    """Cases across days, groups, sites and people; returns case ids by name."""
    rows = {
        "a": case(local(2026, 11, 2, 8), group="citas", site="norte", assignee="ana"),
        "b": case(local(2026, 11, 2, 18, 59), group="citas", site="sur", assignee="ana"),
        # 19:00 of Sunday 8 November in Bogotá is 00:00 UTC of Monday 9: it is still week 45.
        "c": case(local(2026, 11, 8, 19, 0), group="pqr", site="norte", assignee="luis"),
        "d": case(local(2026, 11, 9, 0, 0), group="pqr", site="norte", assignee=None),
        "e": case(local(2026, 11, 30, 11), group="citas", site="centro", assignee="luis"),
    }
    await add_rows(db, t.CASES, list(rows.values()))
    return {name: row["id"] for name, row in rows.items()}


EXPECTED_KEYS = {
    Dimension.DAY: {"2026-11-02": 2, "2026-11-08": 1, "2026-11-09": 1, "2026-11-30": 1},
    Dimension.WEEK: {"2026-W45": 3, "2026-W46": 1, "2026-W49": 1},
    Dimension.MONTH: {"2026-11": 5},
    Dimension.GROUP: {"citas": 3, "pqr": 2},
    Dimension.SITE: {"centro": 1, "norte": 3, "sur": 1},
    Dimension.PERSON: {"ana": 2, "luis": 2, NO_PERSON: 1},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("by", list(Dimension))
async def test_each_dimension_places_each_case_once(
    backend: str, tmp_path: Path, by: Dimension
) -> None:
    async with report_database(backend, tmp_path) as db:
        await seed_spread(db)
        report = await reports(db).figures(query(*NOVEMBER, by))
    counted = {r.key: r.cases for r in report.rows if r.cases}
    assert counted == EXPECTED_KEYS[by]
    assert report.total.cases == 5
    keys = [r.key for r in report.rows]
    assert keys == sorted(keys)
    if by is Dimension.DAY:  # every day of the period is listed, with or without cases
        assert len(keys) == 30 and keys[0] == "2026-11-01" and keys[-1] == "2026-11-30"
    if by is Dimension.WEEK:
        assert keys == ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("filters", "cases"),
    [({"group": "pqr"}, 2), ({"site_id": "norte"}, 3), ({"person": "ana"}, 2),
     ({"group": "citas", "site_id": "norte"}, 1), ({"group": "nadie"}, 0)],
)  # fmt: skip
async def test_filters(backend: str, tmp_path: Path, filters: dict[str, str], cases: int) -> None:
    async with report_database(backend, tmp_path) as db:
        await seed_spread(db)
        report = await reports(db).figures(query(*NOVEMBER, Dimension.SITE, **filters))
    assert report.total.cases == cases == sum(r.cases for r in report.rows)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_period_is_half_open(backend: str, tmp_path: Path) -> None:
    start, end = local(2026, 11, 9, 0, 0), local(2026, 11, 10, 0, 0)
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, t.CASES, [case(start - TICK), case(start), case(end - TICK), case(end)])
        report = await reports(db).figures(query(start, end))
    assert report.total.cases == 2 and [r.key for r in report.rows] == ["2026-11-09"]


# --- alerts, ratings, sentiment -------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_alerts_ratings_and_sentiment(backend: str, tmp_path: Path) -> None:
    async with report_database(backend, tmp_path) as db:
        ids = await seed_spread(db)
        at = local(2026, 11, 10, 9, 0)
        await add_rows(db, t.CASE_EVENTS, [
            event(ids["a"], at), event(ids["a"], at, percent=75), event(ids["c"], at),
            event(ids["a"], at, action="assigned"),  # not a warning
            event(ids["a"], local(2026, 12, 1, 0, 0)),  # outside the period
        ])  # fmt: skip
        await add_rows(db, t.ESCALATION_ATTEMPTS, [
            attempt(ids["a"], at, "lider_citas", "acknowledged", acknowledged=True),
            attempt(ids["a"], at, "lider_citas", "no_answer"),
            attempt(ids["c"], at, "coordinadora", "not_acknowledged"),
            attempt(ids["c"], at, "coordinadora", "skipped_quiet_hours"),  # no call placed
            attempt(ids["c"], at, "coordinadora", "suppressed_duplicate"),  # no call placed
        ])  # fmt: skip
        case_survey = survey(at, 9, case_id=ids["a"])
        await add_rows(db, t.SURVEYS, [
            case_survey, survey(at, 6, case_id=ids["c"], agent="marta"),
            survey(at, 3, kind="call", agent="marta"),  # a call's survey: no case
            survey(None, None, case_id=ids["b"], state="sent"),  # not answered
            survey(at, None, case_id=ids["b"], state="expired"),
        ])  # fmt: skip
        await add_rows(db, t.TEXT_ANALYSES, [
            analysis("case", ids["a"], -0.6, "negativo", at),
            analysis("case", ids["c"], 0.0, "neutral", at),
            analysis("survey", case_survey["id"], 0.8, "positivo", at),
        ])  # fmt: skip
        service = reports(db)
        total = (await service.figures(query(*NOVEMBER))).total
        by_group = {
            r.key: r for r in (await service.figures(query(*NOVEMBER, Dimension.GROUP))).rows
        }
        by_person = {
            r.key: r for r in (await service.figures(query(*NOVEMBER, Dimension.PERSON))).rows
        }
        only_marta = (await service.figures(query(*NOVEMBER, person="marta"))).total
        only_citas = (await service.figures(query(*NOVEMBER, group="citas"))).total
    assert (total.warnings, total.escalation_calls, total.acknowledged) == (3, 3, 1)
    assert (total.ratings, total.rating_avg) == (3, 6.0)
    assert (total.sentiment_analyses, total.sentiment_avg) == (3, round(0.2 / 3, 3))
    assert (total.negativo, total.neutral, total.positivo) == (1, 1, 1)
    assert (by_group["citas"].warnings, by_group["pqr"].warnings) == (2, 1)
    assert (by_group["citas"].ratings, by_group["pqr"].ratings, by_group[NO_GROUP].ratings) == (
        1,
        1,
        1,
    )
    assert by_group["citas"].positivo == 1 and by_group["citas"].negativo == 1
    # person: the person called, for escalation attempts; the survey's agent for ratings
    assert (
        by_person["lider_citas"].escalation_calls,
        by_person["coordinadora"].escalation_calls,
    ) == (2, 1)
    assert (by_person["marta"].ratings, by_person["marta"].rating_avg) == (2, 4.5)
    assert (only_marta.ratings, only_marta.escalation_calls, only_marta.cases) == (2, 0, 0)
    assert (only_citas.ratings, only_citas.warnings, only_citas.cases) == (1, 2, 3)


# --- the headline ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_headline_counts_today_in_local_time(backend: str, tmp_path: Path) -> None:
    midnight = local(2026, 11, 30, 0, 0)
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, t.CASES, [
            case(midnight - TICK),  # yesterday, open, not due
            case(midnight, resolution_due_at=NOW - TICK),  # today, overdue
            case(NOW - HOUR, closed_at=NOW - TICK, resolution_due_at=NOW - HOUR),  # today, closed
            case(local(2026, 11, 2, 8), resolution_due_at=NOW),  # due now: not overdue yet
        ])  # fmt: skip
        headline = await reports(db).headline()
    assert (headline.today, headline.open, headline.overdue) == (2, 3, 1)
    assert headline.as_json()["as_of"] == NOW.isoformat()


# --- refused questions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end"),
    [(NOVEMBER[0], NOVEMBER[0]), (NOVEMBER[1], NOVEMBER[0]),
     (NOVEMBER[0], NOVEMBER[0] + timedelta(days=401)), (datetime(2026, 11, 1), NOVEMBER[1])],
)  # fmt: skip
def test_a_question_that_cannot_be_answered_is_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidQuery):
        ReportQuery(start, end)


# --- the range: random cases against a plain count ------------------------------------------------
def random_cases(seed: int) -> tuple[list[dict[str, Any]], dict[str, Figures]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    want: dict[str, Figures] = {}
    for _ in range(rng.randint(10, 40)):
        filed = NOVEMBER[0] + timedelta(minutes=rng.randint(-600, 30 * 24 * 60 + 600))
        site = rng.choice(["norte", "sur", "centro"])
        fr_due = filed + timedelta(hours=rng.randint(1, 48))
        res_due = fr_due + timedelta(hours=rng.randint(0, 120))
        fr = filed + timedelta(minutes=rng.randint(1, 3000)) if rng.random() < 0.7 else None
        closed = fr + timedelta(minutes=rng.randint(0, 6000)) if fr and rng.random() < 0.6 else None
        rows.append(case(filed, site=site, first_response_due_at=fr_due, resolution_due_at=res_due,
                         first_response_at=fr, closed_at=closed))  # fmt: skip
        if not NOVEMBER[0] <= filed < NOVEMBER[1]:
            continue
        f = want.setdefault(site, Figures(site))
        f.cases += 1
        verdicts = [sla_verdict(fr, fr_due, NOW), sla_verdict(closed, res_due, NOW)]
        f.sla_met += verdicts == ["met", "met"]
        f.sla_missed += "missed" in verdicts
        if fr:
            f.first_responses += 1
            f._first_response_sum += CALENDAR.business_time_between(filed, fr).total_seconds()
        if closed:
            f.resolutions += 1
            f._resolution_sum += CALENDAR.business_time_between(filed, closed).total_seconds()
    return rows, {k: v.finish() for k, v in want.items()}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_random_cases_are_counted_as_a_plain_count_does(backend: str, tmp_path: Path) -> None:
    fields = ("cases", "first_responses", "first_response_avg_s", "resolutions", "resolution_avg_s",
              "sla_met", "sla_missed", "sla_met_pct")  # fmt: skip
    async with report_database(backend, tmp_path) as db:
        for seed in range(6):
            rows, want = random_cases(seed)
            await empty(db, "cases")
            await add_rows(db, t.CASES, rows)
            report = await reports(db).figures(query(*NOVEMBER, Dimension.SITE))
            got = {r.key: {f: getattr(r, f) for f in fields} for r in report.rows}
            assert got == {k: {f: getattr(v, f) for f in fields} for k, v in want.items()}, seed
            assert report.total.cases == sum(v.cases for v in want.values()) > 0


def test_time_keys_are_local_days() -> None:
    at = datetime(2026, 12, 1, 4, 59, tzinfo=UTC)  # 23:59 of 30 November in Bogotá
    from ivr.cases.reports import time_key

    assert time_key(at, Dimension.DAY, BOGOTA) == "2026-11-30"
    assert time_key(at + timedelta(minutes=1), Dimension.DAY, BOGOTA) == "2026-12-01"
