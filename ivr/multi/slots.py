"""Controller slots: which process drives which Stasis application.

Slot 1's application is ``settings.app_name`` (what a single controller has
always registered); slot ``i >= 2``'s is ``f"{app_name}-{i}"``. The dialplan
(``[citas-ivr]``) starts each call at a random slot and tries the next ones in
turn when ``Stasis()`` fails, which Asterisk does at once for an application
with no websocket.

A process owns slot ``i`` while it holds an exclusive ``fcntl.flock`` on
``<state_dir>/<instance>/controllers/slot-<i>.lock``. The kernel releases the
lock the instant the process dies, SIGKILL included, so a lock another process
can take means a dead (or never started) owner: no heartbeat, no lease expiry,
no clock. flock locks belong to the open file description, so one process
trying another slot's lock conflicts with that slot's owner even within the
same process. The lock file holds the owner's pid (for operators and tests;
never read to decide anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from ivr.settings import Settings

# How often a slot owner tries the other slots' locks, and a standby the free
# ones (seconds): the worst case of the failover's first step (issue 13: a dead
# controller's callers reach another one, or the agents, within 3 s).
SLOT_POLL_S = 0.25


def slot_app(app_name: str, slot: int) -> str:
    """The Stasis application of ``slot`` (1-based): ``app_name`` for slot 1,
    ``f"{app_name}-{slot}"`` otherwise. Raises ``ValueError`` for slot < 1.

    >>> slot_app("citas-ivr", 1), slot_app("citas-ivr", 3)
    ('citas-ivr', 'citas-ivr-3')
    """
    if slot < 1:
        raise ValueError(f"slot {slot} < 1")
    return app_name if slot == 1 else f"{app_name}-{slot}"


def slots_dir(settings: Settings) -> Path:
    """Where the slot locks of ``settings.instance`` live."""
    return settings.state_dir / settings.instance / "controllers"


class SlotLock:
    """The exclusive flock of one slot's lock file; not reentrant."""

    def __init__(self, path: Path, slot: int) -> None:
        self.path = path
        self.slot = slot
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, *, owner: bool = True) -> bool:
        """Take the lock without waiting: True if now held by this object, False
        if another open file (another process, or another ``SlotLock``) holds it.
        ``owner``: write our pid in the file (an adopter's brief hold does not).
        Raises ``OSError`` when the file cannot be opened or locked for another reason."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        if owner:
            with contextlib.suppress(OSError):  # the pid is for people; the lock is what counts
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the slot up (closing the file releases the flock); idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)

    def owner_pid(self) -> int | None:
        """The pid the last owner wrote, or None (tests and operators only: a dead
        owner's pid stays in the file)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None


class Slots:
    """The ``count`` slots of one instance, their lock files in ``directory``."""

    def __init__(self, directory: Path, count: int) -> None:
        if count < 1:
            raise ValueError(f"{count} slots")
        self.directory = directory
        self.count = count

    @classmethod
    def of(cls, settings: Settings) -> Slots:
        return cls(slots_dir(settings), settings.controllers)

    def lock(self, slot: int) -> SlotLock:
        """A new (unheld) lock object for ``slot`` (1..count)."""
        if not 1 <= slot <= self.count:
            raise ValueError(f"slot {slot} not in 1..{self.count}")
        return SlotLock(self.directory / f"slot-{slot}.lock", slot)

    def claim(self, candidates: Sequence[int]) -> SlotLock | None:
        """The first of ``candidates`` whose lock is free, now held; None if all are taken."""
        for slot in candidates:
            lock = self.lock(slot)
            if lock.try_acquire():
                return lock
        return None

    async def wait_claim(self, candidates: Sequence[int], poll: float = SLOT_POLL_S) -> SlotLock:
        """``claim`` until one of ``candidates`` frees (a standby), trying every
        ``poll`` seconds; cancel to stop waiting."""
        while True:  # polling: a flock frees with no event to wait on
            if (lock := self.claim(candidates)) is not None:
                return lock
            await asyncio.sleep(poll)

    def owners(self) -> dict[int, int | None]:
        """Slot -> the pid in its lock file (tests and operators)."""
        return {i: self.lock(i).owner_pid() for i in range(1, self.count + 1)}
