"""Business time on the Colombian calendar (ivr.cases.calendar).

The kinds of fault: a holiday or a closed hour counted, a moved ("Ley
Emiliani") holiday taken on its original date, a due date off by a day across
a weekend or a time-zone edge, adding and measuring business time that
disagree. Tested over the range with hypothesis (monotonic, inverse,
additive, holidays and closed hours never counted) and table-driven: the
holidays of 2026–2028 written out by hand (the independent check of the
``holidays`` package) and due dates across the holiday weekend of 8 December.
"""

from __future__ import annotations

import doctest
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ivr.cases.calendar
from ivr.cases.calendar import BOGOTA, BusinessCalendar, colombian_holidays

CAL = BusinessCalendar.standard()
D = date

# Colombia's holidays worked out by hand: the 18 of Ley 51 de 1983 (Ley Emiliani: a
# "moved" holiday is kept on the Monday after its date) and the Easter-based ones,
# plus, from 2026, Our Lady of the Rosary of Chiquinquirá (9 July, moved to Monday),
# the holiday added in 2025 that the ``holidays`` package has.
HOLIDAYS = {
    2026: [D(2026, 1, 1), D(2026, 1, 12), D(2026, 3, 23), D(2026, 4, 2), D(2026, 4, 3),
           D(2026, 5, 1), D(2026, 5, 18), D(2026, 6, 8), D(2026, 6, 15), D(2026, 6, 29),
           D(2026, 7, 13), D(2026, 7, 20), D(2026, 8, 7), D(2026, 8, 17), D(2026, 10, 12), D(2026, 11, 2),
           D(2026, 11, 16), D(2026, 12, 8), D(2026, 12, 25)],
    2027: [D(2027, 1, 1), D(2027, 1, 11), D(2027, 3, 22), D(2027, 3, 25), D(2027, 3, 26),
           D(2027, 5, 1), D(2027, 5, 10), D(2027, 5, 31), D(2027, 6, 7), D(2027, 7, 5),
           D(2027, 7, 12), D(2027, 7, 20), D(2027, 8, 7), D(2027, 8, 16), D(2027, 10, 18), D(2027, 11, 1),
           D(2027, 11, 15), D(2027, 12, 8), D(2027, 12, 25)],
    2028: [D(2028, 1, 1), D(2028, 1, 10), D(2028, 3, 20), D(2028, 4, 13), D(2028, 4, 14),
           D(2028, 5, 1), D(2028, 5, 29), D(2028, 6, 19), D(2028, 6, 26), D(2028, 7, 3),
           D(2028, 7, 10), D(2028, 7, 20), D(2028, 8, 7), D(2028, 8, 21), D(2028, 10, 16), D(2028, 11, 6),
           D(2028, 11, 13), D(2028, 12, 8), D(2028, 12, 25)],
}  # fmt: skip
# (the holiday's own date, the Monday it is kept on) for those Ley 51 de 1983 moves.
MOVED = [
    (D(2026, 1, 6), D(2026, 1, 12)), (D(2026, 3, 19), D(2026, 3, 23)),
    (D(2026, 8, 15), D(2026, 8, 17)), (D(2026, 11, 1), D(2026, 11, 2)),
    (D(2026, 11, 11), D(2026, 11, 16)), (D(2027, 1, 6), D(2027, 1, 11)),
    (D(2027, 6, 29), D(2027, 7, 5)), (D(2027, 10, 12), D(2027, 10, 18)),
    (D(2028, 8, 15), D(2028, 8, 21)), (D(2028, 11, 1), D(2028, 11, 6)),
    (D(2026, 7, 9), D(2026, 7, 13)), (D(2027, 7, 9), D(2027, 7, 12)),
]  # fmt: skip


def bogota(*args: int) -> datetime:
    return datetime(*args, tzinfo=BOGOTA)  # type: ignore[misc]


def test_doctests() -> None:
    assert doctest.testmod(ivr.cases.calendar).failed == 0


@pytest.mark.parametrize("year", sorted(HOLIDAYS))
def test_the_holidays_package_has_colombias_holidays(year: int) -> None:
    calendar = colombian_holidays()
    for day in HOLIDAYS[year]:
        assert day in calendar, day  # (membership expands the year on demand)
    found = sorted(d for d in calendar if d.year == year)
    assert found == HOLIDAYS[year]


@pytest.mark.parametrize("original,monday", MOVED)
def test_moved_holidays_count_on_monday_not_on_their_date(original: date, monday: date) -> None:
    assert monday.weekday() == 0 and original.weekday() != 0
    assert CAL.is_holiday(monday) and not CAL.is_holiday(original)
    assert CAL.windows(monday) == []
    if original.weekday() < 5:
        assert CAL.is_business_day(original) and CAL.windows(original)


# --- due dates across the holiday weekend of 8 December 2026 ----------------------------
PROMISE = [  # filing instant (Bogotá) -> end of the 5th business day after its day
    (bogota(2026, 12, 4, 6, 0), bogota(2026, 12, 14, 17, 0)),    # Friday, before opening
    (bogota(2026, 12, 4, 10, 0), bogota(2026, 12, 14, 17, 0)),   # Friday, open
    (bogota(2026, 12, 4, 23, 30), bogota(2026, 12, 14, 17, 0)),  # Friday night (Saturday in UTC)
    (bogota(2026, 12, 5, 9, 0), bogota(2026, 12, 14, 17, 0)),    # Saturday: not a día hábil
    (bogota(2026, 12, 6, 12, 0), bogota(2026, 12, 14, 17, 0)),   # Sunday
    (bogota(2026, 12, 7, 12, 0), bogota(2026, 12, 15, 17, 0)),   # Monday: Tuesday 8 skipped
    (bogota(2026, 12, 8, 12, 0), bogota(2026, 12, 15, 17, 0)),   # on the holiday itself
    (bogota(2026, 12, 18, 12, 0), bogota(2026, 12, 28, 17, 0)),  # Christmas (Friday 25)
    (bogota(2026, 12, 31, 12, 0), bogota(2027, 1, 8, 17, 0)),    # New Year; 6 Jan moved to 11
    (bogota(2027, 1, 7, 12, 0), bogota(2027, 1, 15, 17, 0)),     # Reyes on Monday 11
    (bogota(2026, 3, 27, 12, 0), bogota(2026, 4, 7, 17, 0)),     # Holy week (Thu 2, Fri 3 Apr)
]  # fmt: skip


@pytest.mark.parametrize("filed,due", PROMISE)
def test_the_promise_of_5_business_days(filed: datetime, due: datetime) -> None:
    assert CAL.add_business_days(filed, 5) == due
    assert (
        CAL.add_business_days(filed.astimezone(UTC), 5) == due
    )  # the zone of the input is irrelevant


FIRST_RESPONSE = [  # filing instant -> 8 h of business time later (Mon–Fri 7–17, Sat 8–12)
    (bogota(2026, 12, 4, 10, 0), bogota(2026, 12, 5, 9, 0)),   # 7 h Friday, 1 h Saturday
    (bogota(2026, 12, 4, 16, 0), bogota(2026, 12, 7, 10, 0)),  # 1 h Fri, 4 h Sat, 3 h Mon
    (bogota(2026, 12, 4, 18, 0), bogota(2026, 12, 7, 11, 0)),  # after closing: 4 h Sat, 4 h Mon
    (bogota(2026, 12, 5, 13, 0), bogota(2026, 12, 7, 15, 0)),  # Saturday afternoon
    (bogota(2026, 12, 7, 12, 0), bogota(2026, 12, 9, 10, 0)),  # 5 h Mon, Tue 8 holiday, 3 h Wed
    (bogota(2026, 12, 7, 9, 0), bogota(2026, 12, 7, 17, 0)),   # runs out exactly at closing
]  # fmt: skip


@pytest.mark.parametrize("filed,due", FIRST_RESPONSE)
def test_business_time_across_the_holiday_weekend(filed: datetime, due: datetime) -> None:
    assert CAL.add_business_time(filed, timedelta(hours=8)) == due
    assert CAL.business_time_between(filed, due) == timedelta(hours=8)


def test_a_holiday_and_a_sunday_have_no_business_time() -> None:
    for day in (D(2026, 12, 8), D(2026, 12, 6)):
        assert CAL.business_time_between(
            bogota(day.year, day.month, day.day),
            bogota(day.year, day.month, day.day) + timedelta(days=1),
        ) == timedelta(0)
    # A whole week with the holiday: 4 × 10 h + 4 h on Saturday.
    assert CAL.business_time_between(bogota(2026, 12, 7), bogota(2026, 12, 14)) == timedelta(
        hours=44
    )


# --- properties ---------------------------------------------------------------------------
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 20), timezones=st.just(BOGOTA)
)
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=300))


@settings(max_examples=150, deadline=None)
@given(INSTANTS, DURATIONS, DURATIONS)
def test_adding_is_monotonic(start: datetime, a: timedelta, b: timedelta) -> None:
    a, b = min(a, b), max(a, b)
    assert CAL.add_business_time(start, a) <= CAL.add_business_time(start, b)


@settings(max_examples=150, deadline=None)
@given(INSTANTS, DURATIONS)
def test_measuring_undoes_adding(start: datetime, duration: timedelta) -> None:
    end = CAL.add_business_time(start, duration)
    assert end >= start
    assert CAL.business_time_between(start, end) == duration
    if duration:  # the clock runs out inside or at the end of a working interval
        local = end.astimezone(BOGOTA)
        assert any(lo < local <= hi for lo, hi in CAL.windows(local.date()))


@settings(max_examples=150, deadline=None)
@given(INSTANTS, INSTANTS, INSTANTS)
def test_measuring_is_additive_and_antisymmetric(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    ab, bc = CAL.business_time_between(a, b), CAL.business_time_between(b, c)
    assert ab >= timedelta(0) and CAL.business_time_between(a, c) == ab + bc
    assert CAL.business_time_between(b, a) == -ab
    assert ab <= b - a


@settings(max_examples=150, deadline=None)
@given(INSTANTS, INSTANTS)
def test_adding_what_was_measured_reaches_the_last_working_instant(
    a: datetime, b: datetime
) -> None:
    a, b = min(a, b), max(a, b)
    spent = CAL.business_time_between(a, b)
    reached = CAL.add_business_time(a, spent)
    assert reached <= b and CAL.business_time_between(reached, b) == timedelta(0)


@settings(max_examples=150, deadline=None)
@given(INSTANTS, st.integers(1, 30))
def test_business_days_skip_weekends_and_holidays(start: datetime, days: int) -> None:
    due = CAL.add_business_days(start, days)
    day = due.astimezone(BOGOTA).date()
    assert CAL.is_business_day(day) and day.weekday() < 5 and not CAL.is_holiday(day)
    first = start.astimezone(BOGOTA).date()
    counted = [first + timedelta(days=i) for i in range(1, (day - first).days + 1)]
    assert sum(CAL.is_business_day(d) for d in counted) == days
    assert due.astimezone(BOGOTA).time() == time(17, 0)
    assert CAL.add_business_days(start, days + 1) > due


@settings(max_examples=100, deadline=None)
@given(INSTANTS, DURATIONS)
def test_holidays_are_never_counted(start: datetime, duration: timedelta) -> None:
    # The same calendar without holidays counts at least as much between the same instants.
    end = CAL.add_business_time(start, duration)
    no_holidays = BusinessCalendar(BOGOTA, ivr.cases.calendar.STANDARD_HOURS, holidays=set())
    counted = no_holidays.business_time_between(start, end)
    assert counted >= duration
    holiday_time = sum(
        (no_holidays.business_time_between(max(lo, start), min(hi, end))
         for d in {start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)}
         if CAL.is_holiday(d)
         for lo, hi in no_holidays.windows(d) if hi > start and lo < end),
        timedelta(0),
    )  # fmt: skip
    assert counted - holiday_time == duration


# --- construction -------------------------------------------------------------------------
@pytest.mark.parametrize("hours", [
    {0: [(time(17), time(7))]},
    {0: [(time(7), time(12)), (time(11), time(17))]},
    {7: [(time(7), time(17))]},
    {},
    {0: []},
])  # fmt: skip
def test_malformed_working_hours_are_refused(hours: dict[int, list[tuple[time, time]]]) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(BOGOTA, hours)


def test_naive_times_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add_business_time(datetime(2026, 12, 4, 10), timedelta(hours=1))
    with pytest.raises(ValueError):
        CAL.add_business_time(bogota(2026, 12, 4, 10), timedelta(hours=-1))
    with pytest.raises(ValueError):
        CAL.add_business_days(bogota(2026, 12, 4, 10), 0)


def test_a_day_may_end_at_midnight() -> None:
    cal = BusinessCalendar(BOGOTA, {d: [(time(0), time(0))] for d in range(7)}, holidays=set())
    assert cal.business_time_between(bogota(2026, 12, 4), bogota(2026, 12, 6)) == timedelta(days=2)
    assert cal.add_business_time(bogota(2026, 12, 4, 23), timedelta(hours=2)) == bogota(
        2026, 12, 5, 1
    )
