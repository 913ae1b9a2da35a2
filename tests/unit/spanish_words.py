"""What a caller hears, as words: media URIs → Spanish text, and a reference speller.

Two independent sources, so a test can compare the IVR's media sequence with
what a Colombian speaker expects without repeating the implementation:

- ``SOUND_WORDS``: what each Asterisk Spanish sound file says, written by hand
  from the package's own transcript (``core-sounds-es.txt`` of
  asterisk-core-sounds-es, with the accents it leaves out restored); our
  prompts say their text in ``prompts/prompts.yaml``.
- ``spoken_time`` / ``spoken_date``: the reference spelling, with the numbers
  from ``num2words`` (a maintained number speller) and the grammar written out
  here (RAE, *Diccionario panhispánico de dudas*, s.v. "hora" and "uno"):
  "la una" / "las dos" (the hour agrees with the feminine *hora*), minutes as
  a bare masculine numeral ("y uno", "y veintiuno"), "de la mañana" until
  11:59, "del mediodía" for 12:00-12:59, "de la tarde" until 18:59, "de la
  noche" from 19:00 and for 00:00-00:59 ("las doce de la noche"), and the first
  day of a month as "primero" (the Colombian usage).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time, timedelta
from functools import cache
from pathlib import Path

from num2words import num2words

from ivr.prompts import DEFAULT_TEXTS, load_prompt_texts

SOUND_WORDS: Mapping[str, str] = {
    "digits/0": "cero", "digits/1": "uno", "digits/1M": "un", "digits/1F": "una",
    "digits/2": "dos", "digits/3": "tres", "digits/4": "cuatro", "digits/5": "cinco",
    "digits/6": "seis", "digits/7": "siete", "digits/8": "ocho", "digits/9": "nueve",
    "digits/10": "diez", "digits/11": "once", "digits/12": "doce", "digits/13": "trece",
    "digits/14": "catorce", "digits/15": "quince", "digits/16": "dieciséis",
    "digits/17": "diecisiete", "digits/18": "dieciocho", "digits/19": "diecinueve",
    "digits/20": "veinte", "digits/21": "veintiuno", "digits/22": "veintidós",
    "digits/23": "veintitrés", "digits/24": "veinticuatro", "digits/25": "veinticinco",
    "digits/26": "veintiséis", "digits/27": "veintisiete", "digits/28": "veintiocho",
    "digits/29": "veintinueve", "digits/30": "treinta", "digits/40": "cuarenta",
    "digits/50": "cincuenta", "digits/60": "sesenta", "digits/70": "setenta",
    "digits/80": "ochenta", "digits/90": "noventa",
    # A prefix: Asterisk's own say.conf says 21-29 as "20-and" + the unit.
    "digits/20-and": "veinti-",
    "digits/and": "y", "digits/es-de": "de", "digits/es-el": "el", "digits/h-1": "primero",
    "digits/day-0": "domingo", "digits/day-1": "lunes", "digits/day-2": "martes",
    "digits/day-3": "miércoles", "digits/day-4": "jueves", "digits/day-5": "viernes",
    "digits/day-6": "sábado",
    "digits/mon-0": "enero", "digits/mon-1": "febrero", "digits/mon-2": "marzo",
    "digits/mon-3": "abril", "digits/mon-4": "mayo", "digits/mon-5": "junio",
    "digits/mon-6": "julio", "digits/mon-7": "agosto", "digits/mon-8": "septiembre",
    "digits/mon-9": "octubre", "digits/mon-10": "noviembre", "digits/mon-11": "diciembre",
}  # fmt: skip

SOUND_LIST = Path(__file__).resolve().parent.parent / "data" / "asterisk-sounds-es.txt"

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
    "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


@cache
def prompt_words() -> Mapping[str, str]:
    """``sound:citas/<id>`` → the prompt's text, from the project's prompt catalogue."""
    return {f"sound:citas/{p.id}": p.text for p in load_prompt_texts(DEFAULT_TEXTS).values()}


def words(media: Sequence[str], prompts: Mapping[str, str] | None = None) -> str:
    """The text a caller hears for ``media``; an unknown URI raises ``KeyError``.

    ``number:N`` is what Asterisk's Spanish speller says with no gender
    option (the only way ARI calls it), which for 0-99 is num2words' form.
    """
    prompts = prompt_words() if prompts is None else prompts
    out: list[str] = []
    for uri in media:
        if uri.startswith("number:"):
            out.append(num2words(int(uri.removeprefix("number:")), lang="es"))
        elif uri in prompts:
            out.append(prompts[uri])
        else:
            out.append(SOUND_WORDS[uri.removeprefix("sound:")])
    # "veinti-" + "un"/"una" is one word ("veintiún" is written with its accent: an
    # aguda ending in n). Only those two are joined: every other number has its own
    # recording, so a sequence spliced from "veinti-" and another unit ("veinti- uno",
    # "veinti- dos") stays visible here and fails the comparison.
    text = re.sub(r"\bveinti- un\b", "veintiún", " ".join(out))
    return re.sub(r"\bveinti- una\b", "veintiuna", text)


def spoken_cardinal(n: int, form: str) -> str:
    """``n`` for a bare count (``"uno"``), before a masculine noun (``"un"``) or feminine."""
    text: str = num2words(n, lang="es")
    if not text.endswith("uno"):
        return text
    if form == "feminine":
        return text[:-1] + "a"
    if form == "masculine":
        return "veintiún" if text == "veintiuno" else text[:-1]
    return text


def spoken_time(at: time) -> str:
    """The time as said: "a la una y cinco de la tarde", "a las doce de la noche"."""
    hour = at.hour % 12 or 12
    head = "a la una" if hour == 1 else f"a las {num2words(hour, lang='es')}"
    minutes = f" y {num2words(at.minute, lang='es')}" if at.minute else ""
    if at.hour == 12:
        part = "del mediodía"
    elif 1 <= at.hour < 12:
        part = "de la mañana"
    elif 13 <= at.hour < 19:
        part = "de la tarde"
    else:
        part = "de la noche"
    return f"{head}{minutes} {part}"


def spoken_date(day: date) -> str:
    """The date as said, without article: "lunes primero de enero"."""
    number = "primero" if day.day == 1 else num2words(day.day, lang="es")
    return f"{WEEKDAYS[day.weekday()]} {number} de {MONTHS[day.month - 1]}"


def asterisk_sounds() -> set[str]:
    """The committed list of the sandbox's Spanish sounds (``tests/data/asterisk-sounds-es.txt``)."""
    lines = SOUND_LIST.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def every_media_uri() -> set[str]:
    """Every URI ``ivr.speech.es`` can produce: each minute, each day of a leap year, each cardinal."""
    from ivr.speech.es import Form, cardinal, date_media, time_media

    uris = {u for h in range(24) for m in range(60) for u in time_media(time(h, m))}
    first = date(2028, 1, 1)
    uris |= {u for n in range(366) for u in date_media(first + timedelta(days=n))}
    uris |= {u for form in Form for n in range(100) for u in cardinal(n, form)}
    return uris
