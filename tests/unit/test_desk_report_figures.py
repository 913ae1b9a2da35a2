"""The desk reports' arithmetic (``ivr.desk.report_figures``), pure, over its range.

The kinds of fault: a contact placed under the wrong Bogotá day (UTC midnight vs
local midnight), counted twice or lost; a percentile that is not an observed
value or on the wrong side of the rank; a path's steps out of order; a mismatch
counted for a hop the menu did not route, or a share over the wrong denominator;
a service level on the wrong side of its threshold (≤ vs <); a subtotal that is
not the sum of its queues; presence time that depends on where the period is cut.
Each kind: the observed instance by hand, and the range by hypothesis.
"""

from __future__ import annotations

import doctest
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.desk import report_figures as f
from ivr.desk import report_service as sl

BOGOTA = ZoneInfo("America/Bogota")
T0 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 08:00 in Bogotá
SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None)


def contact(n: int = 0, **kw: object) -> f.ContactFacts:
    values: dict[str, object] = {
        "id": f"c{n}", "kind": "voice", "agent": "7001", "agent_name": "Ana Gómez",
        "queue": "general", "level": 1, "answered_at": T0, "state": "closed",
    }  # fmt: skip
    values.update(kw)
    return f.ContactFacts(**values)  # type: ignore[arg-type]


# --- days in Bogotá ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("utc", "day"),
    [
        (
            datetime(2026, 12, 1, 4, 59, 59, 999999, tzinfo=UTC),
            "2026-11-30",
        ),  # 23:59:59.999999 local
        (datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "2026-12-01"),  # local midnight
        (
            datetime(2026, 12, 1, 0, 30, tzinfo=UTC),
            "2026-11-30",
        ),  # UTC's new day, still yesterday here
        (datetime(2027, 1, 1, 4, 0, tzinfo=UTC), "2026-12-31"),  # the year's boundary
    ],
)
def test_a_contact_belongs_to_its_bogota_day(utc: datetime, day: str) -> None:
    assert f.contact_key(contact(answered_at=utc), "day", BOGOTA) == day


@SETTINGS
@given(st.datetimes(min_value=datetime(1994, 1, 1), max_value=datetime(2090, 1, 1)))
def test_bogota_day_is_utc_minus_five_over_the_range(naive: datetime) -> None:
    # Colombia has kept UTC-5 without daylight saving since 1993.
    at = naive.replace(tzinfo=UTC)
    assert f.local_day(at, BOGOTA) == (at - timedelta(hours=5)).date()


@SETTINGS
@given(st.dates(), st.integers(1, 40))
def test_days_between_lists_each_local_day_once(first: object, n: int) -> None:
    start = datetime.combine(first, datetime.min.time(), BOGOTA)  # type: ignore[arg-type]
    days = f.days_between(start, start + timedelta(days=n), BOGOTA)
    assert len(days) == n and days[0] == start.date().isoformat() and len(set(days)) == n


# --- percentiles --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([7.0], 50, 7.0), ([1.0, 2.0], 50, 1.0), ([1.0, 2.0], 51, 2.0), ([3.0, 1.0, 2.0], 100, 3.0),
     ([3.0, 1.0, 2.0], 0.001, 1.0), ([1.0] * 9 + [100.0], 90, 1.0), ([1.0] * 9 + [100.0], 91, 100.0)],
)  # fmt: skip
def test_nearest_rank_percentile(values: list[float], p: float, expected: float) -> None:
    assert f.percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_the_range_is_refused(p: float) -> None:
    with pytest.raises(ValueError):
        f.percentile([1.0], p)


@SETTINGS
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60), st.floats(0.01, 100))
def test_percentile_is_the_nearest_rank_over_the_range(values: list[float], p: float) -> None:
    found = f.percentile(values, p)
    assert found in values
    need = p / 100 * len(values)
    assert sum(v <= found for v in values) >= need - 1e-9  # at least p % at or below
    assert sum(v < found for v in values) < need + 1e-9 or math.isclose(
        need, 0
    )  # and no smaller value would do


# --- reasons ---------------------------------------------------------------------------------------
LABEL = st.sampled_from(["a", "b", None])
CONTACTS = st.lists(
    st.builds(
        lambda i, at, agent, site, ct, reason, disp: contact(
            i, answered_at=at, agent=agent, site=site, call_type=ct, reason=reason, disposition=disp),
        st.integers(0, 10**6),
        st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
        st.sampled_from(["7001", "7002", "7003"]), st.sampled_from(["norte", "sur", None]),
        LABEL, LABEL, LABEL,
    ),
    max_size=40,
)  # fmt: skip


def test_reasons_by_day_observed() -> None:
    late = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)  # 23:30 of 30 November in Bogotá
    rows = f.reasons([contact(1, answered_at=late, call_type="agendamiento"),
                      contact(2, answered_at=T0, call_type="agendamiento"),
                      contact(3, answered_at=T0 + timedelta(days=1), call_type="incidente")], "day", BOGOTA)  # fmt: skip
    assert [(r.key, r.call_type, r.reason, r.contacts) for r in rows] == [
        ("2026-11-30", "agendamiento", f.NO_VALUE, 2), ("2026-12-01", "incidente", f.NO_VALUE, 1)]  # fmt: skip


@SETTINGS
@given(CONTACTS, st.sampled_from(f.BY_VALUES))
def test_reasons_count_every_contact_once_under_its_key(
    contacts: list[f.ContactFacts], by: str
) -> None:
    rows = f.reasons(contacts, by, BOGOTA)
    assert sum(r.contacts for r in rows) == len(contacts)
    expected = Counter((f.contact_key(c, by, BOGOTA), c.call_type or f.NO_VALUE) for c in contacts)
    found: Counter[tuple[str, str]] = Counter()
    for r in rows:
        found[(r.key, r.call_type)] += r.contacts
    assert found == expected
    assert sum(f.totals_by_call_type(rows).values()) == len(contacts)


# --- time per step and paths -------------------------------------------------------------------
STEPS = st.lists(
    st.builds(f.StepFacts, st.sampled_from(["c1", "c2", "c3", "c4"]), st.integers(1, 20),
              st.sampled_from(["saludo", "motivo", "cierre"]), st.just("etiqueta"),
              st.one_of(st.none(), st.floats(0, 600, allow_nan=False))),
    max_size=50,
)  # fmt: skip


def test_step_times_observed() -> None:
    steps = [f.StepFacts("c1", 1, "saludo", "Saludo", s) for s in (4.0, 6.0, 8.0, 30.0)]
    steps.append(f.StepFacts("c2", 1, "saludo", "Saludo", None))  # still open: taken, not timed
    (row,) = f.step_times(steps)
    assert (row.steps, row.timed, row.p50_s, row.p90_s, row.max_s, row.avg_s) == (
        5,
        4,
        6.0,
        30.0,
        30.0,
        12.0,
    )


@SETTINGS
@given(STEPS)
def test_step_times_over_the_range(steps: list[f.StepFacts]) -> None:
    rows = f.step_times(steps)
    assert sum(r.steps for r in rows) == len(steps)
    for r in rows:
        assert r.timed <= r.steps
        if r.timed:
            assert r.p50_s is not None and r.p90_s is not None and r.max_s is not None
            assert r.p50_s <= r.p90_s <= r.max_s
        else:
            assert r.p50_s is r.p90_s is r.max_s is None


def test_a_path_follows_seq_not_arrival() -> None:
    steps = [f.StepFacts("c1", 2, "motivo", "Motivo", 1.0), f.StepFacts("c1", 1, "saludo", "Saludo", 1.0),
             f.StepFacts("c2", 1, "saludo", "Saludo", 1.0), f.StepFacts("c2", 2, "motivo", "Motivo", 1.0),
             f.StepFacts("c3", 1, "saludo", "Saludo", 1.0)]  # fmt: skip
    paths = f.script_paths(steps)
    assert [(p.nodes, p.contacts, p.share_pct) for p in paths] == [
        (("saludo", "motivo"), 2, 66.7), (("saludo",), 1, 33.3)]  # fmt: skip


@SETTINGS
@given(STEPS)
def test_paths_count_each_contact_once_most_frequent_first(steps: list[f.StepFacts]) -> None:
    paths = f.script_paths(steps)
    assert sum(p.contacts for p in paths) == len({s.contact_id for s in steps})
    assert [p.contacts for p in paths] == sorted((p.contacts for p in paths), reverse=True)
    assert sum(len(p.nodes) * p.contacts for p in paths) == len(steps)


# --- agents' reasons vs the IVR's ----------------------------------------------------------------
EXPECTED = {"non-target": ["agendamiento"], "incident": ["incidente"]}


def test_mismatch_observed() -> None:
    contacts = [
        contact(1, ivr_reason="non-target", call_type="agendamiento"),
        contact(
            2, ivr_reason="non-target", call_type="informacion", reason="horarios"
        ),  # wrong place
        contact(
            3,
            ivr_reason="non-target",
            call_type="informacion",
            reason="horarios",
            previous_contact_id="c2",
        ),  # a hop: routed by an agent, not by the menu
        contact(4, ivr_reason="incident", call_type="incidente"),
        contact(5, ivr_reason="invalid-input", call_type="informacion"),  # no rule: not judged
        contact(6, ivr_reason="incident", call_type=None),  # nothing recorded yet
    ]
    m = f.mismatch(contacts, EXPECTED)
    assert (m.contacts, m.judged, m.mismatched, m.mismatch_pct) == (4, 3, 1, 33.3)
    assert m.cells["non-target"] == {"agendamiento": 1, "informacion": 1}
    assert m.top == [
        {
            "ivr_reason": "non-target",
            "call_type": "informacion",
            "reason": "horarios",
            "contacts": 1,
        }
    ]
    by = {r["ivr_reason"]: r for r in m.by_ivr_reason}
    assert by["invalid-input"]["mismatch_pct"] is None and by["non-target"]["mismatch_pct"] == 50.0


@SETTINGS
@given(st.lists(st.builds(
    lambda i, ivr, ct, hop: contact(i, ivr_reason=ivr, call_type=ct, previous_contact_id=hop),
    st.integers(0, 999), st.sampled_from(["non-target", "incident", "invalid-input", None]),
    st.sampled_from(["agendamiento", "incidente", "informacion", None]), st.sampled_from([None, None, "x"])),
    max_size=40))  # fmt: skip
def test_mismatch_against_a_plain_count(contacts: list[f.ContactFacts]) -> None:
    m = f.mismatch(contacts, EXPECTED)
    first = [c for c in contacts if c.previous_contact_id is None and c.call_type is not None]
    judged = [c for c in first if c.ivr_reason in EXPECTED]
    wrong = [c for c in judged if c.call_type not in EXPECTED[c.ivr_reason or ""]]
    assert (m.contacts, m.judged, m.mismatched) == (len(first), len(judged), len(wrong))
    assert sum(sum(row.values()) for row in m.cells.values()) == len(first)
    assert m.mismatch_pct == (round(100 * len(wrong) / len(judged), 1) if judged else None)


# --- service levels -------------------------------------------------------------------------------
def test_service_level_threshold_is_inclusive() -> None:
    contacts = [contact(1, hold_seconds=20.0), contact(2, hold_seconds=20.1), contact(3, hold_seconds=0.0),
                contact(4, hold_seconds=None, kind="chat")]  # fmt: skip
    queue, level = sl.service_levels(contacts, 20.0)
    assert (queue.queue, queue.contacts, queue.waited, queue.within, queue.within_pct) == (
        "general",
        4,
        3,
        2,
        66.7,
    )
    assert level.queue == "total" and level.within == 2
    assert queue.wait_avg_s == round(40.1 / 3, 1) and queue.wait_max_s == 20.1


def test_time_at_level_and_escalations() -> None:
    up = contact(1, state="escalated", escalated_at=T0 + timedelta(seconds=90), escalation_reason="Clínico",
                 escalated_to="l2_clinico", ended_at=T0 + timedelta(seconds=90))  # fmt: skip
    done = contact(2, ended_at=T0 + timedelta(seconds=30))
    on = contact(3, state="active")
    (row, _) = sl.service_levels([up, done, on])
    assert (row.at_level, row.at_level_avg_s, row.escalations) == (2, 60.0, 1)
    assert row.escalation_reasons == {"Clínico": 1} and row.escalated_to == {"l2_clinico": 1}


LEVEL_CONTACTS = st.lists(st.builds(
    lambda i, level, queue, hold, state: contact(i, level=level, queue=f"q{level}{queue}", hold_seconds=hold,
                                                 state=state, escalated_at=T0 + timedelta(seconds=i % 500)),
    st.integers(0, 10**6), st.integers(1, 3), st.sampled_from("ab"),
    st.one_of(st.none(), st.floats(0, 300, allow_nan=False)), st.sampled_from(["closed", "escalated", "active"])),
    max_size=40)  # fmt: skip


@SETTINGS
@given(LEVEL_CONTACTS, st.floats(0, 120, allow_nan=False))
def test_level_subtotals_are_the_sums_of_their_queues(
    contacts: list[f.ContactFacts], within: float
) -> None:
    rows = sl.service_levels(contacts, within)
    total = sl.service_total(contacts, within)
    subtotals = [r for r in rows if r.queue == "total"]
    for sub in subtotals:
        queues = [r for r in rows if r.level == sub.level and r.queue != "total"]
        for name in ("contacts", "waited", "within", "escalations", "at_level"):
            assert getattr(sub, name) == sum(getattr(q, name) for q in queues)
    for name in ("contacts", "waited", "within", "escalations"):
        assert getattr(total, name) == sum(getattr(s, name) for s in subtotals)
    assert total.within == sum(
        c.hold_seconds is not None and c.hold_seconds <= within for c in contacts
    )


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError):
        sl.service_levels([], -1)


def test_hops_count_journeys_by_their_contacts() -> None:
    contacts = [
        contact(1, journey_key="j1"),
        contact(2, journey_key="j1"),
        contact(3, journey_key="j2"),
    ]
    assert sl.hops(contacts) == {"1": 1, "2": 1}


# --- presence -------------------------------------------------------------------------------------
def event(agent: str, kind: str, minutes: float, reason: str | None = None) -> f.PresenceFacts:
    return f.PresenceFacts(agent, kind, T0 + timedelta(minutes=minutes), reason)


DAY = [event("7001", "login", 0), event("7001", "pause", 120, "Almuerzo"), event("7001", "unpause", 165),
       event("7001", "pause", 300, "Descanso"), event("7001", "pause", 305, "Capacitación"),
       event("7001", "unpause", 320), event("7001", "logout", 540)]  # fmt: skip


def test_presence_observed() -> None:
    spent = sl.presence_time(DAY, T0, T0 + timedelta(hours=12))["7001"]
    assert spent.logged_in_s == 540 * 60 and spent.paused_s == (45 + 20) * 60 and spent.pauses == 3
    assert spent.paused_by_reason == {"Almuerzo": 2700.0, "Descanso": 300.0, "Capacitación": 900.0}


def test_presence_is_cut_at_the_period() -> None:
    # The period opens in the middle of lunch: the login and pause before it set the state.
    start, end = T0 + timedelta(minutes=150), T0 + timedelta(minutes=310)
    before = [e for e in DAY if e.at < start][-1:]
    during = [e for e in DAY if start <= e.at < end]
    spent = sl.presence_time(before + during, start, end)["7001"]
    assert spent.logged_in_s == 160 * 60
    assert spent.paused_by_reason == {"Almuerzo": 900.0, "Descanso": 300.0, "Capacitación": 300.0}
    assert spent.pauses == 2  # the lunch began before the period


PRESENCE = st.lists(st.builds(event, st.sampled_from(["7001", "7002"]),
                              st.sampled_from(["login", "logout", "pause", "unpause"]),
                              st.integers(0, 1000), st.sampled_from(["Almuerzo", "Descanso", None])),
                    max_size=30)  # fmt: skip


@SETTINGS
@given(PRESENCE, st.integers(1, 999))
def test_presence_does_not_depend_on_where_the_period_is_cut(
    events: list[f.PresenceFacts], cut: int
) -> None:
    start, middle, end = T0, T0 + timedelta(minutes=cut), T0 + timedelta(minutes=1000)
    events = sorted(events, key=lambda e: e.at)

    def within(a: datetime, b: datetime) -> dict[str, sl.PresenceTime]:
        last: dict[str, f.PresenceFacts] = {}
        for e in events:
            if e.at < a:
                last[e.agent] = e  # what the query's "last event before the period" finds
        # Events at the same instant: the query gives every event at that last instant.
        before = [e for e in events if e.agent in last and e.at == last[e.agent].at]
        return sl.presence_time(before + [e for e in events if a <= e.at < b], a, b)

    whole, first, second = within(start, end), within(start, middle), within(middle, end)
    for agent, spent in whole.items():
        parts = [p[agent] for p in (first, second) if agent in p]
        assert math.isclose(spent.logged_in_s, sum(p.logged_in_s for p in parts), abs_tol=1e-6)
        assert math.isclose(spent.paused_s, sum(p.paused_s for p in parts), abs_tol=1e-6)
        assert spent.paused_s <= spent.logged_in_s <= (end - start).total_seconds()


def test_agent_handle_times() -> None:
    closed = contact(1, ended_at=T0 + timedelta(seconds=100), closed_at=T0 + timedelta(seconds=130))
    up = contact(
        2,
        state="escalated",
        escalated_at=T0 + timedelta(seconds=50),
        ended_at=T0 + timedelta(seconds=50),
    )
    wrapup = contact(3, state="wrapup", ended_at=T0 + timedelta(seconds=70))
    spent = sl.presence_time(DAY, T0, T0 + timedelta(hours=12))
    (row, other) = sl.agents(
        [closed, up, wrapup], spent | {"7009": sl.PresenceTime()}, {"7009": "Gina"}
    )
    assert (row.contacts, row.closed, row.escalated) == (3, 1, 1)
    assert (row.handle_avg_s, row.talk_avg_s, row.wrapup_avg_s) == (90.0, round(220 / 3, 1), 30.0)
    assert row.paused_by_reason["Almuerzo"] == 2700.0
    assert (other.agent, other.name, other.contacts, other.handle_avg_s) == (
        "7009",
        "Gina",
        0,
        None,
    )


def test_the_docstring_examples_run() -> None:
    for module in (f, sl):
        result = doctest.testmod(module)
        assert result.failed == 0 and (module is sl or result.attempted >= 3), module.__name__
