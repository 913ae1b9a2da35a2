"""The rules of the SLA monitor, as pure functions (no I/O, no clock of their own).

A case has two clocks (issue 11 §3; CASES.md):

- ``first_response``: from ``filed_at`` to ``first_response_due_at``; it stops
  at the first answer (``first_response_at``) or when the case is closed;
- ``resolution``: from ``filed_at`` to ``resolution_due_at``; it stops when the
  case is answered (``answered_at``: the answer sent is what the affiliate was
  promised, "respuesta en 5 días hábiles") or closed.

Both run in business time: :func:`clock_state` measures the elapsed part with
the group's calendar (``business_time_between``: working hours only, no
holidays), so a clock filed on a Friday afternoon does not move over the
weekend nor on a Monday holiday.

Warnings (:func:`warnings_due`): each percentage of the group's ``warnings``
that the elapsed business time has reached, while the clock still runs. At
100 % the ladder starts (:func:`next_move`): step 0's person is called; no
answer, busy, failure or no acknowledgement moves to the next step once the
step's ``wait`` (wall clock, from when the call was placed) is over; an
acknowledgement stops the ladder; a step due in quiet hours is logged as
skipped (once) and called when they end; after the last step the ladder is
exhausted (the monitor raises an ops alert once).

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 12, 4, 15, tzinfo=UTC)
>>> steps = [Step("lider", "6001", timedelta(minutes=10))]
>>> next_move(steps, [], due=t0, now=t0, quiet=False)
Call(step=0)
>>> next_move(steps, [], due=t0, now=t0, quiet=True)
Skip(step=0)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ivr.escalation.tables import ACKNOWLEDGED, CALL, SKIP

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
CLOCKS = (FIRST_RESPONSE, RESOLUTION)

# A call placed but never finished (its controller died mid-call) is given up
# after this long: longer than any ring timeout plus the summary said twice.
STALE_CALL = timedelta(minutes=5)


class BusinessTime(Protocol):
    """What the rules need of ``ivr.cases.calendar.BusinessCalendar``."""

    def business_time_between(self, a: datetime, b: datetime) -> timedelta: ...


class CaseClocks(Protocol):
    """The fields of ``ivr.cases.model.Case`` the clocks read."""

    @property
    def filed_at(self) -> datetime: ...
    @property
    def first_response_due_at(self) -> datetime: ...
    @property
    def resolution_due_at(self) -> datetime: ...
    @property
    def first_response_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class ClockState:
    """One clock of one case at ``now``.

    ``budget``: the business time from start to due; ``elapsed``: the business
    time used so far (frozen at ``stopped_at`` when the clock stopped);
    ``percent``: elapsed / budget × 100 (100 when the budget is empty and the
    due instant has passed); ``left``: business time until due, negative once
    overrun."""

    clock: str
    due: datetime
    stopped_at: datetime | None
    budget: timedelta
    elapsed: timedelta
    percent: float

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def left(self) -> timedelta:
        return self.budget - self.elapsed


def clock_state(case: CaseClocks, clock: str, calendar: BusinessTime, now: datetime) -> ClockState:
    """The state of ``clock`` (``first_response`` | ``resolution``; ``KeyError``
    otherwise) of ``case`` at ``now``, measured in ``calendar``'s business time."""
    if clock == FIRST_RESPONSE:
        due, stops = case.first_response_due_at, (case.first_response_at, case.closed_at)
    elif clock == RESOLUTION:
        due, stops = case.resolution_due_at, (case.answered_at, case.closed_at)
    else:
        raise KeyError(clock)
    stopped_at = min((s for s in stops if s is not None), default=None)
    until = min(now, stopped_at) if stopped_at is not None else now
    budget = calendar.business_time_between(case.filed_at, due)
    elapsed = calendar.business_time_between(case.filed_at, max(until, case.filed_at))
    if budget > timedelta(0):
        percent = elapsed / budget * 100
    else:
        percent = 100.0 if until >= due else 0.0
    return ClockState(clock, due, stopped_at, budget, elapsed, percent)


def warnings_due(state: ClockState, thresholds: Sequence[int], done: Collection[int]) -> list[int]:
    """The thresholds (percent) reached by a running clock and not yet warned
    (``done``), lowest first. A clock that stopped warns no more: a case
    answered at 60 % never gets its 75 % warning.

    >>> s = ClockState("resolution", None, None, timedelta(hours=10), timedelta(hours=8), 80.0)  # type: ignore[arg-type]
    >>> warnings_due(s, [50, 75, 100], done={50})
    [75]
    """
    if not state.running:
        return []
    return [p for p in sorted(thresholds) if state.percent >= p and p not in done]


def overrun(state: ClockState) -> bool:
    """The ladder's trigger: a running clock at (or past) 100 %."""
    return state.running and state.percent >= 100


# --- the ladder --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One rung: whom to call (``person`` id, ``extension``) and how long to wait
    for an acknowledgement, from when the call is placed, before the next rung."""

    person: str
    extension: str
    wait: timedelta


@dataclass(frozen=True)
class Attempt:
    """What the rules read of an ``escalation_attempts`` row."""

    step: int
    kind: str  # call | skip | dup
    started_at: datetime
    ended_at: datetime | None = None
    result: str | None = None  # None: the call is still going on
    id: str = ""


@dataclass(frozen=True)
class Wait:
    """Nothing to do before ``until`` (None: until something else changes)."""

    until: datetime | None = None


@dataclass(frozen=True)
class Call:
    step: int


@dataclass(frozen=True)
class Skip:
    """Log the step as skipped (quiet hours); it is called when they end."""

    step: int


@dataclass(frozen=True)
class GiveUp:
    """A call that never finished (``STALE_CALL``): record it as failed."""

    attempt_id: str


@dataclass(frozen=True)
class Done:
    """Acknowledged (``acknowledged`` True) or every step tried without one."""

    acknowledged: bool


Move = Wait | Call | Skip | GiveUp | Done


def next_move(
    steps: Sequence[Step],
    attempts: Sequence[Attempt],
    *,
    due: datetime,
    now: datetime,
    quiet: bool,
) -> Move:
    """The next thing to do on the ladder of one overrun clock.

    ``steps``: the group's ladder; ``attempts``: every row logged for this case
    and clock; ``due``: when the clock ran out (step 0 is due then); ``quiet``:
    whether ``now`` falls in the group's quiet hours. An empty ladder is done at
    once (nobody to call; the 100 % warning's alert is all there is).
    """
    if any(a.result == ACKNOWLEDGED for a in attempts):
        return Done(acknowledged=True)
    calls = sorted((a for a in attempts if a.kind == CALL), key=lambda a: a.step)
    if calls:
        last = calls[-1]
        if last.result is None:
            if now - last.started_at >= STALE_CALL:
                return GiveUp(last.id)
            return Wait()
        step = last.step + 1
        # A ladder shortened since the call was placed: no wait left to honour.
        wait = steps[last.step].wait if last.step < len(steps) else timedelta(0)
        ready = max(last.ended_at or last.started_at, last.started_at + wait)
    else:
        step, ready = 0, due
    if step >= len(steps):
        return Done(acknowledged=False) if now >= ready else Wait(ready)
    if now < ready:
        return Wait(ready)
    if quiet:
        skipped = any(a.kind == SKIP and a.step == step for a in attempts)
        return Wait() if skipped else Skip(step)
    return Call(step)
