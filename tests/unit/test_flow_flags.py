"""Decide nodes that read live operations flags, in the engine, the loader and the citas flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.channel import CallTransferred
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine, decision_value
from ivr.flow.model import DecideNode
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError
from tests.unit.test_flow_engine import ScriptedChannel, new_state, state_for, steps

CITAS = flow_loader().load(REPO_ROOT / "config" / "flows" / "citas.yaml")


def test_values_compare_as_text_and_booleans_as_true_false() -> None:
    assert [decision_value(v) for v in (True, False, None, 7, "agent")] == [
        "true", "false", "", "7", "agent",
    ]  # fmt: skip


@pytest.mark.parametrize(("live", "outcome"), [(True, "completed"), (False, "max_retries")])
async def test_a_flag_is_read_when_the_call_reaches_the_node(live: bool, outcome: str) -> None:
    values = {"promo_audio": live}
    decide = DecideNode("gate", 1, "", {"true": "bye"}, "failed", flag="promo_audio")
    state = state_for(ScriptedChannel(), "gate", decide)

    await FlowEngine({}, default_vdn="5550001", flags=values.__getitem__).run(state)

    assert state.record.outcome == outcome
    assert steps(state, "decision")[0] == {
        "flag": "promo_audio", "value": decision_value(live), "next": "bye" if live else "failed",
    }  # fmt: skip


@pytest.mark.parametrize("incident_vdn", ["5550002", "5550066"])
async def test_incident_mode_sends_a_new_caller_to_the_incident_queue_with_its_message(
    incident_vdn: str,
) -> None:
    # The queue is line.yaml's agent_vdn.incident, whatever it is (the flow named
    # "5550002" itself before, and a changed line.yaml did nothing).
    from dataclasses import replace
    from typing import Any, cast

    from ivr.citas.actions import CitasActions
    from ivr.citas.reference import load_reference

    shipped = load_reference()
    reference = replace(shipped, line=replace(shipped.line, vdn_incident=incident_vdn))
    actions = CitasActions(reference, cast(Any, None), cast(Any, None), cast(Any, None))
    channel = ScriptedChannel()
    state = new_state(channel, CITAS)
    flags = {"incident_mode": True}

    with pytest.raises(CallTransferred):
        engine = FlowEngine(actions.registry(), default_vdn="5550001", flags=flags.__getitem__)
        await engine.run(state)

    assert steps(state, "transfer") == [{"vdn": incident_vdn, "reason": "incident"}]
    assert ("play-no-barge", "sound:citas/incident_agents") in channel.log
    assert channel.variables["__CITAS_REASON"] == "incident"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("flag: no_such_flag", "unknown flag 'no_such_flag'"),
        ("flag: promo_audio\n    variable: segment", "exactly one of: variable, flag"),
        ("", "exactly one of: variable, flag"),
    ],
)
def test_the_loader_refuses_unknown_flags_and_ambiguous_decides(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        f"""
flow: t
start: gate
nodes:
  gate:
    kind: decide
    {body}
    cases: {{"true": bye}}
    default: bye
  bye:
    kind: hangup
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        flow_loader().load(path)
    assert problem in str(err.value) and "t.yaml" in str(err.value)


def test_the_citas_flow_names_no_vdn_so_every_transfer_follows_line_yaml() -> None:
    # The kind behind the incident queue and the general agents' VDN: a VDN the
    # flow names itself silently wins over line.yaml's agent_vdn.
    from ivr.flow.model import TransferNode

    transfers = [n for n in CITAS.nodes.values() if isinstance(n, TransferNode)]
    assert len(transfers) >= 6
    assert CITAS.agent_vdn is None
    assert [n.id for n in transfers if n.vdn is not None] == []
