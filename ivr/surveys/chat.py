"""The survey's dialogue on WhatsApp: the contact's messages while a survey waits.

Plugged into the assistant (``ivr.chat.runner.ChatRunner``, ``takers``): before
a message reaches the flow, :meth:`SurveyReplies.take` is asked; a message it
takes never starts or moves the citas flow. ::

    survey sent ── "9" / "nueve" / "8/10" ──▶ rated ── "Me atendieron rápido" ──▶ comment
        │                                     │ ("¿Desea dejar un comentario?")  (thanks)
        │                                     └── "NO" ──▶ no comment (thanks)
        └── no rating ──▶ "responda con un número del 1 al 10" (once)
                              └── no rating again ──▶ expired; that message goes to the assistant

A message is taken while the contact's survey waits (``SurveyStore.active_for``: a rating for
``RATING_TTL``, 24 h after it was sent; a comment for ``COMMENT_TTL``, 30 min
after the rating); afterwards the contact is the assistant's again. A
conversation with a person (state ``agent``) is never interrupted: the runner
asks the takers only for the bot's messages.

**An SMS survey is answered on WhatsApp.** The project's SMS gateways only send
(``ivr.sms.gateways`` has no inbound path, and every provider's inbound format
differs), so the survey's SMS carries a ``wa.me`` link whose prefilled text
names the case ("Encuesta del caso 0123456. Mi calificación es: ", no other
number in it). A first message carrying that reference, sent from the number the SMS went to (the
same rule as a call's reference, ``ivr.chat.callref``: a case number is
guessable), takes the survey over on WhatsApp, and a rating typed after it
counts at once; without one, the question is asked (not counted as a reply
without a rating).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.masking import mask_number
from ivr.surveys.replies import comment_of, is_refusal, parse_rating
from ivr.surveys.store import CaseEvents, Survey, SurveyStore, tell_case
from ivr.surveys.tables import STEP_COMMENT, STEP_RATING

logger = logging.getLogger(__name__)

ASK = "survey_case_whatsapp"  # the question, also sent by ivr.surveys.worker
ASK_COMMENT = "survey_ask_comment"
RETRY = "survey_retry"
THANKS = "survey_thanks"
PROMPTS = (ASK, ASK_COMMENT, RETRY, THANKS)
NO_RATING_LIMIT = 2
"""Replies without a rating a survey takes: the first gets a reminder, the second
ends the survey and goes to the assistant (the person wants something else)."""

_REFERENCE = re.compile(r"encuesta\D{0,24}?(\d{7})\b", re.IGNORECASE)


def find_survey_reference(text: str) -> tuple[str, str] | None:
    """(case number, the text after the reference) of an SMS link's prefilled message.

    >>> find_survey_reference("Encuesta del caso 0123456. Mi calificación es: 9")
    ('0123456', '. Mi calificación es: 9')
    >>> find_survey_reference("Hola") is None
    True
    """
    found = _REFERENCE.search(text)
    if found is None:
        return None
    return found.group(1), text[found.end() :]


@dataclass(frozen=True)
class SurveyReplies:
    """Takes survey replies. ``texts``: prompt id -> chat text (``PROMPTS``)."""

    store: SurveyStore
    texts: Mapping[str, str]
    case_events: CaseEvents | None = None

    async def take(self, wa_id: str, message_id: str, text: str | None) -> list[str] | None:
        """The replies to send if the message answers ``wa_id``'s survey, else None
        (the message is the assistant's). Raises ``StoreUnavailable``."""
        body = text or ""
        linked = find_survey_reference(body)
        # The SMS went to "+57…", WhatsApp says "57…": the same number, both forms.
        survey = await self.store.active_for([wa_id, f"+{wa_id}"])
        if survey is None:
            if linked is not None:
                logger.info("survey reference %s from %s: no survey waits for this number",
                            linked[0], mask_number(wa_id))  # fmt: skip
            return None
        if linked is not None:
            body = linked[1]  # the link's prefilled text: what follows it is the reply
            if survey.step == STEP_RATING and parse_rating(body) is None:
                # The link's text alone: the question, not counted as a reply without a rating.
                return [self.texts[ASK].format(number=survey.case_number or "")]
        if survey.last_message_id == message_id:
            return self._replies_for(survey)  # a replayed turn: the same replies (same keys)
        if survey.step == STEP_RATING:
            return await self._rating(survey, message_id, body)
        if survey.step == STEP_COMMENT:
            comment = None if is_refusal(body) else comment_of(body) or None
            await self.store.comment(survey.id, comment, message_id=message_id)
            logger.info("survey %s: %s", survey.id, "comment" if comment else "no comment")
            return [self.texts[THANKS]]
        return None

    async def _rating(self, survey: Survey, message_id: str, body: str) -> list[str] | None:
        rating = parse_rating(body)
        if rating is not None:
            await self.store.rate(survey.id, rating, message_id=message_id)
            await tell_case(self.case_events, survey.case_number, "survey_answered",
                            f"calificación {rating} de 10")  # fmt: skip
            logger.info("survey %s (case %s): rated %d", survey.id, survey.case_number, rating)
            return [self.texts[ASK_COMMENT]]
        if await self.store.not_a_rating(
            survey.id, message_id=message_id, give_up_after=NO_RATING_LIMIT
        ):
            logger.info("survey %s: no rating twice, back to the assistant", survey.id)
            return None
        return [self.texts[RETRY]]

    def _replies_for(self, survey: Survey) -> list[str]:
        if survey.step == STEP_COMMENT:
            return [self.texts[ASK_COMMENT]]
        if survey.step == STEP_RATING:
            return [self.texts[RETRY]]
        return [self.texts[THANKS]]
