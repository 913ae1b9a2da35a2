"""The desk reports (``ivr.desk.reports``) over real rows, on SQLite and PostgreSQL.

The kinds of fault: a row selected on the wrong side of the period (UTC vs
Bogotá midnight, ``<`` vs ``<=``), under the wrong filter (agent, site in the
JSON context), a step or presence event of another period or agent, the IVR's
reason not found when only the call record has it, a database that answers
differently from the other. Each report runs over the same seeded desk
(``ivr.desk.seed``, 150 contacts over a week) on both databases and must equal
the figures computed from the plan itself; observed boundaries by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text

from ivr.desk import report_figures as f
from ivr.desk import report_service as sl
from ivr.desk.model import NewContact
from ivr.desk.reports import (
    REPORTS,
    DeskQuery,
    DeskReports,
    InvalidQuery,
    expected_call_types,
    site_of,
)
from ivr.desk.seed import SEED_TREE, DeskSeed, facts, generate, write
from ivr.desk.store import DeskStore
from ivr.desk.tables import DeskContactRow, DeskPresenceRow, ScriptVersionRow
from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from tests.unit.databases import BACKENDS, migrated_database

BOGOTA = ZoneInfo("America/Bogota")
DESK_TABLES = ("desk_steps", "desk_contacts", "desk_presence", "script_versions")  # children first


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    """A migrated database on each backend, its desk tables empty (PostgreSQL outlives a test)."""
    async with migrated_database(request.param, tmp_path) as database:
        async with database.engine.begin() as conn:
            for table in DESK_TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
        yield database


FIRST_DAY = date(2026, 11, 23)
PLAN = generate(150, first_day=FIRST_DAY, days=7, tz=BOGOTA, seed=12)
NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def day(d: date) -> datetime:
    return datetime.combine(d, time(0), BOGOTA)


def period(first: date, last: date, **kw: Any) -> DeskQuery:
    return DeskQuery(day(first), day(last + timedelta(days=1)), **kw)


SEED_EXPECTS = expected_call_types(SEED_TREE)  # ids and labels (tested on its own below)
WEEK = period(FIRST_DAY, FIRST_DAY + timedelta(days=6))
TUESDAY = period(date(2026, 11, 24), date(2026, 11, 25))


def script_tree(expected: dict[str, list[str]]) -> dict[str, Any]:
    """A published tree whose entry rules imply ``expected`` (the scripts part's shape)."""
    types = sorted({t for ts in expected.values() for t in ts} | {"informacion"})
    return {
        "call_types": [{"id": t, "label": t.capitalize(), "reasons": [{"id": f"{t}_motivo", "label": "M"}]}
                       for t in types],
        "entry": [{"when": {"reason": r}, "node": f"{ts[0]}/{ts[0]}_motivo"} for r, ts in expected.items()],
    }  # fmt: skip


async def publish(db: Database, tree: dict[str, Any]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(ScriptVersionRow), [{
            "id": str(uuid.uuid4()), "version": 1, "tree": tree, "note": "", "state": "published",
            "created_by": "prueba", "created_at": NOW, "published_by": "prueba", "published_at": NOW,
        }])  # fmt: skip


async def seeded(db: Database, plan: DeskSeed = PLAN) -> DeskReports:
    await write(db, plan)
    await publish(db, SEED_TREE)
    return DeskReports(db, BOGOTA, clock=lambda: NOW)


def expected_body(name: str, q: DeskQuery, plan: DeskSeed = PLAN) -> dict[str, Any]:
    """What the report must say, computed from the plan with the same pure figures."""
    contacts, steps, presence = facts(plan)
    picked = [c for c in contacts if q.start <= c.answered_at < q.end
              and q.agent in (None, c.agent) and q.site in (None, c.site)]  # fmt: skip
    ids = {c.id for c in picked}
    taken = [s for s in steps if s.contact_id in ids]
    if name == "reasons":
        rows = f.reasons(picked, q.by, BOGOTA)
        keys = f.days_between(q.start, q.end, BOGOTA) if q.by == "day" else ()
        return {"contacts": len(picked), "rows": [r.as_json() for r in rows],
                "by_key": f.totals_by_key(rows, keys), "by_call_type": f.totals_by_call_type(rows)}  # fmt: skip
    if name == "steps":
        return {"contacts": len(picked), "steps": len(taken),
                "rows": [r.as_json() for r in f.step_times(taken)]}  # fmt: skip
    if name == "paths":
        paths = f.script_paths(taken)
        return {"contacts": len(picked), "with_steps": sum(p.contacts for p in paths),
                "rows": [p.as_json() for p in paths]}  # fmt: skip
    if name == "mismatch":
        return f.mismatch(picked, SEED_EXPECTS).as_json()
    if name == "levels":
        return {"contacts": len(picked), "rows": [r.as_json() for r in sl.service_levels(picked, q.within_s)],
                "total": sl.service_total(picked, q.within_s).as_json(), "hops": sl.hops(picked)}  # fmt: skip
    mine = [p for p in presence if q.agent in (None, p.agent)]
    last_before = {p.agent: p.at for p in sorted(mine, key=lambda p: p.at) if p.at < q.start}
    events = [p for p in mine if (q.start <= p.at < q.end) or last_before.get(p.agent) == p.at]
    spent = sl.presence_time(events, q.start, min(q.end, NOW))
    names = {c.agent: c.agent_name for c in picked}
    return {"contacts": len(picked), "rows": [a.as_json() for a in sl.agents(picked, spent, names)]}


QUERIES = [
    pytest.param(WEEK, id="week"),
    pytest.param(TUESDAY, id="two-days"),
    pytest.param(period(FIRST_DAY, FIRST_DAY + timedelta(days=6), agent="7001"), id="agent"),
    pytest.param(period(FIRST_DAY, FIRST_DAY + timedelta(days=6), site="norte", by="site"), id="site"),
    pytest.param(period(FIRST_DAY, FIRST_DAY + timedelta(days=6), by="agent", within_s=10), id="by-agent-10s"),
]  # fmt: skip


@pytest.mark.parametrize("query", QUERIES)
async def test_every_report_over_the_seed_is_the_plans_figures(
    db: Database, query: DeskQuery
) -> None:
    reports = await seeded(db)
    for name in REPORTS:
        found = (await reports.report(name, query)).as_json()
        body = expected_body(name, query)
        assert {k: found[k] for k in body} == body, name
        assert found["report"] == name and found["as_of"] == NOW.isoformat()


async def test_the_seeded_week_has_something_in_every_report(db: Database) -> None:
    # Not a vacuous comparison: the plan holds hops, steps, mismatches and pauses.
    reports = await seeded(db)
    levels = (await reports.report("levels", WEEK)).body
    assert {r["level"] for r in levels["rows"]} == {1, 2, 3} and levels["total"]["escalations"] > 5
    assert levels["total"]["contacts"] == 150 and "2" in levels["hops"]
    mismatch = (await reports.report("mismatch", WEEK)).body
    assert 0 < mismatch["mismatched"] < mismatch["judged"] < mismatch["contacts"]
    assert mismatch["top"][0]["contacts"] >= mismatch["top"][-1]["contacts"]
    agents = (await reports.report("agents", WEEK)).body["rows"]
    assert len(agents) == 6 and all(a["paused_s"] > 0 for a in agents)
    steps = (await reports.report("steps", WEEK)).body["rows"]
    assert {"saludo", "motivo", "cierre"} <= {s["node_id"] for s in steps}
    options = (await reports.report("reasons", TUESDAY)).options
    assert {a["agent"] for a in options["agents"]} <= {
        "7001",
        "7002",
        "7003",
        "7004",
        "7005",
        "7006",
    }
    assert set(options["sites"]) <= {"norte", "sur", "centro", "oriente"} and options["sites"]


def contact_row(cid: str, answered: datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": cid, "kind": "voice", "agent": "7001", "agent_name": "Ana Gómez", "queue": "general",
        "level": 1, "area": "recepcion", "context": {"site_id": "norte"}, "answered_at": answered,
        "state": "closed", "disposition_note": "", "journey_key": cid, "created_at": answered,
        "updated_at": answered, "version": 1, "call_type": "agendamiento",
        "ivr_reason": None, "call_record_id": None,  # every row names every column (one INSERT)
    }  # fmt: skip
    row.update(kw)
    return row


async def add_contacts(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(DeskContactRow), rows)


async def test_a_bogota_day_ends_at_local_midnight(db: Database) -> None:
    last_instant = day(date(2026, 12, 1)) - timedelta(microseconds=1)  # 04:59:59.999999 UTC
    await add_contacts(db, [
        contact_row("c-antes", day(date(2026, 11, 30)) - timedelta(microseconds=1)),  # 29 Nov, 23:59:59.999999
        contact_row("c-primero", day(date(2026, 11, 30))),
        contact_row("c-ultimo", last_instant),
        contact_row("c-despues", day(date(2026, 12, 1))),
    ])  # fmt: skip
    reports = DeskReports(db, BOGOTA, clock=lambda: NOW)
    one_day = period(date(2026, 11, 30), date(2026, 11, 30))
    body = (await reports.report("reasons", one_day)).body
    assert body["contacts"] == 2 and body["by_key"] == {"2026-11-30": 2}
    two_days = (await reports.report("reasons", period(date(2026, 11, 30), date(2026, 12, 1)))).body
    assert two_days["by_key"] == {"2026-11-30": 2, "2026-12-01": 1}


async def test_the_ivr_reason_comes_from_the_call_record_when_the_contact_has_none(
    db: Database,
) -> None:
    answered = day(date(2026, 11, 30)) + timedelta(hours=9)
    async with db.engine.begin() as conn:
        await conn.execute(insert(CallRecordRow), [{
            "id": "rec-1", "channel_id": "chan-1", "sip_call_id": None, "flow": "citas",
            "caller_number": None, "started_at": answered - timedelta(minutes=3), "ended_at": None,
            "outcome": "transferred", "end_reason": None, "steps": 3, "variables": {},
            "path": [{"at": 1.0, "kind": "node", "node": "menu"},
                     {"at": 2.0, "kind": "transfer", "vdn": "5550001", "reason": "incident"},
                     {"at": 3.0, "kind": "transfer", "vdn": "5550001", "reason": "non-target"}],
        }])  # fmt: skip
    await add_contacts(db, [
        contact_row("c-1", answered, call_record_id="rec-1", call_type="informacion"),
        contact_row("c-2", answered + timedelta(minutes=1), ivr_reason="incident", call_record_id="rec-1",
                    call_type="incidente"),  # its own reason wins
    ])  # fmt: skip
    await publish(db, script_tree({"non-target": ["agendamiento"], "incident": ["incidente"]}))
    reports = DeskReports(db, BOGOTA, clock=lambda: NOW)
    body = (await reports.report("mismatch", period(date(2026, 11, 30), date(2026, 11, 30)))).body
    assert body["cells"] == {"non-target": {"informacion": 1}, "incident": {"incidente": 1}}
    assert (body["judged"], body["mismatched"], body["mismatch_pct"]) == (2, 1, 50.0)


async def test_the_pops_words_are_read_back_as_the_ivr_reasons_code(db: Database) -> None:
    # The pop stores the reason in words (what the agent read); the script's entry rules
    # are written with the IVR's codes.
    words = {"non-target": "Población no objetivo: no tomó un cupo en el IVR",
             "incident": "Hay un incidente declarado"}  # fmt: skip
    answered = day(date(2026, 11, 30)) + timedelta(hours=9)
    await add_contacts(db, [
        contact_row("c-1", answered, ivr_reason=words["non-target"], call_type="informacion"),
        contact_row("c-2", answered, journey_key="j2", ivr_reason=words["incident"], call_type="incidente"),
        contact_row("c-3", answered, journey_key="j3", ivr_reason="Otra cosa", call_type="incidente"),
    ])  # fmt: skip
    await publish(db, script_tree({"non-target": ["agendamiento"], "incident": ["incidente"]}))
    reports = DeskReports(db, BOGOTA, clock=lambda: NOW, reason_labels=words)
    body = (await reports.report("mismatch", period(date(2026, 11, 30), date(2026, 11, 30)))).body
    assert body["cells"] == {"non-target": {"informacion": 1}, "incident": {"incidente": 1},
                             "Otra cosa": {"incidente": 1}}  # fmt: skip
    assert (body["judged"], body["mismatched"]) == (2, 1) and body["labels"] == words


@pytest.mark.parametrize(("context", "site"), [
    ({"site_id": "norte"}, "norte"), ({"caller": {"site_id": "sur"}}, "sur"),
    ({"caller": {"name": "Ana", "site": "Sede Norte"}}, "Sede Norte"),
    ({"site_id": "", "caller": {"site": "Sede Sur"}}, "Sede Sur"), ({}, None), ({"caller": "x"}, None),
])  # fmt: skip
def test_the_site_in_a_pops_context(context: dict[str, Any], site: str | None) -> None:
    assert site_of(context) == site


async def test_site_and_agent_filters(db: Database) -> None:
    answered = day(date(2026, 11, 30)) + timedelta(hours=9)
    await add_contacts(db, [
        contact_row("c-1", answered),
        contact_row("c-2", answered, agent="7002", journey_key="c-2b", context={"site_id": "sur"}),
        contact_row("c-3", answered, journey_key="c-3b", context={}),  # no site: only without the filter
    ])  # fmt: skip
    reports = DeskReports(db, BOGOTA, clock=lambda: NOW)
    one_day = period(date(2026, 11, 30), date(2026, 11, 30))
    for kw, n in (({}, 3), ({"site": "sur"}, 1), ({"site": "norte"}, 1), ({"agent": "7001"}, 2),
                  ({"agent": "7002", "site": "norte"}, 0)):  # fmt: skip
        q = DeskQuery(one_day.start, one_day.end, **kw)
        assert (await reports.report("levels", q)).body["contacts"] == n, kw
    # The filters' options stay every agent's and site of the period, whatever is filtered.
    q7002 = DeskQuery(one_day.start, one_day.end, agent="7002")
    options = (await reports.report("levels", q7002)).options
    assert [a["agent"] for a in options["agents"]] == ["7001", "7002"]
    assert options["sites"] == ["norte", "sur"]
    by_site = (
        await reports.report("reasons", DeskQuery(one_day.start, one_day.end, by="site"))
    ).body
    assert by_site["by_key"] == {"norte": 1, "sin dato": 1, "sur": 1}


async def test_presence_before_the_period_sets_how_it_opens(db: Database) -> None:
    monday = day(date(2026, 11, 30))
    events = [("login", monday + timedelta(hours=7), None), ("pause", monday + timedelta(hours=23), "capacitacion"),
              ("unpause", monday + timedelta(hours=25), None), ("logout", monday + timedelta(hours=26), None),
              ("login", monday + timedelta(hours=30), None)]  # fmt: skip
    async with db.engine.begin() as conn:
        await conn.execute(insert(DeskPresenceRow), [
            {"agent": "7003", "event": e, "reason": r, "queues": ["l2_clinico"], "at": at, "actor": "carla"}
            for e, at, r in events
        ])  # fmt: skip
    # desk_presence holds desk.yaml's pause reason ids; the report shows their labels.
    labels = {"capacitacion": "Capacitación"}
    reports = DeskReports(
        db, BOGOTA, clock=lambda: monday + timedelta(hours=32), pause_labels=labels
    )
    (row,) = (await reports.report("agents", period(date(2026, 12, 1), date(2026, 12, 1)))).body[
        "rows"
    ]
    # 1 December: paused since 23:00 of the day before until 01:00, in until 02:00, out, in from 06:00 to now (08:00).
    assert (row["agent"], row["contacts"], row["pauses"]) == ("7003", 0, 0)
    assert row["logged_in_s"] == 4 * 3600 and row["paused_by_reason"] == {"Capacitación": 3600.0}


def test_a_question_that_cannot_be_answered_is_refused() -> None:
    start = day(date(2026, 11, 30))
    for bad in (
        {"start": start.replace(tzinfo=None), "end": start + timedelta(days=1)},
        {"start": start, "end": start},
        {"start": start, "end": start + timedelta(days=401)},
        {"start": start, "end": start + timedelta(days=1), "by": "week"},
        {"start": start, "end": start + timedelta(days=1), "within_s": -1},
    ):
        with pytest.raises(InvalidQuery):
            DeskQuery(**bad)


def test_the_seed_is_deterministic_and_counts_its_contacts() -> None:
    again = generate(150, first_day=FIRST_DAY, days=7, tz=BOGOTA, seed=12)
    assert facts(again) == facts(PLAN) and len(PLAN.contacts) == 150
    other = generate(150, first_day=FIRST_DAY, days=7, tz=BOGOTA, seed=13)
    assert facts(other) != facts(PLAN)
    for n in (0, 1, 2, 3, 17):
        assert len(generate(n, first_day=FIRST_DAY, days=2, tz=BOGOTA, seed=n).contacts) == n
    hops = {c.id: c for c in PLAN.contacts}
    for c in PLAN.contacts:
        if c.previous_contact_id is not None:
            before = hops[c.previous_contact_id]
            assert before.state == "escalated" and before.journey_key == c.journey_key
            assert before.level + 1 == c.level and c.queued_at >= (
                before.escalated_at or c.queued_at
            )


async def test_seeding_twice_replaces_the_seed(db: Database) -> None:
    await write(db, PLAN)
    small = generate(10, first_day=FIRST_DAY, days=1, tz=BOGOTA, seed=1)
    await write(db, small)
    reports = DeskReports(db, BOGOTA, clock=lambda: NOW)
    assert (await reports.report("levels", WEEK)).body["contacts"] == 10


def test_the_expected_call_types_come_from_the_entry_rules() -> None:
    # The scripts part's shape (config/citas/scripts.yaml): paths, bare ids, rules on
    # other facts than the reason, a node that does not exist.
    tree = {
        "call_types": [
            {"id": "agendamiento", "label": "Agendamiento de citas",
             "reasons": [{"id": "no_objetivo", "scenarios": [{"id": "edad", "steps": [{"id": "saludo"}]}]}]},
            {"id": "incidente", "label": "Incidentes", "reasons": [{"id": "falla_linea", "scenarios": [{"id": "general"}]}]},
        ],
        "entry": [
            {"when": {"reason": "incident"}, "node": "incidente/falla_linea/general"},
            {"when": {"eligibility": "age_out_of_band"}, "node": "agendamiento/no_objetivo/edad"},
            {"when": {"reason": "non-target"}, "node": "agendamiento/no_objetivo"},
            {"when": {"reason": "non-target", "choice": "9"}, "node": "incidente"},
            {"when": {"reason": "redirect-off"}, "node": "edad"},
            {"when": {"reason": "ghost"}, "node": "nada/de/esto"},
            "not a rule", {"when": "nor this", "node": "incidente"},
        ],
    }  # fmt: skip
    assert expected_call_types(tree) == {
        "incident": ["Incidentes", "incidente"],
        "non-target": ["Agendamiento de citas", "Incidentes", "agendamiento", "incidente"],
        "redirect-off": ["Agendamiento de citas", "agendamiento"],
    }
    assert expected_call_types(None) == {} and expected_call_types({"entry": None}) == {}


class Clock:
    """The store's clock, moved by the test (every store write takes its time from it)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def wait(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def test_what_the_desk_store_writes_is_what_the_reports_read(db: Database) -> None:
    # One caller escalated from level 1 to level 2 and one agent's morning, written by the
    # desk core's own store (the contract's writer), read back by every report.
    t0 = day(date(2026, 11, 30)) + timedelta(hours=9)
    clock = Clock(t0)
    desk = DeskStore(db, clock=clock)
    await desk.log_presence("7001", "login", queues=["general"], actor="ana")
    clock.wait(600)
    first = await desk.open_contact(NewContact(
        kind="voice", agent="7001", agent_name="Ana Gómez", queue="general", level=1,
        area="recepcion", journey_key="1764.1", answered_at=clock(),
        queued_at=clock() - timedelta(seconds=20), hold_seconds=20.0, ring_seconds=4.0,
        context={"site_id": "norte"}, ivr_reason="non-target",
    ))  # fmt: skip
    for node, kind, label, spent in (("saludo", "text", "Saludo", 8), ("motivo", "question", "Motivo", 30),
                                     ("escalar", "text", "Escalar", 12)):  # fmt: skip
        await desk.record_step(first.id, node_id=node, node_kind=kind, label=label, agent="7001")
        clock.wait(spent)
    await desk.set_script(first.id, version=1, node_id="escalar", call_type="Solicitudes de información",
                          reason="Horarios, sedes y requisitos")  # fmt: skip
    await desk.escalate(
        first.id, reason="Consulta de afiliación", to_queue="l2_comercial", agent="7001"
    )
    clock.wait(35)
    second = await desk.open_contact(NewContact(
        kind="voice", agent="7005", agent_name="Elena Vargas", queue="l2_comercial", level=2,
        area="comercial", journey_key="1764.1", answered_at=clock(), queued_at=clock() - timedelta(seconds=35),
        hold_seconds=35.0, previous_contact_id=first.id, context={"site_id": "norte"},
    ))  # fmt: skip
    await desk.record_step(
        second.id, node_id="informar", node_kind="procedure", label="Informar", agent="7005"
    )
    clock.wait(100)
    await desk.end(second.id)
    clock.wait(30)
    await desk.close(second.id, disposition="informado", agent="7005")
    await desk.log_presence("7001", "pause", reason="Descanso", actor="ana")
    clock.wait(900)
    await desk.log_presence("7001", "unpause", actor="ana")
    clock.wait(60)
    await publish(db, SEED_TREE)

    reports = DeskReports(db, BOGOTA, clock=clock)
    monday = period(date(2026, 11, 30), date(2026, 11, 30))
    levels = (await reports.report("levels", monday)).body
    rows = {(r["level"], r["queue"]): r for r in levels["rows"]}
    assert (rows[1, "general"]["within"], rows[1, "general"]["at_level_avg_s"]) == (
        1,
        50.0,
    )  # 20 s: within
    assert rows[1, "general"]["escalation_reasons"] == {"Consulta de afiliación": 1}
    assert (rows[2, "l2_comercial"]["within"], rows[2, "l2_comercial"]["at_level_avg_s"]) == (
        0,
        100.0,
    )
    assert levels["hops"] == {"2": 1} and levels["total"]["within_pct"] == 50.0
    steps = {r["node_id"]: r for r in (await reports.report("steps", monday)).body["rows"]}
    assert {n: (r["steps"], r["max_s"]) for n, r in steps.items()} == {
        "saludo": (1, 8.0), "motivo": (1, 30.0), "escalar": (1, 12.0), "informar": (1, 130.0)}  # fmt: skip
    paths = (await reports.report("paths", monday)).body["rows"]
    assert sorted(p["nodes"] for p in paths) == [["informar"], ["saludo", "motivo", "escalar"]]
    mismatch = (await reports.report("mismatch", monday)).body
    assert (
        mismatch["cells"] == {"non-target": {"Solicitudes de información": 1}}
        and mismatch["mismatched"] == 1
    )
    agents = {a["agent"]: a for a in (await reports.report("agents", monday)).body["rows"]}
    assert (agents["7001"]["handle_avg_s"], agents["7001"]["escalated"]) == (50.0, 1)
    assert (agents["7005"]["handle_avg_s"], agents["7005"]["wrapup_avg_s"]) == (130.0, 30.0)
    assert agents["7001"]["paused_by_reason"] == {"Descanso": 900.0}
    assert agents["7001"]["logged_in_s"] == (clock() - t0).total_seconds()
    reasons = (await reports.report("reasons", monday)).body
    # The next level's contact carries the script's labels so far (the core copies them).
    assert reasons["by_call_type"] == {"Solicitudes de información": 2}
