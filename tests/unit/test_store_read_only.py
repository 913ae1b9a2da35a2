"""Reads on a call's path cost one round trip on PostgreSQL (``Database.session(read_only=True)``).

A read in a transaction is three round trips with asyncpg (BEGIN, the statement,
COMMIT), each waiting for the controller's event loop: on a busy loop that
wait, not PostgreSQL, was what the open-case and pending-appointment reads of
the citas bench waited for at 480 calls (docs/perf/db.md). A read-only session
runs on a connection in autocommit: the statement alone. Counted here on the
real driver (asyncpg's ``Connection.execute`` carries BEGIN and COMMIT; a
statement goes through a prepared statement).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from tests.unit.databases import BACKENDS, migrated_database

pytestmark = pytest.mark.asyncio


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
    """asyncpg's BEGIN / COMMIT executes and prepared-statement runs, counted."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

    seen: collections.Counter[str] = collections.Counter()
    execute, fetch = asyncpg.Connection.execute, PreparedStatement.fetch

    async def counted_execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        verb = query.strip().rstrip(";").upper()
        seen["BEGIN" if verb.startswith("BEGIN") else verb] += 1
        return await execute(self, query, *args, **kw)

    async def counted_fetch(self: Any, *args: Any, **kw: Any) -> Any:
        seen["statement"] += 1
        return await fetch(self, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "execute", counted_execute)
    monkeypatch.setattr(PreparedStatement, "fetch", counted_fetch)
    yield seen


async def _count(session: Any) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM call_records")))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_read_only_read_is_one_round_trip_on_postgresql_and_unchanged_on_sqlite(
    backend: str, tmp_path: Path, round_trips: collections.Counter[str]
) -> None:
    async with migrated_database(backend, tmp_path) as db:
        statements: list[str] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute",
                     lambda _c, _cur, sql, *_: statements.append(sql))  # fmt: skip
        await db.run("warm up", _count)  # the statement prepared on a connection
        await db.run("warm up", _count, read_only=True)
        round_trips.clear()
        statements.clear()
        for _ in range(5):
            assert await db.run("count", _count) == 0
        plain = list(statements)
        if backend == "postgresql":
            assert round_trips == {"BEGIN": 5, "statement": 5, "COMMIT": 5}
        round_trips.clear()
        statements.clear()
        for _ in range(5):
            assert await db.run("count", _count, read_only=True) == 0
        if backend == "postgresql":
            assert round_trips == {"statement": 5}
        else:  # SQLite: a plain session, the same statements (and no asyncpg at all)
            assert statements == plain and len(plain) == 5
            assert round_trips == {}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_read_only_session_sees_what_was_committed(backend: str, tmp_path: Path) -> None:
    async with migrated_database(backend, tmp_path) as db:
        assert await db.run("count", _count, read_only=True) == 0

        async def insert(session: Any) -> None:
            await session.execute(text(
                "INSERT INTO call_records (id, channel_id, flow, started_at, steps, path, variables)"
                " VALUES ('r1', 'c1', 'citas', CURRENT_TIMESTAMP, 0, '[]', '{}')"
            ))  # fmt: skip

        await db.run("insert", insert, write=True, read_only=True)  # a write wins: a transaction
        assert await db.run("count", _count, read_only=True) == 1
