"""A connection the database cuts (a restart, a failover, a killed backend): the
next transaction on it runs once more on a new one (``ivr.store.db.once_more_if_cut``).

The kind, over the store's ways into the database (``Database.run`` reading and
writing, ``read_sync``, ``write_sync``, the booking source's own transactions):

- every idle connection of the pool cut, as a restart leaves them: the next
  transaction succeeds, once;
- the connection cut in the middle of a transaction: nothing of it was
  committed, so it runs again, and its write is there exactly once;
- the connection cut as the COMMIT goes out: whether it took effect is unknown,
  so a plain write is not run again (the caller hears ``StoreUnavailable``), but
  a booking is, being idempotent per call (``DbSlotSource.book``).

On PostgreSQL (CITAS_TEST_PG_URL, which ``scripts/setup.sh test`` starts): a
SQLite file has no connection for a server to cut. ``pg_terminate_backend`` is
what a restart does to each session ("terminating connection due to
administrator command"). The PostgreSQL restart itself, under real calls, is
tests/e2e/test_cluster.py's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from ivr.booking.db import ATTEMPTS, DbSlotSource
from ivr.booking.model import BookingUnavailable, Slot
from ivr.booking.tables import BookingRow
from ivr.store.db import Database, StoreUnavailable
from ivr.store.models import CallRecordRow
from tests.unit.databases import PG_URL, migrated_database

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)
SLOT = Slot("cut-a", "norte", "dr_gomez", "890201", NOW + timedelta(days=3), "morning")
CUT = "the database cut the connection"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    if not PG_URL:
        pytest.fail(
            "these tests need PostgreSQL: CITAS_TEST_PG_URL=$(scripts/test-postgres.sh start DIR PORT)"
        )
    async with migrated_database("postgresql", tmp_path) as database:
        yield database


async def cut_idle(db: Database) -> int:
    """End every other session of the test database, as a restart does; how many."""
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            ended = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()
    return int(ended or 0)


async def warm(db: Database, connections: int = 3) -> None:
    """Leave ``connections`` idle connections in the pool."""
    held = [await db.engine.connect() for _ in range(connections)]
    for conn in held:
        await conn.execute(text("SELECT 1"))
    for conn in held:
        await conn.close()


def record_row(record_id: str) -> CallRecordRow:
    return CallRecordRow(
        id=record_id, channel_id=record_id, flow="citas", caller_number=None,
        started_at=NOW, path=[], variables={},
    )  # fmt: skip


async def records(db: Database) -> list[str]:
    async def op(session: AsyncSession) -> list[str]:
        return list(await session.scalars(select(CallRecordRow.id).order_by(CallRecordRow.id)))

    return await db.run("read the records", op)


def _insert_sync(record_id: str) -> Callable[[Connection], None]:
    def fn(conn: Connection) -> None:
        conn.execute(CallRecordRow.__table__.insert().values(
            id=record_id, channel_id=record_id, flow="citas", caller_number=None,
            started_at=NOW, path=[], variables={},
        ))  # fmt: skip

    return fn


# The store's ways in, each doing one read or one write of its own.
async def via_run_read(db: Database, n: int) -> Any:
    return await db.run("read", lambda s: s.scalar(select(func.count(CallRecordRow.id))),
                        read_only=True)  # fmt: skip


async def via_run_write(db: Database, n: int) -> Any:
    async def op(session: AsyncSession) -> None:
        session.add(record_row(f"run-{n}"))

    return await db.run("write", op, write=True)


async def via_read_sync(db: Database, n: int) -> Any:
    return await db.read_sync(
        "read", lambda conn: conn.execute(select(func.count(CallRecordRow.id))).scalar()
    )


async def via_write_sync(db: Database, n: int) -> Any:
    return await db.write_sync("write", _insert_sync(f"sync-{n}"))


async def via_booking(db: Database, n: int) -> Any:
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    return await source.find(site_id="norte", cups="890201", limit=5)


WAYS: dict[str, Callable[[Database, int], Awaitable[Any]]] = {
    "run-read": via_run_read, "run-write": via_run_write, "read_sync": via_read_sync,
    "write_sync": via_write_sync, "booking-find": via_booking,
}  # fmt: skip


@pytest.mark.parametrize("way", WAYS)
async def test_after_a_restart_the_next_transaction_succeeds(
    db: Database, way: str, caplog: pytest.LogCaptureFixture
) -> None:
    await warm(db)
    assert await cut_idle(db) >= 1
    with caplog.at_level(logging.WARNING):
        await WAYS[way](db, 1)
        await WAYS[way](db, 2)  # the rest of the pool was renewed with the first
    assert [r.message for r in caplog.records if CUT in r.message][:1], "no cut seen"
    assert sum(CUT in r.message for r in caplog.records) == 1
    if way in ("run-write", "write_sync"):
        prefix = "run" if way == "run-write" else "sync"
        assert await records(db) == [f"{prefix}-1", f"{prefix}-2"]


async def kill_own_backend(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


async def test_a_transaction_cut_midway_runs_again_and_writes_once(db: Database) -> None:
    tries: list[int] = []

    async def op(session: AsyncSession) -> None:
        tries.append(1)
        session.add(record_row("midway"))
        await session.flush()  # written, not committed
        if len(tries) == 1:
            await kill_own_backend(session)

    await db.run("write", op, write=True)
    assert len(tries) == 2
    assert await records(db) == ["midway"]


async def test_a_second_cut_is_an_outage(db: Database) -> None:
    async def op(session: AsyncSession) -> None:
        await kill_own_backend(session)

    with pytest.raises(StoreUnavailable, match="cannot write"):
        await db.run("write", op, write=True)


def cut_at_commit(db: Database, times: int = 1) -> list[int]:
    """The next ``times`` COMMITs of ``db`` find their connection cut; the list of
    cuts done so far."""
    done: list[int] = []

    def on_commit(conn: Connection) -> None:
        if len(done) < times:
            done.append(1)
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    event.listen(db.engine.sync_engine, "commit", on_commit)
    return done


async def test_a_write_cut_at_its_commit_is_not_run_again(db: Database) -> None:
    # Whether it took effect is unknown: running it again could write it twice.
    cuts = cut_at_commit(db)
    with pytest.raises(StoreUnavailable):
        await via_run_write(db, 1)
    assert cuts == [1]
    assert await records(db) == []  # here the COMMIT never reached the server


async def test_a_booking_cut_at_its_commit_runs_again_and_books_once(db: Database) -> None:
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    await source.seed_slots([SLOT])
    cuts = cut_at_commit(db)
    booking = await source.book(SLOT.id, affiliate_id="1001", call_id="call-cut")
    assert cuts == [1]
    assert await source.bookings_for("1001") == [booking]

    async def live(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count(BookingRow.id))) or 0)

    assert await db.run("count", live) == 1


async def test_a_booking_cut_twice_is_unavailable(db: Database) -> None:
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    await source.seed_slots([SLOT])
    cut_at_commit(db, times=2)
    with pytest.raises(BookingUnavailable):
        await source.book(SLOT.id, affiliate_id="1001", call_id="call-cut")
    assert await source.bookings_for("1001") == []


async def test_a_booking_without_a_call_cut_at_its_commit_is_not_run_again(db: Database) -> None:
    # Nothing tells a lost COMMIT's booking from another's (the booking API's
    # requests may carry no call id): the client hears the outage, not a refusal.
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    await source.seed_slots([SLOT])
    cuts = cut_at_commit(db)
    with pytest.raises(BookingUnavailable):
        await source.book(SLOT.id, affiliate_id="1001", call_id=None)
    assert cuts == [1]
    assert await source.bookings_for("1001") == []


async def test_a_cut_on_contention_s_last_try_still_gets_its_own_try(db: Database) -> None:
    # Lock contention's tries (serialisation failures, ATTEMPTS of them) and the cut's
    # one more are counted apart: a cut on contention's last try is retried too, and
    # never escapes as anything but a booking or BookingUnavailable.
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    await source.seed_slots([SLOT])
    async with db.engine.begin() as conn:
        await conn.execute(text(
            "CREATE OR REPLACE FUNCTION citas_test_conflict() RETURNS void AS $$ BEGIN"
            " RAISE EXCEPTION 'test conflict' USING ERRCODE = '40001'; END $$ LANGUAGE plpgsql"
        ))  # fmt: skip
    conflicts: list[int] = []

    def on_begin(conn: Connection) -> None:
        if len(conflicts) < ATTEMPTS - 1:
            conflicts.append(1)
            conn.exec_driver_sql("SELECT citas_test_conflict()")  # PostgreSQL's own 40001

    event.listen(db.engine.sync_engine, "begin", on_begin)
    cuts = cut_at_commit(db)  # the last contention try reaches its COMMIT: cut there
    booking = await source.book(SLOT.id, affiliate_id="1001", call_id="call-busy")
    event.remove(db.engine.sync_engine, "begin", on_begin)
    assert (len(conflicts), cuts) == (ATTEMPTS - 1, [1])
    assert await source.bookings_for("1001") == [booking]


async def test_a_booking_whose_commit_took_effect_but_was_cut_is_found_not_refused(
    db: Database,
) -> None:
    # The COMMIT reached the server, then the connection was cut before its answer:
    # the try runs again and finds the call's own booking (DbSlotSource._booked_by_call).
    source = DbSlotSource(db, timeout=10.0, clock=lambda: NOW)
    await source.seed_slots([SLOT])
    done: list[int] = []

    def on_commit(conn: Connection) -> None:
        if not done:
            done.append(1)
            conn.exec_driver_sql("COMMIT")  # it takes effect...
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")  # ...unheard

    event.listen(db.engine.sync_engine, "commit", on_commit)
    booking = await source.book(SLOT.id, affiliate_id="1001", call_id="call-lost")
    assert done == [1]
    assert booking.call_id == "call-lost"
    assert await source.bookings_for("1001") == [booking]
