"""Reading survey replies (``ivr.surveys.replies``): the kind is "what a person types
for a 1-10 rating"; the table holds the issue's cases ("10", "diez", "8/10",
"un 9", "0", "11", emojis, "no") and the ambiguous ones, and hypothesis covers
every number, decorated as people decorate it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.surveys.chat import find_survey_reference
from ivr.surveys.replies import NUMBER_WORDS, comment_of, fold, is_refusal, parse_rating

RATINGS = [
    ("10", 10),
    ("diez", 10),
    ("Diez", 10),
    ("DIEZ!!", 10),
    ("8/10", 8),
    ("8 / 10", 8),
    ("8 de 10", 8),
    ("9 sobre 10", 9),
    ("10/10", 10),
    ("diez de diez", 10),
    ("un 9", 9),
    ("Un 9, muy bien", 9),
    ("le doy un 7", 7),
    ("uno", 1),
    ("1", 1),
    ("nueve", 9),
    ("séis", 6),  # an accent where none belongs
    ("ocho puntos", 8),
    ("  5  ", 5),
    ("9️⃣", 9),  # keycap emoji: digit + VS16 + combining enclosing keycap
    ("🔟", 10),
    ("10 👍", 10),
    ("👍👍 9", 9),
    ("0", None),
    ("cero", None),
    ("11", None),
    ("once", None),
    ("100", None),
    ("-3", 3),  # a dash read as a bullet, not a sign: people type "- 3"
    ("7.5", None),
    ("7,5", None),
    ("8 o 9", None),
    ("entre 7 y 8", None),
    ("4/5", None),  # another scale: not converted
    ("5 de 5", None),
    ("no", None),
    ("NO", None),
    ("👍", None),
    ("", None),
    ("una", None),  # an article, not a rating
    ("gracias", None),
]


@pytest.mark.parametrize(("text", "rating"), RATINGS)
def test_a_reply_gives_its_rating_or_none(text: str, rating: int | None) -> None:
    assert parse_rating(text) == rating


WORDS = {v: w for w, v in NUMBER_WORDS.items()}


@given(
    st.integers(min_value=-5, max_value=200),
    st.sampled_from(["{}", "{}/10", "un {}", "le doy {} de 10", "{} 👍", "  {}.", "{} puntos"]),
    st.booleans(),
)
def test_every_number_in_every_decoration_is_read_within_1_to_10(
    value: int, form: str, as_word: bool
) -> None:
    written = WORDS[value] if as_word and value in WORDS else str(abs(value))
    expected = abs(value) if not (as_word and value in WORDS) else value
    assert parse_rating(form.format(written)) == (expected if 1 <= expected <= 10 else None)


@given(st.integers(1, 10), st.integers(1, 10))
def test_two_different_numbers_are_no_rating(a: int, b: int) -> None:
    assert parse_rating(f"{a} o {b}") == (a if a == b else None)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("NO", True),
        ("no", True),
        ("No.", True),
        ("No, gracias", True),
        ("nada", True),
        ("Sin comentarios", True),
        ("ningún comentario", True),
        ("No me llamaron nunca", False),
        ("Muy buena atención", False),
        ("no sé", False),
        ("", False),
    ],
)
def test_a_comment_reply_is_a_refusal_or_the_comment(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


def test_a_comment_is_kept_stripped_and_bounded() -> None:
    assert comment_of("  Muy amables  ") == "Muy amables"
    assert len(comment_of("x" * 5000)) == 2000


def test_folding_drops_accents_but_keeps_enye() -> None:
    assert fold("Atención MUY rápida, año") == "atencion muy rapida, año"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (
            "Encuesta del caso 0123456. Mi calificación es: 9",
            ("0123456", ". Mi calificación es: 9"),
        ),
        ("encuesta caso 0123456", ("0123456", "")),
        ("ENCUESTA 7654321 diez", ("7654321", " diez")),
        ("Caso 0123456", None),  # not a survey's link
        ("Encuesta del caso 012345", None),  # six digits: not a case number
        ("hola", None),
    ],
)
def test_the_sms_links_reference_is_found(text: str, found: tuple[str, str] | None) -> None:
    assert find_survey_reference(text) == found
