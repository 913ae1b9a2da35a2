"""Spoken dates and times are correct Colombian Spanish, for every minute and every day.

The media sequences are turned into words with the hand-written map of what
each sound says (``tests/unit/spanish_words.py``) and compared with a
reference spelling built on ``num2words``, so the expected words do not come
from the code under test.
"""

from __future__ import annotations

import doctest
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.booking.model import Slot
from tests.unit.spanish_words import (
    SOUND_WORDS,
    asterisk_sounds,
    every_media_uri,
    prompt_words,
    spoken_cardinal,
    spoken_date,
    spoken_time,
    words,
)

BOGOTA = ZoneInfo("America/Bogota")


def slot_words(starts: datetime) -> str:
    from ivr.citas.actions import CitasActions

    actions = CitasActions.__new__(CitasActions)
    actions.tz = BOGOTA
    slot = Slot("s1", "norte", "dr_gomez", "890201", starts, "afternoon")
    return words(actions.slot_media(slot))


# Observed on main before this change (what the caller heard → what is right).
REGRESSIONS = [
    # "martes uno de diciembre a las uno y uno de la tarde"
    (datetime(2026, 12, 1, 13, 1), "martes primero de diciembre a la una y uno de la tarde"),
    # "... a las doce y treinta de la mañana": half past midnight is night
    (datetime(2026, 12, 2, 0, 30), "miércoles dos de diciembre a las doce y treinta de la noche"),
    # "... a las doce de la tarde": noon
    (datetime(2026, 12, 3, 12, 0), "jueves tres de diciembre a las doce del mediodía"),
    # "... a las nueve y quince de la tarde": 21:15 is night
    (datetime(2026, 12, 4, 21, 15), "viernes cuatro de diciembre a las nueve y quince de la noche"),
    # "... a las doce de la mañana": midnight
    (datetime(2027, 1, 1, 0, 0), "viernes primero de enero a las doce de la noche"),
    (datetime(2026, 11, 24, 15, 30), "martes veinticuatro de noviembre a las tres y treinta de la tarde"),
    (datetime(2027, 1, 21, 1, 21), "jueves veintiuno de enero a la una y veintiuno de la mañana"),
    (datetime(2027, 5, 31, 18, 59), "lunes treinta y uno de mayo a las seis y cincuenta y nueve de la tarde"),
    (datetime(2027, 5, 31, 19, 0), "lunes treinta y uno de mayo a las siete de la noche"),
]  # fmt: skip


@pytest.mark.parametrize(("local", "expected"), REGRESSIONS, ids=lambda v: str(v)[:16])
def test_slot_read_out_regressions(local: datetime, expected: str) -> None:
    heard = slot_words(local.replace(tzinfo=BOGOTA))
    assert heard == f"{expected} con la doctora Ana Gómez en la sede Norte"


def _doctors() -> list[tuple[str, str, str]]:
    from ivr.citas.reference import load_reference

    return [
        (site_id, doctor_id, doctor.name)
        for site_id, site in load_reference().sites.items()
        for doctor_id, doctor in site.doctors.items()
    ]


@pytest.mark.parametrize(("site_id", "doctor_id", "name"), _doctors(), ids=lambda v: str(v))
def test_the_offer_names_every_doctor_with_an_agreeing_article(
    site_id: str, doctor_id: str, name: str
) -> None:
    # The whole sentence, for every doctor of the line: the article comes from the
    # title in config/citas/sites.yaml ("Doctora ..." is "la doctora", "Doctor ..." is
    # "el doctor"), and nothing else stands between "con" and it (observed: "con el
    # profesional la doctora Ana Gómez").
    from ivr.citas.actions import CitasActions

    title, rest = name.split(" ", 1)
    article = {"doctora": "la", "doctor": "el"}[title.lower()]
    actions = CitasActions.__new__(CitasActions)
    actions.tz = BOGOTA
    starts = datetime(2026, 12, 1, 13, 1, tzinfo=BOGOTA)
    slot = Slot("s1", site_id, doctor_id, "890201", starts, "afternoon")
    heard = words(["sound:citas/slot_offer_intro", *actions.slot_media(slot)])
    site = prompt_words()[f"sound:citas/site_{site_id}"]
    assert heard == (
        "Tenemos disponible una cita para el martes primero de diciembre a la una y uno de "
        f"la tarde con {article} {title.lower()} {rest} en la sede {site}"
    )


def test_slot_is_read_in_the_line_time_zone() -> None:
    # 18:30 UTC is 13:30 in Bogotá (UTC-5, no daylight saving time).
    utc = datetime(2026, 12, 1, 18, 30, tzinfo=ZoneInfo("UTC"))
    assert slot_words(utc).startswith("martes primero de diciembre a la una y treinta de la tarde ")


@pytest.mark.parametrize("hour", range(24))
def test_every_minute_of_the_day_is_said_right(hour: int) -> None:
    from ivr.speech.es import time_media

    wrong = {
        f"{hour:02}:{minute:02}": (heard, expected)
        for minute in range(60)
        if (heard := words(time_media(time(hour, minute))))
        != (expected := spoken_time(time(hour, minute)))
    }
    assert wrong == {}


@pytest.mark.parametrize("month", range(1, 13))
def test_every_day_of_a_leap_year_is_said_right(month: int) -> None:
    from ivr.speech.es import date_media

    day, wrong = date(2028, month, 1), {}
    while day.month == month:
        if (heard := words(date_media(day))) != (expected := spoken_date(day)):
            wrong[day.isoformat()] = (heard, expected)
        day += timedelta(days=1)
    assert wrong == {}


def test_the_tables_cover_1440_minutes_and_366_days() -> None:
    minutes = {time(h, m) for h in range(24) for m in range(60)}
    days = {date(2028, 1, 1) + timedelta(days=n) for n in range(366)}
    assert len(minutes) == 1440 and len(days) == 366 and max(days) == date(2028, 12, 31)


@pytest.mark.parametrize("form", ["PRONOUN", "MASCULINE", "FEMININE"])
def test_cardinals_0_to_99_agree_in_gender(form: str) -> None:
    from ivr.speech.es import Form, cardinal

    reference_form = {"PRONOUN": "pronoun", "MASCULINE": "masculine", "FEMININE": "feminine"}
    wrong = {
        n: (heard, expected)
        for n in range(100)
        if (heard := words(cardinal(n, Form[form])))
        != (expected := spoken_cardinal(n, reference_form[form]))
    }
    assert wrong == {}


@pytest.mark.parametrize(
    ("n", "form", "expected"),
    [
        (1, "FEMININE", "una"), (21, "FEMININE", "veintiuna"), (31, "FEMININE", "treinta y una"),
        (1, "MASCULINE", "un"), (21, "MASCULINE", "veintiún"), (41, "MASCULINE", "cuarenta y un"),
        (1, "PRONOUN", "uno"), (21, "PRONOUN", "veintiuno"), (11, "FEMININE", "once"),
        (16, "PRONOUN", "dieciséis"), (0, "PRONOUN", "cero"), (99, "FEMININE", "noventa y nueve"),
    ],
)  # fmt: skip
def test_gendered_numerals(n: int, form: str, expected: str) -> None:
    from ivr.speech.es import Form, cardinal

    assert words(cardinal(n, Form[form])) == expected


@pytest.mark.parametrize("n", [-1, 100, 1000])
def test_cardinal_refuses_numbers_it_cannot_say(n: int) -> None:
    from ivr.speech.es import cardinal

    with pytest.raises(ValueError, match=f"cardinal {n} is outside 0-99"):
        cardinal(n)


def test_every_media_uri_is_a_real_sound_or_one_of_our_prompts() -> None:
    from ivr.speech.es import PROMPT_IDS

    asterisk = asterisk_sounds()
    prompts = prompt_words()
    uris = every_media_uri()
    missing = {
        u for u in uris
        if u not in prompts and u.removeprefix("sound:") not in asterisk
    }  # fmt: skip
    assert missing == set()
    # No number:/digits: URIs (Asterisk would pick the gender), and every sound has known words.
    assert all(u.startswith("sound:") for u in uris)
    assert {u.removeprefix("sound:") for u in uris if u not in prompts} <= SOUND_WORDS.keys()
    assert {u for u in uris if u.startswith("sound:citas/")} == {
        f"sound:citas/{p}" for p in PROMPT_IDS
    }
    assert "digits/1F" in asterisk and "digits/20-and" in asterisk  # the list is the real one


def test_docstring_examples_run() -> None:
    import ivr.speech.es

    result = doctest.testmod(ivr.speech.es)
    assert result.attempted > 0 and result.failed == 0
