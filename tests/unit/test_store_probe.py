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


def test_turn_figures_over_a_range() -> None:
    turns = [(k / 1000, 2 * k / 1000) for k in range(1, 101)]
    figures = probe_module._turn_figures(turns)
    assert figures["n"] == 100
    assert (figures["wait_p50_ms"], figures["wait_p99_ms"], figures["wait_max_ms"]) == (
        51.0,
        100.0,
        100.0,
    )
    assert figures["hold_max_ms"] == 200.0
