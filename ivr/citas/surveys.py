"""The citas line's keypad survey after a served call (issue 11 §4), switched by
the ``call_survey`` flag (off by default; ``ivr.citas.flags``).

In ``config/flows/citas.yaml`` a served ending (booked, cancelled,
rescheduled, listed) says its confirmation, then::

    call_served (params: outcome) ──▶ call_survey_gate (flag call_survey, voice only)
        └─ on ──▶ call_survey: "Califique la atención de 1 a 10…" (collect: 1-2 digits, # after one)
                     └─▶ save_call_rating ── saved ──▶ call_survey_thanks ──▶ served_goodbye
                                           ├─ retry ──▶ call_survey_range ──▶ call_survey (once)
                                           └─ out_of_range ──▶ served_goodbye (no rating)
        └─ off / chat ──▶ served_goodbye

``call_served`` sets the call's outcome *before* the survey, so a caller who
hangs up during it was still served (the record keeps ``booked``…, not
``abandoned``); ``served_goodbye`` is a hangup without ``outcome``, which keeps it.

Digits (``ivr.dtmf`` rules, the flow's timeouts): two digits end the rating,
``#`` ends one digit ("1#" is 1; "10" is 10); a lone digit also counts when
the between-digits timeout passes. No key at all: asked once more (``retries:
1``), then the goodbye without a rating. A number outside 1-10 ("0", "11"):
"la calificación va de 1 a 10" and asked once more, then the goodbye. No
comment on the phone: a recording would need storage, consent wording and
someone to listen to it; the chat survey takes written comments.

The rating is stored against the call (its record id, which is the journey
id), the case filed in the call if any (variable ``case_id``), and the agent
if any (variable ``agent``): ``ivr.surveys.store.SurveyStore.record_call_rating``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ivr.flow.engine import Action, ActionFailed, CallState
from ivr.store.db import StoreUnavailable
from ivr.surveys.store import SurveyStore

logger = logging.getLogger(__name__)

RATING_VARIABLE = "call_survey_rating"
TRIES_VARIABLE = "call_survey_tries"
MAX_TRIES = 2
"""Ratings outside 1-10 heard before the goodbye: the first is asked again, once."""

SURVEY_OUTCOMES: dict[str, tuple[str, ...]] = {
    "call_served": ("ok",),
    "save_call_rating": ("saved", "retry", "out_of_range"),
}


class CallSurveyActions:
    """The flow actions of the keypad survey. ``store``: None when the line was
    built without a database (flow-only tests): saving then fails (``on_failure``)."""

    def __init__(self, store: SurveyStore | None) -> None:
        self.store = store

    def registry(self) -> dict[str, Action]:
        return {"call_served": self.call_served, "save_call_rating": self.save_call_rating}

    async def call_served(self, state: CallState, params: Mapping[str, object]) -> str:
        """Set the call's outcome now (``params.outcome``, e.g. ``booked``): the caller
        was served, whatever happens during the survey. Raises ``ActionFailed``
        without an outcome (a flow mistake the loader cannot see)."""
        outcome = params.get("outcome")
        if not isinstance(outcome, str) or not outcome:
            raise ActionFailed("call_served needs params.outcome")
        state.record.outcome = outcome
        return "ok"

    async def save_call_rating(self, state: CallState, params: Mapping[str, object]) -> str:
        """Store the rating typed (variable ``call_survey_rating``): ``saved``; a number
        outside 1-10 the first time: ``retry``, again: ``out_of_range``. Raises
        ``ActionFailed`` when the database cannot take it (the caller just hears
        the goodbye: a lost rating costs less than a stuck call)."""
        digits = str(state.variables.get(RATING_VARIABLE, ""))
        rating = int(digits) if digits.isdigit() else 0
        if not 1 <= rating <= 10:
            tries = int(state.variables.get(TRIES_VARIABLE, 0)) + 1
            state.set(TRIES_VARIABLE, tries)
            return "retry" if tries < MAX_TRIES else "out_of_range"
        if self.store is None:
            raise ActionFailed("no survey store")
        agent = state.variables.get("agent")
        case_id = state.variables.get("case_id")
        try:
            await self.store.record_call_rating(
                call_id=state.record.id,
                rating=rating,
                journey_id=state.record.id,
                case_id=str(case_id) if case_id else None,
                agent=str(agent) if agent else None,
            )
        except StoreUnavailable as exc:
            raise ActionFailed(f"rating not stored: {exc}") from exc
        logger.info("call %s: rated %d", state.channel.call_id, rating)
        return "saved"
