"""CallRecordStore.interrupt_open: whoever adopts a call closes its old record.

On SQLite and, when CITAS_TEST_PG_URL is set, PostgreSQL (conftest's ``db``).
Table-driven over the shapes a channel's rows can have: none, one open, several
open (a call adopted twice), open and closed mixed; other channels never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.store import CallRecordStore, Database
from ivr.store.db import StoreUnavailable
from ivr.store.records import INTERRUPTED
from tests.unit.databases import locked

CHANNEL = "1700000000.42"
OTHER = "1700000000.43"


@dataclass(frozen=True)
class Shape:
    name: str
    open_rows: int  # rows of CHANNEL left without an end
    closed_rows: int  # rows of CHANNEL closed normally before


SHAPES = [
    Shape("no rows", 0, 0),
    Shape("one open row", 1, 0),
    Shape("two open rows (adopted twice)", 2, 0),
    Shape("only closed rows", 0, 2),
    Shape("open and closed rows", 2, 1),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_interrupt_open_closes_exactly_the_channels_open_rows(
    db: Database, shape: Shape
) -> None:
    store = CallRecordStore(db)
    opened = [
        await store.open(channel_id=CHANNEL, flow="citas", sip_call_id=f"o{i}", caller_number=None)
        for i in range(shape.open_rows)
    ]
    for i in range(shape.closed_rows):
        done = await store.open(
            channel_id=CHANNEL, flow="citas", sip_call_id=f"c{i}", caller_number=None
        )
        await store.close(done, outcome="booked", reason="flow_end")
    other = await store.open(channel_id=OTHER, flow="citas", sip_call_id="x", caller_number=None)

    closed = await store.interrupt_open(CHANNEL, reason="controller_lost")
    again = await store.interrupt_open(CHANNEL, reason="controller_lost")

    assert (closed, again) == (shape.open_rows, 0)
    rows = {r.id: r for r in await store.recent(100)}
    for record in opened:
        row = rows[record.id]
        assert (row.outcome, row.end_reason) == (INTERRUPTED, "controller_lost")
        assert row.ended_at is not None
    closed_before = [r for r in rows.values() if (r.sip_call_id or "").startswith("c")]
    assert [(r.outcome, r.end_reason) for r in closed_before] == [("booked", "flow_end")] * (
        shape.closed_rows
    )
    assert (rows[other.id].outcome, rows[other.id].ended_at) == (None, None)
    summary = await store.summary()
    assert summary.in_progress == 1  # only OTHER's call
    assert summary.by_outcome.get(INTERRUPTED, 0) == shape.open_rows


async def test_a_record_of_the_channel_buffered_here_lands_before_the_update(
    tmp_path: Path,
) -> None:
    """The store's own buffered open of that channel must not land after the
    update and reopen the row (the buffer writes a record's latest state)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=0.2)
    await db.migrate()
    store = CallRecordStore(db, retry_initial=0.05, retry_max=0.1)
    try:
        with locked(db):
            record = await store.open(
                channel_id=CHANNEL, flow="citas", sip_call_id="sip-b", caller_number=None
            )
            assert store.buffered == 1

        closed = await store.interrupt_open(CHANNEL, reason="reconciled")
        await store.flush()

        (row,) = await store.find_by_sip_call_id("sip-b")
        assert (row.id, row.outcome, row.end_reason) == (record.id, INTERRUPTED, "reconciled")
        assert closed == 1
        assert store.buffered == 0
    finally:
        await db.close()


async def test_interrupt_open_raises_store_unavailable_when_the_database_is_down(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=0.2)
    await db.migrate()
    store = CallRecordStore(db)
    try:
        await store.open(channel_id=CHANNEL, flow="citas", sip_call_id="s", caller_number=None)
        with locked(db), pytest.raises(StoreUnavailable):
            await store.interrupt_open(CHANNEL, reason="controller_lost")
        assert await store.interrupt_open(CHANNEL, reason="controller_lost") == 1
    finally:
        await db.close()
