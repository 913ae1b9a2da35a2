"""SQLite runs in WAL mode with synchronous=FULL on every connection (docs/perf/db.md, "WAL")."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.db import SQLITE_SYNCHRONOUS_CODE, Database


async def pragmas(db: Database) -> tuple[str, int, int]:
    async with db.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        sync = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    return str(mode), int(sync), int(busy)


def rollback_journal_file(path: Path) -> None:
    """A database file as main made them before this change: journal_mode=delete."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE legacy (x INTEGER)")
        conn.execute("INSERT INTO legacy VALUES (1)")
    conn.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    check.close()


@pytest.mark.parametrize("existing", [False, True], ids=["fresh-file", "rollback-journal-file"])
@pytest.mark.parametrize("wait_s", [0.2, 5.0])
async def test_every_connection_is_wal_with_synchronous_full(
    tmp_path: Path, existing: bool, wait_s: float
) -> None:
    path = tmp_path / "sub" / "citas.db"
    if existing:
        path.parent.mkdir()
        rollback_journal_file(path)
    db = Database(f"sqlite+aiosqlite:///{path}", timeout=wait_s)
    try:
        await db.migrate()
        # Several connections at once: each gets the pragmas, not only the first.
        results = await asyncio.gather(*(pragmas(db) for _ in range(3)))
        assert set(results) == {("wal", SQLITE_SYNCHRONOUS_CODE, int(wait_s * 1000))}
    finally:
        await db.close()
    # WAL is persistent: a plain connection (no pragmas of ours) sees it in the file.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if existing:
            assert plain.execute("SELECT x FROM legacy").fetchall() == [(1,)]
    plain.close()


async def count_versions(db: Database) -> int:
    async def op(session: AsyncSession) -> int:
        return int(
            (await session.execute(text("SELECT count(*) FROM change_versions"))).scalar_one()
        )

    return await db.run("count", op)


async def test_a_reader_is_not_blocked_by_a_writer_holding_its_transaction(tmp_path: Path) -> None:
    """The point of WAL: a read while another connection holds the write lock succeeds
    (in rollback-journal mode it waited for the lock, then failed)."""
    path = tmp_path / "citas.db"
    db = Database(f"sqlite+aiosqlite:///{path}", timeout=0.2)
    try:
        await db.migrate()
        before = await count_versions(db)
        writer = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO change_versions (topic, version) VALUES ('wal-test', 1)")
            assert await count_versions(db) == before  # read at once, uncommitted row unseen
            writer.execute("COMMIT")
            assert await count_versions(db) == before + 1
        finally:
            writer.close()
    finally:
        await db.close()


async def test_memory_database_still_opens(tmp_path: Path) -> None:
    """:memory: cannot be WAL (SQLite answers "memory"); the pragmas must not fail."""
    db = Database("sqlite+aiosqlite:///:memory:", timeout=1.0)
    try:
        mode, sync, _ = await pragmas(db)
        assert (mode, sync) == ("memory", SQLITE_SYNCHRONOUS_CODE)
    finally:
        await db.close()
