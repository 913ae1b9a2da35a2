"""The SQLite file's writers take turns across processes: an ``flock(2)`` beside the file.

SQLite lets one writer at a time into a file. A writer that finds the file's
write lock taken by another process sleeps in SQLite's busy handler and tries
again: after a few tries it sleeps 25, 50, then 100 ms between tries
(``sqliteDefaultBusyCallback``), and a process that writes often takes the
lock again between two tries of the sleeper. With two controllers writing all
the time a write lost that race for up to 1.4 s (citas ×2 on SQLite, 480
calls: the SMS batches' turns, timed with ``CITAS_DB_STATEMENTS``; docs/perf/db.md).
An ``flock`` on ``<file>.write-lock`` is handed to the next waiter by the
kernel the moment it is released: the database's writer thread
(ivr/store/writer.py) takes it before each transaction and drops it after the
commit, and SQLite's own lock is then never contended by another process that
takes turns the same way (one that does not, say an ``ivr`` command of an older
release, still meets SQLite's busy handler as before).

Each acquisition opens its own file description: ``flock`` locks belong to a
description, so two databases on one file in one process exclude each other
like two processes. The file is created readable by all (``flock`` needs no
write access: a file made by another user is opened read-only). Linux and the
BSDs (``fcntl.flock``); a network file system may not honour it.
"""

from __future__ import annotations

import os
from pathlib import Path


def open_lock_file(path: Path) -> int:
    """The lock file, created if need be; read-only when another user created it
    (``flock`` needs no write access), so a file made by ``sudo ivr …`` does not
    stop the service user's writes."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
