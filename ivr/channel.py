"""The channel interface the flow engine talks to.

Call logic never speaks HTTP or ARI: it talks to a ``CallChannel``. The voice
implementation (``ivr.voice``) drives an Asterisk channel over ARI; the chat
channel (WhatsApp, issue 10) implements the same dialogue.

The dialogue vocabulary shared by every channel (issue 10 §1): a ``Phrase`` is
one piece of what the person is told, which each channel renders its own way
(voice: sounds; chat: text); a ``Choice`` is one option of a menu, with the
title a chat shows; a ``HandOff`` is the context carried to a person.

Exceptions
 CallEnded            the call is over; unwinds the dialogue
  ├── CallerHungUp     the caller hung up (or the channel vanished)
  └── CallTransferred  the call left our control (continued in the dialplan)
 ChannelError         the channel could not do what was asked (ARI error, timeout)
  └── EventsLost       its events may have been lost (the ARI websocket reconnected)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


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


@dataclass(frozen=True)
class DigitRequest:
    max_digits: int = 1
    min_digits: int = 1
    terminator: str | None = None
    first_digit_timeout: float = 5.0
    between_digits_timeout: float = 3.0
    total_timeout: float = 20.0


@dataclass(frozen=True)
class DigitResult:
    digits: str
    # complete (max digits), terminator, no_input (first-digit timeout),
    # between_digits (stopped typing), total (overall timeout)
    ended_by: str

    @property
    def no_input(self) -> bool:
        return self.ended_by == "no_input" and not self.digits


class CallChannel(Protocol):
    @property
    def call_id(self) -> str: ...

    @property
    def caller_number(self) -> str | None: ...

    async def answer(self) -> None: ...

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        """Play media URIs (``sound:...``, ``number:...``, ``digits:...``) in order.

        Returns True when a key press interrupted it (``barge_in``); the keys
        are kept for the next ``collect``. Without barge-in, keys pressed while
        it plays are discarded; with it, a key the digit rules drop (``ivr.dtmf``:
        typed ahead of a node without type-ahead) does not interrupt it.
        """
        ...

    async def collect(self, request: DigitRequest) -> DigitResult: ...

    def flush_digits(self) -> None:
        """Discard keys typed ahead: those pressed before now, and those pressed
        before the next prompt can have been heard (``ivr.dtmf`` rules). The
        engine calls it on entering a node with ``type_ahead: false``."""
        ...

    async def set_variables(self, variables: Mapping[str, str]) -> None: ...

    async def transfer(self, *, context: str, extension: str) -> None:
        """Hand the call to the dialplan; raises ``CallTransferred``."""
        ...

    async def hangup(self) -> None: ...
