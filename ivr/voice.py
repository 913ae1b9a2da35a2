"""``CallChannel`` over ARI: one Asterisk channel in our Stasis app.

Two layers. ``VoiceDialogue`` renders the dialogue (``ivr.channel``) as
telephony: a ``Phrase`` becomes media URIs (a prompt id is ``sound:<the line's
sounds prefix>/<id>``), a question is a prompt played with barge-in then digits
collected, a hand-off sets the line's channel variables and continues in the
line's agent context (``LineSounds``: the line's ``ivr.line.LineVoice``). It leaves five telephony primitives
(``play``, ``collect``, ``set_variables``, ``transfer``, ``hangup``) to its
subclass: ``VoiceChannel`` here over ARI, and the unit tests' callers in virtual
time, which so share the rendering with the phone.

``VoiceChannel``: events for the channel arrive on ``CallContext.events`` (the
router fills it); it plays and waits for the playback to finish, collects
digits with three separate timeouts (``ivr.dtmf``'s rules), hands over to the
dialplan. A hang-up seen while waiting raises ``CallerHungUp``, which unwinds
the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol
from urllib.parse import parse_qsl, urlencode

from ivr.ari import (
    AriConflict,
    AriError,
    AriNotFound,
    CallContext,
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    PlaybackFinished,
    StasisEnd,
)
from ivr.ari.playbacks import playback_id_of, stop_known_playbacks
from ivr.ari.router import EVENTS_LOST
from ivr.channel import (
    CallerHungUp,
    CallTransferred,
    ChannelError,
    ChannelKind,
    Choice,
    DigitRequest,
    DigitResult,
    EventsLost,
    HandOff,
    Phrase,
)
from ivr.dtmf import Entry, Key, Keypad
from ivr.failures import failure_text
from ivr.reaction import ReactionTimer

logger = logging.getLogger(__name__)

# A playback that never reports its end (lost event) must not hold a caller.
PLAYBACK_SAFETY_S = 180.0
# A rescue reads the flow's context back from the channel for at most this long (s).
READ_BACK_S = 1.0
# A request refused with 409 (the channel not in Stasis) waits this long for the
# StasisEnd that tells a caller's hang-up from the controller's own mistake.
HANGUP_SETTLE_S = 0.5


class LineSounds(Protocol):
    """What voice rendering takes from the line: ``ivr.line.LineVoice`` (``voice:`` in
    its ``line.yaml``).

    ``sound(id)``: the media URI of its recording of prompt ``id``
    (``sound:<sounds>/<id>``); ``agent_context``: the dialplan context whose
    extensions are the agents' VDNs (a hand-off continues there at the queue);
    ``variable(key)``: the channel variable a hand-off sets for a context key
    (``segment`` -> ``__<PREFIX>SEGMENT``, inherited by the agent's leg: the
    dialplan turns it into a SIP header); ``dialplan_variable(key)``: the same
    name, not inherited (``context`` -> ``<PREFIX>CONTEXT``).
    """

    @property
    def agent_context(self) -> str: ...

    def sound(self, name: str) -> str: ...

    def variable(self, key: str) -> str: ...

    def dialplan_variable(self, key: str) -> str: ...


# ``annotate``'s one channel variable (``<PREFIX>CONTEXT``), its keys and values
# URL-encoded (``segment=target&affiliate=1010101010&cups=890201``).
CONTEXT_KEY = "context"


def encode_context(context: Mapping[str, str]) -> str:
    """``annotate``'s context as one variable's value: ``application/x-www-form-urlencoded``
    (the stdlib's ``urlencode``, keys sorted), so no ``,`` ``|`` or ``=`` of a value
    reaches the dialplan unescaped.

    >>> encode_context({"segment": "target", "cups": "890201"})
    'cups=890201&segment=target'
    """
    return urlencode(sorted(context.items()))


def decode_context(value: str) -> dict[str, str]:
    """``encode_context`` read back; a value that is not one (empty, another program's)
    gives the keys it can parse, nothing else.

    >>> decode_context("cups=890201&segment=target")
    {'cups': '890201', 'segment': 'target'}
    >>> decode_context("")
    {}
    """
    return dict(parse_qsl(value, keep_blank_values=True))


class VoiceDialogue(ABC):
    """The dialogue (``ivr.channel.CallChannel``) rendered as telephony; subclasses
    give the primitives."""

    # What ``annotate`` was told, merged: a new mapping each time, never mutated, so
    # this read-only empty one is every dialogue's start (dataclass subclasses too).
    _context: Mapping[str, str] = MappingProxyType({})

    def __init__(self, line: LineSounds) -> None:
        self.line = line

    @property
    def kind(self) -> ChannelKind:
        return "voice"

    # --- the primitives ------------------------------------------------------------
    @property
    @abstractmethod
    def call_id(self) -> str:
        """The call's id (its Asterisk channel id)."""

    @property
    @abstractmethod
    def caller_number(self) -> str | None:
        """The caller ID as the network sent it."""

    @abstractmethod
    async def answer(self) -> None:
        """Answer the call."""

    @abstractmethod
    def flush_digits(self) -> None:
        """Drop typed-ahead keys before a node that takes none (``ivr.dtmf`` rules)."""

    @abstractmethod
    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        """Play media URIs (``sound:...``, ``number:...``, ``digits:...``) in order.

        Returns True when a key press interrupted it (``barge_in``); the keys
        are kept for the next ``collect``. Without barge-in, keys pressed while
        it plays are discarded; with it, a key the digit rules drop (``ivr.dtmf``:
        typed ahead of a node without type-ahead) does not interrupt it.
        """

    @abstractmethod
    async def collect(self, request: DigitRequest) -> DigitResult:
        """Wait for the caller's keys by ``request`` (``ivr.dtmf`` rules)."""

    @abstractmethod
    async def set_variables(self, variables: Mapping[str, str]) -> None:
        """Set channel variables (distinct names: in no particular order); all are
        set, or one's error is raised, when it returns."""

    @abstractmethod
    async def transfer(self, *, context: str, extension: str) -> None:
        """Continue the call in the dialplan; raises ``CallTransferred``."""

    @abstractmethod
    async def hangup(self) -> None:
        """Hang the call up."""

    # --- the dialogue -----------------------------------------------------------------
    def rendered(self, phrases: Sequence[Phrase]) -> list[str]:
        """The media URIs of ``phrases``: ``prompt`` -> ``sound:<sounds>/<id>``,
        ``number``/``digits``/``sound`` -> ``<kind>:<value>``, ``spoken`` -> its media."""
        media: list[str] = []
        for phrase in phrases:
            if phrase.kind == "prompt":
                media.append(self.line.sound(phrase.value))
            elif phrase.kind == "spoken":
                media.extend(phrase.media)
            else:
                media.append(f"{phrase.kind}:{phrase.value}")
        return media

    async def say(self, phrases: Sequence[Phrase], *, interruptible: bool) -> bool:
        media = self.rendered(phrases)
        if not media:
            return False
        return await self.play(media, barge_in=interruptible)

    async def choose(
        self, prompt: Sequence[Phrase], choices: Sequence[Choice], request: DigitRequest
    ) -> DigitResult:
        # The keys are in the prompt's recording ("para ... marque 1"): titles are chat's.
        await self.say(prompt, interruptible=True)
        return await self.collect(request)

    async def ask(self, prompt: Sequence[Phrase], request: DigitRequest) -> DigitResult:
        await self.say(prompt, interruptible=True)
        return await self.collect(request)

    async def annotate(self, context: Mapping[str, str]) -> None:
        # One variable (``<PREFIX>CONTEXT``, every key so far) in one request on the
        # caller's path, not one per key (citas' eligibility: three, 3 of a citas
        # call's 13 ARI requests; docs/perf/budget.md). A hand-off sets the agents'
        # variables itself; a rescue reads this one back (VoiceChannel.annotated).
        self._context = {**self._context, **context}
        await self.set_variables(
            {self.line.dialplan_variable(CONTEXT_KEY): encode_context(self._context)}
        )

    async def annotated(self) -> dict[str, str]:
        """The context ``annotate`` was told, for a rescue's hand-off (``VoiceChannel``
        reads it from the channel: another controller may have set it)."""
        return dict(self._context)

    async def hand_off(self, hand_off: HandOff) -> None:
        variables = {self.line.variable(k): v for k, v in hand_off.context.items()}
        variables[self.line.variable("reason")] = hand_off.reason  # no context key overrides it
        await self.set_variables(variables)
        await self.transfer(context=self.line.agent_context, extension=hand_off.queue)

    async def end(self, phrases: Sequence[Phrase]) -> None:
        await self.say(phrases, interruptible=False)
        await self.hangup()


class VoiceChannel(VoiceDialogue):
    """One call's dialogue over ARI; the digit rules are ``ivr.dtmf``'s (``keys``),
    fed with ``time.monotonic()`` seconds."""

    def __init__(
        self,
        ctx: CallContext,
        *,
        line: LineSounds,
        language: str = "es",
        reaction: ReactionTimer | None = None,
        known_playback_ids: bool = True,
    ) -> None:
        super().__init__(line)
        self.ctx = ctx
        # Playback ids from playback_ids(channel) in turn, so that whoever adopts the
        # call after this controller dies can stop the prompt it left playing; a
        # resumed call (the rescue) uses ids of its own, as a dead controller's
        # playback may still hold one of those names.
        self._known_ids = known_playback_ids
        self._playbacks = 0
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
        events = self.ctx.events
        if not events.empty():  # already here: no wait, no timer
            ev = events.get_nowait()
        elif wait_s is None:
            ev = await events.get()
        else:
            try:  # a timeout scope, not wait_for's task per event (its profile share)
                async with asyncio.timeout(max(wait_s, 0.0)):
                    ev = await events.get()
            except TimeoutError:
                return None
        if ev.type == EVENTS_LOST:
            raise EventsLost(f"events for {self.call_id} may have been lost (ARI reconnected)")
        if isinstance(ev, StasisEnd | ChannelDestroyed):
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
        except AriConflict as exc:
            # 409, "not in Stasis": the caller hung up and the StasisEnd is on its way
            # (the hang-up request itself is filtered out, ivr.ari.events). Only a
            # channel still in the application after that is the controller's error.
            if await self._leaves_stasis_within(HANGUP_SETTLE_S):
                self._hung_up = True
                raise CallerHungUp(self.call_id) from None
            raise ChannelError(f"{what} failed on {self.call_id}: {exc}") from exc
        except AriError as exc:
            raise ChannelError(f"{what} failed on {self.call_id}: {exc}") from exc

    async def _leaves_stasis_within(self, seconds: float) -> bool:
        """Whether the router sees the channel leave Stasis (StasisEnd, ChannelDestroyed)
        within ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                await self.ctx.gone.wait()
        except TimeoutError:
            return False
        return True

    async def answer(self) -> None:
        # A call the dialplan answered before Stasis() (extensions.conf, [citas-ivr])
        # enters Up: answering it again would be a request with no effect.
        if self.ctx.channel.state == "Up":
            return
        await self._ari("answer", self.client.answer(self.call_id))

    def _key(self, ev: ChannelDtmfReceived) -> Key:
        # Asterisk reports an RFC 4733 key when it ends: it was pressed duration_ms earlier.
        return Key(ev.digit, time.monotonic(), max(ev.duration_ms, 0) / 1000)

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        if barge_in and self.keys.pending:
            return True  # keys typed ahead: the caller already answered this prompt
        if self._known_ids:
            playback_id = playback_id_of(self.call_id, self._playbacks)
            self._playbacks += 1
        else:
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

    async def stop_inherited_playbacks(self) -> None:
        """Stop whatever prompt a dead controller left playing on this channel (its
        ids are ``playback_ids(channel)``): a resumed call's rescue message would
        otherwise wait for it (the promo: 8 s)."""
        await stop_known_playbacks(self.client, self.call_id)

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
        # ARI sets one variable per request; distinct names need no order, so the
        # requests go out together: one round trip on the caller's path, not one per
        # variable (citas' hand-off sets up to four before the transfer).
        results = await asyncio.gather(
            *(
                self._ari("set variable", self.client.set_variable(self.call_id, name, value))
                for name, value in variables.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def annotated(self) -> dict[str, str]:
        """The context ``annotate`` left on the channel, whichever controller set it
        (a dead one's, for the one that adopted the call), with what this controller
        annotated itself over it: ``{}`` when none was set. Best effort, one
        ``GET /channels/{id}/variable`` of at most ``READ_BACK_S``: a rescue (often
        while ARI is unwell) goes on without what it cannot read in time."""
        own = dict(self._context)
        if self._hung_up:
            return own
        name = self.line.dialplan_variable(CONTEXT_KEY)
        try:
            async with asyncio.timeout(READ_BACK_S):
                value = await self.client.get_variable(self.call_id, name)
        except AriNotFound:  # never set (Asterisk: "Variable Not Found"), or the call is gone
            return own
        except (AriError, TimeoutError) as exc:
            logger.warning(
                "call %s: context not read back: %s",
                self.call_id,
                failure_text(exc, deadline_s=READ_BACK_S),
            )
            return own
        return decode_context(value) | own

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
