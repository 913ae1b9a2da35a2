"""The transfer writes its call record before the call leaves the IVR (CallRecord.checkpoint),
so the agent's screen pop finds the path when the agent answers; bounded when the
database is slow or down (the caller's path stays fast)."""

from __future__ import annotations

import time

from ivr.store.db import Database
from ivr.store.records import CHECKPOINT_S, CallRecordStore
from tests.unit.databases import TEST_DB_TIMEOUT_S, locked


async def test_checkpoint_writes_the_path_before_the_close(db: Database) -> None:
    store = CallRecordStore(db)
    record = await store.open(channel_id="c1", flow="citas", sip_call_id="sip-1", caller_number=None)
    record.step("digits", node="main_menu", digits="1")
    record.step("transfer", vdn="5550002", reason="non-target")
    record.variables["segment"] = "non_target"
    await record.checkpoint()
    [row] = await store.find_by_sip_call_id("sip-1")
    assert [s["kind"] for s in row.path] == ["digits", "transfer"]
    assert row.variables == {"segment": "non_target"}
    assert row.ended_at is None  # the close comes after the transfer
    await store.close(record, outcome="transferred", reason="transferred")
    [row] = await store.find_by_sip_call_id("sip-1")
    assert row.ended_at is not None and row.outcome == "transferred"


async def test_a_record_not_opened_by_the_store_has_nothing_to_checkpoint(db: Database) -> None:
    from datetime import UTC, datetime

    from ivr.store.records import CallRecord

    record = CallRecord("r", "c", "citas", "sip-x", None, datetime.now(UTC))
    await record.checkpoint()  # a chat's record: nothing to write, nothing raised
    assert await CallRecordStore(db).find_by_sip_call_id("sip-x") == []


async def test_checkpoint_with_the_database_locked_is_bounded_and_buffered(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", timeout=TEST_DB_TIMEOUT_S)
    await db.migrate()
    try:
        store = CallRecordStore(db)
        record = await store.open(channel_id="c2", flow="citas", sip_call_id="sip-2", caller_number=None)
        record.step("transfer", vdn="5550002", reason="non-target")
        with locked(db):
            started = time.monotonic()
            await record.checkpoint()
            waited = time.monotonic() - started
        assert waited < CHECKPOINT_S + 0.5, waited  # not the database's timeout (30 s here)
        assert store.buffered == 1
        assert await store.flush()
        [row] = await store.find_by_sip_call_id("sip-2")
        assert [s["kind"] for s in row.path] == ["transfer"]
    finally:
        await db.close()
