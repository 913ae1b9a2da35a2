"""Call records in SQLite (aiosqlite) under tmp_path: migrate, open, close, find."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from ivr.store import CallRecordStore, Database
from ivr.store.models import CallRecordRow
from tests.unit.databases import TEST_DB_TIMEOUT_S


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S
    )
    try:
        await database.migrate()
        yield database
    finally:
        await database.close()


async def test_migrate_creates_the_database_file_and_table(tmp_path: Path, db: Database) -> None:
    await db.migrate()  # running it again at head changes nothing

    assert (tmp_path / "nested" / "citas.db").is_file()
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("call_records")}
        )
    assert "call_records" in tables
    assert {"id", "sip_call_id", "outcome", "path", "variables", "steps"} <= columns


async def test_open_writes_a_row_that_close_completes(db: Database) -> None:
    store = CallRecordStore(db)

    record = await store.open(
        channel_id="1700000000.1", flow="smoke", sip_call_id="sip-a", caller_number="3001234567"
    )
    opened = await store.find_by_sip_call_id("sip-a")
    record.step("node", node="welcome")
    record.step("digits", node="welcome", attempt=1, digits="7", ended_by="complete")
    record.variables["smoke_digit"] = "7"
    await store.close(record, outcome="completed", reason="hangup")
    closed = await store.find_by_sip_call_id("sip-a")

    assert [(r.id, r.outcome, r.ended_at) for r in opened] == [(record.id, None, None)]
    assert len(closed) == 1
    row = closed[0]
    assert (row.channel_id, row.flow, row.caller_number) == ("1700000000.1", "smoke", "3001234567")
    assert (row.outcome, row.end_reason, row.steps) == ("completed", "hangup", 2)
    assert row.ended_at is not None
    assert [(s["kind"], s.get("node")) for s in row.path] == [
        ("node", "welcome"),
        ("digits", "welcome"),
    ]
    assert row.path[1]["digits"] == "7"
    assert row.variables == {"smoke_digit": "7"}


async def test_find_by_sip_call_id_returns_only_that_call_oldest_first(db: Database) -> None:
    store = CallRecordStore(db)
    first = await store.open(channel_id="c1", flow="smoke", sip_call_id="sip-x", caller_number=None)
    await store.open(channel_id="c2", flow="smoke", sip_call_id="sip-y", caller_number=None)
    second = await store.open(
        channel_id="c3", flow="smoke", sip_call_id="sip-x", caller_number=None
    )

    rows = await store.find_by_sip_call_id("sip-x")

    assert [r.id for r in rows] == [first.id, second.id]
    assert await store.find_by_sip_call_id("sip-none") == []


async def test_recent_lists_newest_first_up_to_the_limit(db: Database) -> None:
    store = CallRecordStore(db)
    ids = []
    for channel in ("c1", "c2", "c3"):
        record = await store.open(
            channel_id=channel, flow="smoke", sip_call_id=None, caller_number=None
        )
        ids.append(record.id)

    assert [r.id for r in await store.recent(limit=2)] == [ids[2], ids[1]]


async def test_close_writes_the_row_even_if_it_went_missing(db: Database) -> None:
    store = CallRecordStore(db)
    record = await store.open(
        channel_id="c1", flow="smoke", sip_call_id="sip-z", caller_number=None
    )
    async with db.sessions.begin() as session:
        await session.delete(await session.get(CallRecordRow, record.id))

    await store.close(record, outcome="abandoned", reason="caller hung up")

    rows = await store.find_by_sip_call_id("sip-z")
    assert [(r.id, r.outcome) for r in rows] == [(record.id, "abandoned")]
