"""What the escalation call says (``ivr.escalation.summary``): the issue's sentence,
and the time-left rule over its whole range.

The kind of fault: a duration said wrong — more time than is left (rounding
up), a number Asterisk's sounds cannot say (over 99), the wrong gender ("uno
horas"), a missing unit. The table holds the boundaries; the property checks
every duration up to a year.
"""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.channel import Phrase
from ivr.escalation import ladder, summary
from ivr.escalation.summary import Summary, time_left
from ivr.prompts import load_prompt_texts
from ivr.settings import Settings


def sound(prompt_id: str) -> str:
    return f"sound:citas/{prompt_id}"


@pytest.mark.parametrize(
    ("left", "text", "media"),
    [
        (timedelta(seconds=59), "ahora", []),
        (timedelta(minutes=1), "1 minuto", ["sound:digits/1M", sound("escalation_minute")]),
        (timedelta(minutes=21, seconds=59), "21 minutos",
         ["sound:digits/20-and", "sound:digits/1M", sound("escalation_minutes")]),
        (timedelta(minutes=59, seconds=59), "59 minutos",
         ["sound:digits/50", "sound:digits/and", "sound:digits/9", sound("escalation_minutes")]),
        (timedelta(hours=1), "1 hora", ["sound:digits/1F", sound("escalation_hour")]),
        (timedelta(hours=2, minutes=59), "2 horas", ["sound:digits/2", sound("escalation_hours")]),
        (timedelta(hours=99, minutes=59), "99 horas",
         ["sound:digits/90", "sound:digits/and", "sound:digits/9", sound("escalation_hours")]),
        (timedelta(hours=100), "más de 99 horas",
         [sound("escalation_more_than"), "sound:digits/90", "sound:digits/and", "sound:digits/9",
          sound("escalation_hours")]),
        (-timedelta(hours=2, minutes=10), "2 horas", ["sound:digits/2", sound("escalation_hours")]),
    ],
)  # fmt: skip
def test_time_left_boundaries(left: timedelta, text: str, media: list[str]) -> None:
    amount = time_left(left)

    assert (amount.text, amount.media(sound)) == (text, media)


@given(st.integers(min_value=-365 * 86400, max_value=365 * 86400))
def test_time_left_never_says_more_than_is_left_and_always_a_sayable_number(seconds: int) -> None:
    left = timedelta(seconds=seconds)
    amount = time_left(left)
    size = abs(left)
    if amount.now:
        assert size < timedelta(minutes=1)
        return
    unit = timedelta(minutes=1) if amount.unit == "minutes" else timedelta(hours=1)
    assert 1 <= amount.count <= 99
    assert amount.count * unit <= size  # rounded down: never more time than there is
    assert amount.more or size < (amount.count + 1) * unit
    media = amount.media(sound)
    assert media[-1] in {sound(summary.MINUTE), sound(summary.MINUTES), sound(summary.HOUR),
                         sound(summary.HOURS)}  # fmt: skip
    assert (media[-1] in {sound(summary.MINUTE), sound(summary.HOUR)}) == (amount.count == 1)


KNOWN = frozenset(load_prompt_texts(Settings().prompts_file))


def test_the_issue_sentence() -> None:
    alert = Summary("0123456", "norte", ladder.RESOLUTION, timedelta(hours=2, minutes=5))

    assert alert.phrases(sound, KNOWN) == [
        Phrase("prompt", "escalation_intro"),  # "Alerta de casos de citas. El caso"
        Phrase("digits", "0123456"),  # cero uno dos tres cuatro cinco seis
        Phrase("prompt", "escalation_at_site"),  # "de la sede"
        Phrase("prompt", "site_norte"),  # "Norte"
        Phrase("prompt", "escalation_due_in"),  # "vence en"
        Phrase("spoken", "2 horas", ("sound:digits/2", sound("escalation_hours"))),
        Phrase("prompt", "escalation_press_one"),  # "Marque uno para confirmar que lo atiende."
    ]
    assert alert.text == "Caso 0123456, sede norte, vence en 2 horas."


def test_first_response_overrun_says_why_and_an_unknown_site_is_left_out() -> None:
    alert = Summary("0000017", "nowhere", ladder.FIRST_RESPONSE, -timedelta(minutes=30))
    said = alert.phrases(sound, KNOWN)

    assert Phrase("prompt", "escalation_overdue_by") in said
    assert Phrase("prompt", "escalation_no_first_response") in said
    assert not any(p.value.startswith("site_") or p.value == "escalation_at_site" for p in said)
    assert alert.text == ("Caso 0000017, sede nowhere, venció hace 30 minutos. "
                          "Aún no tiene primera respuesta.")  # fmt: skip


def test_every_escalation_prompt_has_a_text_in_the_catalogue() -> None:
    assert summary.PROMPT_IDS <= KNOWN


def test_the_docstring_examples_run() -> None:
    for module in (summary, ladder):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
