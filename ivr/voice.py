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
from collections import deque
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
from ivr.reaction import ReactionTimer

logger = logging.getLogger(__name__)

# A playback that never reports its end (lost event) must not hold a caller.
PLAYBACK_SAFETY_S = 180.0


class VoiceChannel:
    def __init__(
        self, ctx: CallContext, *, language: str = "es", reaction: ReactionTimer | None = None
    ) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.language = language
        self.digits: deque[str] = deque()
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

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        if barge_in and self.digits:
            return True  # keys typed ahead: the caller already answered this prompt
        playback_id = str(uuid.uuid4())
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
                if barge_in:
                    self.digits.append(ev.digit)
                    await self._stop_playback(playback_id)
                    return True
                logger.debug("call %s: key ignored during a prompt without barge-in", self.call_id)
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
        collected = ""
        started = time.monotonic()
        total_deadline = started + request.total_timeout
        while True:
            while self.digits:
                digit = self.digits.popleft()
                if request.terminator and digit == request.terminator:
                    return DigitResult(collected, "terminator")
                collected += digit
                if len(collected) >= request.max_digits:
                    return DigitResult(collected, "complete")
            wait = request.between_digits_timeout if collected else request.first_digit_timeout
            now = time.monotonic()
            wait = min(wait, total_deadline - now)
            if wait <= 0:
                return DigitResult(collected, "total" if collected else "no_input")
            ev = await self._wait_digit(wait)
            if ev is None:
                self._reaction.discard(self.call_id)  # a timeout, not a reaction
                if time.monotonic() >= total_deadline and collected:
                    return DigitResult(collected, "total")
                return DigitResult(collected, "between_digits" if collected else "no_input")
            self.digits.append(ev)

    async def _wait_digit(self, wait_s: float) -> str | None:
        deadline = time.monotonic() + wait_s
        while True:
            ev = await self._next_event(deadline - time.monotonic())
            if ev is None:
                return None
            if isinstance(ev, ChannelDtmfReceived):
                return ev.digit

    def flush_digits(self) -> None:
        self.digits.clear()

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
