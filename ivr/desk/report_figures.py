"""The desk reports' arithmetic: pure functions over the rows of one period.

Every figure of ``ivr.desk.reports`` is computed here, from plain facts
(:class:`ContactFacts`, :class:`StepFacts`, :class:`PresenceFacts`) that the
queries read; no I/O, so each function is tested over its range (hypothesis,
``tests/unit/test_desk_report_figures.py``). The definitions (what counts, in
which denominator) are in ``docs/desk/reports.md``; each function's docstring
says its own.

Why Python and not SQL: a Bogotá day, a percentile and a presence timeline
are computed the same way on SQLite and PostgreSQL only in Python (SQLite has
no time zones nor ``percentile_cont``); the queries select the period's rows
by indexed time columns and the aggregation is linear in them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

NO_VALUE = "sin dato"
"""The label of a missing value (no site, no IVR reason, no call type yet...)."""
TOP_MISMATCHES = 10


@dataclass(frozen=True)
class ContactFacts:
    """One ``desk_contacts`` row as the reports read it (times aware UTC; seconds float)."""

    id: str
    kind: str
    agent: str
    agent_name: str
    queue: str
    level: int
    answered_at: datetime
    state: str
    site: str | None = None
    ivr_reason: str | None = None
    call_type: str | None = None
    reason: str | None = None
    scenario: str | None = None
    procedure: str | None = None
    disposition: str | None = None
    queued_at: datetime | None = None
    ended_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    escalation_reason: str | None = None
    escalated_to: str | None = None
    hold_seconds: float | None = None
    previous_contact_id: str | None = None
    journey_key: str | None = None


@dataclass(frozen=True)
class StepFacts:
    """One ``desk_steps`` row: the node, its label and the seconds spent in it (None: open)."""

    contact_id: str
    seq: int
    node_id: str
    label: str
    seconds: float | None


@dataclass(frozen=True)
class PresenceFacts:
    """One ``desk_presence`` event: ``login`` | ``logout`` | ``pause`` | ``unpause``."""

    agent: str
    event: str
    at: datetime
    reason: str | None = None


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def avg(total: float, n: int) -> float | None:
    return round(total / n, 1) if n else None


def local_day(at: datetime, tz: tzinfo) -> date:
    """The calendar day of ``at`` (aware) in ``tz``.

    >>> from datetime import UTC
    >>> from zoneinfo import ZoneInfo
    >>> local_day(datetime(2026, 12, 1, 4, 59, tzinfo=UTC), ZoneInfo("America/Bogota"))
    datetime.date(2026, 11, 30)
    """
    return at.astimezone(tz).date()


def days_between(start: datetime, end: datetime, tz: tzinfo) -> list[str]:
    """Every local day (ISO) that ``[start, end)`` touches, in order."""
    first = local_day(start, tz)
    last = local_day(end - timedelta(microseconds=1), tz)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p ≤ 100) of ``values``; None when empty.

    The smallest value with at least ``p`` % of the values at or below it: always an
    observed value (NIST / Hyndman–Fan definition 1), so "p90 = 42 s" means a real
    step took 42 s. Raises ValueError for ``p`` outside (0, 100].

    >>> percentile([5, 1, 4, 2, 3], 50), percentile([5, 1, 4, 2, 3], 90), percentile([], 50)
    (3, 5, None)
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


# --- reasons ---------------------------------------------------------------------------------
REASON_FIELDS = ("call_type", "reason", "scenario", "procedure", "disposition")
BY_VALUES = ("day", "agent", "site")


@dataclass(frozen=True)
class ReasonRow:
    """Contacts of one key (day, agent or site) with one combination of the script's labels."""

    key: str
    call_type: str
    reason: str
    scenario: str
    procedure: str
    disposition: str
    contacts: int

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def contact_key(contact: ContactFacts, by: str, tz: tzinfo) -> str:
    """Where a contact is counted: its local answer day, its agent (extension) or its site."""
    if by == "day":
        return local_day(contact.answered_at, tz).isoformat()
    if by == "agent":
        return contact.agent
    if by == "site":
        return contact.site or NO_VALUE
    raise ValueError(f"unknown dimension {by!r}")


def reasons(contacts: Iterable[ContactFacts], by: str, tz: tzinfo) -> list[ReasonRow]:
    """Contacts counted by key × (call type, reason, scenario, procedure, disposition).

    Every contact counts once (a hop is a contact: an escalated call counts at each
    level, under what each agent recorded); a label not recorded is ``sin dato``.
    Rows by key, then most contacts first, then labels.
    """
    counts: Counter[tuple[str, str, str, str, str, str]] = Counter()
    for c in contacts:
        counts[(contact_key(c, by, tz), c.call_type or NO_VALUE, c.reason or NO_VALUE,
                c.scenario or NO_VALUE, c.procedure or NO_VALUE, c.disposition or NO_VALUE)] += 1  # fmt: skip
    rows = [ReasonRow(*key, contacts=n) for key, n in counts.items()]
    return sorted(rows, key=lambda r: (r.key, -r.contacts, r.call_type, r.reason, r.scenario,
                                       r.procedure, r.disposition))  # fmt: skip


def totals_by_key(rows: Iterable[ReasonRow], keys: Sequence[str] = ()) -> dict[str, int]:
    """Contacts per key (``keys`` listed first, with 0 when they have none)."""
    totals = dict.fromkeys(keys, 0)
    for row in rows:
        totals[row.key] = totals.get(row.key, 0) + row.contacts
    return totals


def totals_by_call_type(rows: Iterable[ReasonRow]) -> dict[str, int]:
    """Contacts per call type, most first."""
    totals: Counter[str] = Counter()
    for row in rows:
        totals[row.call_type] += row.contacts
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


# --- time per step ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepTime:
    """Time in one script node: steps taken, and seconds at p50, p90, max (closed steps only)."""

    node_id: str
    label: str
    steps: int
    timed: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    avg_s: float | None

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def step_times(steps: Iterable[StepFacts]) -> list[StepTime]:
    """Per node: steps taken, and p50/p90/max/avg over the steps with seconds.

    A step still open (``seconds`` None: the agent is in it, or the call was cut) counts
    in ``steps`` but not in the times. The label is the newest one seen (the last step's,
    by contact order). Rows by steps, most first, then node id.
    """
    by_node: dict[str, list[StepFacts]] = defaultdict(list)
    for s in steps:
        by_node[s.node_id].append(s)
    rows = []
    for node, taken in by_node.items():
        seconds = [s.seconds for s in taken if s.seconds is not None]
        rows.append(StepTime(
            node, taken[-1].label, len(taken), len(seconds),
            _round(percentile(seconds, 50)), _round(percentile(seconds, 90)),
            _round(max(seconds, default=None)), avg(sum(seconds), len(seconds)),
        ))  # fmt: skip
    return sorted(rows, key=lambda r: (-r.steps, r.node_id))


# --- script paths -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PathCount:
    """One sequence of nodes taken in a contact, and how many contacts took it."""

    nodes: tuple[str, ...]
    labels: tuple[str, ...]
    contacts: int
    share_pct: float

    def as_json(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "labels": list(self.labels),
                "contacts": self.contacts, "share_pct": self.share_pct}  # fmt: skip


def script_paths(steps: Iterable[StepFacts]) -> list[PathCount]:
    """The node sequences of each contact (its steps by ``seq``), counted.

    A contact's path is its own steps (each hop of an escalated call has its own);
    ``share_pct`` is of the contacts with at least one step. Most frequent first,
    then the nodes in order.
    """
    by_contact: dict[str, list[StepFacts]] = defaultdict(list)
    for s in steps:
        by_contact[s.contact_id].append(s)
    counts: Counter[tuple[str, ...]] = Counter()
    labels: dict[tuple[str, ...], tuple[str, ...]] = {}
    for taken in by_contact.values():
        taken.sort(key=lambda s: s.seq)
        nodes = tuple(s.node_id for s in taken)
        counts[nodes] += 1
        labels[nodes] = tuple(s.label for s in taken)
    total = sum(counts.values())
    return sorted(
        (PathCount(nodes, labels[nodes], n, round(100.0 * n / total, 1)) for nodes, n in counts.items()),
        key=lambda p: (-p.contacts, p.nodes),
    )  # fmt: skip


# --- agents' reasons vs the IVR's ---------------------------------------------------------------
@dataclass(frozen=True)
class Mismatch:
    """The matrix IVR reason × agent's call type over first hops, and the mismatches.

    ``cells[ivr_reason][call_type]`` = contacts; ``expected[ivr_reason]`` the call types
    the IVR's reason implies (from the script's entry rules); ``judged``: contacts whose
    IVR reason has an expectation; ``mismatched``: those of them whose call type is not
    expected; ``top``: the most frequent (IVR reason, call type, reason) mismatches.
    """

    ivr_reasons: list[str]
    call_types: list[str]
    cells: dict[str, dict[str, int]]
    expected: dict[str, list[str]]
    contacts: int
    judged: int
    mismatched: int
    mismatch_pct: float | None
    by_ivr_reason: list[dict[str, Any]]
    top: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def mismatch(contacts: Iterable[ContactFacts], expected: Mapping[str, Iterable[str]]) -> Mismatch:
    """Agents' recorded call types against the callers' IVR reasons.

    Counted: first hops only (``previous_contact_id`` None: where the IVR's menu sent
    the caller; later hops were routed by an agent) with a call type recorded. A
    contact is *judged* when its IVR reason has expected call types, and *mismatched*
    when its call type is not one of them; ``mismatch_pct`` = mismatched / judged × 100
    (None when nothing was judged).
    """
    wanted = {k: frozenset(v) for k, v in expected.items()}
    cells: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: Counter[tuple[str, str, str]] = Counter()
    judged_by: Counter[str] = Counter()
    wrong_by: Counter[str] = Counter()
    for c in contacts:
        if c.previous_contact_id is not None or c.call_type is None:
            continue
        ivr = c.ivr_reason or NO_VALUE
        cells[ivr][c.call_type] += 1
        if ivr in wanted:
            judged_by[ivr] += 1
            if c.call_type not in wanted[ivr]:
                wrong_by[ivr] += 1
                wrong[(ivr, c.call_type, c.reason or NO_VALUE)] += 1
    judged, mismatched = sum(judged_by.values()), sum(wrong_by.values())
    ivr_reasons = sorted(cells, key=lambda r: (-sum(cells[r].values()), r))
    call_types = sorted({t for row in cells.values() for t in row})
    per_reason = [
        {"ivr_reason": r, "contacts": sum(cells[r].values()),
         "expected": sorted(wanted.get(r, ())), "judged": judged_by[r], "mismatched": wrong_by[r],
         "mismatch_pct": round(100.0 * wrong_by[r] / judged_by[r], 1) if judged_by[r] else None}
        for r in ivr_reasons
    ]  # fmt: skip
    top = [
        {"ivr_reason": ivr, "call_type": t, "reason": reason, "contacts": n}
        for (ivr, t, reason), n in sorted(wrong.items(), key=lambda kv: (-kv[1], kv[0]))
    ][:TOP_MISMATCHES]  # fmt: skip
    return Mismatch(
        ivr_reasons, call_types, {r: dict(cells[r]) for r in ivr_reasons},
        {k: sorted(v) for k, v in sorted(wanted.items())},
        sum(sum(row.values()) for row in cells.values()), judged, mismatched,
        round(100.0 * mismatched / judged, 1) if judged else None, per_reason, top,
    )  # fmt: skip
