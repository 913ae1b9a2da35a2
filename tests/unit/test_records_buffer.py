"""CallRecordStore with the database down: records are buffered, then written.

A real SQLite file, made unavailable by another connection holding its
exclusive lock (what a stuck writer or a full disk looks like to us).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.store import CallRecordStore, Database
from ivr.store.records import CallRecord
from tests.unit.databases import locked
from tests.unit.eventually import eventually


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=0.2)
    try:
        await database.migrate()
        yield database
    finally:
        await database.close()


async def open_call(store: CallRecordStore, n: int) -> CallRecord:
    return await store.open(
        channel_id=f"c{n}", flow="smoke", sip_call_id=f"sip-{n}", caller_number=None
    )


async def outcomes(store: CallRecordStore) -> dict[str, str | None]:
    return {r.sip_call_id or "": r.outcome for r in await store.recent(100)}


async def test_a_call_opened_and_closed_while_the_database_is_down_is_written_later(
    db: Database,
) -> None:
    store = CallRecordStore(db, retry_initial=0.05, retry_max=0.1)
    flusher = asyncio.create_task(store.run())
    try:
        with locked(db):
            record = await open_call(store, 1)  # does not raise: the id exists at once
            record.step("node", node="welcome")
            await store.close(record, outcome="completed", reason="flow_end")
            assert store.buffered == 1
        await eventually(lambda: store.buffered == 0)
        (row,) = await store.find_by_sip_call_id("sip-1")
    finally:
        store.stop()
        await flusher

    assert (row.id, row.outcome, row.end_reason, row.steps) == (
        record.id, "completed", "flow_end", 1,
    )  # fmt: skip
    assert row.ended_at is not None and row.path[0]["node"] == "welcome"


async def test_writes_queue_behind_the_buffer_so_only_the_first_waits_for_the_timeout(
    db: Database,
) -> None:
    store = CallRecordStore(db)
    with locked(db):
        first = await open_call(store, 1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        second = await open_call(store, 2)  # the buffer is not empty: no database attempt
        waited = loop.time() - started
        await store.close(first, outcome="abandoned", reason="caller_hangup")
        assert store.buffered == 2
        assert not await store.flush()

    assert waited < db.timeout
    assert await store.flush() and store.buffered == 0
    assert await outcomes(store) == {"sip-1": "abandoned", "sip-2": None}
    await store.close(second, outcome="completed", reason="flow_end")  # straight to the database
    assert await outcomes(store) == {"sip-1": "abandoned", "sip-2": "completed"}


async def test_a_full_buffer_drops_the_oldest_record_with_an_error(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = CallRecordStore(db, max_buffered=2)
    with locked(db), caplog.at_level(logging.ERROR, "ivr.store.records"):
        lost = await open_call(store, 1)
        await open_call(store, 2)
        await open_call(store, 3)

    assert (store.buffered, store.dropped) == (2, 1)
    assert f"record {lost.id} lost" in caplog.text
    assert await store.flush()
    assert sorted(await outcomes(store)) == ["sip-2", "sip-3"]


async def test_a_record_closed_while_its_buffered_write_is_in_flight_is_written_again(
    db: Database,
) -> None:
    store = CallRecordStore(db)
    with locked(db):
        record = await open_call(store, 1)
    writing = asyncio.create_task(store.flush())
    await asyncio.sleep(0)  # the flush has taken the open state and is writing it
    await store.close(record, outcome="transferred", reason="transferred")
    assert await writing

    assert store.buffered == 0
    assert await outcomes(store) == {"sip-1": "transferred"}


async def test_stop_ends_the_flusher_even_while_it_backs_off(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = CallRecordStore(db, retry_initial=30.0)
    flusher = asyncio.create_task(store.run())
    with locked(db), caplog.at_level(logging.WARNING, "ivr.store.records"):
        await open_call(store, 1)
        # The flusher's first try failed: it is now in its 30 s backoff.
        await eventually(lambda: "still buffered" in caplog.text, within=5)
        store.stop()
        await asyncio.wait_for(flusher, 2)
    assert store.buffered == 1 and await store.flush()
