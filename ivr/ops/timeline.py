"""The flags over time: rules across flags checked at every instant a change produces.

A rule (:class:`ivr.ops.flags.FlagRule`) looks at every flag's value at one
instant and says what is wrong, in Spanish, for the operator. A change is judged on its
*timeline*: the effective values at every instant from now on, given the
stored values and every window, the existing ones and the proposed one, minus
a cancelled one (:func:`first_violation`).

Why checking a finite set of instants covers every instant
------------------------------------------------------------
The effective value of flag ``f`` at instant ``t`` (:func:`effective_at`) is the
value of the winning window of ``f`` active at ``t``, else the stored value,
else the default. A window ``w`` is active on the half-open interval
``[w.starts_at, w.ends_at)``; stored values do not change by themselves (only
a change does, and a change is judged again). Let ``now`` be the moment of the
change and ``b1 < b2 < … < bn`` the window boundaries (every ``starts_at`` and
``ends_at``) later than ``now``; set ``b0 = now`` and ``b(n+1) = +∞``.

1. On each interval ``[bi, b(i+1))`` no boundary lies strictly inside, so each
   window is either active at every instant of it or at none (its activity
   only changes at its own ``starts_at`` and ``ends_at``, which are
   boundaries). The set of active windows is therefore constant there.
2. The winner among active windows depends only on that set (newest
   ``created_at``, then smallest id: ``ivr.ops.store.winning_window``), so every flag's
   effective value is constant on ``[bi, b(i+1))``; every rule, a function of
   the values alone, has one outcome there.
3. The intervals ``[b0, b1), …, [bn, +∞)`` partition ``[now, +∞)``. Checking
   the rules at ``b0 … bn`` (:func:`check_instants`) thus checks every instant
   from now on; instants before ``now`` are history and no change can alter them.

The tests check this against brute-force sampling of the timeline with
hypothesis (``tests/unit/test_ops_timeline.py``).

>>> from datetime import UTC, datetime
>>> band = FlagRule("age_band", "la edad mínima no puede superar la máxima", ("lo", "hi"),
...                 lambda v: None if v["lo"] <= v["hi"] else f"{v['lo']} > {v['hi']}")
>>> now = datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
>>> w = Window("w1", "hi", 30, now, now.replace(hour=14), "r", now, "ana")
>>> first_violation((band,), {"lo": 40, "hi": 54}, (w,), now).at.isoformat()
'2025-03-10T13:00:00+00:00'
>>> first_violation((band,), {"lo": 40, "hi": 54}, (), now) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ivr.ops.flags import FlagRule, FlagValue, Values
from ivr.ops.store import Window, winning_window

__all__ = ["RuleViolation", "check_instants", "effective_at", "first_violation", "winning_window"]


@dataclass(frozen=True)
class RuleViolation:
    """A rule broken from ``at`` on (the first instant checked that breaks it)."""

    rule: FlagRule
    at: datetime
    problem: str
    windows: tuple[Window, ...]  # the windows active at ``at``

    @property
    def message(self) -> str:
        """The Spanish sentence an operator reads (CLI, API, console)."""
        active = ""
        if self.windows:
            active = "; ventanas activas entonces: " + ", ".join(
                f"{w.name}={w.value} ({w.id})" for w in self.windows
            )
        return (
            f"el cambio rompería la regla «{self.rule.summary}» ({self.rule.rule_id}) "
            f"desde {self.at.isoformat(timespec='seconds')}: {self.problem}{active}"
        )


def effective_at(base: Values, windows: Sequence[Window], at: datetime) -> dict[str, FlagValue]:
    """Every flag's effective value at ``at``; ``base`` holds the values without windows."""
    values = dict(base)
    for name in {w.name for w in windows}:
        window = winning_window(windows, name, at)
        if window is not None:
            values[name] = window.value
    return values


def check_instants(windows: Iterable[Window], now: datetime) -> list[datetime]:
    """``now`` and every window boundary after it, in order (see the module's proof)."""
    later = {t for w in windows if w.cancelled_at is None for t in (w.starts_at, w.ends_at)}
    return [now, *sorted(t for t in later if t > now)]


def first_violation(
    rules: Sequence[FlagRule], base: Values, windows: Sequence[Window], now: datetime
) -> RuleViolation | None:
    """The earliest instant from ``now`` on at which a rule breaks, or None.

    ``base`` is every flag's value without windows (after the change), and
    ``windows`` every window (after the change). Rules are tried in order at
    each instant, so the violation names the first broken rule at that instant.
    """
    for at in check_instants(windows, now):
        values = effective_at(base, windows, at)
        for rule in rules:
            problem = rule.check(values)
            if problem is not None:
                active = tuple(
                    w
                    for w in windows
                    if w.active_at(at) and winning_window(windows, w.name, at) is w
                )
                return RuleViolation(rule, at, problem, active)
    return None
