"""Case numbers ("número de radicado"): 6 sequence digits and a Damm check digit.

A number is read over the phone, written down by hand and typed back on a
keypad. The check digit is computed with the **Damm algorithm**
(``stdnum.damm`` from python-stdnum, a maintained implementation): it detects
every single-digit error and every transposition of two adjacent digits, the
two mistakes people make with a number they hear (H. M. Damm, *Totally
anti-symmetric quasigroups for all orders n≠2,6*, Discrete Mathematics 307
(2007)). Unlike Luhn it needs no doubling rule and unlike Verhoeff no
permutation tables of ours; unlike ISO 7064 mod 11-10 it never yields a letter.

The sequence comes from ``case_sequence`` (see ``ivr.cases.store``): 1, 2, …
999 999, written with leading zeros so that every number has 7 digits.

>>> format_number(1)
'0000013'
>>> is_valid("0000013"), is_valid("0000031"), is_valid("0000012")
(True, False, False)
>>> sequence_of("0000013")
1
"""

from __future__ import annotations

from stdnum import damm

SEQUENCE_DIGITS = 6
NUMBER_LENGTH = SEQUENCE_DIGITS + 1
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1


class NumberingExhausted(ValueError):
    """The 6-digit sequence is used up (999 999 cases): the format must grow."""


def format_number(seq: int) -> str:
    """The 7-digit case number of sequence ``seq`` (1 … 999 999).

    Raises ``NumberingExhausted`` above 999 999 and ``ValueError`` below 1."""
    if seq < 1:
        raise ValueError(f"a case sequence starts at 1, got {seq}")
    if seq > MAX_SEQUENCE:
        raise NumberingExhausted(f"case sequence {seq} does not fit in {SEQUENCE_DIGITS} digits")
    body = f"{seq:0{SEQUENCE_DIGITS}d}"
    return body + str(damm.calc_check_digit(body))


def is_valid(number: str) -> bool:
    """True for 7 ASCII digits whose last is the Damm check digit of the others
    (and whose sequence is not 0)."""
    if len(number) != NUMBER_LENGTH or not (number.isascii() and number.isdigit()):
        return False
    return damm.is_valid(number) and int(number[:SEQUENCE_DIGITS]) >= 1


def invalid_reason(number: str) -> str | None:
    """Why ``number`` (already :func:`normalise`d) is not a case number, in Spanish
    for the operator, or ``None`` when it is valid. The reasons, in order: not 7
    ASCII digits; a check digit that does not match (a mistyped or swapped digit,
    which Damm always detects); the sequence 0, which is never issued.

    >>> invalid_reason("13"), invalid_reason("0000031"), invalid_reason("0000013")
    ('un número de radicado tiene 7 dígitos', 'el dígito de control no corresponde', None)
    """
    if len(number) != NUMBER_LENGTH or not (number.isascii() and number.isdigit()):
        return f"un número de radicado tiene {NUMBER_LENGTH} dígitos"
    if not damm.is_valid(number):
        return "el dígito de control no corresponde"
    if int(number[:SEQUENCE_DIGITS]) < 1:
        return "ningún caso lleva la secuencia 0"
    return None


def sequence_of(number: str) -> int:
    """The sequence a valid number was made from; ``ValueError`` for an invalid one."""
    if not is_valid(number):
        raise ValueError(f"not a valid case number: {number!r}")
    return int(number[:SEQUENCE_DIGITS])


def groups(number: str) -> list[str]:
    """The number in the groups it is said and written in: 3 digits then 4, like the
    end of a phone number (a run a listener holds), e.g. "cero cero cero, cero cero
    uno tres". ``ValueError`` for an invalid number.

    >>> groups("0000013")
    ['000', '0013']
    """
    if not is_valid(number):
        raise ValueError(f"not a valid case number: {number!r}")
    return [number[:3], number[3:]]


def normalise(text: str) -> str:
    """A number as typed or dictated (``"000 001-3"``) with spaces, dots and
    dashes removed; the caller checks it with :func:`is_valid`."""
    return "".join(c for c in text if c not in " .-\t")
