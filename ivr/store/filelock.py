"""The SQLite file's writers take turns across processes: an ``flock(2)`` beside the file.

SQLite lets one writer at a time into a file. A writer that finds the file's
write lock taken by another process sleeps in SQLite's busy handler and tries
again: after a few tries it sleeps 25, 50, then 100 ms between tries
(``sqliteDefaultBusyCallback``), and a process that writes often takes the
lock again between two tries of the sleeper. With two controllers writing all
the time a write lost that race for up to 1.4 s (citas ×2 on SQLite, 480
calls: the SMS batches' turns, timed with ``CITAS_DB_STATEMENTS``; docs/perf/db.md).
An ``flock`` on ``<file>.write-lock`` is handed to the next waiter by the
kernel the moment it is released: the process's one writer
(``Database.write_turn``) takes it before its transaction and drops it after
the commit, and SQLite's own lock is then never contended by another process
that takes turns the same way (one that does not, say an ``ivr`` command of an
older release, still meets SQLite's busy handler as before).

Each acquisition opens its own file description: ``flock`` locks belong to a
description, so two acquisitions in one process exclude each other like two
processes. A waiter that gives up (its caller's deadline) while its thread
still blocks, or whose loop is closed, has the description closed by whichever
of the two is last, exactly once (``_Handover``): the lock is never left held
and a number the process has reused for another file is never closed. The
file is created readable by all (``flock`` needs no write access: a file made
by another user is opened read-only). Linux and the BSDs (``fcntl.flock``); a
network file system may not honour it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path


class WriteLockFile:
    """``async with lock.held():`` holds ``path`` exclusively (``flock``, ``LOCK_EX``).

    Waits without blocking the event loop: when the lock is taken, a daemon
    thread of its own blocks in ``flock`` (not the loop's default executor, whose
    few threads resolve host names; and a blocked thread never delays the
    process's exit). Raises ``OSError`` when the file cannot be opened, created
    or locked.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        fd = await self._acquire()
        try:
            yield
        finally:
            os.close(fd)  # closing the description releases its lock

    async def _acquire(self) -> int:
        fd = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        hand = _Handover(fd)

        def block() -> None:  # in a daemon thread: never holds up the interpreter's exit
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                hand.failure = exc
            if not hand.thread_done():
                return  # the waiter had gone: the description is closed
            try:
                loop.call_soon_threadsafe(_wake, woken)
            except RuntimeError:  # the loop is closed: nobody will take the lock
                hand.waiter_gone()

        threading.Thread(target=block, name="sqlite-write-turn", daemon=True).start()
        try:
            await woken
        except BaseException:  # cancelled (a deadline), or the coroutine closed with its loop
            hand.waiter_gone()
            raise
        if hand.failure is not None:
            hand.waiter_gone()
            raise hand.failure
        return fd


def _open(path: Path) -> int:
    """The lock file, created if need be; read-only when another user created it
    (``flock`` needs no write access), so a file made by ``sudo ivr …`` does not
    stop the service user's writes."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():  # a cancelled waiter's future stays cancelled
        woken.set_result(None)


class _Handover:
    """Who closes a blocked waiter's description, decided once under a lock shared by
    the waiting coroutine and its thread: the thread when the waiter had gone before
    it got the lock; the waiter when it goes after; the waiter's caller (``held``)
    when it got the lock. Closing never waits for the loop to run again (a loop
    closed with the waiter in it), and never happens twice (a second close could
    hit a number the process has reused for another file)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.failure: OSError | None = None
        self._lock = threading.Lock()
        self._thread_done = False
        self._waiter_gone = False
        self._closed = False

    def thread_done(self) -> bool:
        """The thread has the lock (or failed): True if a waiter is still there to take it."""
        with self._lock:
            self._thread_done = True
            if self._waiter_gone:
                self._close()
                return False
            return True

    def waiter_gone(self) -> None:
        """The waiter will not take the lock: close the description once the thread is done."""
        with self._lock:
            self._waiter_gone = True
            if self._thread_done:
                self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)
