"""The citas line's operations flags: names, defaults (``config/citas/``) and rules.

The platform (``ivr.ops.flags``) gives the types, the registry and the rules
machinery; this module says which flags the citas line has. The line's
registry includes the platform's own flags (``INCIDENT_FLAG``,
``BREAKER_FLAGS``), which platform code reads by name.

>>> registry = citas_flags(age_min=11, age_max=54, cups_in_scope=["890201"], sites={"norte": None})
>>> registry.get(site_closure_flag("norte")).default is None
True
>>> registry.problems({AGE_MIN: 60, AGE_MAX: 54})
['eligibility.age_min (60) quedaría por encima de eligibility.age_max (54)']
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from ivr.citas.reference import Reference
from ivr.ops.flags import (
    BREAKER_FLAGS,
    INCIDENT_FLAG,
    FlagDef,
    FlagRegistry,
    FlagRule,
    Role,
    Values,
)

SELF_SERVICE = "self_service_booking"
SMS_REDIRECT = "sms_redirect"
PROMO_AUDIO = "promo_audio"
BOOKING_DOWN_ROUTE = "booking_down_route"
AGE_MIN = "eligibility.age_min"
AGE_MAX = "eligibility.age_max"
CUPS_IN_SCOPE = "eligibility.cups_in_scope"
CALL_SURVEY = "call_survey"


def site_closure_flag(site_id: str) -> str:
    """The flag holding the date site ``site_id`` closes phone booking (``sites.yaml``)."""
    return f"site.{site_id}.phone_booking_closed_from"


def citas_flags(
    *,
    age_min: int,
    age_max: int,
    cups_in_scope: Iterable[str],
    sites: dict[str, date | None],
) -> FlagRegistry:
    """The flags of the citas line; defaults come from ``config/citas/*.yaml``.

    ``sites`` maps a site id to the date it closes phone booking (None: open).
    Raises ValueError when the defaults break a rule (``AGE_BAND``)."""
    defs = [
        FlagDef(SELF_SERVICE, "bool", True,
                "Callers can book a slot by phone. Off: callers who would be offered a slot "
                "hear a message and go to the agents."),
        FlagDef(SMS_REDIRECT, "bool", True,
                "Target callers with no slot (or whose site closed phone booking) hear the "
                "WhatsApp redirect and get an SMS with its link. Off: they go to the agents."),
        FlagDef(PROMO_AUDIO, "bool", True,
                "Play the promotional audio about the digital channels when the call starts."),
        INCIDENT_FLAG,
        FlagDef(BOOKING_DOWN_ROUTE, "enum", "whatsapp",
                "Where target callers go when the booking service fails or its circuit "
                "breaker is open (non-target callers always go to the agents).",
                choices=("whatsapp", "agent")),
        *BREAKER_FLAGS,
        FlagDef(CALL_SURVEY, "bool", False,
                "Before the goodbye of a served self-service call (booked, cancelled, "
                "rescheduled, listed), ask the caller to rate the service from 1 to 10 "
                "on the keypad (issue 11 §4; docs/cases/surveys.md)."),
        FlagDef(AGE_MIN, "int", age_min,
                "Lowest age (years, on the call's date) of the target population.",
                min_role=Role.ADMIN, group="eligibility", minimum=0, maximum=120),
        FlagDef(AGE_MAX, "int", age_max,
                "Highest age (years, on the call's date) of the target population.",
                min_role=Role.ADMIN, group="eligibility", minimum=0, maximum=120),
        FlagDef(CUPS_IN_SCOPE, "codes", sorted(set(cups_in_scope)),
                "CUPS procedure codes that can be booked by phone.",
                min_role=Role.ADMIN, group="eligibility"),
    ]  # fmt: skip
    for site_id, closed_from in sorted(sites.items()):
        defs.append(
            FlagDef(
                site_closure_flag(site_id), "date",
                closed_from.isoformat() if closed_from else None,
                f"Site {site_id}: phone booking closed from this date on (migration to the "
                "digital channels); empty means open.",
                group="sites", nullable=True,
            )
        )  # fmt: skip
    return FlagRegistry(defs, rules=(AGE_BAND,))


def _age_band(values: Values) -> str | None:
    lo, hi = values.get(AGE_MIN), values.get(AGE_MAX)
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        return f"{AGE_MIN} ({lo}) quedaría por encima de {AGE_MAX} ({hi})"
    return None


# The target population is the band age_min..age_max (config/citas/eligibility.yaml);
# an inverted band silently classes every caller as non-target.
AGE_BAND = FlagRule(
    "eligibility.age_band",
    "la edad mínima no puede superar la edad máxima",
    (AGE_MIN, AGE_MAX),
    _age_band,
)


def flag_registry(reference: Reference) -> FlagRegistry:
    """The line's operations flags; their defaults are the reference tables."""
    tables = reference.eligibility
    return citas_flags(
        age_min=tables.age_min,
        age_max=tables.age_max,
        cups_in_scope=tables.cups_in_scope,
        sites={s.id: s.phone_booking_closed_from for s in reference.sites.values()},
    )
