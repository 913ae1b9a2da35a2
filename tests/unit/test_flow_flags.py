"""Decide nodes that read live operations flags, in the engine, the loader and the citas flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.channel import CallTransferred
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine, decision_value
from ivr.flow.model import DecideNode
from ivr.flow.yamlsrc import ConfigError
from ivr.settings import REPO_ROOT
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


async def test_incident_mode_sends_a_new_caller_to_the_incident_queue_with_its_message() -> None:
    channel = ScriptedChannel()
    state = new_state(channel, CITAS)
    flags = {"incident_mode": True}

    with pytest.raises(CallTransferred):
        await FlowEngine({}, default_vdn="5550001", flags=flags.__getitem__).run(state)

    assert steps(state, "transfer") == [{"vdn": "5550002", "reason": "incident"}]
    assert ("play-no-barge", "sound:citas/incident_agents") in channel.log
    assert channel.variables["__CITAS_REASON"] == "incident"


def test_the_incident_queue_in_the_flow_is_the_line_s_incident_vdn() -> None:
    from ivr.citas.reference import load_reference

    node = CITAS.node("agent_incident")
    assert getattr(node, "vdn", None) == load_reference().line.vdn_incident


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
