"""The channel interface the call logic talks to.

Call logic never speaks HTTP or ARI: it talks to a ``CallChannel``. The voice
implementation (``ivr.voice``) drives an Asterisk channel over ARI; a text
channel can implement the same interface later and reuse the flows.

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
from typing import Protocol


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
