"""The channel interface the flow engine talks to: a dialogue, not telephony.

Call logic never speaks HTTP or ARI: it talks to a ``CallChannel``. The voice
implementation (``ivr.voice``) renders the dialogue over an Asterisk channel;
the chat channel (WhatsApp, issue 10) implements the same dialogue in text.

The dialogue vocabulary shared by every channel (issue 10 §1): a ``Phrase`` is
one piece of what the person is told, which each channel renders its own way
(voice: sounds; chat: text); a ``Choice`` is one option of a menu, with the
title a chat shows; a ``HandOff`` is the context carried to a person. A question
is a ``DigitRequest`` (digits wanted, terminator, the three voice timeouts) and
its answer a ``DigitResult`` (what was given and how the entry ended). A text
channel can also take a question answered in free text (``TextRequest``, an
e-mail address): ``TextQuestions``, which voice does not implement (a keypad
types no address; the flow loader keeps such a node off voice).

Exceptions
 CallEnded            the call is over; unwinds the dialogue
  ├── CallerHungUp     the caller hung up (or the channel vanished)
  └── CallTransferred  the call left our control (continued in the dialplan / queued for a person)
 ChannelError         the channel could not do what was asked (ARI error, timeout)
  └── EventsLost       its events may have been lost (the ARI websocket reconnected)
 AwaitingReply        (chat) the question is sent, the reply is not here yet
 ReturnToMenu         (chat) the person asked for the main menu instead of answering
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


class CallEnded(Exception):
    """The call is no longer ours to drive."""


class CallerHungUp(CallEnded):
    pass


class CallTransferred(CallEnded):
    pass


class ChannelError(RuntimeError):
    """The channel failed to carry out a request."""


class EventsLost(ChannelError):
    """The channel's events stopped for a while (reconnect): the dialogue state is unsure."""


class AwaitingReply(Exception):
    """A text channel has sent its question and has no reply yet: the dialogue
    pauses here and resumes when the person's next message arrives (the engine
    turns it into ``ivr.flow.engine.Suspended`` with the node and attempt)."""


class ReturnToMenu(Exception):
    """Raised by ``choose``/``ask`` instead of an answer when the person asked for
    the main menu (a chat's "0" or "menú"): the engine goes to the flow's ``menu``
    node (``ivr.flow.model.Flow.menu``; its ``start`` when it names none)."""


PhraseKind = Literal["prompt", "number", "digits", "sound", "spoken"]


@dataclass(frozen=True)
class Phrase:
    """One piece of what the person is told.

    kind ``prompt``: ``value`` is a prompt id of the line's catalogue (voice plays
    the line's recording of it, chat sends its chat text); ``number``/``digits``:
    ``value`` is a numeral (voice says it with Asterisk's Spanish sounds, chat
    writes it); ``sound``: an Asterisk sound name (voice only; chat drops it);
    ``spoken``: something a line action composed (a slot's date, time, doctor and
    site): ``media`` the voice media URIs, ``value`` the same thing as chat text.
    """

    kind: PhraseKind
    value: str
    media: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One option of a menu: ``key`` the digit a caller presses (and the id a chat
    reply carries), ``title`` what a chat shows for it (Spanish; WhatsApp limits
    its length: ``ivr.whatsapp.limits``), ``description`` an optional second line."""

    key: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class HandOff:
    """A conversation handed to a person: ``queue`` (the VDN on voice, the agents'
    queue on chat), ``reason`` (``non-target``, ``incident``, ``asked``…) and the
    ``context`` the flow collected (segment, affiliate id, CUPS…), never spoken."""

    queue: str
    reason: str
    context: Mapping[str, str]


# The key of an annotated context (``annotate``) naming the queue the flow has chosen
# for its hand-off (citas' eligibility: the target or non-target VDN), so a rescue
# goes there (``Controller._rescue``, if it is one of the line's ``agent_queues``).
QUEUE_KEY = "queue"


EndedBy = Literal["complete", "terminator", "no_input", "between_digits", "total", "invalid"]
ChannelKind = Literal["voice", "chat"]


@dataclass(frozen=True)
class DigitRequest:
    """A question answered with digits (a menu's key, a document number).

    ``min_digits``/``max_digits`` bound the answer; ``terminator`` (``#``/``*``)
    ends an entry early on voice; the three timeouts, in seconds, are voice's
    (``ivr.dtmf``): silence before the first key, between two keys, and the whole
    entry from its opening. A chat channel reads the digits out of the reply text
    and ignores the timeouts.
    """

    max_digits: int = 1
    min_digits: int = 1
    terminator: str | None = None
    first_digit_timeout: float = 5.0
    between_digits_timeout: float = 3.0
    total_timeout: float = 20.0


@dataclass(frozen=True)
class DigitResult:
    """An answer: ``digits`` as given, and how the entry ended: ``complete``
    (max digits reached), ``terminator``, ``no_input`` (first-digit timeout),
    ``between_digits`` (stopped typing), ``total`` (overall timeout) or ``invalid``
    (a chat reply with no answer in it)."""

    digits: str
    ended_by: EndedBy

    @property
    def no_input(self) -> bool:
        return self.ended_by == "no_input" and not self.digits


@dataclass(frozen=True)
class TextRequest:
    """A question answered in free text (chat only): at most ``max_length``
    characters are read (RFC 5321 caps an e-mail address's path at 256 octets,
    254 for the address itself)."""

    max_length: int = 254


def phrase_json(value: object) -> object:
    """``value`` with every ``Phrase`` in it (also inside lists and mappings) as a JSON
    mapping ``{"phrase": kind, "value": ..., "media": [...]}``; anything else unchanged.
    The call record and a chat conversation keep variables this way."""
    if isinstance(value, Phrase):
        return {"phrase": value.kind, "value": value.value, "media": list(value.media)}
    if isinstance(value, list | tuple):
        return [phrase_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: phrase_json(v) for k, v in value.items()}
    return value


def phrases_from(value: object) -> list[Phrase]:
    """The phrases an action left in a variable: a ``Phrase``, a list of them, their
    ``phrase_json`` form, or (before issue 10) a list of voice media URIs, taken as one
    ``spoken`` phrase with no text. Anything else says nothing: ``[]``."""
    if isinstance(value, Phrase):
        return [value]
    if isinstance(value, dict) and "phrase" in value:
        media = value.get("media") or ()
        kind = str(value["phrase"])
        if kind not in ("prompt", "number", "digits", "sound", "spoken"):
            return []
        return [Phrase(kind, str(value.get("value", "")), tuple(str(m) for m in media))]  # type: ignore[arg-type]
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, str) for v in value):
            return [Phrase("spoken", "", tuple(str(v) for v in value))]
        return [p for v in value for p in phrases_from(v)]
    return []


class CallChannel(Protocol):
    """One person's dialogue with a flow, on one channel (``kind``).

    Every method may raise ``CallerHungUp`` (the person left), ``ChannelError``;
    ``choose``/``ask`` may also raise ``AwaitingReply`` and ``ReturnToMenu`` (chat).
    """

    @property
    def kind(self) -> ChannelKind: ...

    @property
    def call_id(self) -> str:
        """The call's (or conversation's) id, for logs."""
        ...

    @property
    def caller_number(self) -> str | None:
        """The caller ID, or the chat contact's number, as the network gave it."""
        ...

    async def answer(self) -> None:
        """Pick up (voice); nothing on chat."""
        ...

    def rendered(self, phrases: Sequence[Phrase]) -> list[str]:
        """What the call record keeps of ``phrases`` as this channel gives them
        (voice: the media URIs it plays; chat: the texts it sends)."""
        ...

    async def say(self, phrases: Sequence[Phrase], *, interruptible: bool) -> bool:
        """Tell the person ``phrases``, in order. Returns True when the person
        interrupted (voice: a key pressed while ``interruptible``; the keys are kept
        for the next question). Without ``interruptible``, keys pressed meanwhile
        are discarded; with it, a key the digit rules drop (``ivr.dtmf``: typed ahead
        of a node without type-ahead) does not interrupt it."""
        ...

    async def choose(
        self, prompt: Sequence[Phrase], choices: Sequence[Choice], request: DigitRequest
    ) -> DigitResult:
        """Offer ``choices`` after ``prompt`` (interruptible); the answer's digits are
        a choice's key, or anything else (the engine judges). An empty ``prompt``
        (a resumed question) asks again without repeating it."""
        ...

    async def ask(self, prompt: Sequence[Phrase], request: DigitRequest) -> DigitResult:
        """Ask for digits after ``prompt`` (interruptible), by ``request``."""
        ...

    def flush_digits(self) -> None:
        """Discard keys typed ahead: those pressed before now, and those pressed
        before the next prompt can have been heard (``ivr.dtmf`` rules). The
        engine calls it on entering a node with ``type_ahead: false``."""
        ...

    async def annotate(self, context: Mapping[str, str]) -> None:
        """Context a hand-off will carry, known before it (segment, affiliate…):
        voice keeps it on the channel now, every key so far in one variable
        (``<PREFIX>CONTEXT``), so a rescue to the agents carries it even from
        another controller; chat may keep nothing (the ``HandOff`` carries what it
        needs)."""
        ...

    async def hand_off(self, hand_off: HandOff) -> None:
        """Give the person to a human (voice: the line's channel variables, then the
        line's agent context at ``queue``; chat: the agents' queue). Raises
        ``CallTransferred`` when done."""
        ...

    async def end(self, phrases: Sequence[Phrase]) -> None:
        """Say ``phrases`` (not interruptible), then end the dialogue (hang up / close)."""
        ...


@runtime_checkable
class TextQuestions(Protocol):
    """A channel that can take a free-text answer (chat). The ``ask_text`` node
    kind (``ivr.flow.nodes.ask_text``) needs it; voice has none."""

    async def ask_text(self, prompt: Sequence[Phrase], request: TextRequest) -> DigitResult:
        """Ask after ``prompt``; the answer's text (stripped, at most
        ``request.max_length`` characters) in ``DigitResult.digits``, ``ended_by``
        ``complete``, or ``""`` with ``invalid`` when the reply holds no text.
        Raises ``AwaitingReply``, ``ReturnToMenu`` as ``choose`` does."""
        ...
