"""What the person called by the ladder hears, in Spanish (issue 11 §3).

"Alerta de casos de citas. El caso | cero uno dos tres cuatro cinco seis | de la
sede | Norte | vence en | dos horas. | Aún no tiene primera respuesta. | Marque
uno para confirmar que lo atiende."

- the case number digit by digit (``digits:`` media: Asterisk's Spanish digit
  sounds, as ``ivr.phone`` says numbers);
- the site by the line's own prompt ``site_<id>`` (the one slot offers use),
  left out when the line has none;
- the time left until the case's resolution due (the promise made to the
  affiliate), in business time, by the rule of :func:`time_left`; once overrun
  "venció hace …";
- for the first-response clock, the reason ("Aún no tiene primera respuesta").

The rule for time said aloud (:func:`time_left`), ours because it is three
lines and no library says Spanish durations with Asterisk's sounds: under a
minute "ahora"; under an hour whole minutes (rounded down, "un minuto",
"veintiún minutos"); under 100 hours whole hours rounded down ("una hora",
"dos horas"); beyond, "más de noventa y nueve horas" (``ivr.speech.es`` says
0–99 only). Rounding down never promises more time than is left.

>>> time_left(timedelta(hours=2, minutes=40)).text
'2 horas'
>>> time_left(timedelta(seconds=30)).text
'ahora'
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from ivr.channel import Phrase
from ivr.escalation.ladder import FIRST_RESPONSE
from ivr.speech.es import LARGEST_CARDINAL, Form, cardinal

# Prompt ids (prompts/prompts.yaml, "# --- cases: escalation ---").
INTRO = "escalation_intro"  # "Alerta de casos de citas. El caso"
AT_SITE = "escalation_at_site"  # "de la sede"
DUE_IN = "escalation_due_in"  # "vence en"
OVERDUE_BY = "escalation_overdue_by"  # "venció hace"
DUE_NOW = "escalation_due_now"  # "vence ahora"
MORE_THAN = "escalation_more_than"  # "más de"
HOUR, HOURS = "escalation_hour", "escalation_hours"
MINUTE, MINUTES = "escalation_minute", "escalation_minutes"
NO_FIRST_RESPONSE = "escalation_no_first_response"
PRESS_ONE = "escalation_press_one"  # "Marque uno para confirmar que lo atiende."
THANKS = "escalation_thanks"
GOODBYE = "escalation_goodbye"

PROMPT_IDS = frozenset({
    INTRO, AT_SITE, DUE_IN, OVERDUE_BY, DUE_NOW, MORE_THAN, HOUR, HOURS, MINUTE, MINUTES,
    NO_FIRST_RESPONSE, PRESS_ONE, THANKS, GOODBYE,
})  # fmt: skip
"""Every prompt the escalation call plays (``ivr config check`` and a unit test
hold the catalogue to it)."""


@dataclass(frozen=True)
class Amount:
    """A duration as said: ``count`` of ``unit`` (``minutes``/``hours``), ``more``
    for "más de", ``now`` when under a minute; ``text`` is the same for logs."""

    count: int
    unit: str
    more: bool = False
    now: bool = False

    @property
    def text(self) -> str:
        if self.now:
            return "ahora"
        noun = {"minutes": ("minuto", "minutos"), "hours": ("hora", "horas")}[self.unit]
        words = f"{self.count} {noun[self.count != 1]}"
        return f"más de {words}" if self.more else words

    def media(self, sound: Callable[[str], str]) -> list[str]:
        """The media URIs (``sound`` gives a prompt's URI)."""
        if self.now:
            return []
        one, many, form = {
            "minutes": (MINUTE, MINUTES, Form.MASCULINE),
            "hours": (HOUR, HOURS, Form.FEMININE),
        }[self.unit]
        media = [sound(MORE_THAN)] if self.more else []
        return media + cardinal(self.count, form) + [sound(one if self.count == 1 else many)]


def time_left(left: timedelta) -> Amount:
    """``left`` (its size; the sign is the caller's: "vence en" / "venció hace")
    by the rule of the module docstring."""
    seconds = abs(left.total_seconds())
    if seconds < 60:
        return Amount(0, "minutes", now=True)
    if seconds < 3600:
        return Amount(int(seconds // 60), "minutes")
    hours = int(seconds // 3600)
    if hours > LARGEST_CARDINAL:
        return Amount(LARGEST_CARDINAL, "hours", more=True)
    return Amount(hours, "hours")


@dataclass(frozen=True)
class Summary:
    """The alert about one case: ``number`` (7 digits), ``site_id``, the clock that
    ran out, and the business time ``left`` until the case's resolution due
    (negative once overrun)."""

    number: str
    site_id: str
    clock: str
    left: timedelta

    @property
    def text(self) -> str:
        """The same in writing, for the attempt log and the case history."""
        amount = time_left(self.left)
        when = (
            "vence ahora" if amount.now
            else f"vence en {amount.text}" if self.left > timedelta(0)
            else f"venció hace {amount.text}"
        )  # fmt: skip
        reason = " Aún no tiene primera respuesta." if self.clock == FIRST_RESPONSE else ""
        return f"Caso {self.number}, sede {self.site_id}, {when}.{reason}"

    def phrases(self, sound: Callable[[str], str], known_prompts: Collection[str]) -> list[Phrase]:
        """What the call says, ending with "Marque uno…". ``sound``: a prompt id's
        media URI (``ivr.line.LineVoice.sound``); ``known_prompts``: the line's
        prompt ids (the site's name is said only if the line has it)."""
        amount = time_left(self.left)
        phrases = [Phrase("prompt", INTRO), Phrase("digits", self.number)]
        site_prompt = f"site_{self.site_id}"
        if site_prompt in known_prompts:
            phrases += [Phrase("prompt", AT_SITE), Phrase("prompt", site_prompt)]
        if amount.now:
            phrases.append(Phrase("prompt", DUE_NOW))
        else:
            lead = DUE_IN if self.left > timedelta(0) else OVERDUE_BY
            words = amount.media(sound)
            phrases += [Phrase("prompt", lead), Phrase("spoken", amount.text, tuple(words))]
        if self.clock == FIRST_RESPONSE:
            phrases.append(Phrase("prompt", NO_FIRST_RESPONSE))
        phrases.append(Phrase("prompt", PRESS_ONE))
        return phrases
