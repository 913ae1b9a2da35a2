"""The hidden eligibility variables, and the segment they decide. Never spoken.

Target population: age in the band on the call's date, no excluding risk
marking, the CUPS in scope, the plan in scope. A target caller whose site has
closed phone booking (migration to digital channels, "cápita") is sent to the
digital channels instead of being offered a slot by phone.

>>> from datetime import date
>>> from ivr.citas.reference import EligibilityTables
>>> tables = EligibilityTables(11, 54, frozenset({"890201"}), frozenset({"PBS"}), frozenset({"gestante"}))
>>> decide(age=30, risk=frozenset(), cups="890201", plan="PBS", phone_booking_open=True, tables=tables).route
'target_self_service'
>>> decide(age=70, risk=frozenset(), cups="890201", plan="PBS", phone_booking_open=True, tables=tables).reasons
('age_out_of_band:70',)
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.citas.reference import EligibilityTables


@dataclass(frozen=True)
class Eligibility:
    segment: str  # target | non_target
    route: str  # target_self_service | target_digital | non_target
    reasons: tuple[str, ...]  # why not target (empty for target), plus site status


def decide(
    *,
    age: int,
    risk: frozenset[str],
    cups: str,
    plan: str,
    phone_booking_open: bool,
    tables: EligibilityTables,
) -> Eligibility:
    reasons: list[str] = []
    if not tables.age_min <= age <= tables.age_max:
        reasons.append(f"age_out_of_band:{age}")
    for marking in sorted(risk & tables.risk_markings_excluded):
        reasons.append(f"risk_marking:{marking}")
    if cups not in tables.cups_in_scope:
        reasons.append(f"cups_not_in_scope:{cups}")
    if plan not in tables.plans_in_scope:
        reasons.append(f"plan_not_in_scope:{plan}")
    if reasons:
        return Eligibility("non_target", "non_target", tuple(reasons))
    if not phone_booking_open:
        return Eligibility("target", "target_digital", ("site_phone_booking_closed",))
    return Eligibility("target", "target_self_service", ())
