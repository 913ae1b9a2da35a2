"""``CallChannel`` over ARI: one Asterisk channel in our Stasis app.

Events for the channel arrive on ``CallContext.events`` (the router fills it);
this class turns them into a dialogue: play and wait for the playback to
finish, collect digits with three separate timeouts, hand over to the
dialplan. A hang-up seen while waiting raises ``CallerHungUp``, which unwinds
the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence

from ivr.ari import (
    AriError,
    AriNotFound,
    CallContext,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Event,
    PlaybackFinished,
    StasisEnd,
)
from ivr.ari.router import EVENTS_LOST
from ivr.channel import (
    CallerHungUp,
    CallTransferred,
    ChannelError,
    DigitRequest,
    DigitResult,
    EventsLost,
)
from ivr.dtmf import Entry, Key, Keypad
from ivr.reaction import ReactionTimer

logger = logging.getLogger(__name__)

# A playback that never reports its end (lost event) must not hold a caller.
PLAYBACK_SAFETY_S = 180.0


class VoiceChannel:
    """One call's dialogue over ARI; the digit rules are ``ivr.dtmf``'s (``keys``),
    fed with ``time.monotonic()`` seconds."""

    def __init__(
        self, ctx: CallContext, *, language: str = "es", reaction: ReactionTimer | None = None
    ) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.language = language
        self.keys = Keypad()
        self.dtmf_at: float | None = None  # when the last DTMF event arrived (latency metric)
        self._hung_up = False
        # DTMF in -> next ARI command out; a timer with no log and no observer does nothing.
        self._reaction = reaction if reaction is not None else ReactionTimer()

    @property
    def call_id(self) -> str:
        return self.ctx.channel_id

    @property
    def caller_number(self) -> str | None:
        return self.ctx.channel.caller.number or None

    async def _next_event(self, wait_s: float | None) -> Event | None:
        if self._hung_up:
            raise CallerHungUp(self.call_id)
        try:
            if wait_s is None:
                ev = await self.ctx.events.get()
            else:
                ev = await asyncio.wait_for(self.ctx.events.get(), max(wait_s, 0.0))
        except TimeoutError:
            return None
        if ev.type == EVENTS_LOST:
            raise EventsLost(f"events for {self.call_id} may have been lost (ARI reconnected)")
        if isinstance(ev, StasisEnd | ChannelHangupRequest | ChannelDestroyed):
            self._hung_up = True
            raise CallerHungUp(self.call_id)
        if isinstance(ev, ChannelDtmfReceived):
            self.dtmf_at = time.perf_counter()
            self._reaction.dtmf_received(self.call_id, ev.timestamp)
        return ev

    async def _ari(self, what: str, call: object) -> None:
        self._reaction.command_sent(self.call_id, what)
        try:
            await call  # type: ignore[misc]
        except AriNotFound:
            # The channel is gone: the caller hung up between two events.
            self._hung_up = True
            raise CallerHungUp(self.call_id) from None
        except AriError as exc:
            raise ChannelError(f"{what} failed on {self.call_id}: {exc}") from exc

    async def answer(self) -> None:
        await self._ari("answer", self.client.answer(self.call_id))

    def _key(self, ev: ChannelDtmfReceived) -> Key:
        # Asterisk reports an RFC 4733 key when it ends: it was pressed duration_ms earlier.
        return Key(ev.digit, time.monotonic(), max(ev.duration_ms, 0) / 1000)

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        if barge_in and self.keys.pending:
            return True  # keys typed ahead: the caller already answered this prompt
        playback_id = str(uuid.uuid4())
        self.keys.listening(time.monotonic())
        await self._ari(
            "play",
            self.client.play(
                self.call_id, list(media), playback_id=playback_id, lang=self.language
            ),
        )
        deadline = time.monotonic() + PLAYBACK_SAFETY_S
        while True:
            ev = await self._next_event(deadline - time.monotonic())
            if ev is None:
                logger.warning("call %s: playback %s never finished", self.call_id, playback_id)
                await self._stop_playback(playback_id)
                return False
            if isinstance(ev, PlaybackFinished) and ev.playback.id == playback_id:
                return False
            if isinstance(ev, ChannelDtmfReceived):
                key = self._key(ev)
                if barge_in and self.keys.press(key):
                    await self._stop_playback(playback_id)
                    return True
                if not barge_in:
                    self.keys.ignore(key)
                logger.debug("call %s: key dropped during a prompt", self.call_id)
                self._reaction.discard(self.call_id)

    async def _stop_playback(self, playback_id: str) -> None:
        self._reaction.command_sent(self.call_id, "stop playback")
        try:
            await self.client.stop_playback(playback_id)
        except AriNotFound:
            pass  # it had just finished
        except AriError as exc:
            logger.warning("call %s: cannot stop playback: %s", self.call_id, exc)

    async def collect(self, request: DigitRequest) -> DigitResult:
        self.keys.listening(time.monotonic())
        entry = Entry(request, time.monotonic())
        while True:
            while (key := self.keys.take()) is not None:
                result = entry.feed(key)
                if result is not None:
                    self.keys.entry_ended(entry, result)
                    return result
            wait = entry.deadline() - time.monotonic()
            if wait <= 0:
                return entry.expire(time.monotonic())
            ev = await self._wait_digit(wait)
            if ev is None:
                self._reaction.discard(self.call_id)  # a timeout, not a reaction
                return entry.expire(time.monotonic())
            if not self.keys.press(self._key(ev)):
                logger.debug("call %s: key dropped (typed ahead)", self.call_id)
                self._reaction.discard(self.call_id)

    async def _wait_digit(self, wait_s: float) -> ChannelDtmfReceived | None:
        deadline = time.monotonic() + wait_s
        while True:
            ev = await self._next_event(deadline - time.monotonic())
            if ev is None:
                return None
            if isinstance(ev, ChannelDtmfReceived):
                return ev

    def flush_digits(self) -> None:
        """Drop typed-ahead keys before a node that takes none (``ivr.dtmf`` rules)."""
        self.keys.discard_typed_ahead()

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            await self._ari("set variable", self.client.set_variable(self.call_id, name, value))

    async def transfer(self, *, context: str, extension: str) -> None:
        await self._ari(
            "continue",
            self.client.continue_in_dialplan(
                self.call_id, context=context, extension=extension, priority=1
            ),
        )
        raise CallTransferred(f"{self.call_id} -> {context}/{extension}")

    async def hangup(self) -> None:
        self._reaction.command_sent(self.call_id, "hangup")
        try:
            await self.client.hangup(self.call_id)
        except AriNotFound:
            pass
        except AriError as exc:
            raise ChannelError(f"hangup failed on {self.call_id}: {exc}") from exc
        self._hung_up = True
