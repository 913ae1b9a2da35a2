"""``ivr desk seed``: demo data for the desk reports.

The kinds of fault: a seed that piles up on the previous one (twice the contacts),
that wipes what the desk recorded for real, that lands outside the period the
console shows by default, or that takes a count it cannot honour.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from ivr.cli import main
from ivr.desk.reports import DeskQuery, DeskReports
from ivr.desk.tables import DeskContactRow
from ivr.settings import Settings
from ivr.store.db import Database

BOGOTA = ZoneInfo("America/Bogota")


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "desktest")
    monkeypatch.delenv("CITAS_DB_URL", raising=False)
    return Settings.from_env()


async def _counts(settings: Settings) -> tuple[int, int]:
    db = Database(settings.database_url)
    try:
        async with db.engine.connect() as conn:
            total = await conn.scalar(select(func.count()).select_from(DeskContactRow))
        today = datetime.now(UTC).astimezone(BOGOTA).date()
        start = datetime.combine(today - timedelta(days=6), datetime.min.time(), BOGOTA)
        week = DeskQuery(start, start + timedelta(days=7))
        shown = (await DeskReports(db, BOGOTA).report("levels", week)).body["contacts"]
        return int(total or 0), int(shown)
    finally:
        await db.close()


async def _real_contact(settings: Settings) -> None:
    db = Database(settings.database_url)
    now = datetime.now(UTC)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(insert(DeskContactRow), [{
                "id": "real-1", "kind": "voice", "agent": "7001", "agent_name": "Ana Gómez",
                "queue": "general", "level": 1, "area": "recepcion", "context": {},
                "answered_at": now, "state": "active", "disposition_note": "", "journey_key": "1.1",
                "created_at": now, "updated_at": now, "version": 1,
            }])  # fmt: skip
    finally:
        await db.close()


def test_seed_writes_replaces_and_keeps_real_contacts(
    instance: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["desk", "seed", "--contacts", "40", "--days", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("40 contactos") and "eventos de presencia" in out
    total, shown = asyncio.run(_counts(instance))
    assert total == 40 and shown == 40  # the last days, today excluded: in the default week
    asyncio.run(_real_contact(instance))
    assert main(["desk", "seed", "--contacts", "25", "--days", "3", "--seed", "7"]) == 0
    total, _ = asyncio.run(_counts(instance))
    assert total == 25 + 1  # the new seed replaced the old one; the real contact stays


@pytest.mark.parametrize("argv", [["--contacts", "-1"], ["--contacts", "10", "--days", "0"],
                                  ["--contacts", "100001"]])  # fmt: skip
def test_a_count_out_of_range_is_refused(
    instance: Settings, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["desk", "seed", *argv]) == 2
    assert "--contacts va de 0 a" in capsys.readouterr().err
