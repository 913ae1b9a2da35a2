"""Case numbers: 6 sequence digits and a Damm check digit (ivr.cases.number).

The kind of fault: a number misheard or mistyped by one digit, or with two
neighbouring digits swapped, that is still accepted. Tested over the range:
every single-digit substitution and every adjacent transposition of numbers
drawn by hypothesis, and the edges of the sequence.
"""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ivr.cases.number
from ivr.cases.number import (
    MAX_SEQUENCE,
    NumberingExhausted,
    format_number,
    groups,
    is_valid,
    normalise,
    sequence_of,
)

SEQUENCES = st.integers(min_value=1, max_value=MAX_SEQUENCE)


def test_doctests() -> None:
    assert doctest.testmod(ivr.cases.number).failed == 0


@given(SEQUENCES)
def test_every_number_is_7_digits_valid_and_gives_its_sequence_back(seq: int) -> None:
    number = format_number(seq)
    assert len(number) == 7 and number.isdigit()
    assert is_valid(number) and sequence_of(number) == seq


@given(SEQUENCES, st.integers(0, 6), st.integers(1, 9))
def test_every_single_digit_error_is_detected(seq: int, position: int, shift: int) -> None:
    number = format_number(seq)
    wrong = str((int(number[position]) + shift) % 10)
    assert not is_valid(number[:position] + wrong + number[position + 1 :])


@given(SEQUENCES, st.integers(0, 5))
def test_every_adjacent_transposition_is_detected(seq: int, position: int) -> None:
    number = format_number(seq)
    a, b = number[position], number[position + 1]
    swapped = number[:position] + b + a + number[position + 2 :]
    assert swapped == number or not is_valid(swapped)


@pytest.mark.parametrize(
    "text", ["", "000001", "00000133", "000001a", "０００００１3", "0000000", " 0000013"]
)
def test_malformed_numbers_are_not_valid(text: str) -> None:
    assert not is_valid(text)


def test_the_edges_of_the_sequence() -> None:
    assert format_number(1) == "0000013"
    assert format_number(MAX_SEQUENCE)[:6] == "999999"
    with pytest.raises(NumberingExhausted):
        format_number(MAX_SEQUENCE + 1)
    with pytest.raises(ValueError):
        format_number(0)
    with pytest.raises(ValueError):
        sequence_of("0000012")


@given(SEQUENCES)
def test_groups_put_the_number_back_together(seq: int) -> None:
    number = format_number(seq)
    assert "".join(groups(number)) == number and [len(g) for g in groups(number)] == [3, 4]


def test_a_dictated_number_is_normalised() -> None:
    assert normalise("000 001-3") == "0000013" and is_valid(normalise("00.00.01.3"))
