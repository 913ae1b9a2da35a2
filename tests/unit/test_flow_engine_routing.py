"""FlowEngine.run: decide, action and transfer nodes, media, and runaway flows."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ivr.channel import CallTransferred, Phrase
from ivr.flow.engine import (
    MAX_STEPS,
    ActionFailed,
    CallState,
    FlowLoopError,
    phrases_for,
)
from ivr.flow.model import Flow, PromptPart
from ivr.flow.nodes import ActionNode, DecideNode, TransferNode
from tests.unit.lines import CITAS_VOICE
from tests.unit.test_flow_engine import (
    BYE,
    ScriptedChannel,
    engine,
    new_state,
    prompt,
    state_for,
    steps,
)


@pytest.mark.parametrize(("segment", "outcome"), [("1", "completed"), ("7", "max_retries")])
async def test_decide_takes_the_matching_case_or_the_default(segment: str, outcome: str) -> None:
    decide = DecideNode("route", 1, "segment", {"1": "bye"}, "failed")
    state = state_for(ScriptedChannel(), "route", decide, segment=segment)

    await engine().run(state)

    assert state.record.outcome == outcome
    expected_next = "bye" if segment == "1" else "failed"
    assert steps(state, "decision") == [
        {"variable": "segment", "value": segment, "next": expected_next}
    ]


def action_node() -> ActionNode:
    return ActionNode("who", 1, "identify", {"found": "bye"}, "failed", {"source": "ani"})


@pytest.mark.parametrize(
    ("returns", "outcome"), [("found", "completed"), ("not_in_the_flow", "max_retries")]
)
async def test_action_outcome_picks_the_next_node(returns: str, outcome: str) -> None:
    seen: list[Mapping[str, object]] = []

    async def identify(state: CallState, params: Mapping[str, object]) -> str:
        seen.append(params)
        state.set("affiliate_id", "A-1")
        return returns

    state = state_for(ScriptedChannel(), "who", action_node())

    await engine({"identify": identify}).run(state)

    assert seen == [{"source": "ani"}]
    assert state.record.outcome == outcome
    assert state.record.variables["affiliate_id"] == "A-1"
    assert steps(state, "action")[0]["outcome"] == returns


async def test_action_failed_takes_on_failure() -> None:
    async def identify(state: CallState, params: Mapping[str, object]) -> str:
        raise ActionFailed("affiliates service timed out")

    state = state_for(ScriptedChannel(), "who", action_node())

    await engine({"identify": identify}).run(state)

    assert state.record.outcome == "max_retries"
    assert steps(state, "action") == [
        {"action": "identify", "outcome": "failed", "error": "affiliates service timed out"}
    ]


async def test_transfer_sets_context_variables_and_hands_over() -> None:
    channel = ScriptedChannel()
    transfer = TransferNode("agent", 1, "asked-for-agent", prompt("agent_transfer"))
    state = state_for(channel, "agent", transfer, segment="contributivo", affiliate_id="A-77")

    with pytest.raises(CallTransferred):
        await engine().run(state)

    assert channel.variables == {
        "__CITAS_REASON": "asked-for-agent",
        "__CITAS_SEGMENT": "contributivo",
        "__CITAS_AFFILIATE": "A-77",
    }
    assert channel.log[-2:] == [
        ("play-no-barge", "sound:citas/agent_transfer"),
        ("transfer", CITAS_VOICE.agent_context, "5550001"),
    ]
    assert state.record.outcome == "transferred"
    assert steps(state, "transfer") == [{"vdn": "5550001", "reason": "asked-for-agent"}]


async def test_transfer_without_segment_says_unknown_and_uses_the_node_vdn() -> None:
    channel = ScriptedChannel()
    state = state_for(channel, "agent", TransferNode("agent", 1, "no-id", vdn="5550009"))

    with pytest.raises(CallTransferred):
        await engine().run(state)

    assert channel.variables == {"__CITAS_REASON": "no-id", "__CITAS_SEGMENT": "unknown"}
    assert channel.log[-1] == ("transfer", CITAS_VOICE.agent_context, "5550009")


def test_phrases_for_substitutes_variables() -> None:
    assert phrases_for(PromptPart("digits", "{smoke_digit}"), {"smoke_digit": 7}) == [
        Phrase("digits", "7")
    ]
    assert phrases_for(PromptPart("prompt", "goodbye"), {}) == [Phrase("prompt", "goodbye")]
    assert phrases_for(PromptPart("number", "{n}"), {}) == [Phrase("number", "")]


async def test_a_loop_without_end_stops_at_max_steps() -> None:
    spin = DecideNode("spin", 1, "never_set", {}, "spin")
    state = state_for(ScriptedChannel(), "spin", spin)

    with pytest.raises(FlowLoopError, match=f"ran {MAX_STEPS} steps"):
        await engine().run(state)

    assert len(steps(state, "node")) == MAX_STEPS


async def test_no_answer_when_the_flow_says_so() -> None:
    channel = ScriptedChannel()
    state = new_state(channel, Flow("test", "t.yaml", "bye", {"bye": BYE}, answer=False))

    await engine().run(state)

    assert channel.log == [("play-no-barge", "sound:citas/goodbye"), ("hangup",)]
    assert [s.kind for s in state.record.path] == ["node", "prompt", "hangup"]
