"""CITAS_DB_STATEMENTS: the statements counted and the SQLite write turns timed (ivr/store/probe.py)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from ivr.store import probe as probe_module
from ivr.store.db import Database


async def test_the_write_turns_are_timed_per_origin_in_a_file_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(probe_module.ENV, str(tmp_path / "db-{pid}.json"))
    monkeypatch.setattr(probe_module, "_probe", None)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}")

    async def hold(seconds: float) -> None:
        async with db.write_turn():
            await asyncio.sleep(seconds)

    try:
        first = asyncio.create_task(hold(0.2), name="call-records")
        await asyncio.sleep(0.01)
        await asyncio.create_task(hold(0.0), name="sms-worker")  # waits for call-records' turn
        await first
    finally:
        await db.close()
    written = json.loads((tmp_path / f"db-{os.getpid()}.json").read_text())
    turns = written["turns"]
    assert turns["call-records"]["n"] == 1 and turns["call-records"]["hold_max_ms"] >= 190
    assert turns["sms-worker"]["wait_max_ms"] >= 150 and turns["sms-worker"]["hold_max_ms"] < 100
    assert written["statements"] == {}  # no statement sent


@pytest.mark.parametrize(
    ("waits_ms", "p50", "p99"),
    [
        ([5.0], 5.0, 5.0),
        ([1.0, 3.0], 2.0, 2.98),  # not the larger of two
        (list(range(1, 101)), 50.5, 99.01),  # p99 of 100 is not the maximum
        (list(range(1, 1002)), 501.0, 991.0),
    ],
)
def test_turn_figures_interpolate_between_ranks(
    waits_ms: list[float], p50: float, p99: float
) -> None:
    figures = probe_module._turn_figures([(w / 1000, 2 * w / 1000) for w in waits_ms])
    assert figures["n"] == len(waits_ms)
    assert (figures["wait_p50_ms"], figures["wait_p99_ms"]) == (
        pytest.approx(p50),
        pytest.approx(p99),
    )
    assert figures["wait_max_ms"] == max(waits_ms) and figures["hold_max_ms"] == 2 * max(waits_ms)
    assert "gave_up" not in figures


async def test_a_wait_given_up_is_counted_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: only the turns that were got were timed, so the longest waits (those that hit
    their deadline) were missing from wait p99/max."""
    monkeypatch.setenv(probe_module.ENV, str(tmp_path / "db-{pid}.json"))
    monkeypatch.setattr(probe_module, "_probe", None)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}")
    try:
        async with db.write_turn():
            with pytest.raises(TimeoutError):
                await asyncio.create_task(_wait_for_turn(db, 0.1), name="sms enqueue")
    finally:
        await db.close()
    turns = json.loads((tmp_path / f"db-{os.getpid()}.json").read_text())["turns"]
    assert turns["sms enqueue"]["n"] == 0 and turns["sms enqueue"]["gave_up"] == 1
    assert turns["sms enqueue"]["gave_up_max_ms"] >= 90


async def _wait_for_turn(db: Database, deadline_s: float) -> None:
    async with asyncio.timeout(deadline_s), db.write_turn():
        pytest.fail("the turn was held")


def test_a_forked_child_writes_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: the probe made in the parent (a migration) was inherited by forked children,
    which all wrote the parent's file."""
    monkeypatch.setenv(probe_module.ENV, str(tmp_path / "db-{pid}.json"))
    monkeypatch.setattr(probe_module, "_probe", None)
    parent = probe_module.probe_from_env()
    assert parent is not None
    pid = os.fork()
    if pid == 0:  # the child: its own probe, its own file
        child = probe_module.probe_from_env()
        ok = (
            child is not None
            and child is not parent
            and child.path.name == f"db-{os.getpid()}.json"
        )
        if child is not None:
            child.write()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / f"db-{pid}.json").exists()
    assert probe_module.probe_from_env() is parent
