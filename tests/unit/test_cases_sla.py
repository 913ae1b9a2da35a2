"""SLA clocks in business time (ivr.cases.sla), on a fake clock across a holiday weekend.

The kinds of fault: a clock that runs while the group is closed or on a
holiday, a percent that goes down or jumps, a warning instant that is not
when the percent is reached, a clock that keeps running after its stop, a
breach seen early or late. Table-driven across Friday 4 – Monday 14
December 2026 (Tuesday 8 is a holiday) and hypothesis over 2026–2028.
"""

from __future__ import annotations

import doctest
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ivr.cases.sla
from ivr.cases.calendar import BOGOTA, BusinessCalendar
from ivr.cases.config import load_cases_config
from ivr.cases.model import Actor, NewCase
from ivr.cases.sla import case_clocks, clock_state, deadlines, threshold_at
from ivr.cases.store import CaseStore
from ivr.store.db import Database

CAL = BusinessCalendar.standard()
CONFIG = load_cases_config()
POLICY = CONFIG.group("citas").sla
H = timedelta(hours=1)


def bogota(*args: int) -> datetime:
    return datetime(*args, tzinfo=BOGOTA)  # type: ignore[misc]


FILED = bogota(2026, 12, 4, 10, 0)  # Friday
DUE = deadlines(POLICY, CAL, FILED, answer_within_business_days=5)


def test_doctests() -> None:
    assert doctest.testmod(ivr.cases.sla).failed == 0


def test_the_deadlines_of_a_filing_before_the_holiday_weekend() -> None:
    assert DUE.first_response_due_at == bogota(2026, 12, 5, 9, 0)  # 7 h Friday + 1 h Saturday
    assert DUE.resolution_due_at == DUE.due_at == bogota(2026, 12, 14, 17, 0)


# now -> (first-response elapsed, percent, breached), (resolution elapsed, breached)
FIRST = [
    (bogota(2026, 12, 4, 14, 0), 4 * H, 50.0, False),
    (bogota(2026, 12, 4, 16, 0), 6 * H, 75.0, False),
    (bogota(2026, 12, 4, 23, 0), 7 * H, 87.5, False),   # closed: the clock waits
    (bogota(2026, 12, 5, 8, 30), 7.5 * H, 93.75, False),
    (bogota(2026, 12, 5, 9, 0), 8 * H, 100.0, True),
    (bogota(2026, 12, 7, 8, 0), 12 * H, 150.0, True),   # Sat 08-12, Sun nothing, Mon 07-08
]  # fmt: skip


@pytest.mark.parametrize("now,elapsed,percent,breached", FIRST)
def test_the_first_response_clock(
    now: datetime, elapsed: timedelta, percent: float, breached: bool
) -> None:
    state = clock_state("first_response", FILED, DUE.first_response_due_at, None, CAL, now=now)
    assert (state.elapsed, state.percent, state.breached) == (elapsed, percent, breached)
    assert state.budget == 8 * H and state.running and not state.met
    assert state.remaining == 8 * H - elapsed


def test_the_resolution_clock_stands_still_on_the_holiday() -> None:
    # Budget: Fri 7 + Sat 4 + Mon 10 + Wed 10 + Thu 10 + Fri 10 + Sat 4 + Mon 10 = 65 h.
    at = lambda now: clock_state("resolution", FILED, DUE.resolution_due_at, None, CAL, now=now)  # noqa: E731
    assert at(FILED).budget == 65 * H
    monday_close, holiday_noon, wednesday_open = (
        at(bogota(2026, 12, 7, 17, 0)), at(bogota(2026, 12, 8, 12, 0)), at(bogota(2026, 12, 9, 7, 0))
    )  # fmt: skip
    assert monday_close.elapsed == holiday_noon.elapsed == wednesday_open.elapsed == 21 * H
    assert at(bogota(2026, 12, 9, 8, 0)).elapsed == 22 * H
    assert (
        not at(bogota(2026, 12, 14, 16, 59)).breached and at(bogota(2026, 12, 14, 17, 0)).breached
    )


def test_a_stopped_clock_is_met_or_breached_for_good() -> None:
    met = clock_state("first_response", FILED, DUE.first_response_due_at, bogota(2026, 12, 5, 8, 30),
                      CAL, now=bogota(2026, 12, 20))  # fmt: skip
    assert met.met and not met.breached and not met.running and met.percent == 93.75
    late = clock_state("first_response", FILED, DUE.first_response_due_at, bogota(2026, 12, 7, 8, 0),
                       CAL, now=bogota(2026, 12, 20))  # fmt: skip
    assert late.breached and not late.met and late.percent == 150.0
    assert late.crossed([50, 75, 100]) == [50, 75, 100] and met.crossed([50, 75, 100]) == [50, 75]


@pytest.mark.parametrize("percent,instant", [
    (50, bogota(2026, 12, 4, 14, 0)), (75, bogota(2026, 12, 4, 16, 0)),
    (100, bogota(2026, 12, 5, 9, 0)), (0, FILED),
])  # fmt: skip
def test_warning_instants(percent: int, instant: datetime) -> None:
    assert threshold_at(FILED, DUE.first_response_due_at, percent, CAL) == instant


async def test_an_sla_clock_on_a_fake_clock_across_the_holiday_weekend(db: Database) -> None:
    now = [FILED.astimezone(UTC)]
    store = CaseStore(db, CONFIG.calendar_for, CONFIG, clock=lambda: now[0])
    case = await store.file(NewCase("1012345678", "general", "mg_first", "890201", "norte",
                                    "voice", "Sin cupos."))  # fmt: skip
    calendar = CONFIG.calendar_for(case.group)
    seen = case_clocks(case, calendar, bogota(2026, 12, 8, 12, 0))  # the holiday
    assert seen["first_response"].breached and seen["first_response"].elapsed == 21 * H
    assert not seen["resolution"].breached and seen["resolution"].percent == pytest.approx(
        21 / 65 * 100
    )
    now[0] = bogota(2026, 12, 9, 8, 0).astimezone(UTC)
    answered = await store.record_answer(
        case.number, text="Respuesta.", channels=["email"], actor=Actor("ana", "operator")
    )
    later = case_clocks(answered, calendar, bogota(2026, 12, 20))
    assert later["first_response"].stopped_at == now[0] and later["first_response"].breached
    assert later["resolution"].running and later["resolution"].breached  # never closed
    now[0] = bogota(2026, 12, 11, 10, 0).astimezone(UTC)
    closed = await store.close(
        case.number, resolution="Cita asignada.", actor=Actor("ana", "operator")
    )
    final = case_clocks(closed, calendar, bogota(2026, 12, 20))["resolution"]
    assert final.met and not final.breached and final.stopped_at == now[0]
    assert final.as_json()["met"] is True and final.as_json()["budget_s"] == 65 * 3600


# --- properties ---------------------------------------------------------------------------
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 1), timezones=st.just(BOGOTA)
)


@settings(max_examples=100, deadline=None)
@given(INSTANTS, st.lists(st.integers(0, 60 * 24 * 20), min_size=2, max_size=6))
def test_percent_never_goes_down_and_elapsed_plus_remaining_is_the_budget(
    filed: datetime, minutes: list[int]
) -> None:
    due = deadlines(POLICY, CAL, filed, answer_within_business_days=5)
    states = [
        clock_state(
            "resolution", filed, due.resolution_due_at, None, CAL, now=filed + timedelta(minutes=m)
        )
        for m in sorted(minutes)
    ]
    for earlier, later in itertools.pairwise(states):
        assert earlier.percent <= later.percent
    for state in states:
        assert state.elapsed + state.remaining == state.budget
        assert state.breached == (state.seen_at >= state.due_at)


@settings(max_examples=100, deadline=None)
@given(INSTANTS, st.sampled_from([25, 50, 75, 90, 100]))
def test_a_warning_instant_is_when_the_percent_is_reached(filed: datetime, percent: int) -> None:
    due = deadlines(POLICY, CAL, filed, answer_within_business_days=5)
    for start, end in ((filed, due.first_response_due_at), (filed, due.resolution_due_at)):
        at = threshold_at(start, end, percent, CAL)
        assert clock_state("x", start, end, None, CAL, now=at).percent == pytest.approx(percent)
        before = clock_state("x", start, end, None, CAL, now=at - timedelta(minutes=1))
        assert before.percent < percent
        assert at <= end


async def test_the_json_shapes_match_the_published_schemas(db: Database) -> None:
    from jsonschema import Draft202012Validator

    from ivr.cases.schemas import CASE_SCHEMAS

    validators = {
        name: Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for name, s in CASE_SCHEMAS.items()
    }
    for schema in CASE_SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    now = [FILED.astimezone(UTC)]
    store = CaseStore(db, CONFIG.calendar_for, CONFIG, clock=lambda: now[0])
    bare = await store.file(NewCase("1", "general", "mg_first", "890201", "norte", "voice", "x"))
    full = await store.file(NewCase("2", "general", "mg_first", "890201", "norte", "chat", "y",
                                    wa_id="573001234567", contact_phone="+573001234567",
                                    contact_email="a@example.org", consent=True))  # fmt: skip
    closed = await store.close(full.number, resolution="ok", actor=Actor("ana", "operator"))
    for case in (bare, closed):
        validators["Case"].validate(case.as_json())
        for event in await store.events(case.number):
            validators["CaseEvent"].validate(event.as_json())
        for state in case_clocks(
            case, CONFIG.calendar_for(case.group), bogota(2026, 12, 9)
        ).values():
            validators["SlaClock"].validate(state.as_json())
    assert validators["Case"].is_valid(bare.as_json() | {"state": "abierto"}) is False
