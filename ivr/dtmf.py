"""How a caller's keys become answers: the digit-collection rules, with no I/O.

A ``Keypad`` holds the keys a caller pressed that no entry has taken yet; an
``Entry`` is one question waiting for keys (``ivr.channel.DigitRequest``). Neither
reads a clock nor awaits anything: the driver (``ivr.voice.VoiceChannel`` over ARI,
the unit-test callers in virtual time) feeds them keys with their times and asks
what to wait for. Every time is in seconds on one monotonic clock the driver picks.

The rules, and where they come from:

- **Type-ahead.** Keys pressed while no entry is open are kept, in order, for the
  next entry: an expert caller may answer menus before they are read.
- **No type-ahead at a node that commits** (issue 9 §1). ``discard_typed_ahead``
  (called by the engine on entering a ``type_ahead: false`` node) drops the keys
  already pressed, and keeps dropping keys until the caller can have heard the
  node's prompt: a key pressed before the prompt had played ``REACTION_S``, or
  less than ``REACTION_S`` after a dropped key (the same burst: the hand is
  still moving from before), is dropped. The first key past both is kept and
  the node takes keys normally again.
- **A terminator right after a full entry belongs to it** (issue 9 §1). When an
  entry ends ``complete`` (max digits reached) and its request has a terminator,
  a terminator pressed as the very next key within the entry's between-digits
  timeout is dropped instead of answering the next question.
- **Timeouts** (``DigitRequest``): ``first_digit`` of silence before the first
  key, ``between_digits`` after each key, ``total`` from the moment the entry
  opened; they end the entry as ``no_input``, ``between_digits`` or ``total``.

>>> pad = Keypad()
>>> pad.press(Key("1", at=0.0))
True
>>> entry = Entry(DigitRequest(max_digits=1), opened_at=0.0)
>>> entry.feed(pad.take())
DigitResult(digits='1', ended_by='complete')
>>> pad.discard_typed_ahead()          # the next node commits: no type-ahead
>>> pad.listening(at=0.10)             # its prompt starts
>>> pad.press(Key("1", at=0.24))       # the second key of "11": typed ahead
False
>>> pad.press(Key("1", at=1.50))       # pressed after hearing the prompt
True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ivr.channel import DigitRequest, DigitResult

# Nobody answers a prompt faster than this after it starts: one-way audio delay
# on a mobile call is up to 150 ms (ITU-T G.114's bound for good quality), and the
# fastest simple auditory reaction is about 150 ms (Kosinski, "A literature review
# on reaction time", 2008). A key inside this window was meant for what came before.
REACTION_S = 0.3


@dataclass(frozen=True)
class Key:
    """One key press: ``digit`` (0-9 * # A-D), ``at`` the moment it was reported
    (its end, for RFC 4733 events), ``held`` how long it was down, in seconds."""

    digit: str
    at: float
    held: float = 0.0

    @property
    def pressed_at(self) -> float:
        return self.at - self.held


@dataclass
class _Guard:
    """Dropping typed-ahead keys until the caller can have heard the prompt."""

    opens_at: float | None  # prompt start + REACTION_S; None until the prompt starts
    last_dropped: float | None  # press time of the last key of the burst


class Keypad:
    """The caller's keys not yet taken by an entry, and the rules that drop some."""

    def __init__(self) -> None:
        self._keys: deque[Key] = deque()
        self._guard: _Guard | None = None
        self._after_entry: tuple[str, float] | None = None  # (terminator, until)
        self._last_pressed: float | None = None

    @property
    def pending(self) -> bool:
        """Keys are waiting for the next entry (a barge-in prompt is skipped)."""
        return bool(self._keys)

    def press(self, key: Key) -> bool:
        """A key arrived; returns False when a rule dropped it."""
        kept = self._admit(key)
        self._last_pressed = key.pressed_at
        if kept:
            self._keys.append(key)
        return kept

    def ignore(self, key: Key) -> None:
        """A key pressed while nothing listens (a prompt without barge-in): dropped,
        but it still belongs to a burst."""
        self._admit(key)
        self._last_pressed = key.pressed_at

    def _admit(self, key: Key) -> bool:
        after, self._after_entry = self._after_entry, None
        if after is not None and key.digit == after[0] and key.at <= after[1]:
            return False  # the terminator of the entry that just ended complete
        guard = self._guard
        if guard is None:
            return True
        in_burst = (
            guard.last_dropped is not None and key.pressed_at - guard.last_dropped < REACTION_S
        )
        if guard.opens_at is None or key.pressed_at < guard.opens_at or in_burst:
            guard.last_dropped = key.pressed_at
            return False
        self._guard = None
        return True

    def take(self) -> Key | None:
        """The oldest kept key, or None."""
        return self._keys.popleft() if self._keys else None

    def discard_typed_ahead(self) -> None:
        """Drop the kept keys and guard the next prompt (see the module rules)."""
        self._keys.clear()
        self._after_entry = None
        self._guard = _Guard(None, self._last_pressed)

    def listening(self, at: float) -> None:
        """A prompt started (or an entry opened with no prompt) at ``at``."""
        if self._guard is not None and self._guard.opens_at is None:
            self._guard.opens_at = at + REACTION_S

    def entry_ended(self, entry: Entry, result: DigitResult) -> None:
        """An entry returned ``result``; a terminator right after a full entry is its own."""
        terminator = entry.request.terminator
        if result.ended_by != "complete" or terminator is None:
            return
        until = entry.last_key_at + entry.request.between_digits_timeout
        if self._keys:
            head = self._keys[0]
            if head.digit == terminator and head.at <= until:
                self._keys.popleft()
            return
        self._after_entry = (terminator, until)


class Entry:
    """One question waiting for keys, by the timeouts of ``request``."""

    def __init__(self, request: DigitRequest, opened_at: float) -> None:
        self.request = request
        self.digits = ""
        self.opened_at = opened_at
        self.last_key_at = opened_at
        self.total_deadline = opened_at + request.total_timeout

    def feed(self, key: Key) -> DigitResult | None:
        """Take one key; returns the result when it ends the entry."""
        self.last_key_at = max(self.last_key_at, key.at)
        if self.request.terminator and key.digit == self.request.terminator:
            return DigitResult(self.digits, "terminator")
        self.digits += key.digit
        if len(self.digits) >= self.request.max_digits:
            return DigitResult(self.digits, "complete")
        return None

    def deadline(self) -> float:
        """When the entry ends if no key comes first."""
        r = self.request
        wait = r.between_digits_timeout if self.digits else r.first_digit_timeout
        return min(self.last_key_at + wait, self.total_deadline)

    def expire(self, now: float) -> DigitResult:
        """No key came by ``deadline()``: how the entry ended."""
        if not self.digits:
            return DigitResult("", "no_input")
        return DigitResult(self.digits, "total" if now >= self.total_deadline else "between_digits")
