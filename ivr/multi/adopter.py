"""A dead controller's callers, moved into a living controller's application.

Every slot owner runs an ``OrphanAdopter``: every ``SLOT_POLL_S`` it tries the
other slots' locks without waiting. A lock it gets belongs to a slot with no
living owner (the kernel released a dead process's flock, SIGKILL included),
so the channels still in that slot's application are orphans: it moves each
into its own application with ``POST /channels/{id}/move`` (arguments: the
call's flow and SIP Call-ID, then ``ADOPTED_ARG``), then releases the lock so a
restarted process can take the slot. The controller that receives the
StasisStart treats the call as resumed: it closes the dead controller's open
record as ``interrupted`` and hands the caller to the agents
(``Controller.handle_call``).

Asterisk refuses ``Stasis()`` for an application with no websocket at once
(``app_is_active()`` in res_stasis.c), so while a slot is dead the dialplan
sends new calls to the next slot: only the calls already in the dead
application need moving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ivr.ari import AriClient, AriError
from ivr.ari.errors import AriNotFound
from ivr.multi.slots import SLOT_POLL_S, SlotLock, Slots, slot_app

logger = logging.getLogger(__name__)

# The last Stasis argument of a call moved here from a dead controller's application.
ADOPTED_ARG = "adopted"
# Channels moved at once (each move is one REST request of about 1 ms in Asterisk).
MOVE_CONCURRENCY = 16

ArgsOf = Callable[[str], Awaitable[tuple[str, ...]]]


class OrphanAdopter:
    """Watches the slots other than ``own`` and adopts their orphans into ``own``'s app.

    ``args_of(channel_id)``: the call's Stasis arguments (flow, SIP Call-ID), or
    ``()`` for a channel that is no caller's (an escalation call: hung up, since
    only the main process's SLA monitor can drive it)."""

    def __init__(
        self,
        slots: Slots,
        own: SlotLock,
        client: AriClient,
        app_name: str,
        args_of: ArgsOf,
        *,
        poll: float = SLOT_POLL_S,
    ) -> None:
        self.slots = slots
        self.own = own
        self.client = client
        self.app_name = app_name
        self.own_app = slot_app(app_name, own.slot)
        self.args_of = args_of
        self.poll = poll
        self.adopted = 0  # channels moved here since start
        self.sweeps = 0

    async def run(self) -> None:
        """Sweep every ``poll`` seconds until cancelled; never raises otherwise."""
        while True:
            try:
                await self.sweep()
            except Exception:  # one bad sweep must not end the watch
                logger.exception("orphan sweep failed")
            await asyncio.sleep(self.poll)

    async def sweep(self) -> int:
        """One pass over the other slots; returns the channels moved here."""
        self.sweeps += 1
        moved = 0
        for slot in range(1, self.slots.count + 1):
            if slot == self.own.slot:
                continue
            lock = self.slots.lock(slot)
            if not lock.try_acquire(owner=False):
                continue  # a living owner (or another adopter right now)
            try:
                moved += await self.adopt(slot)
            finally:
                lock.release()
        return moved

    async def adopt(self, slot: int) -> int:
        """Move every channel of ``slot``'s application into ours; the caller holds
        ``slot``'s lock. Returns how many moved."""
        app = slot_app(self.app_name, slot)
        try:
            channel_ids = await self.client.application_channel_ids(app)
        except AriNotFound:
            return 0  # never registered since Asterisk started, or no channel left
        except AriError as exc:
            logger.warning("orphans of %s: cannot list them: %s", app, exc)
            return 0
        if not channel_ids:
            return 0
        started = time.monotonic()
        gate = asyncio.Semaphore(MOVE_CONCURRENCY)

        async def one(channel_id: str) -> bool:
            async with gate:
                return await self._move(app, channel_id)

        results = await asyncio.gather(*(one(c) for c in channel_ids))
        moved = sum(results)
        self.adopted += moved
        logger.warning(
            "slot %d (%s) has no controller: %d of %d channel(s) moved to %s in %.0f ms",
            slot, app, moved, len(channel_ids), self.own_app,
            (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return moved

    async def _move(self, app: str, channel_id: str) -> bool:
        try:
            args = await self.args_of(channel_id)
            if not args:
                logger.warning("orphan %s of %s is no caller's: hanging it up", channel_id, app)
                await self.client.hangup(channel_id)
                return False
            await self.client.move(channel_id, self.own_app, (*args, ADOPTED_ARG))
        except AriError as exc:  # gone meanwhile, or no longer in Stasis
            logger.info("orphan %s of %s not moved: %s", channel_id, app, exc)
            return False
        return True
