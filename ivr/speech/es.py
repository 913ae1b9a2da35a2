"""Dates, times and numbers said in Colombian Spanish, as ARI media URIs.

Each function returns a list of media URIs (``sound:digits/...`` from
Asterisk's Spanish sounds, ``sound:citas/<id>`` from our prompt catalogue)
that a channel plays in order. Pure: no I/O, no line knowledge.

>>> date_media(date(2027, 1, 1))
['sound:digits/day-5', 'sound:digits/h-1', 'sound:digits/es-de', 'sound:digits/mon-0']
>>> time_media(time(13, 1))
['sound:citas/time_at_one', 'sound:digits/1F', 'sound:digits/and', 'sound:digits/1', 'sound:citas/time_afternoon']
>>> cardinal(21, Form.FEMININE)
['sound:digits/20-and', 'sound:digits/1F']

The grammar (RAE, *Diccionario panhispánico de dudas*, entries "hora" and
"uno"; Colombian usage for "primero"):

- the hour agrees with the feminine *hora*: "a la una", "a las dos";
- minutes are a bare masculine numeral: "y uno", "y veintiuno", "y treinta y uno";
- 12-hour time with the part of the day: "de la mañana" (01:00-11:59),
  "del mediodía" (12:00-12:59), "de la tarde" (13:00-18:59), "de la noche"
  (19:00-00:59, so midnight is "las doce de la noche"); a full hour has no
  minutes ("a las tres de la tarde");
- a date is "<weekday> <day> de <month>"; the first of a month is "primero".
  The article ("el lunes") belongs to the sentence, so the caller's prompt
  ends with it ("Tenemos disponible una cita para el").

Why our own sequences instead of ARI's ``number:`` URI (read in Asterisk 22's
source): ``res/res_stasis_playback.c`` plays ``number:N`` with
``ast_say_number(chan, N, stop, language, NULL)``; the options are always
NULL and ``sscanf("%30d")`` ignores anything after the number, so a media URI
cannot ask for a gender. ``ast_say_number_full_es`` (main/say.c) then says 1 as
``digits/1`` "uno" ("a las uno"); it picks ``digits/1F`` "una" or ``digits/1M``
"un" only with the options "f"/"m", and even then says 21 as ``digits/21``
"veintiuno" in every gender. ``ast_say_date_with_format_es`` (not reachable from
ARI anyway) says "a.m."/"p.m." and has no noon or midnight. ``digits:`` reads
digit by digit. So this module spells numbers itself from the package's files
(asterisk-core-sounds-es), which do have the gendered forms: ``digits/1F``
"una", ``digits/1M`` "un", and ``digits/20-and`` "veinti", the prefix
Asterisk's own ``say.conf`` sample uses to build 21-29. Numbers, weekdays,
months, "y" and "de" therefore come from one recorded voice.

The package (es -> es_MX_f_Allison, a neutral Latin American voice) has no
"de la mañana", "del mediodía" or "de la noche" (only ``digits/afternoon`` "de
la tarde" and "a.m."/"p.m."), and no "a la" in its transcript (``digits/at_s``
is not transcribed, so we cannot know what it says); those six phrases ("a la",
"a las" and the four parts of the day) are our prompts ``time_*`` in
``prompts/prompts.yaml`` (synthesized with espeak-ng like every prompt; a voice
talent's recording replaces them in ``prompts/recorded/`` without a code
change). "a las" and "de la tarde" are ours too, although the package has
them, so that each pair sounds alike. Whole-phrase prompts (one per minute of
the day and day of the year) were rejected: 1,806 prompts to record instead of
six. ``tests/unit/test_speech_es.py`` checks every URI this module can produce
against the package's file list and the prompt catalogue.
"""

from __future__ import annotations

from datetime import date, time
from enum import Enum

# Where our prompt catalogue is played from: ivr/flow/engine.py plays prompt ids
# as sound:citas/<id>, and ivr/sandbox/manager.install_prompts puts them there.
_PROMPT = "sound:citas/{}"
_DIGITS = "sound:digits/{}"

AT_ONE = _PROMPT.format("time_at_one")  # "a la"
AT = _PROMPT.format("time_at")  # "a las"
MORNING = _PROMPT.format("time_morning")  # "de la mañana"
NOON = _PROMPT.format("time_noon")  # "del mediodía"
AFTERNOON = _PROMPT.format("time_afternoon")  # "de la tarde"
NIGHT = _PROMPT.format("time_night")  # "de la noche"
AND = _DIGITS.format("and")  # "y"
OF = _DIGITS.format("es-de")  # "de"
FIRST = _DIGITS.format("h-1")  # "primero"

PROMPT_IDS = frozenset(
    uri.removeprefix("sound:citas/") for uri in (AT_ONE, AT, MORNING, NOON, AFTERNOON, NIGHT)
)
"""The ids this module needs in the prompt catalogue."""

LARGEST_CARDINAL = 99


class Form(Enum):
    """How the numeral "one" (and 21, 31, ... 91) ends, by what it counts."""

    PRONOUN = "uno"  # a bare count: "y veintiuno" (minutes), "el veintiuno" (day)
    MASCULINE = "un"  # before a masculine noun: "veintiún minutos"
    FEMININE = "una"  # a feminine noun, said or implied: "la una", "veintiuna horas"


_ONE = {Form.PRONOUN: "1", Form.MASCULINE: "1M", Form.FEMININE: "1F"}


def cardinal(n: int, form: Form = Form.PRONOUN) -> list[str]:
    """``n`` (0-99) as Asterisk Spanish digit sounds, with "one" in ``form``.

    Raises ``ValueError`` outside 0-99: larger numbers need feminine hundreds
    ("doscientas") that the sound package does not have (its only gendered
    files are ``digits/1F`` and ``digits/1M``), and nothing the IVR says needs
    them.

    >>> cardinal(31, Form.MASCULINE)
    ['sound:digits/30', 'sound:digits/and', 'sound:digits/1M']
    """
    if not 0 <= n <= LARGEST_CARDINAL:
        raise ValueError(f"cardinal {n} is outside 0-{LARGEST_CARDINAL}")
    tens, unit = divmod(n, 10)
    if unit == 1 and n != 11:
        one = _DIGITS.format(_ONE[form])
        if n == 1:
            return [one]
        if n == 21 and form is Form.PRONOUN:
            return [_DIGITS.format("21")]  # "veintiuno"
        if n == 21:
            return [_DIGITS.format("20-and"), one]  # "veinti" + "un"/"una"
        return [_DIGITS.format(tens * 10), AND, one]
    if n <= 29 or unit == 0:
        return [_DIGITS.format(n)]
    return [_DIGITS.format(tens * 10), AND, _DIGITS.format(unit)]


def time_media(at: time) -> list[str]:
    """The hour and minute of ``at`` (seconds ignored): "a la una y cinco de la tarde".

    >>> time_media(time(0, 0))
    ['sound:citas/time_at', 'sound:digits/12', 'sound:citas/time_night']
    """
    hour = at.hour % 12 or 12
    media = [AT_ONE if hour == 1 else AT, *cardinal(hour, Form.FEMININE)]
    if at.minute:
        media += [AND, *cardinal(at.minute, Form.PRONOUN)]
    media.append(_part_of_day(at.hour))
    return media


def _part_of_day(hour: int) -> str:
    if hour == 12:
        return NOON
    if 1 <= hour < 12:
        return MORNING
    if 13 <= hour < 19:
        return AFTERNOON
    return NIGHT


def date_media(day: date) -> list[str]:
    """Weekday, day and month of ``day``, without article: "lunes primero de enero".

    >>> date_media(date(2028, 2, 29))
    ['sound:digits/day-2', 'sound:digits/29', 'sound:digits/es-de', 'sound:digits/mon-1']
    """
    weekday = _DIGITS.format(f"day-{day.isoweekday() % 7}")  # day-0 is Sunday
    number = [FIRST] if day.day == 1 else cardinal(day.day, Form.PRONOUN)
    return [weekday, *number, OF, _DIGITS.format(f"mon-{day.month - 1}")]
