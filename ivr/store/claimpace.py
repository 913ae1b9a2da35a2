"""When an outbox worker claims next: the SMS and mail workers' wait between claims.

An outbox worker (``ivr.sms.worker``, ``ivr.mail.worker``) clears its outbox's
``wakeup`` event, claims up to a batch of due messages, delivers them, then
waits here:

- for the ``wakeup`` event (a message queued in this process), or the next due
  time (a retry, an expired lease), or ``idle_wait`` seconds, whichever is
  first;
- then out the rest of ``claim_interval`` seconds since the last claim, so that
  under load the messages queued meanwhile share one claim (one write
  transaction) instead of one claim each.

A claim that came back full is followed by another at once, by the worker, not
through here. The next due time is read from the database (``next_due``) at most
every ``idle_wait`` seconds, or once the time read has passed (a claim took what
was due then); the worker's own retries move it forward in memory (``due``).
Messages queued by another process wake no one here: the claim after a wait
of at most ``idle_wait`` finds them.

Why: run d1 (docs/PERFORMANCE.md) measured the SMS worker at 8.1 % of a busy
citas controller's event loop, and at 320 citas calls (10.7 SMS a second) it
ran a claim (one write transaction, SELECT and UPDATE) and a mark (another) for
every message; with a 0.1 s interval still one message a claim (run sq, 2026-12-03).
Half a second lets about five share a claim and their marks' commit; an SMS
that goes out half a second later changes nothing for a caller who is still
hearing the redirect message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from ivr.store.db import StoreUnavailable

logger = logging.getLogger(__name__)

MIN_WAIT_S = 0.05  # a due time already past is not worth a busy loop
CLAIM_INTERVAL_S = 0.5  # between claims when woken: what is queued meanwhile shares one


class ClaimPace:
    """``name`` labels the log lines ("sms worker"); ``next_due()`` reads the
    earliest due time from the outbox (None: nothing due) and may raise
    ``StoreUnavailable``; ``clock()`` is the outbox's clock (aware datetimes).
    ``idle_wait`` and ``claim_interval`` are seconds."""

    def __init__(
        self,
        name: str,
        wakeup: asyncio.Event,
        next_due: Callable[[], Awaitable[datetime | None]],
        clock: Callable[[], datetime],
        *,
        idle_wait: float,
        claim_interval: float = CLAIM_INTERVAL_S,
    ) -> None:
        self.name = name
        self.wakeup = wakeup
        self.next_due = next_due
        self.clock = clock
        self.idle_wait = idle_wait
        self.claim_interval = claim_interval
        self._claimed_at = -math.inf  # time.monotonic() of the last claim
        self._due: datetime | None = None  # as last read, moved forward by ``due``
        self._due_read_at = -math.inf  # time.monotonic() of that read
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """The worker stops: a wait in progress or to come returns at once."""
        self._stopped.set()
        self.wakeup.set()

    def claimed(self) -> None:
        """A claim starts now."""
        self._claimed_at = time.monotonic()

    def due(self, when: datetime) -> None:
        """The worker set a message due at ``when`` (a retry)."""
        if self._due is None or when < self._due:
            self._due = when

    def forget_due(self) -> None:
        """Read the next due time again before the next wait (after an outage)."""
        self._due_read_at = -math.inf

    async def wait(self) -> None:
        """Until there may be work, then out the claim interval (see the module)."""
        wait = self.idle_wait
        due = await self._next_due()
        if due is not None:
            wait = min(wait, max(MIN_WAIT_S, (due - self.clock()).total_seconds()))
        try:
            await asyncio.wait_for(self.wakeup.wait(), timeout=wait)
        except TimeoutError:
            pass
        rest = self._claimed_at + self.claim_interval - time.monotonic()
        if rest > 0 and not self._stopped.is_set():
            try:  # a stop ends the rest at once
                await asyncio.wait_for(self._stopped.wait(), timeout=rest)
            except TimeoutError:
                pass

    async def _next_due(self) -> datetime | None:
        stale = time.monotonic() - self._due_read_at >= self.idle_wait
        if stale or (self._due is not None and self._due <= self.clock()):
            try:
                self._due = await self.next_due()
            except StoreUnavailable as exc:
                logger.warning("%s: outbox unavailable: %s", self.name, exc)
                return None
            self._due_read_at = time.monotonic()
        return self._due
