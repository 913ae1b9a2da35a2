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
processes, and a waiter cancelled while its thread still blocks on the lock
closes that description once the thread gets it (the lock is never left held).
Linux and the BSDs (``fcntl.flock``); a network file system may not honour it.
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[None] = loop.create_future()

        def block() -> None:  # in a daemon thread: never holds up the interpreter's exit
            failure: OSError | None = None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                failure = exc

            def settle() -> None:  # in the loop: the waiter's fate is decided there only
                if waiting.cancelled():
                    os.close(fd)  # given up meanwhile: a lock nobody holds is never kept
                elif failure is not None:
                    waiting.set_exception(failure)
                else:
                    waiting.set_result(None)

            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop is closed: nobody waits any more
                os.close(fd)

        threading.Thread(target=block, name="sqlite-write-turn", daemon=True).start()
        try:
            await waiting
        except asyncio.CancelledError:
            if waiting.done() and not waiting.cancelled():
                # The lock came (or failed) just before the cancellation reached this
                # task: settle() saw a live waiter, so the description is ours to close.
                os.close(fd)
            # Otherwise settle() closes it once the thread is done.
            raise
        except BaseException:
            os.close(fd)
            raise
        return fd
