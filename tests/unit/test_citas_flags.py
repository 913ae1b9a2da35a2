"""The eligibility parameters and site closures operations own reach the decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from ivr.channel import QUEUE_KEY
from ivr.citas.actions import CitasActions
from ivr.citas.affiliates import Affiliate
from ivr.citas.flags import AGE_MAX, AGE_MIN, CUPS_IN_SCOPE, flag_registry, site_closure_flag
from ivr.citas.reference import Reference, load_reference
from ivr.controller import flow_loader
from ivr.flow.engine import CallState
from ivr.ops.flags import StaticFlags
from ivr.settings import REPO_ROOT
from tests.unit.test_flow_engine import ScriptedChannel, new_state

REFERENCE = load_reference()
TODAY = date(2026, 11, 23)
FLOW = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")


def affiliate(age: int = 30, site: str = "norte") -> Affiliate:
    return Affiliate("1012345678", "3001234567", "Prueba", date(TODAY.year - age, 1, 1), "PBS",
                     site, frozenset())  # fmt: skip


async def eligibility(
    flags: dict[str, Any], who: Affiliate, reference: Reference = REFERENCE
) -> tuple[str, CallState]:
    tz = ZoneInfo(reference.line.timezone)
    actions = CitasActions(
        reference, cast(Any, None), cast(Any, None), cast(Any, None),
        flags=StaticFlags(flag_registry(reference), flags),
        clock=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=tz),
    )  # fmt: skip
    state = new_state(ScriptedChannel(), FLOW, cups="890201")
    state.variables["_affiliate"] = who
    return await actions.evaluate_eligibility(state, {}), state


async def route(flags: dict[str, Any], who: Affiliate) -> tuple[str, list[str]]:
    result, state = await eligibility(flags, who)
    return result, list(state.variables["eligibility_reasons"])


@pytest.mark.parametrize(("age", "segment", "vdn"), [
    (30, "target", "5550001"), (60, "non_target", "5550003"),
])  # fmt: skip
async def test_eligibility_annotates_the_vdn_it_chose_for_a_rescue(
    age: int, segment: str, vdn: str
) -> None:
    """A rescue after eligibility goes where the flow would have sent the caller:
    line.yaml's ``agent_vdn.non_target`` for a non-target caller (here apart from
    the default, as a deployment may set it), the default for a target one."""
    line = replace(REFERENCE.line, vdn_default="5550001", vdn_non_target="5550003")
    _, state = await eligibility({}, affiliate(age), replace(REFERENCE, line=line))

    annotated = await state.channel.annotated()
    assert (annotated["segment"], annotated[QUEUE_KEY]) == (segment, vdn)
    assert state.variables["agent_vdn"] == vdn


async def test_the_defaults_are_the_reference_tables() -> None:
    assert await route({}, affiliate(30)) == ("target_self_service", [])
    assert (await route({}, affiliate(60)))[0] == "non_target"


@pytest.mark.parametrize(("flags", "expected"), [
    ({AGE_MAX: 70}, "target_self_service"),
    ({AGE_MIN: 61}, "non_target"),
])  # fmt: skip
async def test_operations_move_the_age_band_live(flags: dict[str, Any], expected: str) -> None:
    assert (await route(flags, affiliate(60 if AGE_MAX in flags else 30)))[0] == expected


async def test_a_cups_taken_out_of_scope_makes_the_caller_non_target() -> None:
    result, reasons = await route({CUPS_IN_SCOPE: ["890301"]}, affiliate(30))
    assert result == "non_target" and reasons == ["cups_not_in_scope:890201"]


@pytest.mark.parametrize(("closed_from", "expected"), [
    ("2026-11-23", "target_digital"),   # closes today
    ("2026-11-24", "target_self_service"),
    (None, "target_self_service"),
])  # fmt: skip
async def test_a_site_closure_date_sends_target_callers_to_digital(
    closed_from: str | None, expected: str
) -> None:
    flags = {site_closure_flag("norte"): closed_from}
    assert (await route(flags, affiliate(30, "norte")))[0] == expected


async def test_reopening_a_migrated_site_brings_phone_booking_back() -> None:
    assert (await route({}, affiliate(30, "centro")))[0] == "target_digital"  # closed in YAML
    assert (await route({site_closure_flag("centro"): None}, affiliate(30, "centro")))[0] == (
        "target_self_service"
    )
