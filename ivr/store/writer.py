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

A write whose deadline passes before the thread reached it is skipped; one
running is rolled back instead of committed (a statement already in SQLite is
not interrupted: the check comes after ``fn``), and one already committing is
waited for: its waiter is told what happened, never a failure for a write that
was made (a claim told failed would leave its messages leased and unsent). A
waiter cancelled from outside (a shutdown), or whose loop is closed, does the
same but is not told. A hold given up is released, whichever comes first of
the grant and the giving up; a hold whose loop is closed is taken back.
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
import weakref
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
    """A write or a hold, queued. ``state`` goes queued → running → committing
    (writes only), under ``lock``; ``gone``: its waiter gave up."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    origin: str
    fn: Callable[[Connection], T] | None  # None: a hold
    asked: float = field(default_factory=time.perf_counter)
    started: float | None = None  # when the thread took the turn for it
    released: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"
    gone: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def give_up(self) -> bool:
        """The waiter leaves; True when the job will not be run at all."""
        with self.lock:
            self.gone = True
            self.released.set()
            return self.state == "queued"

    def advance(self, to: str) -> bool:
        """The thread moves the job on (``running``, ``committing``); False: its waiter
        is gone, so the thread skips it or rolls it back instead."""
        with self.lock:
            if self.gone:
                return False
            self.state = to
            return True


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
        self._held: int | None = None  # the lock file's descriptor while a job has the turn
        _WRITERS.add(self)

    async def run(self, fn: Callable[[Connection], T], deadline_s: float) -> T:
        """``fn(conn)`` in a transaction of its own, committed when ``fn`` returns
        (rolled back when it raises), in the turn; its result. Raises TimeoutError
        when ``deadline_s`` passed and nothing was written (skipped, or rolled back)."""
        job: _Job[T] = self._submit(fn)
        try:
            async with asyncio.timeout(deadline_s):
                return await asyncio.shield(job.future)
        except TimeoutError:
            if self._gave_up(job):
                raise  # never started: nothing written
        except BaseException:  # cancelled, or closed with its loop: not told
            self._gave_up(job)
            raise
        try:  # started: rolled back, unless it was committing; the thread says which
            return await job.future
        except _GaveUp:
            raise TimeoutError(f"no write turn within {deadline_s} s") from None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold the turn (``async with``) while the body writes through another
        connection; the thread waits, so the writes queued behind wait too."""
        job: _Job[None] = self._submit(None)
        try:
            await job.future
        except BaseException:  # a deadline, or closed with its loop: granted or not, given back
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

    def _gave_up(self, job: _Job[Any]) -> bool:
        never_run = job.give_up()
        job.future.add_done_callback(_consume)  # an answer nobody awaits is not an error
        if never_run and self._timer is not None:
            self._timer.record_gave_up(job.origin, time.perf_counter() - job.asked)
        return never_run

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
            if job.gone:
                continue
            try:
                self._turn(job)
            except BaseException as exc:  # handed to the waiter, whatever it is
                _answer(job, exc=exc)

    def _turn(self, job: _Job[Any]) -> None:
        fd = self._held = self._lock()
        if not job.advance("running"):  # gave up while another process had the file's turn
            self._held = None
            if fd is not None:
                os.close(fd)
            return
        got = job.started = time.perf_counter()
        thread_origin.name = job.origin
        try:
            if job.fn is None:
                _answer(job, result=None)
                self._until_released(job)
            else:
                with self.engine.connect() as conn, conn.begin():
                    result = job.fn(conn)
                    if not job.advance("committing"):  # its deadline passed: roll back
                        raise _GaveUp
                _answer(job, result=result)
        except _GaveUp as exc:
            _answer(job, exc=exc)  # the waiter, if still there, learns nothing was written
        finally:
            thread_origin.name = None
            self._held = None
            if fd is not None:
                os.close(fd)  # closing the description releases its lock
            if self._timer is not None:
                self._timer.record_turn(job.origin, got - job.asked, time.perf_counter() - got)

    def _until_released(self, job: _Job[Any]) -> None:
        """A hold: wait for its holder, or take the turn back when its loop is closed
        (nobody will release it) or after ``MAX_HOLD_S``."""
        while not job.released.wait(0.5):
            if job.loop.is_closed():
                logger.warning(
                    "write turn held by %s, whose loop is closed: taken back", job.origin
                )
                return
            if time.perf_counter() - (job.started or job.asked) > MAX_HOLD_S:
                logger.error("write turn held %.0f s by %s: taken back", MAX_HOLD_S, job.origin)
                return

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


# A child forked while a writer thread has the turn inherits the lock file's
# descriptor, and with it the lock (``flock`` belongs to the description): it
# closes its copy, so the parent's close still releases the lock.
_WRITERS: weakref.WeakSet[SqliteWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_WRITERS):
        fd, writer._held = writer._held, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


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
