"""The desk reports' service-level and agent figures: pure functions over one period's rows.

The other half of ``ivr.desk.report_figures`` (why people call, how scripts are
walked): how fast callers are served at each level and queue, how often they
are handed up and why, and each agent's handle times and presence. No I/O;
tested over their range in ``tests/unit/test_desk_report_figures.py``.
Definitions: each docstring, and ``docs/desk/reports.md``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.desk.report_figures import NO_VALUE, ContactFacts, PresenceFacts, avg

DEFAULT_WITHIN_S = 20.0
"""Service level threshold: answered within this many seconds of queueing (80/20 convention)."""


# --- service levels -----------------------------------------------------------------------------
@dataclass
class LevelFigures:
    """One queue of one level (or a level's subtotal, ``queue`` = ``total``).

    ``waited``: contacts with a queue wait measured (``hold_seconds``); ``within``: of
    them, answered within the threshold (``hold_seconds`` ≤ N); ``within_pct`` =
    within / waited × 100. ``at_level_avg_s``: answer → escalation or hang-up.
    ``escalations``: contacts handed up from here, by reason and by target queue.
    """

    level: int
    queue: str
    contacts: int = 0
    waited: int = 0
    within: int = 0
    within_pct: float | None = None
    wait_avg_s: float | None = None
    wait_max_s: float | None = None
    at_level: int = 0
    at_level_avg_s: float | None = None
    escalations: int = 0
    escalation_reasons: dict[str, int] = field(default_factory=dict)
    escalated_to: dict[str, int] = field(default_factory=dict)
    _wait_sum: float = field(default=0.0, repr=False)
    _at_level_sum: float = field(default=0.0, repr=False)

    def add(self, c: ContactFacts, within_s: float) -> None:
        self.contacts += 1
        if c.hold_seconds is not None:
            self.waited += 1
            self.within += c.hold_seconds <= within_s
            self._wait_sum += c.hold_seconds
            self.wait_max_s = max(self.wait_max_s or 0.0, c.hold_seconds)
        left = time_at_level(c)
        if left is not None:
            self.at_level += 1
            self._at_level_sum += left
        if c.state == "escalated":
            self.escalations += 1
            reason = c.escalation_reason or NO_VALUE
            self.escalation_reasons[reason] = self.escalation_reasons.get(reason, 0) + 1
            target = c.escalated_to or NO_VALUE
            self.escalated_to[target] = self.escalated_to.get(target, 0) + 1

    def finish(self) -> LevelFigures:
        self.within_pct = round(100.0 * self.within / self.waited, 1) if self.waited else None
        self.wait_avg_s = avg(self._wait_sum, self.waited)
        self.at_level_avg_s = avg(self._at_level_sum, self.at_level)
        self.escalation_reasons = dict(
            sorted(self.escalation_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        self.escalated_to = dict(sorted(self.escalated_to.items()))
        return self

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def time_at_level(c: ContactFacts) -> float | None:
    """Seconds from answer to escalation (escalated) or hang-up; None while still on."""
    left = c.escalated_at if c.state == "escalated" else c.ended_at
    if left is None:
        return None
    return max((left - c.answered_at).total_seconds(), 0.0)


def service_levels(
    contacts: Iterable[ContactFacts], within_s: float = DEFAULT_WITHIN_S
) -> list[LevelFigures]:
    """Figures per (level, queue), then each level's subtotal (``queue`` = ``total``),
    ordered by level then queue with the subtotal last; the grand total is
    :func:`service_total`. Raises ValueError for a negative threshold."""
    if within_s < 0:
        raise ValueError("the service-level threshold is a duration (≥ 0 s)")
    rows: dict[tuple[int, str], LevelFigures] = {}
    for c in contacts:
        for key in ((c.level, c.queue), (c.level, "total")):
            rows.setdefault(key, LevelFigures(*key)).add(c, within_s)
    return [rows[k].finish() for k in sorted(rows, key=lambda k: (k[0], k[1] == "total", k[1]))]


def service_total(
    contacts: Iterable[ContactFacts], within_s: float = DEFAULT_WITHIN_S
) -> LevelFigures:
    """All levels together (``level`` 0, ``queue`` ``total``)."""
    total = LevelFigures(0, "total")
    for c in contacts:
        total.add(c, within_s)
    return total.finish()


def hops(contacts: Iterable[ContactFacts]) -> dict[str, int]:
    """Journeys (callers) by how many contacts they had in the period: ``{"1": n, "2": m...}``."""
    per_journey = Counter(c.journey_key or c.id for c in contacts)
    return {str(k): v for k, v in sorted(Counter(per_journey.values()).items())}


# --- agents -------------------------------------------------------------------------------------
@dataclass
class PresenceTime:
    """Seconds an agent spent logged in (available or paused) and paused by reason."""

    logged_in_s: float = 0.0
    paused_s: float = 0.0
    pauses: int = 0
    paused_by_reason: dict[str, float] = field(default_factory=dict)


def presence_time(
    events: Iterable[PresenceFacts], start: datetime, end: datetime
) -> dict[str, PresenceTime]:
    """Each agent's logged-in and paused seconds within ``[start, end)``.

    ``events``: every event in the period, plus each agent's last event before
    ``start`` (the state the period opens in); in any order. Each event alone sets
    the state (so the last one before the period is enough to know how it opens):
    ``login`` and ``unpause`` → available; ``pause`` → paused with its reason (a
    pause while paused changes the reason); ``logout`` → out; an unknown event
    changes nothing. A state still open at
    ``end`` is counted up to ``end`` (pass ``min(end, now)`` for today). ``pauses``
    counts the pauses that *start* in the period.
    """
    timeline: dict[str, list[PresenceFacts]] = defaultdict(list)
    for e in events:
        timeline[e.agent].append(e)
    found: dict[str, PresenceTime] = {}
    for agent, agent_events in timeline.items():
        agent_events.sort(key=lambda e: e.at)
        spent = found.setdefault(agent, PresenceTime())
        state: str = "out"
        reason = NO_VALUE
        since = start
        for e in agent_events:
            _spend(spent, state, reason, max(since, start), min(max(e.at, start), end))
            since = e.at
            state = _STATE_AFTER.get(e.event, state)
            if e.event == "pause":
                reason = e.reason or NO_VALUE
                spent.pauses += start <= e.at < end
        _spend(spent, state, reason, max(since, start), end)
    return found


_STATE_AFTER = {"login": "in", "unpause": "in", "pause": "paused", "logout": "out"}


def _spend(spent: PresenceTime, state: str, reason: str, a: datetime, b: datetime) -> None:
    seconds = (b - a).total_seconds()
    if seconds <= 0 or state == "out":
        return
    spent.logged_in_s += seconds
    if state == "paused":
        spent.paused_s += seconds
        spent.paused_by_reason[reason] = spent.paused_by_reason.get(reason, 0.0) + seconds


@dataclass
class AgentFigures:
    """One agent's period: contacts, handle times and presence.

    ``handle_avg_s``: answer → closed (talk + wrap-up) or → escalated, over the
    contacts that reached one; ``talk_avg_s``: answer → hang-up or escalation;
    ``wrapup_avg_s``: hang-up → closed.
    """

    agent: str
    name: str
    contacts: int = 0
    closed: int = 0
    escalated: int = 0
    handle_avg_s: float | None = None
    talk_avg_s: float | None = None
    wrapup_avg_s: float | None = None
    logged_in_s: float = 0.0
    paused_s: float = 0.0
    pauses: int = 0
    paused_by_reason: dict[str, float] = field(default_factory=dict)
    _handle: list[float] = field(default_factory=list, repr=False)
    _talk: list[float] = field(default_factory=list, repr=False)
    _wrapup: list[float] = field(default_factory=list, repr=False)

    def add(self, c: ContactFacts) -> None:
        self.contacts += 1
        self.closed += c.state == "closed"
        self.escalated += c.state == "escalated"
        done = c.escalated_at if c.state == "escalated" else c.closed_at
        if done is not None:
            self._handle.append((done - c.answered_at).total_seconds())
        talk = time_at_level(c)
        if talk is not None:
            self._talk.append(talk)
        if c.state == "closed" and c.ended_at is not None and c.closed_at is not None:
            self._wrapup.append(max((c.closed_at - c.ended_at).total_seconds(), 0.0))

    def finish(self, presence: PresenceTime | None) -> AgentFigures:
        self.handle_avg_s = avg(sum(self._handle), len(self._handle))
        self.talk_avg_s = avg(sum(self._talk), len(self._talk))
        self.wrapup_avg_s = avg(sum(self._wrapup), len(self._wrapup))
        if presence is not None:
            self.logged_in_s = round(presence.logged_in_s, 1)
            self.paused_s = round(presence.paused_s, 1)
            self.pauses = presence.pauses
            self.paused_by_reason = {
                k: round(v, 1) for k, v in sorted(presence.paused_by_reason.items())
            }
        return self

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def agents(
    contacts: Iterable[ContactFacts],
    presence: Mapping[str, PresenceTime],
    names: Mapping[str, str] | None = None,
) -> list[AgentFigures]:
    """One row per agent with contacts or presence in the period, by extension.

    ``names``: extension → name for agents known only by their presence."""
    rows: dict[str, AgentFigures] = {}
    for c in contacts:
        rows.setdefault(c.agent, AgentFigures(c.agent, c.agent_name)).add(c)
    for agent in presence:
        rows.setdefault(agent, AgentFigures(agent, (names or {}).get(agent, agent)))
    return [rows[a].finish(presence.get(a)) for a in sorted(rows)]
