"""Reads on a caller's path in reader threads (``Database.read_sync``).

The kind of fault: a read through the async driver pays a round trip through
the event loop for each statement, fetch and the connection's return; on a
busy controller the citas call's two reads before its slot offer (the open
case, the pending appointments) took 0.4 s p50 and 2.5 s p99 at 320 calls
(bench t17, docs/PERFORMANCE.md). On a SQLite file the read now runs whole in
a reader thread; the loop is needed once, for the answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from ivr.store.db import READERS, Database, StoreUnavailable
from tests.unit.databases import BACKENDS, migrated_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=5.0)
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (name TEXT)"))
        await conn.execute(text("INSERT INTO t VALUES ('a'), ('b')"))
    try:
        yield database
    finally:
        await database.close()


def count(ran: list[str]):  # type: ignore[no-untyped-def]
    def read(conn: Connection) -> int:
        n = int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())
        ran.append(threading.current_thread().name)
        return n

    return read


@pytest.mark.parametrize("reads", [1, READERS, 4 * READERS])
async def test_reads_run_whole_while_the_loop_does_not_run(db: Database, reads: int) -> None:
    ran: list[str] = []
    tasks = [asyncio.create_task(db.read_sync("count", count(ran))) for _ in range(reads)]
    await asyncio.sleep(0)  # each task hands its read over; then the loop stops running
    deadline = time.monotonic() + 5
    while len(ran) < reads and time.monotonic() < deadline:
        time.sleep(0.01)  # noqa: ASYNC251 - the loop blocked on purpose: no task resumes
    assert len(ran) == reads
    assert all(name.startswith("sqlite-reader") for name in ran)
    assert not any(task.done() for task in tasks)
    assert await asyncio.gather(*tasks) == [2] * reads


async def test_a_read_goes_on_while_a_writer_holds_the_turn_and_the_file(db: Database) -> None:
    async with db.write_turn(), db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES ('c')"))  # SQLite's write lock, held
        async with asyncio.timeout(2):
            assert await db.read_sync("count", count([])) == 2  # WAL: the last commit's view
    assert await db.read_sync("count", count([])) == 3


async def test_a_read_past_its_deadline_is_store_unavailable(db: Database) -> None:
    def slow(conn: Connection) -> None:
        time.sleep(0.3)

    with pytest.raises(StoreUnavailable, match="slow read"):
        await db.read_sync("slow read", slow, deadline_s=0.05)
    assert await db.read_sync("count", count([])) == 2  # the readers go on


@pytest.mark.parametrize("backend", [*BACKENDS, "memory"])
async def test_every_database_reads_through_read_sync(backend: str, tmp_path: Path) -> None:
    if backend == "memory":
        memory = Database("sqlite+aiosqlite:///:memory:")
        try:
            async with memory.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (name TEXT)"))
            assert (
                await memory.read_sync("one", lambda c: c.execute(text("SELECT 1")).scalar()) == 1
            )
        finally:
            await memory.close()
        return
    async with migrated_database(backend, tmp_path) as database:
        read = lambda conn: conn.execute(text("SELECT revision FROM ops_state")).scalar()  # noqa: E731
        assert await database.read_sync("revision", read) == 0


FORKED = """
import asyncio, os, sys
from sqlalchemy import text
from ivr.store.db import Database

db = Database(sys.argv[1])
one = lambda conn: conn.execute(text("SELECT 1")).scalar()
assert asyncio.run(db.read_sync("parent", one)) == 1  # the parent's readers run
pid = os.fork()
if pid == 0:
    os._exit(0 if asyncio.run(asyncio.wait_for(db.read_sync("child", one), 5)) == 1 else 1)
_, status = os.waitpid(pid, 0)
assert asyncio.run(db.read_sync("parent again", one)) == 1
print(os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_forked_child_reads_through_threads_of_its_own(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}"
    done = subprocess.run([sys.executable, "-c", FORKED, url], capture_output=True, text=True,
                          errors="replace", timeout=30, env={**os.environ})  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "0", done
