"""The main ``ivr serve`` process's share of several controllers (N > 1):
slot 1 (``settings.app_name``), the orphan adopter, and the voice workers."""

from __future__ import annotations

import asyncio
import logging

from ivr.ari import AriClient
from ivr.multi.adopter import ArgsOf, OrphanAdopter
from ivr.multi.slots import SlotLock, Slots
from ivr.multi.workers import VoiceWorkers
from ivr.settings import Settings

logger = logging.getLogger(__name__)

# After SIGTERM a worker gives its calls the grace (SHUTDOWN_GRACE_S) then hands
# the rest to the agents; beyond this margin on top it is killed.
WORKER_STOP_MARGIN_S = 10.0


class MainSlot:
    """Slot 1 held by the main process, its adopter and the N-1 voice workers."""

    def __init__(self, slots: Slots, lock: SlotLock) -> None:
        self.slots = slots
        self.lock = lock
        self.workers = VoiceWorkers(slots.count - 1)
        self._adopter_task: asyncio.Task[None] | None = None

    @classmethod
    async def claim(cls, settings: Settings) -> MainSlot | None:
        """None with one controller (``settings.controllers == 1``: no slots, as
        before issue 13); else slot 1, waiting as a standby while another process
        holds it (a previous ``ivr serve`` still stopping)."""
        if settings.controllers == 1:
            return None
        slots = Slots.of(settings)
        lock = slots.claim([1])
        if lock is None:
            logger.warning("slot 1 (%s) is held by pid %s: waiting as a standby",
                           settings.app_name, slots.lock(1).owner_pid())  # fmt: skip
            lock = await slots.wait_claim([1])
        logger.info("slot 1 of %d taken (app %s)", slots.count, settings.app_name)
        return cls(slots, lock)

    def start(self, client: AriClient, app_name: str, args_of: ArgsOf) -> None:
        """Watch the other slots and start the voice workers (after the database
        is migrated: they do not migrate it)."""
        adopter = OrphanAdopter(self.slots, self.lock, client, app_name, args_of)
        self._adopter_task = asyncio.create_task(adopter.run(), name="orphan-adopter")
        self.workers.start()

    async def stop(self, grace: float) -> None:
        """Stop watching (a worker's calls are its own to end) and stop the workers."""
        if self._adopter_task is not None:
            self._adopter_task.cancel()
            await asyncio.gather(self._adopter_task, return_exceptions=True)
        await self.workers.stop(grace + WORKER_STOP_MARGIN_S)

    def release(self) -> None:
        self.lock.release()
