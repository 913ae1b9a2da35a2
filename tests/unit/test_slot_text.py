"""A slot read out in a chat says what the phone says (issue 10 §1, ``media:{var}``).

``CitasActions.slot_phrase`` leaves one ``Phrase("spoken", text, media)``: the
voice media (``slot_media``, checked in test_speech_es) and the chat text. The
kind of fault: the two disagreeing (another weekday, hour, part of the day,
doctor or site). Checked over every day of a leap year, every minute of a day,
and every doctor and site of the shipped ``sites.yaml`` against the voice
prompts that name them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.booking.model import Slot
from ivr.booking.seed import BOGOTA
from ivr.citas.actions import CitasActions, date_text, time_text
from ivr.citas.reference import load_reference
from ivr.prompts import load_prompt_texts
from ivr.settings import REPO_ROOT
from ivr.speech import es as speech_es

PROMPTS = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml")
REFERENCE = load_reference()
SUNDAY_FIRST = ("domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado")
MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
          "septiembre", "octubre", "noviembre", "diciembre")  # fmt: skip


def actions() -> CitasActions:
    found = CitasActions.__new__(CitasActions)
    found.tz = BOGOTA
    found.ref = REFERENCE
    return found


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (time(0, 0), "a las 12:00 a. m."),
        (time(0, 30), "a las 12:30 a. m."),
        (time(1, 5), "a la 1:05 a. m."),
        (time(8, 0), "a las 8:00 a. m."),
        (time(11, 59), "a las 11:59 a. m."),
        (time(12, 0), "a las 12:00 p. m."),
        (time(13, 30), "a la 1:30 p. m."),
        (time(23, 59), "a las 11:59 p. m."),
    ],
)
def test_time_text(at: time, text: str) -> None:
    assert time_text(at) == text


@given(st.times())
def test_the_time_written_agrees_with_the_time_said(at: time) -> None:
    said = speech_es.time_media(at)
    written = time_text(at)
    assert written.startswith("a la ") == (said[0] == speech_es.AT_ONE)
    hour, minute = written.split()[2].split(":")
    assert int(hour) == at.hour % 12 or 12
    assert int(minute) == at.minute
    assert written.endswith("a. m.") == (at.hour < 12)
    assert (speech_es.MORNING in said) <= written.endswith("a. m.")
    assert (speech_es.AFTERNOON in said) <= written.endswith("p. m.")


def test_every_day_of_a_leap_year_is_written_as_it_is_said() -> None:
    day = date(2028, 1, 1)
    while day.year == 2028:
        said = speech_es.date_media(day)
        weekday, number, of, month = date_text(day).split()
        assert said[0] == f"sound:digits/day-{SUNDAY_FIRST.index(weekday)}"
        assert said[-1] == f"sound:digits/mon-{MONTHS.index(month)}"
        assert (int(number), of) == (day.day, "de")
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("site_id", "doctor_id"),
    [(s.id, d.id) for s in REFERENCE.sites.values() for d in s.doctors.values()],
)
def test_the_slot_text_names_doctor_and_site_as_their_prompts_do(
    site_id: str, doctor_id: str
) -> None:
    starts = datetime(2026, 11, 30, 8, 0, tzinfo=BOGOTA)
    slot = Slot("s1", site_id, doctor_id, "890201", starts, "morning")

    phrase = actions().slot_phrase(slot)

    assert phrase.kind == "spoken" and phrase.media == tuple(actions().slot_media(slot))
    doctor = PROMPTS[f"doctor_{doctor_id}"].text  # "la doctora Ana Gómez"
    site = PROMPTS[f"site_{site_id}"].text  # "Norte"
    assert phrase.value == f"lunes 30 de noviembre a las 8:00 a. m. con {doctor} en la sede {site}"


def test_a_slot_of_a_site_or_doctor_not_in_the_tables_is_written_with_ids() -> None:
    starts = datetime(2026, 12, 1, 13, 5, tzinfo=BOGOTA)
    slot = Slot("s1", "nueva", "dr_nuevo", "890201", starts, "afternoon")

    assert (
        actions().slot_text(slot) == "martes 1 de diciembre a la 1:05 p. m. con dr_nuevo en nueva"
    )
