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
from collections.abc import AsyncIterator
from pathlib import Path


class WriteLockFile:
    """``async with lock.held():`` holds ``path`` exclusively (``flock``, ``LOCK_EX``).

    Waits without blocking the event loop (a thread of the loop's default
    executor blocks in ``flock`` when the lock is taken). Raises ``OSError``
    when the file cannot be opened or created.
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
        waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread still waits for the lock: close the description when it is done
            # (taken or failed), so a lock nobody holds any more is never kept.
            waiting.add_done_callback(lambda _: os.close(fd))
            raise
        except BaseException:
            os.close(fd)
            raise
        return fd
