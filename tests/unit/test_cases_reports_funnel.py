"""The migration funnel (``ivr.cases.funnel``) on SQLite and PostgreSQL, over real rows.

The kind of fault: a journey counted in the wrong stage, twice (a call joined to
a chat and two cases), at the wrong site or hour (UTC vs Bogotá, a boundary of
the period), or a call outside the funnel counted in it. Tested by an observed
set of journeys written out by hand, each boundary alone, and the range: seeded
random journeys compared with a plain Python count of the same journeys.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.cases.funnel import (
    MARKED_ACTIONS,
    STAGES,
    FunnelCounts,
    FunnelReports,
)
from ivr.citas.funnel import CITAS_FUNNEL
from ivr.store.db import Database
from tests.unit import cases_report_tables as t
from tests.unit.cases_report_seed import (
    AUDIT,
    BOGOTA,
    CALLS,
    CONVERSATIONS,
    add_rows,
    audit,
    call,
    case,
    conversation,
    empty,
    local,
    report_database,
)
from tests.unit.databases import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
START, END = local(2026, 11, 30, 0, 0), local(2026, 12, 1, 0, 0)  # Monday 30 Nov, Bogotá
TICK = timedelta(microseconds=1)


def reports(db: Database) -> FunnelReports:
    return FunnelReports(db, CITAS_FUNNEL, BOGOTA)


def counts(**given: int) -> FunnelCounts:
    return FunnelCounts(**given)


async def seed_observed(db: Database) -> None:
    """The journeys of one morning, by hand (site, local hour, what happened)."""
    at8 = local(2026, 11, 30, 8, 15)
    c1 = call(at8, outcome="booked")
    c2 = call(at8, outcome="redirected_whatsapp")  # → chat → booked in the chat
    c3 = call(at8, outcome="redirected_whatsapp_no_sms")  # → chat → two cases in the chat
    c4 = call(at8, outcome="redirected_whatsapp")  # never wrote
    c5 = call(at8, segment="non_target", outcome="booked")  # not in the funnel
    c6 = call(at8, outcome="transferred")  # filed a case on the call
    c7 = call(at8 + timedelta(minutes=30), site="sur", outcome="redirected_whatsapp")
    c8 = call(local(2026, 11, 30, 14, 0), outcome="booked")
    early_hangup = call(at8, segment=None, outcome="abandoned")
    other_flow = call(at8, flow="encuestas", outcome="booked")
    yesterday = call(START - TICK, outcome="redirected_whatsapp")
    await add_rows(db, CALLS, [c1, c2, c3, c4, c5, c6, c7, c8, early_hangup, other_flow, yesterday])
    await add_rows(db, CONVERSATIONS, [
        conversation(c2["id"], "booked", at8), conversation(c3["id"], "not_booked", at8),
        conversation(c7["id"], "booked", at8), conversation(yesterday["id"], "booked", at8),
        conversation(None, "booked", at8),  # a chat that did not come from a call
    ])  # fmt: skip
    await add_rows(db, t.CASES, [
        case(at8, channel="chat", journey_id=c3["id"]),
        case(at8, channel="chat", journey_id=c3["id"], site="norte"),
        case(at8, channel="voice", journey_id=c6["id"]),
        case(at8, channel="voice", journey_id=None),
    ])  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_observed_morning_by_site_and_hour(backend: str, tmp_path: Path) -> None:
    async with report_database(backend, tmp_path) as db:
        await seed_observed(db)
        funnel = await reports(db).funnel(START, END)

    cells = {(c.hour.hour, c.site): c.counts for c in funnel.cells}
    assert cells == {
        (8, "norte"): counts(target=5, booked_phone=1, redirected=3, chats=2, booked_chat=1,
                             cases=3, cases_voice=1, cases_chat=2),
        (8, "sur"): counts(target=1, redirected=1, chats=1, booked_chat=1),
        (14, "norte"): counts(target=1, booked_phone=1),
    }  # fmt: skip
    assert all(c.hour.tzinfo is not None and c.hour.utcoffset() == timedelta(hours=-5)
               for c in funnel.cells)  # fmt: skip
    assert funnel.total() == counts(target=7, booked_phone=2, redirected=4, chats=3,
                                    booked_chat=2, cases=3, cases_voice=1, cases_chat=2)  # fmt: skip
    assert list(funnel.by_site()) == ["norte", "sur"]
    hours = funnel.by_hour_of_day()
    assert len(hours) == 24 and hours[8].target == 6 and hours[14].target == 1
    assert sum(h.target for h in hours) == 7
    timeline = funnel.timeline()
    assert len(timeline) == 24 and timeline[0][0] == START.astimezone(BOGOTA)
    assert [c.target for _, c in timeline if c.target] == [6, 1]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_one_site_only(backend: str, tmp_path: Path) -> None:
    async with report_database(backend, tmp_path) as db:
        await seed_observed(db)
        funnel = await reports(db).funnel(START, END, site="sur")
    assert [(c.site, c.counts.target) for c in funnel.cells] == [("sur", 1)]


# Each boundary alone: (name, call start, counted?)
BOUNDARIES = [
    ("the period's first instant", START, True),
    ("a tick before the period", START - TICK, False),
    ("the period's last tick", END - TICK, True),
    ("the period's end", END, False),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "at", "counted"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
async def test_the_period_boundaries(
    backend: str, tmp_path: Path, name: str, at: datetime, counted: bool
) -> None:
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, CALLS, [call(at)])
        funnel = await reports(db).funnel(START, END)
    assert funnel.total().target == int(counted), name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("name", "at", "counted"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
async def test_a_period_given_in_local_time_counts_the_same_calls(
    backend: str, tmp_path: Path, name: str, at: datetime, counted: bool
) -> None:
    """Stop 22's local CI, at 21:30 in Bogotá: the API gives the period in Bogotá's zone
    (``local_period``), and on SQLite ``call_records.started_at`` was a plain
    ``DateTime``, which dropped the bound's offset: the evening's calls (past midnight
    UTC) fell after the period's end and the day's funnel was empty. The column is
    ``UtcDateTime`` now (bounds converted to UTC, as stored)."""
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, CALLS, [call(at)])
        funnel = await reports(db).funnel(START.astimezone(BOGOTA), END.astimezone(BOGOTA))
    assert funnel.total().target == int(counted), name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hour", [0, 18, 19, 21, 23])
async def test_an_evening_call_is_in_its_local_day_asked_in_local_time(
    backend: str, tmp_path: Path, hour: int
) -> None:
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, CALLS, [call(local(2026, 11, 30, hour, 30))])
        funnel = await reports(db).funnel(START.astimezone(BOGOTA), END.astimezone(BOGOTA))
    assert funnel.total().target == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("minute", [0, 59])
@pytest.mark.parametrize("hour", [0, 4, 5, 12, 18, 19, 23])
async def test_the_local_hour_of_a_call(
    backend: str, tmp_path: Path, hour: int, minute: int
) -> None:
    # Bogotá is UTC-5: 19:00 local is midnight UTC of the next day, 04:59 is 09:59 UTC.
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, CALLS, [call(local(2026, 11, 30, hour, minute))])
        funnel = await reports(db).funnel(START, END)
    [cell] = funnel.cells
    assert (cell.hour.date().isoformat(), cell.hour.hour) == ("2026-11-30", hour)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_flag_changes_are_marked_on_the_timeline(backend: str, tmp_path: Path) -> None:
    async with report_database(backend, tmp_path) as db:
        at = local(2026, 11, 30, 9, 30)
        entries = [audit(at + timedelta(minutes=i), action, "promo_audio", False, True)
                   for i, action in enumerate(MARKED_ACTIONS)]  # fmt: skip
        not_marked = [
            audit(at, "schedule", "promo_audio", False, True),  # marked when the window starts
            audit(at, "token_created", None),
            audit(at, "breaker_open", None),
            audit(START - TICK, "set", "promo_audio", True, False),
            audit(END, "set", "promo_audio", True, False),
        ]
        await add_rows(db, AUDIT, entries + not_marked)
        funnel = await reports(db).funnel(START, END)
    assert [m.action for m in funnel.markers] == list(MARKED_ACTIONS)
    first = funnel.markers[0]
    assert (first.name, first.old, first.new, first.actor) == (
        "promo_audio",
        False,
        True,
        "token:ada",
    )
    assert first.at.utcoffset() == timedelta(hours=-5) and first.at.hour == 9
    assert funnel.as_json()["markers"][0]["at"] == first.at.isoformat()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_long_period_is_drawn_by_day(backend: str, tmp_path: Path) -> None:
    async with report_database(backend, tmp_path) as db:
        await add_rows(db, CALLS, [call(local(2026, 11, d, 10)) for d in (2, 2, 15, 29)])
        funnel = await reports(db).funnel(local(2026, 11, 1, 0), local(2026, 12, 1, 0))
    timeline = funnel.timeline()
    assert len(timeline) == 30 and all(at.hour == 0 for at, _ in timeline)
    assert {at.day: c.target for at, c in timeline if c.target} == {2: 2, 15: 1, 29: 1}
    assert funnel.as_json()["timeline_step"] == "day"


@pytest.mark.parametrize(
    ("start", "end"),
    [(START, START), (END, START), (START, START + timedelta(days=94)),
     (START.replace(tzinfo=None), END)],
)  # fmt: skip
async def test_a_period_that_cannot_be_answered_is_refused(
    db: Database, start: datetime, end: datetime
) -> None:
    with pytest.raises(ValueError):
        await reports(db).funnel(start, end)


# --- the range: random journeys against a plain count -------------------------------------
SITES = ["norte", "sur", "centro", None]
OUTCOMES = ["booked", "redirected_whatsapp", "redirected_whatsapp_no_sms", "transferred",
            "abandoned", None]  # fmt: skip


def random_journeys(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], Counter[tuple[int, str, str]]]:  # fmt: skip
    """Calls, conversations and cases at random, and what the funnel must count:
    (local hour, site, stage) -> n."""
    rng = random.Random(seed)
    calls: list[dict[str, Any]] = []
    chats: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    want: Counter[tuple[int, str, str]] = Counter()
    for _ in range(rng.randint(20, 60)):
        at = START + timedelta(seconds=rng.randint(-3600, 26 * 3600))
        site, outcome = rng.choice(SITES), rng.choice(OUTCOMES)
        segment = rng.choice(["target", "target", "non_target", None])
        flow = rng.choice(["citas"] * 5 + ["otra"])
        c = call(at, site=site, segment=segment, outcome=outcome, flow=flow)
        calls.append(c)
        chat_outcome = rng.choice([None, "booked", "not_booked", "handed_off"])
        has_chat = rng.random() < 0.5
        if has_chat:
            chats.append(conversation(c["id"], chat_outcome, at))
        channels = [rng.choice(["voice", "chat"]) for _ in range(rng.choice([0, 0, 1, 2]))]
        cases.extend(case(at, channel=ch, journey_id=c["id"]) for ch in channels)
        if not (START <= at < END and segment == "target" and flow == "citas"):
            continue
        key = (at.astimezone(BOGOTA).hour, site or "sin sede")
        stages = {"target": 1, "booked_phone": outcome == "booked",
                  "redirected": outcome in ("redirected_whatsapp", "redirected_whatsapp_no_sms"),
                  "chats": has_chat, "booked_chat": has_chat and chat_outcome == "booked",
                  "cases": len(channels), "cases_voice": channels.count("voice"),
                  "cases_chat": channels.count("chat")}  # fmt: skip
        for stage, n in stages.items():
            want[(*key, stage)] += int(n)
    return calls, chats, cases, want


@pytest.mark.parametrize("backend", BACKENDS)
async def test_random_journeys_are_counted_as_a_plain_count_does(
    backend: str, tmp_path: Path
) -> None:
    async with report_database(backend, tmp_path) as db:
        for seed in range(8):
            calls, chats, cases, want = random_journeys(seed)
            await empty(db, "cases", "conversations", "call_records")
            await add_rows(db, CALLS, calls)
            await add_rows(db, CONVERSATIONS, chats)
            await add_rows(db, t.CASES, cases)
            funnel = await reports(db).funnel(START, END)
            got: Counter[tuple[int, str, str]] = Counter()
            for cell in funnel.cells:
                assert cell.hour.date() == datetime(2026, 11, 30).date()
                for stage, n in cell.counts.as_json().items():
                    got[(cell.hour.hour, cell.site, stage)] += n
            assert +got == +want, seed
            assert want, "a seed with no journey in the period tests nothing"


def test_the_citas_outcomes_are_outcomes_of_the_citas_flow() -> None:
    nodes = yaml.safe_load((ROOT / "config" / "flows" / "citas.yaml").read_text())["nodes"]
    # A hangup node's own outcome, or the one a served ending sets before its survey
    # (action call_served, issue 11 §4).
    outcomes = {
        n["outcome"] for n in nodes.values() if n.get("kind") == "hangup" and "outcome" in n
    }
    outcomes |= {n["params"]["outcome"] for n in nodes.values() if n.get("action") == "call_served"}
    named = CITAS_FUNNEL.booked | CITAS_FUNNEL.redirected | CITAS_FUNNEL.chat_booked
    assert named <= outcomes, named - outcomes
    assert CITAS_FUNNEL.flow == yaml.safe_load(
        (ROOT / "config" / "flows" / "citas.yaml").read_text())["flow"]  # fmt: skip


def test_every_stage_has_a_spanish_name_and_a_count() -> None:
    assert [k for k, _ in STAGES] == list(FunnelCounts().as_json())
    assert all(label and label[0].isupper() for _, label in STAGES)
