"""The database engine, its migrations and the store's exception tree.

StoreError
 ├── StoreUnavailable   the database cannot be reached or timed out
 └── UnsupportedDialect  a statement the store builds per database, on another one
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ivr.failures import failure_text
from ivr.store.probe import probe_from_env, task_origin, thread_origin
from ivr.store.writer import SqliteWriter

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATE_DEADLINE_S = 60.0  # seconds for the whole Alembic upgrade
READERS = 4  # reader threads (and connections) of a SQLite file's ``read_sync``
T = TypeVar("T")


class StoreError(RuntimeError):
    """A database operation failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or did not answer in time."""


class UnsupportedDialect(StoreError):
    """The database is neither PostgreSQL nor SQLite, the two the store's upserts are written for."""


DialectInsert = PgInsert | SqliteInsert  # what dialect_insert builds


def dialect_insert(dialect: str, entity: Any) -> DialectInsert:
    """``INSERT INTO <entity>`` with its database's ``ON CONFLICT`` clauses
    (``on_conflict_do_nothing``, ``on_conflict_do_update``, ``excluded``).

    ``dialect``: ``engine.dialect.name``, ``postgresql`` or ``sqlite``; ``entity``: an
    ORM class or a ``Table``. Both clauses are SQL's upsert as each database spells
    it (PostgreSQL ``INSERT … ON CONFLICT``, SQLite 3.24+ the same syntax);
    SQLAlchemy has no dialect-neutral one. Raises :class:`UnsupportedDialect` for
    another dialect (a store that guessed SQLite's would fail later, less clearly).
    """
    if dialect == "postgresql":
        return pg_insert(entity)
    if dialect == "sqlite":
        return sqlite_insert(entity)
    raise UnsupportedDialect(f"no upsert for the {dialect} database: PostgreSQL and SQLite only")


# SQLite's settings on every connection (docs/perf/db.md, "WAL"). WAL lets readers
# go on while one writer commits (the rollback journal locked everyone out of the
# file for each commit: the profile's "keys wait on the database", cap-profile.md
# §0); synchronous=FULL keeps today's durability: a commit the caller was told
# about survives a power loss (NORMAL may lose the last commits, sqlite.org/pragma.html).
SQLITE_JOURNAL_MODE = "wal"
SQLITE_SYNCHRONOUS = "FULL"
SQLITE_SYNCHRONOUS_CODE = 2  # what ``PRAGMA synchronous`` reads back for FULL


class Attempt:
    """One try of a transaction (``once_more_if_cut``): ``committing`` is set once
    its work is done and the COMMIT is on its way, after which a cut connection
    leaves it unknown whether the transaction took effect."""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


def cut_worth_retrying(exc: DBAPIError, attempt: Attempt, *, idempotent: bool = False) -> bool:
    """Whether ``exc`` is a connection the database cut (SQLAlchemy's disconnect
    detection: a restart, a failover, a killed backend) under a transaction that
    may run again: one that had not reached its COMMIT (so nothing of it took
    effect), or an ``idempotent`` one (running it twice does what running it once
    does)."""
    return bool(exc.connection_invalidated) and (idempotent or not attempt.committing)


async def once_more_if_cut(
    what: str, run: Callable[[Attempt], Awaitable[T]], *, idempotent: bool = False
) -> T:
    """``run(attempt)``, and once more if the database cut its connection before the
    transaction committed (``cut_worth_retrying``); other errors, and a second cut,
    propagate as raised.

    A database that restarts (or fails over) ends every session: the pool's idle
    connections are dead, and the first statement on each raises a disconnect.
    SQLAlchemy then marks every connection of the pool opened before that moment
    invalid (its "optimistic" disconnect handling), so a second try gets a new
    connection. Without it, the first transaction of each process after a
    restart failed, a caller's booking included (issue 14, PostgreSQL restart).
    ``pool_pre_ping`` would find dead connections before use, at a round trip and
    about 0.15 ms of CPU per checkout (measured here on PostgreSQL 15), on every
    transaction of every call, for an event of minutes a year.
    """
    attempt = Attempt()
    try:
        return await run(attempt)
    except DBAPIError as exc:
        if not cut_worth_retrying(exc, attempt, idempotent=idempotent):
            raise
        logger.warning("cannot %s: the database cut the connection (%s); once more", what,
                       str(exc.orig).splitlines()[0] if exc.orig else exc)  # fmt: skip
    return await run(Attempt())


def sqlite_pragmas(timeout: float) -> Callable[[Any, Any], None]:
    """A SQLAlchemy ``connect`` listener setting the pragmas on a new DB-API connection.

    ``timeout`` (s) becomes ``busy_timeout`` (ms), the same wait as the driver's
    ``timeout`` connect argument. ``journal_mode=WAL`` is persistent in the file
    but set on every connection anyway (a file restored from a rollback-journal
    backup is converted on first use); it needs no other connection holding the
    file in rollback mode, else OperationalError ("database is locked").
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cursor.execute(f"PRAGMA journal_mode = {SQLITE_JOURNAL_MODE}")
            cursor.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        finally:
            cursor.close()

    return on_connect


class Database:
    """Owns the async engine; built once by the composition root.

    On SQLite every connection runs in WAL mode with ``synchronous=FULL`` and
    ``busy_timeout`` = ``timeout`` (see :func:`sqlite_pragmas`).
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        # The SQLite file (None: another database, or SQLite in memory).
        file = (
            Path(parsed.database)
            if sqlite and parsed.database not in (None, "", ":memory:")
            else None
        )
        connect_args: dict[str, object] = {}
        if sqlite:
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
            connect_args["timeout"] = timeout
        self.engine: AsyncEngine = create_async_engine(url, connect_args=connect_args)
        # SQLite takes one writer at a time per file; a process's writers wait
        # their turn here, holding no connection (``writing``). One lock per
        # event loop: an asyncio.Lock belongs to the loop it first waited on.
        self._takes_turns = sqlite
        self._turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        if sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas(timeout))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._probe = probe_from_env()  # CITAS_DB_STATEMENTS: statements counted (probe.py)
        if self._probe is not None:
            self._probe.attach(self.engine)
        # A file's writes run in a thread of their own, the turn held there for
        # SQLite's time only (ivr/store/writer.py); the processes writing one file
        # take turns through a lock file beside it (ivr/store/filelock.py), not by
        # polling in SQLite's busy handler. In memory: the loop's lock above.
        self._writer: SqliteWriter | None = None
        # ... and the reads that sit on a caller's path (``read_sync``) in threads of
        # their own, each a connection of this engine: one loop round per read.
        self._readers: tuple[int, ThreadPoolExecutor] | None = None
        self._read_engine: Engine | None = None
        if file is not None:
            lock = file.with_name(f"{file.name}.write-lock")
            self._writer = SqliteWriter(self._sync_engine(1), lock, timer=self._probe)
            self._read_engine = self._sync_engine(READERS)

    def _sync_engine(self, connections: int) -> Engine:
        """A synchronous (pysqlite) engine on this SQLite file, for threads of this
        process: the same pragmas, timeout and statement probe as the async engine."""
        engine = create_engine(
            make_url(self.url).set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": self.timeout},
            pool_size=connections,
        )
        event.listen(engine, "connect", sqlite_pragmas(self.timeout))
        if self._probe is not None:
            self._probe.attach(engine)
        return engine

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        try:
            async with asyncio.timeout(MIGRATE_DEADLINE_S):
                async with self.engine.begin() as conn:
                    await conn.run_sync(_upgrade)
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(
                f"cannot migrate the database: {failure_text(exc, deadline_s=MIGRATE_DEADLINE_S)}"
            ) from exc

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction (committed on exit, rolled back on
        an exception). On SQLite, one per process at a time: the others wait
        for their turn in the event loop instead of in SQLite's busy handler,
        holding no pooled connection, so reads are never starved of one (the
        citas bench at 400 calls, two controllers: reads waited up to 1.2 s
        while writers slept in the busy handler, docs/perf/db.md)."""
        async with self.write_turn(), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def session(
        self, *, write: bool = False, read_only: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """An ORM session in a transaction, committed on exit (rolled back on an
        exception). ``write``: in the process's write turn (``write_turn``).

        ``read_only`` on PostgreSQL: the session runs on a connection in
        autocommit, each statement its own snapshot: no BEGIN and no COMMIT
        round trip (one round trip for a one-statement read instead of three;
        each waits for the event loop, which is what a read on a busy controller
        waited for: docs/perf/db.md). For reads of one statement, or that need no
        snapshot across statements. Elsewhere the same as a plain session.
        """
        if read_only and not write and self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                    yield session
            return
        async with (
            self.write_turn() if write else contextlib.nullcontext(),
            self.sessions.begin() as session,
        ):
            yield session

    def write_turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        """The turn to write (``async with``): on SQLite one holder at a time in the
        process (an ``asyncio.Lock``), then, for a file, one process at a time (the
        ``flock`` of ``<file>.write-lock``, ivr/store/filelock.py), for a file in
        the database's writer thread, queued with the ``write_sync`` jobs
        (ivr/store/writer.py); not reentrant: never take it again, nor call
        ``write_sync``, while holding it. Elsewhere free. Take it before
        checking out the connection the write runs on. Timed per origin when
        ``CITAS_DB_STATEMENTS`` is set (ivr/store/probe.py)."""
        if not self._takes_turns:
            return contextlib.nullcontext()
        if self._writer is not None:
            return self._writer.hold()  # timed by the writer itself
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            for gone in [other for other in self._turns if other.is_closed()]:
                del self._turns[gone]
            turn = self._turns[loop] = asyncio.Lock()
        return turn if self._probe is None else self._probe.timed_turn(turn)

    async def write_sync(
        self, what: str, fn: Callable[[Connection], T], *, deadline_s: float | None = None
    ) -> T:
        """``fn(conn)`` in one write transaction, committed when it returns (rolled back
        when it raises), within the timeout (the engine's unless given); its result.
        ``fn`` is a plain function of a synchronous SQLAlchemy ``Connection`` (Core
        statements, or an ORM ``Session(bind=conn)``); it must not touch the loop.

        On a SQLite file it runs whole in the database's writer thread, which takes
        the write turn, runs it, commits and gives the turn back without a round
        trip through the event loop (ivr/store/writer.py: on a busy controller the
        turn was otherwise held for six loop rounds per write, bench t16). Elsewhere
        it runs through the async engine (``conn.run_sync``), in the loop's turn.

        Raises StoreUnavailable (``what`` names the write) when the database fails or
        does not answer in time (on a file: then nothing was written; a write already
        committing is waited for, see writer.py), and for a row it refuses too
        (``__cause__``: the ``IntegrityError``, by which a batch writer tells it from
        an outage, ivr/store/group.py).
        """
        deadline = deadline_s or self.timeout

        async def write(attempt: Attempt) -> T:
            async with self.writing() as conn:
                result = await conn.run_sync(fn)
                attempt.committing = True
            return result

        try:
            if self._writer is not None:
                return await self._writer.run(fn, deadline)
            async with asyncio.timeout(deadline):
                return await once_more_if_cut(what, write)
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise StoreUnavailable(
                f"cannot {what}: {failure_text(exc, deadline_s=deadline)}"
            ) from exc

    async def read_sync(
        self, what: str, fn: Callable[[Connection], T], *, deadline_s: float | None = None
    ) -> T:
        """``fn(conn)`` on a connection of its own, for reads (rolled back after): its
        result, within the timeout (the engine's unless given). ``fn`` is a plain
        function of a synchronous SQLAlchemy ``Connection`` (Core, or an ORM
        ``Session(bind=conn)``); it must not touch the loop.

        On a SQLite file it runs whole in one of ``READERS`` reader threads (WAL:
        readers never wait for the writer): through the async driver every
        statement, fetch and the connection's return was a round trip through the
        event loop, and the citas call's two reads before its slot offer (the open
        case, the pending appointments) waited 0.4 s p50, 2.5 s p99 for them at 320
        calls (bench t17, docs/PERFORMANCE.md). Elsewhere through the async engine
        (``conn.run_sync``; on PostgreSQL in autocommit, like ``session(read_only=True)``).

        Raises StoreUnavailable (``what`` names the read) when the database fails or
        does not answer in time.
        """

        async def read(attempt: Attempt) -> T:
            async with self.engine.connect() as conn:
                if self.engine.dialect.name == "postgresql":
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await conn.run_sync(fn)

        deadline = deadline_s or self.timeout
        try:
            async with asyncio.timeout(deadline):
                if self._read_engine is not None:
                    return await self._read_in_thread(self._read_engine, fn)
                return await once_more_if_cut(what, read)
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise StoreUnavailable(
                f"cannot {what}: {failure_text(exc, deadline_s=deadline)}"
            ) from exc

    async def _read_in_thread(self, engine: Engine, fn: Callable[[Connection], T]) -> T:
        if self._readers is None or self._readers[0] != os.getpid():  # none yet, or forked
            if self._readers is not None:
                engine.dispose(close=False)  # the parent's connections stay the parent's
            pool = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-reader")
            self._readers = (os.getpid(), pool)
        origin = task_origin()

        def job() -> T:
            thread_origin.name = origin
            try:
                with engine.connect() as conn:
                    return fn(conn)
            finally:
                thread_origin.name = None

        return await asyncio.get_running_loop().run_in_executor(self._readers[1], job)

    async def run(
        self,
        what: str,
        op: Callable[[AsyncSession], Awaitable[T]],
        *,
        deadline_s: float | None = None,
        write: bool = False,
        read_only: bool = False,
    ) -> T:
        """Run ``op`` in one transaction within the timeout (the engine's unless
        given); failures are StoreUnavailable. ``write``: ``op`` writes (on
        SQLite it waits for the process's write turn first, see ``writing``).
        ``read_only``: ``op`` only reads (see ``session``).

        A constraint violation (IntegrityError) is a conflict the caller handles, not an outage.
        A connection the database cut before the commit: ``op`` runs once more, on a
        new one (``once_more_if_cut``), so ``op`` must not act outside the database.
        """

        async def attempt_op(attempt: Attempt) -> T:
            async with self.session(write=write, read_only=read_only) as session:
                result = await op(session)
                await session.flush()  # the ORM's pending writes, before the COMMIT
                attempt.committing = True
            return result

        deadline = deadline_s or self.timeout
        try:
            async with asyncio.timeout(deadline):
                return await once_more_if_cut(what, attempt_op)
        except IntegrityError:
            raise
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise StoreUnavailable(
                f"cannot {what}: {failure_text(exc, deadline_s=deadline)}"
            ) from exc

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)  # the queued writes first
        readers, self._readers = self._readers, None
        if readers is not None and readers[0] == os.getpid():
            await asyncio.to_thread(readers[1].shutdown)
        if self._read_engine is not None:
            self._read_engine.dispose()
        await self.engine.dispose()
        if self._probe is not None:
            self._probe.write()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
