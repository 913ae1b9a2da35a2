"""Business time: which instants count towards a case's promise and its SLA clocks.

Two rules, both on the group's calendar (time zone, working hours per weekday,
holidays):

**Business days** (the promise told to the caller, ``add_business_days``). The
insurer's plan promises "respuesta en 5 días hábiles". A *día hábil* is a
weekday in ``business_weekdays`` (Monday to Friday unless configured) that is
not a holiday: Saturdays are not business days for the terms Colombian health
regulations and the public administration count (Decreto 1042 de 1978 sets the
5-day week; Ley 4 de 1913 art. 62 leaves holidays out of day terms). The term
starts the day after filing: the due instant is the **end of the n-th business
day after the filing's local day** — the end of that day's last working
interval, or 23:59:59 local when that weekday has no working hours.

**Business time** (the SLA clocks, ``add_business_time`` and
``business_time_between``): only instants inside a working interval of the
group (``working_hours``, e.g. Monday–Friday 07:00–17:00 and Saturday
08:00–12:00) on a day that is not a holiday count. The clock is paused outside
them.

**Holidays**: ``holidays.country_holidays("CO")`` (the maintained ``holidays``
package): the 18 Colombian holidays, with those that Ley 51 de 1983 ("Ley
Emiliani") moves to the following Monday already moved (e.g. the Epiphany, 6
January 2026 a Tuesday, is kept on Monday 12 January 2026), and the Easter
holidays computed from Easter.

All inputs are aware datetimes (``ValueError`` for naive ones); answers are
aware datetimes in the calendar's time zone. Durations are ``timedelta``.

>>> from datetime import datetime
>>> cal = BusinessCalendar.standard()
>>> friday = datetime(2026, 12, 4, 10, 0, tzinfo=BOGOTA)  # Tuesday 8 December is a holiday
>>> cal.add_business_days(friday, 5).isoformat()
'2026-12-14T17:00:00-05:00'
>>> cal.add_business_time(friday, timedelta(hours=8)).isoformat()
'2026-12-05T09:00:00-05:00'
>>> cal.business_time_between(friday, cal.add_business_time(friday, timedelta(hours=8)))
datetime.timedelta(seconds=28800)
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_pkg

BOGOTA = ZoneInfo("America/Bogota")
MONDAY_TO_FRIDAY = frozenset(range(5))
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Working hours of the demo group (cases.yaml ``citas``): Monday–Friday 07:00–17:00,
# Saturday 08:00–12:00.
STANDARD_HOURS: dict[int, list[tuple[time, time]]] = {
    **{d: [(time(7), time(17))] for d in range(5)},
    5: [(time(8), time(12))],
}
# Days searched at most for a working interval (10 years): a calendar whose
# holidays cover every working day fails instead of looping.
HORIZON_DAYS = 3660
END_OF_DAY = time(0)  # as an interval's end: midnight at the end of the day (24:00)


def colombian_holidays() -> holidays_pkg.HolidayBase:
    """Colombia's holidays (``holidays.country_holidays("CO")``), years computed on demand."""
    return holidays_pkg.country_holidays("CO")


class BusinessCalendar:
    """A group's business calendar.

    ``tz``: an IANA zone (``America/Bogota``). ``working_hours``: weekday
    (0 = Monday … 6 = Sunday) → ordered, non-overlapping ``(start, end)`` local
    times with ``start < end``; an ``end`` of ``time(0)`` means 24:00. At least
    one weekday needs hours. ``holidays``: dates that never count (default:
    Colombia's, ``colombian_holidays()``). ``business_weekdays``: the weekdays
    that are *días hábiles* for ``add_business_days`` (default Monday–Friday).

    Raises ``ValueError`` for a malformed ``working_hours``.
    """

    def __init__(
        self,
        tz: str | ZoneInfo,
        working_hours: Mapping[int, Sequence[tuple[time, time]]],
        holidays: Container[date] | None = None,
        *,
        business_weekdays: Collection[int] = MONDAY_TO_FRIDAY,
    ) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.holidays: Container[date] = colombian_holidays() if holidays is None else holidays
        self.business_weekdays = frozenset(business_weekdays)
        self._hours: dict[int, tuple[tuple[timedelta, timedelta], ...]] = {}
        for weekday, intervals in working_hours.items():
            if weekday not in range(7):
                raise ValueError(f"weekday {weekday} is not 0 (Monday) to 6 (Sunday)")
            spans = []
            last_end = timedelta(0)
            for start, end in intervals:
                lo = _offset(start)
                hi = timedelta(hours=24) if end == END_OF_DAY else _offset(end)
                if hi <= lo:
                    raise ValueError(
                        f"{WEEKDAY_NAMES[weekday]}: {start}-{end} ends before it starts"
                    )
                if lo < last_end:
                    raise ValueError(
                        f"{WEEKDAY_NAMES[weekday]}: {start}-{end} overlaps the interval before"
                    )
                spans.append((lo, hi))
                last_end = hi
            if spans:
                self._hours[weekday] = tuple(spans)
        if not self._hours:
            raise ValueError("working_hours has no working interval on any weekday")
        if not self.business_weekdays <= set(range(7)):
            raise ValueError(
                f"business_weekdays must be 0..6, got {sorted(self.business_weekdays)}"
            )

    @classmethod
    def standard(cls) -> BusinessCalendar:
        """Bogotá, Monday–Friday 07:00–17:00 and Saturday 08:00–12:00, Colombian holidays."""
        return cls(BOGOTA, STANDARD_HOURS)

    # --- days ---------------------------------------------------------------------------
    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def is_business_day(self, day: date) -> bool:
        """A *día hábil*: a business weekday that is not a holiday."""
        return day.weekday() in self.business_weekdays and not self.is_holiday(day)

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of ``day`` as aware local instants (none on a holiday)."""
        if self.is_holiday(day):
            return []
        midnight = datetime.combine(day, time(0))
        return [
            (_local(midnight + lo, self.tz), _local(midnight + hi, self.tz))
            for lo, hi in self._hours.get(day.weekday(), ())
        ]

    def end_of_day(self, day: date) -> datetime:
        """Where a term ending on ``day`` ends: the end of its weekday's last working
        interval, else 23:59:59 local."""
        spans = self._hours.get(day.weekday())
        midnight = datetime.combine(day, time(0))
        if spans:
            return _local(midnight + spans[-1][1], self.tz)
        return _local(midnight + timedelta(hours=24) - timedelta(seconds=1), self.tz)

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th business day after ``start``'s local day
        (``start``'s own day never counts, business day or not).

        Source: the insurer's plan, "respuesta en 5 días hábiles". ``days`` ≥ 1,
        else ``ValueError``."""
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        day = self.local(start).date()
        counted = 0
        for _ in range(HORIZON_DAYS):
            day += timedelta(days=1)
            if self.is_business_day(day):
                counted += 1
                if counted == days:
                    return self.end_of_day(day)
        raise ValueError(f"no {days} business days within {HORIZON_DAYS} days of {start}")

    # --- business time ---------------------------------------------------------------------
    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of business time has passed since ``start``.

        A zero duration is ``start`` itself; otherwise the answer is inside or at
        the end of a working interval (a clock that runs out exactly at 17:00
        is due at 17:00, not at the next opening). ``ValueError`` for a negative
        duration."""
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        start = self.local(start).astimezone(UTC)
        if duration == timedelta(0):
            return start.astimezone(self.tz)
        left = duration
        for lo, hi in self._windows_from(start):
            if hi <= start:
                continue
            begin = max(lo, start)
            available = hi - begin
            if left <= available:
                return (begin + left).astimezone(self.tz)
            left -= available
        raise ValueError(f"{duration} of business time does not fit within {HORIZON_DAYS} days")

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        a, b = self.local(a).astimezone(UTC), self.local(b).astimezone(UTC)
        if b < a:
            return -self.business_time_between(b, a)
        total = timedelta(0)
        for lo, hi in self._windows_from(a):
            if lo >= b:
                break
            begin, end = max(lo, a), min(hi, b)
            if end > begin:
                total += end - begin
        return total

    def is_working(self, instant: datetime) -> bool:
        """Whether ``instant`` is inside a working interval (a clock runs)."""
        at = self.local(instant)
        return any(lo <= at < hi for lo, hi in self.windows(at.date()))

    def local(self, instant: datetime) -> datetime:
        """``instant`` in the calendar's zone; ``ValueError`` for a naive datetime."""
        if instant.tzinfo is None:
            raise ValueError(f"naive datetime {instant!r}: give it a time zone")
        return instant.astimezone(self.tz)

    def _windows_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals in UTC (exact arithmetic across offset changes), from the
        local day of ``start`` on."""
        day = self.local(start).date()
        for _ in range(HORIZON_DAYS):
            for lo, hi in self.windows(day):
                yield lo.astimezone(UTC), hi.astimezone(UTC)
            day += timedelta(days=1)


def _offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def _local(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time as an aware instant (``fold=0`` for ambiguous times)."""
    return wall.replace(tzinfo=tz)
