"""The rules of the SLA monitor, as pure functions (no I/O, no clock of their own).

The clocks themselves are core's (``ivr.cases.sla``: business time on the
group's calendar, working hours only, never a Colombian holiday; first response
stops at the first answer or the close, resolution at the close). Here:

Warnings (:func:`warnings_due`): each percentage of the group's ``warnings``
that a running clock has reached and that was not given yet. At 100 % the
ladder starts (:func:`next_move`): step 0's person is called; no answer, busy,
failure or no acknowledgement moves to the next step once the step's ``wait``
(wall clock, from when the call was placed) is over; an acknowledgement stops
the ladder; a step due in quiet hours is logged as skipped (once) and called
when they end; after the last step the ladder is exhausted (the monitor raises
an ops alert once).

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

from ivr.cases.sla import CLOCKS, FIRST_RESPONSE, RESOLUTION, ClockState
from ivr.escalation.tables import ACKNOWLEDGED, CALL, SKIP

__all__ = ["CLOCKS", "FIRST_RESPONSE", "RESOLUTION"]

# A call placed but never finished (its controller died mid-call) is given up
# after this long: longer than any ring timeout plus the summary said twice.
STALE_CALL = timedelta(minutes=5)


def warnings_due(state: ClockState, thresholds: Sequence[int], done: Collection[int]) -> list[int]:
    """The thresholds (percent) reached by a running clock and not yet warned
    (``done``), lowest first. A clock that stopped warns no more: a case
    answered at 60 % never gets its 75 % warning."""
    if not state.running:
        return []
    return [p for p in state.crossed(thresholds) if p not in done]


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
