"""One controller process's heartbeat in the controller registry (``ivr.ops.controllers``).

A task of its own writes the process's row every ``HEARTBEAT_S`` seconds, and at
once when told something it reports moved (``beat_soon``: the flags reloaded,
the breaker changed state). It is off every call's path: a call never waits for
it, and it only reads what the process already knows. A database outage is
logged (once per outage, and when it ends), never raised: the line goes on
serving, and the console shows the controller "sin respuesta" meanwhile. A
clean stop writes a last beat marking the row stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ivr.ops.controllers import HEARTBEAT_S, ControllerIdentity, ControllerStatus, ControllerStore
from ivr.ops.live import until_set
from ivr.ops.store import utcnow
from ivr.store import StoreUnavailable

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        store: ControllerStore,
        identity: ControllerIdentity,
        status: Callable[[], ControllerStatus],
        *,
        interval_s: float = HEARTBEAT_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.identity = identity
        self.status = status
        self.interval_s = interval_s
        self.clock = clock
        self.beats = 0  # written
        self.failures = 0  # not written (database unavailable)
        self._healthy = True
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def beat_soon(self) -> None:
        """Write the next beat now rather than at the interval (safe from any callback)."""
        self._wake.set()

    async def beat(self) -> bool:
        """One beat; False (logged) when the database cannot be written."""
        try:
            pruned = await self.store.beat(self.identity, self.status(), self.clock())
        except Exception as exc:  # the line goes on whatever the registry does
            if not isinstance(exc, StoreUnavailable):
                logger.exception("controller %s: heartbeat failed", self.identity.source_id)
            self.failures += 1
            if self._healthy:
                logger.warning("controller %s: heartbeat not written (%s); the line goes on",
                               self.identity.source_id, exc)  # fmt: skip
            self._healthy = False
            return False
        if not self._healthy:
            logger.info("controller %s: heartbeat written again", self.identity.source_id)
        self._healthy = True
        self.beats += 1
        if pruned:
            logger.info("controller registry: %d controller(s) gone for a day removed", pruned)
        return True

    async def run(self) -> None:
        """Beat until ``stop()`` (also one called before this started)."""
        while not self._stop.is_set():
            await self.beat()
            await self._sleep()

    async def _sleep(self) -> None:
        """Until the interval passed, ``beat_soon()`` or ``stop()``."""
        await until_set(self.interval_s, self._stop, self._wake)
        self._wake.clear()

    def stop(self) -> None:
        self._stop.set()

    async def mark_stopped(self) -> bool:
        """The clean stop's last beat (after ``run`` ended); False (logged) when not written."""
        try:
            await self.store.stopped(self.identity, self.status(), self.clock())
        except StoreUnavailable as exc:
            logger.warning("controller %s: stop not recorded (%s)", self.identity.source_id, exc)
            return False
        return True
