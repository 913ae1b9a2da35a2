"""The digit-collection rules of ``ivr.dtmf``, pure: keys and times in, decisions out."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import dtmf
from ivr.channel import DigitRequest, DigitResult
from ivr.dtmf import REACTION_S, Entry, Key, Keypad


def test_the_module_examples_run() -> None:
    result = doctest.testmod(dtmf)
    assert result.attempted >= 6 and result.failed == 0


def guarded(
    prompt_at: float | None, presses: list[float], before: float | None = None
) -> list[bool]:
    """Which keys a node without type-ahead keeps: its prompt starts at ``prompt_at``,
    ``before`` is a key pressed (and taken) before the node, ``presses`` come after."""
    pad = Keypad()
    if before is not None:
        pad.press(Key("1", before))
        pad.take()
    pad.discard_typed_ahead()
    if prompt_at is not None:
        pad.listening(prompt_at)
    return [pad.press(Key("1", at)) for at in presses]


@pytest.mark.parametrize(
    ("prompt_at", "presses", "before", "kept"),
    [
        (1.0, [0.5], None, [False]),  # pressed before the prompt started
        (1.0, [1.2], None, [False]),  # too soon after it started to have heard it
        (1.0, [1.3], None, [True]),  # REACTION_S after: heard
        (1.0, [2.0, 2.1], None, [True, True]),  # once a key is kept, type-ahead is back
        (None, [5.0], None, [False]),  # the prompt has not started: nothing is heard yet
        (0.1, [0.24], 0.0, [False]),  # issue 9: "11" 240 ms apart, the offer at 0.1 s
        (0.1, [0.24, 0.48, 0.72], 0.0, [False, False, False]),  # a held-down burst goes on
        (0.1, [0.24, 0.60], 0.0, [False, True]),  # a pause of REACTION_S ends the burst
        (1.0, [1.1, 1.35], None, [False, False]),  # past the window but in the same burst
        (1.0, [1.1, 1.45], None, [False, True]),
    ],
)
def test_a_node_without_type_ahead_keeps_only_keys_pressed_after_hearing_it(
    prompt_at: float | None, presses: list[float], before: float | None, kept: list[bool]
) -> None:
    assert guarded(prompt_at, presses, before) == kept


def test_discarding_drops_the_keys_already_waiting() -> None:
    pad = Keypad()
    for at in (0.0, 0.1, 0.2):
        pad.press(Key("5", at))
    pad.discard_typed_ahead()
    assert not pad.pending and pad.take() is None


def test_a_held_key_counts_from_when_it_was_pressed() -> None:
    # Reported at 1.5 s after being held 0.4 s: pressed at 1.1 s, before the prompt was heard.
    pad = Keypad()
    pad.discard_typed_ahead()
    pad.listening(1.0)
    assert pad.press(Key("1", 1.5, held=0.4)) is False


def test_a_key_pressed_during_a_prompt_without_barge_in_still_makes_a_burst() -> None:
    pad = Keypad()
    pad.discard_typed_ahead()
    pad.listening(0.0)
    pad.ignore(Key("1", 0.2))  # dropped: typed ahead, and the prompt takes no keys anyway
    assert pad.press(Key("1", 0.45)) is False  # the same burst, although past the window
    assert pad.press(Key("1", 0.80)) is True


DOC = DigitRequest(max_digits=12, min_digits=5, terminator="#", between_digits_timeout=4.0)


def entry_then_next(keys: list[Key], request: DigitRequest = DOC) -> tuple[DigitResult, str]:
    """The first entry's result, and the keys the next one-key question gets."""
    pad = Keypad()
    entry = Entry(request, 0.0)
    fed = iter(keys)
    result = None
    for key in fed:
        pad.press(key)
        while result is None and (taken := pad.take()) is not None:
            result = entry.feed(taken)
            if result is not None:
                pad.entry_ended(entry, result)
        if result is not None:
            break
    assert result is not None
    for key in fed:
        pad.press(key)
    rest = ""
    while (key := pad.take()) is not None:
        rest += key.digit
    return result, rest


def typed(digits: str, start: float = 0.0, every: float = 0.24) -> list[Key]:
    return [Key(d, start + n * every) for n, d in enumerate(digits)]


@pytest.mark.parametrize(
    ("keys", "result", "next_gets"),
    [
        # issue 9: a full document, then '#': the '#' is the document's
        (typed("100200300400#"), DigitResult("100200300400", "complete"), ""),
        (
            typed("100200300400") + [Key("#", 2.64 + 3.9)],
            DigitResult("100200300400", "complete"),
            "",
        ),
        # past the between-digits timeout it answers the next question
        (
            typed("100200300400") + [Key("#", 2.64 + 4.1)],
            DigitResult("100200300400", "complete"),
            "#",
        ),
        # only the very next key, and only the terminator
        (typed("100200300400") + typed("1#", 3.0), DigitResult("100200300400", "complete"), "1#"),
        (typed("100200300400") + [Key("*", 3.0)], DigitResult("100200300400", "complete"), "*"),
        # a shorter entry ends at the terminator; the key after it is the next question's
        (typed("1010101010#1"), DigitResult("1010101010", "terminator"), "1"),
        (typed("1010101010##"), DigitResult("1010101010", "terminator"), "#"),
    ],
)
def test_a_terminator_right_after_a_full_entry_belongs_to_it(
    keys: list[Key], result: DigitResult, next_gets: str
) -> None:
    assert entry_then_next(keys) == (result, next_gets)


def test_without_a_terminator_in_the_request_nothing_is_dropped() -> None:
    request = DigitRequest(max_digits=1)
    assert entry_then_next(typed("1#"), request) == (DigitResult("1", "complete"), "#")


@pytest.mark.parametrize(
    ("keys", "now", "result"),
    [
        ([], 5.0, DigitResult("", "no_input")),
        ([Key("1", 1.0)], 4.0, DigitResult("1", "between_digits")),
        ([Key("1", 1.0)], 20.0, DigitResult("1", "total")),
    ],
)
def test_an_entry_expires_by_its_timeouts(keys: list[Key], now: float, result: DigitResult) -> None:
    entry = Entry(DigitRequest(max_digits=5, first_digit_timeout=5.0,
                               between_digits_timeout=3.0, total_timeout=20.0), 0.0)  # fmt: skip
    for key in keys:
        assert entry.feed(key) is None
    assert entry.deadline() == (min(1.0 + 3.0, 20.0) if keys else 5.0)
    assert entry.expire(now) == result


TIMES = st.lists(st.floats(0.0, 10.0), max_size=30).map(sorted)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(before=TIMES, after=TIMES, prompt_at=st.floats(0.0, 10.0), held=st.floats(0.0, 0.3))
def test_no_key_is_kept_before_the_prompt_could_be_heard(
    before: list[float], after: list[float], prompt_at: float, held: float
) -> None:
    # Keys before the node, then the node without type-ahead: the first key it keeps was
    # pressed REACTION_S after its prompt started and REACTION_S after the key before it.
    pad = Keypad()
    presses = [Key("1", t + held, held) for t in before]
    for key in presses:
        pad.press(key)
    pad.discard_typed_ahead()
    assert not pad.pending
    pad.listening(prompt_at)
    later = [Key("1", max(t, before[-1] if before else 0.0) + held, held) for t in after]
    kept = [k for k in later if pad.press(k)]
    if kept:
        first = kept[0]
        assert first.pressed_at >= prompt_at + REACTION_S
        pressed = [k.pressed_at for k in presses + later]
        earlier = pressed[: len(presses) + later.index(first)]
        assert not earlier or first.pressed_at - max(earlier) >= REACTION_S
        assert kept == later[later.index(first) :]  # then every key is kept
