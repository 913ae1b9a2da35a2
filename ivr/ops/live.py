"""The flags as a running controller sees them: a snapshot kept fresh by polling.

Each controller polls one integer (``ops_state.revision``) every 200 ms, or
once a second when it follows the change feed (below), and reloads the
snapshot only when it moved, so a change made anywhere (API, CLI,
another controller's console) reaches every controller within a second,
without a restart and without touching calls already past their decision.
Given the change feed (``ivr.store.changes``, topic ``flags``), a change is
read at once when the feed sees it: on PostgreSQL within ms of the commit
(LISTEN/NOTIFY), on SQLite at the feed's poll (0.5 s), in every process; the
revision poll stays as the fallback, once a second (``FOLLOWING_POLL_S``): at
five a second it read what the feed already brings (d1: the flags poller was
2 % of a busy citas controller's loop, in every controller process).
Windows need no polling at all: the effective value is computed at read time.

When the database cannot be read, the last snapshot stays in use (and the
defaults before the first read), and the failure is logged once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from ivr.ops.flags import FlagRegistry, FlagValue
from ivr.ops.service import FlagView, base_values, effective
from ivr.ops.store import FlagSnapshot, OpsStore, utcnow
from ivr.store import StoreUnavailable
from ivr.store.changes import FLAGS, ChangeFeed

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
FOLLOWING_POLL_S = 1.0  # the revision poll when a change feed brings the changes
WINDOW_LOG_INTERVAL_S = 1.0


async def until_set(seconds: float, *events: asyncio.Event) -> None:
    """Return when one of ``events`` is set or ``seconds`` have passed,
    whichever comes first; the waiters on the others are cancelled, not left behind."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters)


class LiveFlags:
    def __init__(
        self,
        store: OpsStore,
        registry: FlagRegistry,
        *,
        poll_interval: float = POLL_INTERVAL_S,
        clock: Callable[[], datetime] = utcnow,
        on_reload: Callable[[int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.poll_interval = poll_interval
        self.clock = clock
        self.on_reload = on_reload
        self.snapshot = FlagSnapshot(-1, {}, ())
        self.last_ok: datetime | None = None  # last successful read (readiness)
        self._healthy = True
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # the change feed saw the flags change

    # --- reading (never blocks, never fails) -----------------------------------
    def view(self, name: str) -> FlagView:
        return effective(self.registry, self.snapshot, name, self.clock())

    def value(self, name: str) -> FlagValue:
        return self.view(name).value

    def enabled(self, name: str) -> bool:
        return self.value(name) is True

    def number(self, name: str) -> int:
        value = self.value(name)
        assert isinstance(value, int), name
        return value

    def text(self, name: str) -> str | None:
        value = self.value(name)
        return None if value is None else str(value)

    def codes(self, name: str) -> frozenset[str]:
        value = self.value(name)
        return frozenset(value) if isinstance(value, list) else frozenset()

    # --- keeping fresh --------------------------------------------------------------
    def follow(self, feed: ChangeFeed) -> None:
        """Reload at once when ``feed`` sees topic ``flags`` change; the revision poll
        becomes the fallback, at most once per ``FOLLOWING_POLL_S``."""
        feed.subscribe(self._on_change)
        self.poll_interval = max(self.poll_interval, FOLLOWING_POLL_S)

    def _on_change(self, topic: str) -> None:
        if topic == FLAGS:
            self._wake.set()

    async def refresh(self) -> bool:
        """Reload if the revision moved (or never loaded); True when reloaded."""
        try:
            revision = await self.store.revision()
            reloaded = False
            if revision != self.snapshot.revision:
                old = self.snapshot.revision
                self.snapshot = await self.store.snapshot(self.clock())
                reloaded = True
                if self.on_reload is not None:
                    self.on_reload(old, self.snapshot.revision)
                logger.info("flags revision %d loaded", self.snapshot.revision)
        except StoreUnavailable as exc:
            if self._healthy:
                logger.warning("flags: cannot read the database (%s); using the last values", exc)
            self._healthy = False
            return False
        if not self._healthy:
            logger.info("flags: database readable again")
        self._healthy = True
        self.last_ok = self.clock()
        return reloaded

    async def log_windows(self) -> None:
        """Audit window starts and ends (once, whichever process gets there first)."""
        try:
            written = await self.store.log_window_transitions(
                self.clock(), base_values(self.registry, self.snapshot)
            )
        except StoreUnavailable as exc:
            logger.debug("window log skipped: %s", exc)
            return
        for change in written:
            logger.info("window %s %s for %s", change.window_id, change.action, change.name)

    async def run(self) -> None:
        """Poll until ``stop()`` (also one called before this started: a controller
        told to stop right after its start must not poll forever); the window log
        runs about once a second."""
        ticks_per_log = max(1, round(WINDOW_LOG_INTERVAL_S / self.poll_interval))
        tick = 0
        while not self._stop.is_set():
            await self.refresh()
            if tick % ticks_per_log == 0:
                await self.log_windows()
            tick += 1
            await self._sleep()

    async def _sleep(self) -> None:
        """Until the poll interval passed, the feed saw a change, or stop()."""
        if self._wake.is_set():
            self._wake.clear()
            return
        await until_set(self.poll_interval, self._stop, self._wake)
        self._wake.clear()

    def stop(self) -> None:
        self._stop.set()

    @property
    def healthy(self) -> bool:
        return self._healthy and self.last_ok is not None
