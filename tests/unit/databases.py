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


def _worker_url(url: str, worker: str) -> str:
    """``url`` for this pytest-xdist worker: a database of its own beside the one named
    (``citas_test`` -> ``citas_test_gw0``...), so workers never empty each other's
    tables between tests; ``url`` itself outside xdist. The database is created
    on first use (``url_for``)."""
    if not url or not worker:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    return base.set(database=f"{base.database}_{worker}").render_as_string(hide_password=False)


_CREATED: set[str] = set()
DUPLICATE_DATABASE = "42P04"  # PostgreSQL's SQLSTATE duplicate_database (Appendix A)


def _create_worker_database(base_url: str, url: str) -> None:
    """Create ``url``'s database through ``base_url``'s server, unless there (once
    per process). Connects as the project does (SQLAlchemy, asyncpg: the URL's
    query string counts), within 10 s. Raises ``RuntimeError`` saying what is
    needed (the server up, a role allowed to CREATE DATABASE)."""
    if url == base_url or url in _CREATED:
        return
    import asyncio
    import threading

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(url).database
    failure: list[BaseException] = []

    async def create() -> None:
        engine = create_async_engine(
            base_url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 10}
        )
        try:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                )
                if not found:
                    try:
                        await conn.execute(text(f'CREATE DATABASE "{name}"'))
                    except DBAPIError as exc:  # another run made it meanwhile
                        if getattr(exc.orig, "sqlstate", None) != DUPLICATE_DATABASE:
                            raise
        finally:
            await engine.dispose()

    def run() -> None:  # its own loop: the caller may be inside a test's loop
        try:
            asyncio.run(create())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="create-worker-database")
    thread.start()
    thread.join()
    if failure:
        raise RuntimeError(
            f"cannot create the test database {name!r} beside CITAS_TEST_PG_URL's (the "
            "server must be up and its role allowed to CREATE DATABASE; or run one "
            f"process: CITAS_UNIT_WORKERS=1): {failure[0]!r}"
        ) from failure[0]
    _CREATED.add(url)


_BASE_PG_URL = os.environ.get("CITAS_TEST_PG_URL", "")
PG_URL = _worker_url(_BASE_PG_URL, os.environ.get("PYTEST_XDIST_WORKER", ""))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# Emptied between tests on PostgreSQL, which outlives one test (children first).
APP_TABLES = (
    "desk_escalations", "desk_steps", "desk_contacts", "desk_presence", "script_versions",
    "escalation_attempts", "sla_marks", "surveys", "case_events", "cases",
    "chat_handoffs", "chat_outbound", "chat_inbound", "conversations",
    "bookings", "booking_guards", "slots", "sms_outbox", "mail_outbox", "call_records",
    "ops_flags", "ops_windows", "ops_audit", "ops_alerts", "ops_tokens", "ops_controllers",
    "keywords", "keyword_lists", "keyword_audit", "text_analyses", "incident_reports",
    "change_versions",
)  # fmt: skip


# The deadline of a test's database (s): long enough that a stall of a loaded CI
# machine does not read as an outage. One SELECT of a token on PostgreSQL, in the
# unit phase of a CI run (one process; the cause of the stall not found), once
# took more than the 5 s this used to be (CI of stop 25: 503 where a 422 was due). Tests of what a timeout does open a Database
# of their own with a short one (test_records_buffer.py, test_store_wal.py...).
TEST_DB_TIMEOUT_S = 30.0


def url_for(backend: str, tmp_path: Path) -> str:
    """The database URL of ``backend`` for a test (PostgreSQL: this worker's, created
    the first time it is asked for)."""
    if backend == "postgresql":
        _create_worker_database(_BASE_PG_URL, PG_URL)
        return PG_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}"


@asynccontextmanager
async def migrated_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(url_for(backend, tmp_path), timeout=TEST_DB_TIMEOUT_S)
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
