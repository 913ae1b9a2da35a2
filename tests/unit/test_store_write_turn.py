"""A process's writers take turns on SQLite (``Database.writing``, ``run(write=True)``).

The kind of fault: writers of one process waiting for SQLite's write lock inside
its busy handler, each holding a pooled connection, until the process's reads
find no connection left. Seen in the citas bench at 400 calls with two
controllers on SQLite (2026-11-30): the open-case and pending-appointment reads
waited up to 1.2 s, the SMS enqueue up to 3.8 s, with "database is locked"
errors. Now writers wait their turn holding nothing (on a file, queued in the
database's writer thread: ivr/store/writer.py, tests/unit/test_store_writer.py);
reads go on. On PostgreSQL (row locks, no file lock) writers do not take turns.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.sms.outbox import SmsOutbox
from tests.unit.databases import BACKENDS, TEST_DB_TIMEOUT_S, migrated_database


async def _hold(db, entered: list[str], name: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    async with db.writing() as conn:
        entered.append(f"{name} in")
        await conn.execute(text("UPDATE ops_state SET revision = revision + 1"))
        await asyncio.sleep(seconds)
        entered.append(f"{name} out")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_writers_take_turns_on_sqlite_only(backend: str, tmp_path: Path) -> None:
    async with migrated_database(backend, tmp_path) as db:
        seen: list[str] = []
        await asyncio.gather(_hold(db, seen, "a", 0.2), _hold(db, seen, "b", 0.0))
        if backend == "sqlite":
            assert seen == ["a in", "a out", "b in", "b out"]
        else:  # PostgreSQL: b waits for a's row lock inside the database, after entering
            assert seen[:2] == ["a in", "b in"], seen


async def test_reads_go_on_while_many_writers_wait_their_turn(tmp_path: Path) -> None:
    """The instance: more writers waiting than the pool has connections (5 + 10
    overflow), and a read still gets a connection at once."""
    async with migrated_database("sqlite", tmp_path) as db:
        seen: list[str] = []
        first = asyncio.create_task(_hold(db, seen, "first", 2.0))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(_hold(db, seen, f"w{i}", 0.0)) for i in range(30)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        async with db.sessions() as session:
            assert await session.scalar(text("SELECT count(*) FROM call_records")) == 0
        read_s = time.monotonic() - started
        assert seen == ["first in"]  # every other writer still waits for its turn
        await asyncio.gather(first, *waiting)
        assert read_s < 1.5, f"the read waited {read_s:.2f} s behind the writers"
        assert len(seen) == 62


async def test_the_turn_counts_against_the_operation_deadline(tmp_path: Path) -> None:
    """A writer that cannot get its turn within the deadline fails as an outage
    (StoreUnavailable), like one the database itself kept waiting."""
    from ivr.store.db import StoreUnavailable

    async with migrated_database("sqlite", tmp_path) as db:
        seen: list[str] = []
        holder = asyncio.create_task(_hold(db, seen, "holder", 0.6))
        await asyncio.sleep(0.05)

        async def op(session):  # type: ignore[no-untyped-def]
            await session.execute(text("UPDATE ops_state SET revision = revision + 1"))

        with pytest.raises(StoreUnavailable):
            await db.run("bump", op, deadline_s=0.2, write=True)
        await holder
        await db.run("bump", op, deadline_s=0.2, write=True)  # its turn comes now


async def test_sms_enqueues_waiting_for_the_turn_hold_no_connection(tmp_path: Path) -> None:
    """40 callers' SMS enqueues while another write holds the turn: one pooled
    connection in use (the holder's), then every message stored once."""
    async with migrated_database("sqlite", tmp_path) as db:
        outbox = SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)
        seen: list[str] = []
        holder = asyncio.create_task(_hold(db, seen, "holder", 0.5))
        await asyncio.sleep(0.05)
        enqueues = [
            asyncio.create_task(
                outbox.enqueue(to_number="+573001234567", text=f"m{i}", dedupe_key=f"k{i}")
            )
            for i in range(40)
        ]
        await asyncio.sleep(0.1)
        assert db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        await holder
        ids = await asyncio.gather(*enqueues)
        assert len(set(ids)) == 40
        assert len(await outbox.list()) == 40


def test_the_turn_works_on_every_event_loop_the_database_is_used_from(tmp_path: Path) -> None:
    """A Database used from two ``asyncio.run`` calls (a CLI, a test): the second
    loop's writers take turns too (an asyncio.Lock belongs to one loop; the
    first version raised RuntimeError there, and the record writer lost records)."""
    from ivr.store.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}", timeout=5.0)

    async def contend() -> list[str]:
        seen: list[str] = []
        await asyncio.gather(_hold(db, seen, "a", 0.1), _hold(db, seen, "b", 0.0))
        return seen

    asyncio.run(db.migrate())
    assert asyncio.run(contend()) == ["a in", "a out", "b in", "b out"]
    assert asyncio.run(contend()) == ["a in", "a out", "b in", "b out"]
    asyncio.run(db.close())


async def test_a_booking_waits_for_the_write_turn_and_a_slot_search_does_not(tmp_path: Path) -> None:
    """The booking (on a call's path when the caller accepts) takes the turn; the
    search and the patient's pending appointments (reads) do not."""
    from datetime import date

    from ivr.booking.db import DbSlotSource
    from ivr.booking.seed import race_slot

    async with migrated_database("sqlite", tmp_path) as db:
        slots = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S)
        slot = race_slot(date.today())
        await slots.seed_slots([slot])
        seen: list[str] = []
        holder = asyncio.create_task(_hold(db, seen, "holder", 1.5))
        await asyncio.sleep(0.05)
        [found] = await slots.find(site_id=slot.site_id, cups=slot.cups, limit=1)
        assert await slots.pending_for("1010101010") == []
        assert seen == ["holder in"]  # the reads ran while the turn was held

        async def book() -> None:
            await slots.book(found.id, affiliate_id="1010101010", call_id="c1")
            seen.append("booked")

        booking = asyncio.create_task(book())
        await asyncio.sleep(0.1)
        # Waiting for its turn, the booking holds no connection (the holder has one).
        assert db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        await asyncio.gather(holder, booking)
        assert seen == ["holder in", "holder out", "booked"]
