"""Per-call dispatch: one handler task per channel in our Stasis application.

``CallRouter.dispatch`` is the event stream's ``on_event``. A StasisStart for
a new channel starts ``handler(ctx)`` in its own task; every later event about
that channel (DTMF, hangup, the playbacks aimed at it) lands in the call's
``ctx.events`` queue, so a digit is never delivered to the wrong caller. The
call leaves the table when its handler task ends, however it ends.

::

    async def handle(ctx: CallContext) -> None:
        await ctx.client.answer(ctx.channel_id)
        while not ctx.gone.is_set():
            event = await ctx.events.get()
            ...

    router = CallRouter(client, handle)
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ivr.ari.client import AriClient
from ivr.ari.events import ChannelDestroyed, Event, StasisEnd, StasisStart
from ivr.ari.models import Channel

logger = logging.getLogger(__name__)


@dataclass
class CallContext:
    """What a call handler gets: its channel, its events, and the client."""

    channel: Channel
    args: tuple[str, ...]
    client: AriClient
    resumed: bool = False  # True when adopted at reconcile, not seen entering Stasis
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # left Stasis or destroyed

    @property
    def channel_id(self) -> str:
        return self.channel.id


# Not from Asterisk: put in a call's queue when the event websocket came back
# while the call ran. Asterisk does not replay what it sent meanwhile (a
# PlaybackFinished, a key), so the call cannot trust what it is waiting for.
EVENTS_LOST = "CitasEventsLost"

CallHandler = Callable[[CallContext], Coroutine[Any, Any, None]]
RejectHook = Callable[[Channel], Awaitable[None]]


class CallRouter:
    """Owns the table channel id -> running call, and routes events into it."""

    def __init__(
        self,
        client: AriClient,
        handler: CallHandler,
        *,
        on_reject: RejectHook | None = None,
    ) -> None:
        self._client = client
        self._handler = handler
        self._on_reject = on_reject
        self._calls: dict[str, CallContext] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._accepting = True

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def accepting(self) -> bool:
        """False once shutdown() has begun: new channels go to ``on_reject``."""
        return self._accepting

    @property
    def calls(self) -> Mapping[str, CallContext]:
        return MappingProxyType(self._calls)

    async def dispatch(self, ev: Event) -> None:
        """Route one ARI event; meant as ``EventStream``'s ``on_event``."""
        if isinstance(ev, StasisStart) and ev.channel_id not in self._calls:
            await self._start(ev.channel, ev.args, resumed=False)
            return
        channel_id = ev.channel_id
        if channel_id is None:
            return
        ctx = self._calls.get(channel_id)
        if ctx is None:
            logger.debug("no call for %s event on channel %s", ev.type, channel_id)
            return
        if isinstance(ev, StasisStart):
            # Either adopted at reconcile just before its StasisStart arrived, or
            # back in Stasis before the old handler finished: that handler decides.
            logger.debug("StasisStart for channel %s, which already has a call", channel_id)
        ctx.events.put_nowait(ev)
        if isinstance(ev, (StasisEnd, ChannelDestroyed)):
            ctx.gone.set()

    async def adopt(self, channel: Channel, args: tuple[str, ...]) -> CallContext | None:
        """Start a handler for a channel already in Stasis (found at reconcile).

        Returns the call's context (an existing one if the channel is known),
        or None if the router is shutting down and rejected it.
        """
        known = self._calls.get(channel.id)
        if known is not None:
            return known
        return await self._start(channel, args, resumed=True)

    def events_lost(self) -> int:
        """After a reconnect: tell every running call its events may be lost."""
        for ctx in self._calls.values():
            ctx.events.put_nowait(Event(EVENTS_LOST, "", "", {}))
        return len(self._calls)

    async def shutdown(self, grace: float) -> None:
        """Refuse new calls, give running ones ``grace`` seconds, cancel the rest."""
        self._accepting = False
        tasks = list(self._tasks.values())
        if not tasks:
            return
        logger.info("waiting up to %.1fs for %d active calls", grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            logger.warning("cancelling call %s after shutdown grace", task.get_name())
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _start(
        self, channel: Channel, args: tuple[str, ...], *, resumed: bool
    ) -> CallContext | None:
        if not self._accepting:
            logger.info("rejecting channel %s: shutting down", channel.id)
            if self._on_reject is not None:
                await self._on_reject(channel)
            return None
        ctx = CallContext(channel=channel, args=args, client=self._client, resumed=resumed)
        task = asyncio.create_task(self._handler(ctx), name=f"call-{channel.id}")
        self._calls[channel.id] = ctx
        self._tasks[channel.id] = task
        task.add_done_callback(functools.partial(self._forget, channel.id))
        # DEBUG: the handler's first line says it at INFO, with the flow and the
        # caller (Controller.handle_call); a third line per call was 0.1 ms of CPU.
        logger.debug("call started on channel %s (resumed=%s)", channel.id, resumed)
        return ctx

    def _forget(self, channel_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(channel_id) is task:
            del self._tasks[channel_id]
            del self._calls[channel_id]
        if task.cancelled():
            logger.info("call on channel %s cancelled", channel_id)
        elif (exc := task.exception()) is not None:
            logger.error("call handler failed on channel %s", channel_id, exc_info=exc)
        else:
            logger.info("call ended on channel %s", channel_id)
