"""The databases the store tests run on: SQLite always, PostgreSQL when
CITAS_TEST_PG_URL names one (``scripts/setup.sh test`` starts a throwaway one)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text

from ivr.store.db import Database


def _own_database(url: str, worker: str) -> str:
    """``url`` for this pytest-xdist worker: a database of its own beside the one named
    (``citas_test_gw0``...), created when missing, so workers never empty each
    other's tables between tests. The URL as given outside xdist."""
    if not url or not worker:
        return url
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"

    async def create() -> None:
        conn = await asyncpg.connect(
            host=base.host, port=base.port, user=base.username, password=base.password,
            database=base.database,
        )  # fmt: skip
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return base.set(database=name).render_as_string(hide_password=False)


PG_URL = _own_database(
    os.environ.get("CITAS_TEST_PG_URL", ""), os.environ.get("PYTEST_XDIST_WORKER", "")
)
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# Emptied between tests on PostgreSQL, which outlives one test (children first).
APP_TABLES = (
    "desk_escalations", "desk_steps", "desk_contacts", "desk_presence", "script_versions",
    "escalation_attempts", "sla_marks", "surveys", "case_events", "cases",
    "chat_handoffs", "chat_outbound", "chat_inbound", "conversations",
    "bookings", "booking_guards", "slots", "sms_outbox", "mail_outbox", "call_records",
    "ops_flags", "ops_windows", "ops_audit", "ops_alerts", "ops_tokens",
    "keywords", "keyword_lists", "keyword_audit", "text_analyses", "incident_reports",
    "change_versions",
)  # fmt: skip


def url_for(backend: str, tmp_path: Path) -> str:
    return PG_URL if backend == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}"


@asynccontextmanager
async def migrated_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(url_for(backend, tmp_path), timeout=5.0)
    await database.migrate()
    if backend == "postgresql":
        async with database.engine.begin() as conn:
            for table in APP_TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
            await conn.execute(text("UPDATE ops_state SET revision = 0"))
            await conn.execute(text("UPDATE case_sequence SET last = 0"))
    try:
        yield database
    finally:
        await database.close()


@contextlib.contextmanager
def locked(db: Database) -> Iterator[None]:
    """Another connection holds SQLite's write lock (BEGIN EXCLUSIVE): our writes fail.

    The database runs in WAL mode (ivr.store.db), so our reads still succeed: the
    tests using this exercise writes only (records, SMS outbox, checkpoints).
    """
    assert db.engine.url.database is not None
    conn = sqlite3.connect(db.engine.url.database, timeout=5, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@contextlib.contextmanager
def refusing_writes(db: Database, error: Exception) -> Iterator[None]:
    """Every write transaction's connection fails with ``error`` (a connection reset,
    say), whichever way the database writes: its writer thread's engine on a SQLite
    file (ivr/store/writer.py), else the async engine (``Database.writing``)."""
    import pytest

    def refuse(*args: object, **kwargs: object) -> object:
        raise error

    with pytest.MonkeyPatch.context() as patched:
        writer = db._writer
        if writer is not None:
            patched.setattr(writer.engine, "connect", refuse)
        else:

            @asynccontextmanager
            async def writing() -> AsyncIterator[None]:
                refuse()
                yield  # pragma: no cover - fails on entry

            patched.setattr(db, "writing", writing)
        yield
