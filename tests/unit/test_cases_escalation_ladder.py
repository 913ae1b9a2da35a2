"""The ladder's rules (``ivr.escalation.ladder.next_move``), table-driven and as properties.

The kind of fault: a ladder that calls a person twice for one step, calls
during quiet hours, goes on after an acknowledgement, skips the wait, or
stalls on a call whose controller died. The table holds the cases of each;
the property replays any history of outcomes and checks the invariants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.escalation.ladder import (
    STALE_CALL,
    Attempt,
    Call,
    Done,
    GiveUp,
    Move,
    Skip,
    Step,
    Wait,
    next_move,
)
from ivr.escalation.tables import (
    ACKNOWLEDGED,
    BUSY,
    CALL,
    DUP,
    FAILED,
    NO_ANSWER,
    NOT_ACKNOWLEDGED,
    SKIP,
    SKIPPED_QUIET_HOURS,
    SUPPRESSED_DUPLICATE,
)

DUE = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)
STEPS = [Step("lider_citas", "6001", TEN), Step("coordinadora", "6002", TEN)]
S = timedelta(seconds=1)


def call(step: int, at: datetime, result: str | None, ended: datetime | None = None) -> Attempt:
    return Attempt(step, CALL, at, ended if ended else (at + 30 * S if result else None), result, f"a{step}")


CASES: list[tuple[str, list[Attempt], datetime, bool, Move]] = [
    ("due: step 0 is called", [], DUE, False, Call(0)),
    ("not due yet", [], DUE - S, False, Wait(DUE)),
    ("due in quiet hours: skipped once", [], DUE, True, Skip(0)),
    ("still quiet after the skip: wait",
     [Attempt(0, SKIP, DUE, DUE, SKIPPED_QUIET_HOURS)], DUE + TEN, True, Wait()),
    ("quiet hours over: the skipped step is called",
     [Attempt(0, SKIP, DUE, DUE, SKIPPED_QUIET_HOURS)], DUE + 8 * TEN, False, Call(0)),
    ("call in progress: wait", [call(0, DUE, None)], DUE + 40 * S, False, Wait()),
    ("call in progress past STALE_CALL: given up",
     [call(0, DUE, None)], DUE + STALE_CALL, False, GiveUp("a0")),
    ("no answer: wait for the step's wait", [call(0, DUE, NO_ANSWER)], DUE + TEN - S, False,
     Wait(DUE + TEN)),
    ("no answer, wait over: next person", [call(0, DUE, NO_ANSWER)], DUE + TEN, False, Call(1)),
    ("busy: next person after the wait", [call(0, DUE, BUSY)], DUE + TEN, False, Call(1)),
    ("failed: next person after the wait", [call(0, DUE, FAILED)], DUE + TEN, False, Call(1)),
    ("answered without a 1: next person", [call(0, DUE, NOT_ACKNOWLEDGED)], DUE + TEN, False,
     Call(1)),
    ("a call longer than the wait: next at its end",
     [call(0, DUE, NOT_ACKNOWLEDGED, ended=DUE + 2 * TEN)], DUE + TEN, False, Wait(DUE + 2 * TEN)),
    ("next step due in quiet hours: skipped", [call(0, DUE, NO_ANSWER)], DUE + TEN, True, Skip(1)),
    ("acknowledged: done", [call(0, DUE, ACKNOWLEDGED)], DUE + TEN, False, Done(True)),
    ("acknowledged by step 1: done",
     [call(0, DUE, NO_ANSWER), call(1, DUE + TEN, ACKNOWLEDGED)], DUE + 9 * TEN, False, Done(True)),
    ("every step tried, last wait running",
     [call(0, DUE, NO_ANSWER), call(1, DUE + TEN, NO_ANSWER)], DUE + TEN + S, False,
     Wait(DUE + 2 * TEN)),
    ("every step tried, no acknowledgement: exhausted",
     [call(0, DUE, NO_ANSWER), call(1, DUE + TEN, NO_ANSWER)], DUE + 2 * TEN, False, Done(False)),
    ("a suppressed duplicate is no call",
     [call(0, DUE, NO_ANSWER), Attempt(0, DUP, DUE, DUE, SUPPRESSED_DUPLICATE)], DUE + TEN, False,
     Call(1)),
]  # fmt: skip


@pytest.mark.parametrize(("attempts", "now", "quiet", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_next_move(attempts: list[Attempt], now: datetime, quiet: bool, expected: Move) -> None:
    assert next_move(STEPS, attempts, due=DUE, now=now, quiet=quiet) == expected


def test_an_empty_ladder_is_done_at_once() -> None:
    assert next_move([], [], due=DUE, now=DUE, quiet=False) == Done(False)


def test_a_ladder_shortened_since_the_call_ends_without_an_index_error() -> None:
    attempts = [call(0, DUE, NO_ANSWER), call(1, DUE + TEN, NO_ANSWER)]

    assert next_move(STEPS[:1], attempts, due=DUE, now=DUE + 3 * TEN, quiet=False) == Done(False)


OUTCOMES = st.sampled_from([NO_ANSWER, BUSY, FAILED, NOT_ACKNOWLEDGED, ACKNOWLEDGED, None])


@settings(max_examples=200, deadline=None)
@given(
    waits=st.lists(st.integers(0, 1800), min_size=1, max_size=4),
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=6),
    quiet=st.lists(st.booleans(), min_size=40, max_size=40),
    tick_s=st.integers(1, 900),
)
def test_replayed_ladders_keep_the_invariants(
    waits: list[int], outcomes: list[str | None], quiet: list[bool], tick_s: int
) -> None:
    """Drive a ladder round by round as the monitor does, with any outcomes and
    quiet hours: a step is called at most once, never in quiet hours, never
    before the previous step's wait, never after an acknowledgement; a skip is
    logged at most once per step."""
    steps = [Step(f"p{i}", f"600{i}", timedelta(seconds=w)) for i, w in enumerate(waits)]
    attempts: list[Attempt] = []
    outcome_of = iter(outcomes)
    now = DUE
    for is_quiet in quiet:
        move = next_move(steps, attempts, due=DUE, now=now, quiet=is_quiet)
        acknowledged = any(a.result == ACKNOWLEDGED for a in attempts)
        if isinstance(move, Call):
            assert not is_quiet and not acknowledged
            assert all(not (a.kind == CALL and a.step == move.step) for a in attempts)
            previous = [a for a in attempts if a.kind == CALL and a.step == move.step - 1]
            if move.step > 0:
                assert previous and now >= previous[0].started_at + steps[move.step - 1].wait
            result = next(outcome_of, NO_ANSWER)
            ended = now + 5 * S if result else None
            attempts.append(Attempt(move.step, CALL, now, ended, result, f"id{move.step}"))
        elif isinstance(move, Skip):
            assert is_quiet
            assert all(not (a.kind == SKIP and a.step == move.step) for a in attempts)
            attempts.append(Attempt(move.step, SKIP, now, now, SKIPPED_QUIET_HOURS))
        elif isinstance(move, GiveUp):
            index = next(i for i, a in enumerate(attempts) if a.id == move.attempt_id)
            a = attempts[index]
            assert a.result is None and now - a.started_at >= STALE_CALL
            attempts[index] = Attempt(a.step, a.kind, a.started_at, now, FAILED, a.id)
        elif isinstance(move, Done):
            assert move.acknowledged == acknowledged
        now += timedelta(seconds=tick_s)
    steps_called = [a.step for a in attempts if a.kind == CALL]
    assert steps_called == sorted(set(steps_called))
