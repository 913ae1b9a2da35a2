"""A dead controller's callers, moved into a living controller's application.

Every slot owner runs an ``OrphanAdopter``: every ``SLOT_POLL_S`` it tries the
other slots' locks without waiting. A lock it gets belongs to a slot with no
living owner (the kernel released a dead process's flock, SIGKILL included),
so the channels still in that slot's application are orphans: it moves each
into its own application with ``POST /channels/{id}/move`` (arguments: the
call's flow and SIP Call-ID, then ``ADOPTED_ARG``). Asterisk runs the move when
the channel's current command ends: a prompt the dead controller started plays
to its end first (the caller is not in silence meanwhile), and a channel
waiting for keys moves at once (docs/perf/multi.md has the measures). The
adopter keeps the lock until the dead application has no channel left (so a
restarted owner's reconcile cannot adopt a channel twice), then releases it so a
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
from dataclasses import dataclass

from ivr.ari import AriClient, AriError
from ivr.ari.errors import AriNotFound
from ivr.ari.playbacks import stop_known_playbacks
from ivr.multi.slots import SLOT_POLL_S, SlotLock, Slots, slot_app

logger = logging.getLogger(__name__)

# The last Stasis argument of a call moved here from a dead controller's application.
ADOPTED_ARG = "adopted"
# Channels moved at once (each move is one REST request of about 1 ms in Asterisk).
MOVE_CONCURRENCY = 16

# A dead slot is held until its channels have left its application; a move still
# pending after this long (a stuck channel) no longer keeps a restarted owner out.
HOLD_MAX_S = 120.0

ArgsOf = Callable[[str], Awaitable[tuple[str, ...]]]


@dataclass
class _Held:
    lock: SlotLock
    moved: set[str]  # channels whose move was accepted
    since: float  # time.monotonic() when the slot was taken


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
        self._holding: dict[int, _Held] = {}  # dead slots with moves still pending

    async def run(self) -> None:
        """Sweep every ``poll`` seconds until cancelled (then every slot held for
        pending moves is released); never raises otherwise."""
        try:
            await self._run()
        finally:
            self.release_all()

    async def _run(self) -> None:
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
            held = self._holding.get(slot)
            if held is None:
                lock = self.slots.lock(slot)
                if not lock.try_acquire(owner=False):
                    continue  # a living owner (or another adopter right now)
                held = self._holding[slot] = _Held(lock, set(), time.monotonic())
            before = len(held.moved)
            try:
                remaining = await self.adopt(slot, held.moved)
            except BaseException:
                self._release(slot)
                raise
            moved += len(held.moved) - before
            if not remaining or time.monotonic() - held.since > HOLD_MAX_S:
                self._release(slot)
        return moved

    def _release(self, slot: int) -> None:
        held = self._holding.pop(slot, None)
        if held is not None:
            held.lock.release()

    def release_all(self) -> None:
        """Give up every slot held for pending moves (at shutdown)."""
        for slot in list(self._holding):
            self._release(slot)

    async def adopt(self, slot: int, moved: set[str]) -> list[str]:
        """Move the channels of ``slot``'s application not in ``moved`` into ours
        (adding them to ``moved``); the caller holds ``slot``'s lock. Returns the
        channels still in that application: a move waits for the command the
        channel is running (a playback the dead controller started plays to its
        end first), and until then the slot stays held, so nobody adopts them twice."""
        app = slot_app(self.app_name, slot)
        try:
            channel_ids = await self.client.application_channel_ids(app)
        except AriNotFound:
            return []  # never registered since Asterisk started, or no channel left
        except AriError as exc:
            logger.warning("orphans of %s: cannot list them: %s", app, exc)
            return []
        todo = [c for c in channel_ids if c not in moved]
        if not todo:
            return channel_ids
        started = time.monotonic()
        gate = asyncio.Semaphore(MOVE_CONCURRENCY)

        async def one(channel_id: str) -> None:
            async with gate:
                if await self._move(app, channel_id):
                    moved.add(channel_id)

        await asyncio.gather(*(one(c) for c in todo))
        done = sum(c in moved for c in todo)
        self.adopted += done
        logger.warning(
            "slot %d (%s) has no controller: %d of %d channel(s) moved to %s in %.0f ms",
            slot, app, done, len(todo), self.own_app, (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return channel_ids

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
        # The move runs after the command the channel is running: stop the prompt
        # the dead controller left playing (ivr.ari.playbacks), so it runs now.
        await stop_known_playbacks(self.client, channel_id)
        return True
