"""SLA clocks of a case, in business time (pure functions; the escalation monitor calls them).

Two clocks per case, both started at filing (``filed_at``) and both due at
instants fixed at filing from the group's policy (``cases.yaml`` ``sla``;
:func:`deadlines`), so a later change of the policy or of the case's group
does not move a promise already made:

``first_response``
    due at ``first_response_due_at``; stops at ``first_response_at`` (the first
    answer recorded), or at ``closed_at`` for a case closed without one.
``resolution``
    due at ``resolution_due_at``; stops at ``closed_at``.

Only business time counts (the group's calendar: working hours, Colombian
holidays): a clock's **budget** is the business time from filing to its due
instant, **elapsed** the business time from filing to ``now`` (or to its stop),
**percent** = elapsed / budget × 100 (over 100 once overdue). A clock is
**breached** when it is past due (stopped after due, or still running at or
after due) and **met** when it stopped at or before due. Warnings at 50, 75
and 100 % (``warnings`` in cases.yaml) are crossed when percent reaches them;
:func:`threshold_at` says when that happens, for a monitor that sleeps until
then instead of polling.

>>> from datetime import UTC, datetime
>>> from ivr.cases.calendar import BusinessCalendar
>>> from ivr.cases.config import load_cases_config
>>> cal, policy = BusinessCalendar.standard(), load_cases_config().group("citas").sla
>>> filed = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # Friday 10:00 in Bogotá
>>> d = deadlines(policy, cal, filed, answer_within_business_days=5)
>>> d.first_response_due_at.isoformat()  # 8 h: 7 on Friday, 1 on Saturday
'2026-12-05T09:00:00-05:00'
>>> s = clock_state("first_response", filed, d.first_response_due_at, None, cal,
...                 now=datetime(2026, 12, 4, 19, 0, tzinfo=UTC))  # Friday 14:00
>>> s.elapsed, s.percent, s.breached
(datetime.timedelta(seconds=14400), 50.0, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ivr.cases.calendar import BusinessCalendar
from ivr.cases.config import SlaPolicy
from ivr.cases.model import Case

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
CLOCKS = (FIRST_RESPONSE, RESOLUTION)


@dataclass(frozen=True)
class Deadlines:
    """The instants fixed at filing: the promise told to the caller (``due_at``,
    the end of the n-th business day) and the two SLA clocks' due instants."""

    due_at: datetime
    first_response_due_at: datetime
    resolution_due_at: datetime


def deadlines(
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    filed_at: datetime,
    *,
    answer_within_business_days: int,
) -> Deadlines:
    """The deadlines of a case filed at ``filed_at`` under ``policy`` on ``calendar``.

    ``answer_within_business_days``: the promise (cases.yaml, the insurer's plan: 5)."""
    return Deadlines(
        due_at=calendar.add_business_days(filed_at, answer_within_business_days),
        first_response_due_at=policy.first_response.due(calendar, filed_at),
        resolution_due_at=policy.resolution.due(calendar, filed_at),
    )


@dataclass(frozen=True)
class ClockState:
    """One clock of one case at ``now``. Durations are business time."""

    clock: str  # first_response | resolution
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None  # None while it runs
    budget: timedelta  # business time from start to due
    elapsed: timedelta  # business time from start to now (or to the stop)
    remaining: timedelta  # business time from now (or the stop) to due; negative when overdue
    percent: float  # elapsed / budget × 100 (100 for an empty budget), may exceed 100
    seen_at: datetime  # the ``now`` it was computed for

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def breached(self) -> bool:
        """Past due: stopped after the due instant, or still running at or after it."""
        return self.seen_at >= self.due_at if self.running else not self.met

    @property
    def met(self) -> bool:
        """Stopped at or before the due instant (False while running)."""
        return self.stopped_at is not None and self.stopped_at <= self.due_at

    def crossed(self, thresholds: Iterable[int]) -> list[int]:
        """The warning thresholds (percent) this clock has reached, ascending.
        A stopped clock reaches none it had not reached when it stopped."""
        return sorted(t for t in thresholds if self.percent >= t)

    def as_json(self) -> dict[str, object]:
        return {
            "clock": self.clock,
            "started_at": self.started_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "budget_s": int(self.budget.total_seconds()),
            "elapsed_s": int(self.elapsed.total_seconds()),
            "remaining_s": int(self.remaining.total_seconds()),
            "percent": round(self.percent, 1),
            "running": self.running,
            "met": self.met,
            "breached": self.breached,
        }


def clock_state(
    clock: str,
    started_at: datetime,
    due_at: datetime,
    stopped_at: datetime | None,
    calendar: BusinessCalendar,
    *,
    now: datetime,
) -> ClockState:
    """A clock started at ``started_at``, due at ``due_at``, stopped at ``stopped_at``
    (None: running), seen at ``now``. A stop after ``now`` (a clock skew) counts as
    running. ``ValueError`` for naive datetimes."""
    if stopped_at is not None and stopped_at > now:
        stopped_at = None
    end = stopped_at or now
    budget = calendar.business_time_between(started_at, due_at)
    elapsed = calendar.business_time_between(started_at, max(end, started_at))
    remaining = calendar.business_time_between(end, due_at)
    if budget > timedelta(0):
        percent = elapsed / budget * 100
    else:
        percent = 100.0 if end >= due_at else 0.0
    return ClockState(
        clock, started_at, due_at, stopped_at, budget, elapsed, remaining, percent, now
    )


def case_clocks(case: Case, calendar: BusinessCalendar, now: datetime) -> dict[str, ClockState]:
    """Both clocks of ``case`` at ``now`` on its group's ``calendar``, by clock name."""
    first_stop = case.first_response_at or case.closed_at
    return {
        FIRST_RESPONSE: clock_state(FIRST_RESPONSE, case.filed_at, case.first_response_due_at,
                                    first_stop, calendar, now=now),
        RESOLUTION: clock_state(RESOLUTION, case.filed_at, case.resolution_due_at,
                                case.closed_at, calendar, now=now),
    }  # fmt: skip


def threshold_at(
    started_at: datetime, due_at: datetime, percent: float, calendar: BusinessCalendar
) -> datetime:
    """The instant at which a clock started at ``started_at`` and due at ``due_at``
    reaches ``percent`` of its budget (100 → ``due_at`` itself, or the end of the
    last working interval before it). ``ValueError`` for a negative percent."""
    if percent < 0:
        raise ValueError(f"percent must not be negative, got {percent}")
    budget = calendar.business_time_between(started_at, due_at)
    part = timedelta(microseconds=round(budget / timedelta(microseconds=1) * percent / 100))
    return calendar.add_business_time(started_at, part)
