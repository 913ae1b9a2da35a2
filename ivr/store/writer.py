"""A SQLite file's writes in one thread: the write turn held for the database's time only.

SQLite lets one writer at a time into a file, so a process's writers take
turns (``Database.write_turn``). Through the async driver every statement,
fetch, commit and the connection's return to the pool is a round trip
through the event loop, and each waits behind everything else the loop has
to do: on a busy controller a one-statement write held the turn for 6 loop
rounds, p99 0.34 s, and the SMS worker's claims and marks up to 1.05 s, while
SQLite's own work (fsync included) took milliseconds (bench t16 at 320 citas
calls, docs/PERFORMANCE.md). The callers' SMS enqueues waited behind them
(p99 1.3 s).

:class:`SqliteWriter` runs each write transaction (``run(fn)``: ``fn`` is a
plain function of a synchronous SQLAlchemy ``Connection``) whole in a thread
of its own: the turn is taken, the statements run, the commit is made and the
turn is given back there, without the loop. The loop waits for the result
once, after the turn is free. The thread's queue *is* the process's turn: a
writer that must hold the turn across awaits (an ORM session, a booking)
queues a ``hold`` that blocks the thread until it is released, so both kinds
of writer take turns in one order (first come, first served). Across
processes the turn is the ``flock`` of ``<file>.write-lock``, taken and
dropped by the thread around each job (ivr/store/filelock.py).

A job whose waiter gave up (its deadline, a cancellation) before the thread
reached it is skipped; one running is rolled back instead of committed (a
statement already in SQLite is not interrupted: the check comes after ``fn``).
Only a waiter that leaves during the commit itself is told of a failure for a
write that was made, which every writer here allows for (the upserts and the
SMS dedupe key make a retry harmless; a claimed message's lease expires).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from ivr.store.filelock import open_lock_file
from ivr.store.probe import task_origin, thread_origin

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A hold the loop never released (a bug, or a loop that died holding it) stops
# every write of the process; after this long the thread takes the turn back and
# says so. SQLite's own lock still keeps the file consistent meanwhile.
MAX_HOLD_S = 120.0


class TurnTimer(Protocol):
    """Told of every turn (``StatementProbe``); called from any thread."""

    def record_turn(self, origin: str, wait: float, hold: float) -> None: ...

    def record_gave_up(self, origin: str, wait: float) -> None: ...


@dataclass(eq=False)
class _Job(Generic[T]):
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    origin: str
    fn: Callable[[Connection], T] | None  # None: a hold
    asked: float = field(default_factory=time.perf_counter)
    started: float | None = None  # when the thread took the turn for it
    released: threading.Event = field(default_factory=threading.Event)

    def gone(self) -> bool:
        return self.future.cancelled() or self.released.is_set()


_STOP = object()


class _GaveUp(Exception):
    """Rolls back a job whose waiter left before its commit."""


class SqliteWriter:
    """One thread writing one SQLite file for this process (see the module docstring).

    ``engine``: a synchronous engine on the file (its pragmas set by the caller);
    ``lock_path``: the lock file the processes writing the file share, or None
    for none; ``timer``: told each job's wait and hold (s) under the origin of the
    task that queued it (``ivr.store.probe.task_origin``), and each job given up. Created in one process and used there: a forked child
    gets a thread of its own on first use, and so does a writer used again after
    ``close``. Raises, from ``run``, whatever ``fn`` raised (SQLAlchemy's
    ``DBAPIError`` and the like); from both, ``OSError`` when the lock file cannot
    be opened or locked.
    """

    def __init__(
        self,
        engine: Engine,
        lock_path: Path | None,
        *,
        timer: TurnTimer | None = None,
    ) -> None:
        self.engine = engine
        self.lock_path = lock_path
        self._timer = timer
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a transaction of its own, committed when ``fn`` returns
        (rolled back when it raises), in the turn; its result."""
        job: _Job[T] = self._submit(fn)
        try:
            return await job.future
        except asyncio.CancelledError:
            self._gave_up(job)  # not started yet: skipped; running: result dropped
            raise

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold the turn (``async with``) while the body writes through another
        connection; the thread waits, so the writes queued behind wait too."""
        job: _Job[None] = self._submit(None)
        try:
            await job.future
        except asyncio.CancelledError:
            self._gave_up(job)
            raise
        try:
            yield
        finally:
            job.released.set()

    def close(self) -> None:
        """Finish the queued jobs, then stop the thread and close the engine's
        connections (blocks: call it from a thread, as ``Database.close`` does)."""
        with self._start_lock:
            thread = self._thread if self._pid == os.getpid() else None
            jobs, self._thread, self._jobs = self._jobs, None, queue.SimpleQueue()
        if thread is not None:
            jobs.put(_STOP)
            thread.join(timeout=MAX_HOLD_S)
        self.engine.dispose()

    def _gave_up(self, job: _Job[Any]) -> None:
        started = job.started
        job.released.set()
        if started is None and self._timer is not None:
            self._timer.record_gave_up(job.origin, time.perf_counter() - job.asked)

    def _submit(self, fn: Callable[[Connection], T] | None) -> _Job[T]:
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(loop, loop.create_future(), task_origin(), fn)
        with self._start_lock:
            self._ensure_thread()
            self._jobs.put(job)
        return job

    def _ensure_thread(self) -> None:
        """Under ``_start_lock``: a thread serving ``_jobs`` in this process."""
        if self._pid != os.getpid():  # forked: the parent's thread is not here
            self._pid = os.getpid()
            self._jobs = queue.SimpleQueue()
            self._thread = None
            self.engine.dispose(close=False)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, args=(self._jobs,), name="sqlite-writer", daemon=True
            )
            self._thread.start()

    def _serve(self, jobs: queue.SimpleQueue[Any]) -> None:
        while (job := jobs.get()) is not _STOP:
            if job.gone():
                continue
            try:
                self._turn(job)
            except BaseException as exc:  # handed to the waiter, whatever it is
                _answer(job, exc=exc)

    def _turn(self, job: _Job[Any]) -> None:
        fd = self._lock()
        if job.gone():  # gave up while another process had the file's turn
            if fd is not None:
                os.close(fd)
            return
        got = job.started = time.perf_counter()
        thread_origin.name = job.origin
        try:
            if job.fn is None:
                _answer(job, result=None)
                if not job.released.wait(MAX_HOLD_S):
                    logger.error("write turn held %.0f s by %s: taken back", MAX_HOLD_S, job.origin)
            else:
                with self.engine.connect() as conn, conn.begin():
                    result = job.fn(conn)
                    if job.gone():  # the waiter gave up meanwhile: roll back, not commit
                        raise _GaveUp
                _answer(job, result=result)
        except _GaveUp:
            pass
        finally:
            thread_origin.name = None
            if fd is not None:
                os.close(fd)  # closing the description releases its lock
            if self._timer is not None:
                self._timer.record_turn(job.origin, got - job.asked, time.perf_counter() - got)

    def _lock(self) -> int | None:
        if self.lock_path is None:
            return None
        fd = open_lock_file(self.lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd


def _answer(job: _Job[Any], *, result: object = None, exc: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the waiter's loop is closed: nobody takes the answer
        job.released.set()
