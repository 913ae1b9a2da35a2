"""``CallRecordStore.summary`` (the console's calls panel) on SQLite and PostgreSQL:
every case a call record can be in (in progress, ended with each outcome a call can
end with, ended without one, interrupted by age) on both sides of each boundary (the
2 h after which an unended call is interrupted, the 24 h window); each record in the
window counted once. Plus: every outcome a call or chat can end with has a Spanish
label on the console (``OUTCOME_LABEL`` in console.js)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from ivr.store.records import IN_PROGRESS_MAX, INTERRUPTED, SUMMARY_WINDOW, CallRecordStore
from tests.unit.databases import BACKENDS, migrated_database

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)  # the smallest step both databases keep
CONTROLLER_OUTCOMES = ("transferred", "abandoned", "failed", "completed")


def hangup_outcomes() -> set[str]:
    """The ``outcome:`` of every hangup node of every flow in config/flows, and the
    outcomes set by ``call_served`` before a survey (a hangup without ``outcome``
    keeps that one)."""
    found: set[str] = set()
    for path in sorted((ROOT / "config" / "flows").glob("*.yaml")):
        nodes = yaml.safe_load(path.read_text())["nodes"]
        found |= {n["outcome"] for n in nodes.values() if n.get("kind") == "hangup" and "outcome" in n}
        found |= {
            n["params"]["outcome"] for n in nodes.values() if n.get("action") == "call_served"
        }
    return found


def code_outcomes() -> set[str]:
    """The outcomes the engine, the controller and the chat runner set in code."""
    pattern = re.compile(r"outcome\s*=\s*(?:[\w.]+ or )?\"(\w+)\"")
    found: set[str] = set()
    for where in ("ivr/controller.py", "ivr/flow", "ivr/chat"):
        path = ROOT / where
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            found |= set(pattern.findall(source.read_text()))
    return found


CALL_OUTCOMES = sorted(hangup_outcomes() | set(CONTROLLER_OUTCOMES))

# (name, started before NOW, ended before NOW or None, outcome, counted as)
# counted as: "in_progress", an outcome, or None (outside the window).
CASES: list[tuple[str, timedelta, timedelta | None, str | None, str | None]] = [
    ("just started", timedelta(seconds=5), None, None, "in_progress"),
    ("unended, 2 h ago to the tick", IN_PROGRESS_MAX, None, None, "in_progress"),
    ("unended, a tick over 2 h", IN_PROGRESS_MAX + TICK, None, None, INTERRUPTED),
    ("unended, 20 h ago", timedelta(hours=20), None, None, INTERRUPTED),
    ("ended without an outcome", timedelta(minutes=30), timedelta(minutes=29), None, INTERRUPTED),
    ("ended, window start to the tick", SUMMARY_WINDOW, SUMMARY_WINDOW - timedelta(minutes=3),
     "booked", "booked"),
    ("ended, a tick before the window", SUMMARY_WINDOW + TICK, SUMMARY_WINDOW - timedelta(minutes=3),
     "booked", None),
    ("unended, a tick before the window", SUMMARY_WINDOW + TICK, None, None, None),
    ("unended, two days ago", timedelta(days=2), None, None, None),
] + [
    (f"ended: {outcome}", timedelta(hours=1), timedelta(minutes=55), outcome, outcome)
    for outcome in CALL_OUTCOMES
]  # fmt: skip


async def _insert(db: Database, cases: list[tuple[str, timedelta, timedelta | None, str | None, str | None]]) -> None:  # fmt: skip
    async with db.sessions.begin() as session:
        for n, (_, started, ended, outcome, _) in enumerate(cases):
            session.add(CallRecordRow(
                id=f"00000000-0000-0000-0000-{n:012d}", channel_id=f"chan-{n}", sip_call_id=None,
                flow="citas", caller_number="3001234567", started_at=NOW - started,
                ended_at=None if ended is None else NOW - ended, outcome=outcome,
                end_reason=None, steps=0, path=[], variables={},
            ))  # fmt: skip


def test_the_cases_cover_every_outcome_a_call_can_end_with() -> None:
    # The flows' hangup outcomes and the controller's: the range the summary counts.
    assert {"transferred", "abandoned", "failed", "completed"} <= set(CALL_OUTCOMES)
    assert {"booked", "no_input", "redirected_whatsapp"} <= set(CALL_OUTCOMES)
    assert code_outcomes() - {"handed_off"} <= set(CALL_OUTCOMES)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_summary_counts_each_record_once_on_the_right_side_of_each_boundary(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path) as db:
        store = CallRecordStore(db)
        empty = await store.summary(NOW)
        assert (empty.in_progress, empty.by_outcome) == (0, {})
        await _insert(db, CASES)

        summary = await store.summary(NOW)

        expected: dict[str, int] = {}
        for *_, counted in CASES:
            if counted not in (None, "in_progress"):
                expected[counted] = expected.get(counted, 0) + 1
        assert summary.in_progress == sum(c == "in_progress" for *_, c in CASES) == 2
        assert summary.by_outcome == expected
        assert expected[INTERRUPTED] == 3 and expected["booked"] == 2
        assert summary.since == NOW - SUMMARY_WINDOW and summary.as_of == NOW
        assert summary.as_json()["window_hours"] == 24


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_each_case_alone_is_counted_where_it_belongs(
    backend: str, tmp_path: Path, case: tuple[str, timedelta, timedelta | None, str | None, str | None]
) -> None:  # fmt: skip
    async with migrated_database(backend, tmp_path) as db:
        await _insert(db, [case])
        summary = await CallRecordStore(db).summary(NOW)
        counted = case[-1]
        assert summary.in_progress == (1 if counted == "in_progress" else 0)
        wanted = {counted: 1} if counted not in (None, "in_progress") else {}
        assert summary.by_outcome == wanted


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_call_opened_then_closed_by_the_store_moves_from_in_progress_to_its_outcome(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path) as db:
        store = CallRecordStore(db)
        record = await store.open(channel_id="c1", flow="citas", sip_call_id="s1",
                                  caller_number="3001234567")  # fmt: skip
        during = await store.summary()
        assert (during.in_progress, during.by_outcome) == (1, {})
        await store.close(record, outcome="transferred", reason="transferred")
        after = await store.summary()
        assert (after.in_progress, after.by_outcome) == (0, {"transferred": 1})


def test_every_outcome_has_a_spanish_label_on_the_console() -> None:
    script = (ROOT / "ivr" / "ops" / "console" / "console.js").read_text()
    block = re.search(r"const OUTCOME_LABEL = \{(.*?)\n\};", script, re.S)
    assert block is not None
    labels = dict(re.findall(r"(\w+): \"([^\"]+)\"", block.group(1)))
    for outcome in set(CALL_OUTCOMES) | code_outcomes() | {INTERRUPTED}:
        assert outcome in labels, f"no Spanish label for the outcome {outcome!r}"
    assert labels["transferred"] == "transferida a un asesor"
    assert labels[INTERRUPTED] == "interrumpida"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_naive_now_is_refused(backend: str, tmp_path: Path) -> None:
    async with migrated_database(backend, tmp_path) as db:
        with pytest.raises(ValueError, match="naive"):
            await CallRecordStore(db).summary(NOW.replace(tzinfo=None))
