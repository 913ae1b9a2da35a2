"""The reports' period (ivr.ops.period): local days, the longest period, its errors."""

from __future__ import annotations

import doctest
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ivr.ops.period
from ivr.ops.api import ApiError
from ivr.ops.period import local_period

BOGOTA = ZoneInfo("America/Bogota")
MADRID = ZoneInfo("Europe/Madrid")  # a zone with summer time: days of 23 and 25 hours


def test_docstring_examples() -> None:
    result = doctest.testmod(ivr.ops.period)
    assert result.attempted > 0 and result.failed == 0, result


@given(first=st.dates(date(2020, 1, 1), date(2030, 12, 31)), days=st.integers(1, 40))
def test_a_period_is_whole_local_days(first: date, days: int) -> None:
    last = first + timedelta(days=days - 1)
    params = {"from": first.isoformat(), "to": last.isoformat()}
    start, end = local_period(params, MADRID, date.today, timedelta(days=40))
    assert (start.date(), start.hour, start.minute) == (first, 0, 0)
    assert (end.date(), end.hour) == (last + timedelta(days=1), 0)
    # Summer time moves the length by an hour at most, never the days.
    assert abs((end - start) - timedelta(days=days)) <= timedelta(hours=1)


@pytest.mark.parametrize("days, ok", [(31, True), (32, False), (1, True)])
def test_the_longest_period_is_accepted_and_one_day_more_is_not(days: int, ok: bool) -> None:
    last = date(2026, 11, 30)
    params = {"from": (last - timedelta(days=days - 1)).isoformat(), "to": last.isoformat()}
    if ok:
        start, _ = local_period(params, BOGOTA, date.today, timedelta(days=31))
        assert start.date() == last - timedelta(days=days - 1)
    else:
        with pytest.raises(ApiError) as err:
            local_period(params, BOGOTA, date.today, timedelta(days=31))
        assert err.value.status == 422 and "31 días como máximo" in str(err.value)


def test_a_period_that_ends_before_it_starts_is_refused_in_spanish() -> None:
    with pytest.raises(ApiError) as err:
        local_period({"from": "2026-12-02", "to": "2026-12-01"}, BOGOTA, date.today, timedelta(days=31))
    assert err.value.status == 422 and str(err.value) == "el periodo termina antes de empezar"


def test_defaults_are_the_week_ending_today() -> None:
    start, end = local_period({}, BOGOTA, lambda: date(2026, 11, 30), timedelta(days=31))
    assert start.date() == date(2026, 11, 24) and end.date() == date(2026, 12, 1)
