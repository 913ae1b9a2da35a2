"""FlowEngine.run over a scripted in-process CallChannel: collect, menu, hang-ups.

``ScriptedChannel`` (the voice rendering of ``ivr.voice.VoiceDialogue`` over a
scripted caller) and the helpers here are shared with test_flow_engine_routing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from ivr.channel import CallerHungUp, CallTransferred, DigitRequest, DigitResult
from ivr.flow.engine import (
    Action,
    CallState,
    FlowEngine,
)
from ivr.flow.loader import FlowLoader
from ivr.flow.model import AnyNode, Flow, PromptPart, Timeouts
from ivr.flow.nodes import CollectNode, HangupNode, MenuNode, MenuOption
from ivr.prompts import load_prompt_texts
from ivr.settings import REPO_ROOT
from ivr.store.records import CallRecord
from ivr.voice import VoiceDialogue
from tests.unit.lines import CITAS_VOICE

HANGS_UP = "hangs up"


class ScriptedChannel(VoiceDialogue):
    """A voice CallChannel whose caller follows a script: one entry per ``collect``."""

    def __init__(self, *script: DigitResult | str) -> None:
        super().__init__(CITAS_VOICE)
        self.script = list(script)
        self.log: list[tuple[str, ...]] = []
        self.requests: list[DigitRequest] = []
        self.variables: dict[str, str] = {}

    @property
    def call_id(self) -> str:
        return "1700000000.1"

    @property
    def caller_number(self) -> str | None:
        return "3001234567"

    async def answer(self) -> None:
        self.log.append(("answer",))

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        self.log.append(("play", *media) if barge_in else ("play-no-barge", *media))
        return False

    async def collect(self, request: DigitRequest) -> DigitResult:
        self.requests.append(request)
        self.log.append(("collect",))
        entry = self.script.pop(0)
        if entry == HANGS_UP:
            raise CallerHungUp(self.call_id)
        assert isinstance(entry, DigitResult)
        return entry

    def flush_digits(self) -> None:
        self.log.append(("flush",))

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        self.variables.update(variables)

    async def transfer(self, *, context: str, extension: str) -> None:
        self.log.append(("transfer", context, extension))
        raise CallTransferred(f"{self.call_id} -> {context}/{extension}")

    async def hangup(self) -> None:
        self.log.append(("hangup",))


def prompt(*ids: str) -> tuple[PromptPart, ...]:
    return tuple(PromptPart("prompt", i) for i in ids)


BYE = HangupNode("bye", 90, "completed", prompt("goodbye"))
FAILED = HangupNode("failed", 91, "max_retries", prompt("goodbye"))


def state_for(channel: ScriptedChannel, start: str, *nodes: AnyNode, **variables: str) -> CallState:
    all_nodes = {n.id: n for n in (*nodes, BYE, FAILED)}
    return new_state(channel, Flow("test", "test.yaml", start, all_nodes), **variables)


def new_state(channel: ScriptedChannel, flow: Flow, **variables: str) -> CallState:
    record = CallRecord(
        id="rec-1",
        channel_id=channel.call_id,
        flow=flow.name,
        sip_call_id="sip-1",
        caller_number=channel.caller_number,
        started_at=datetime.now(UTC),
    )
    state = CallState(channel, record, flow)
    for name, value in variables.items():
        state.set(name, value)
    return state


def steps(state: CallState, kind: str) -> list[dict[str, object]]:
    return [s.detail for s in state.record.path if s.kind == kind]


def engine(actions: Mapping[str, Action] | None = None) -> FlowEngine:
    return FlowEngine(actions or {}, default_vdn="5550001")


def collect_node(retries: int = 2, **kw: object) -> CollectNode:
    return CollectNode(
        "ask", 1, prompt("ask_document"), "bye", "failed", "document",
        min_digits=2, max_digits=4, terminator="#",
        timeouts=Timeouts(first_digit=4, between_digits=2, total=15), retries=retries,
        no_input_prompts=prompt("no_input_retry"), invalid_prompts=prompt("invalid"),
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_collect_saves_digits_and_goes_next() -> None:
    channel = ScriptedChannel(DigitResult("1234", "terminator"))
    state = state_for(channel, "ask", collect_node())

    await engine().run(state)

    assert channel.log == [
        ("answer",),
        ("play", "sound:citas/ask_document"),
        ("collect",),
        ("play-no-barge", "sound:citas/goodbye"),
        ("hangup",),
    ]
    assert channel.requests == [
        DigitRequest(max_digits=4, min_digits=2, terminator="#", first_digit_timeout=4,
                     between_digits_timeout=2, total_timeout=15)
    ]  # fmt: skip
    assert state.variables == {"document": "1234"}
    assert state.record.variables == {"document": "1234"}
    assert state.record.outcome == "completed"
    assert [s["node"] for s in steps(state, "node")] == ["ask", "bye"]
    assert steps(state, "digits") == [
        {"node": "ask", "attempt": 1, "digits": "1234", "ended_by": "terminator"}
    ]


async def test_collect_retries_with_the_matching_prompt_then_takes_on_failure() -> None:
    channel = ScriptedChannel(
        DigitResult("", "no_input"),
        DigitResult("1", "between_digits"),  # too short: min_digits is 2
        DigitResult("", "no_input"),
    )
    state = state_for(channel, "ask", collect_node(retries=2))

    await engine().run(state)

    assert channel.log[1:] == [
        ("play", "sound:citas/ask_document"),
        ("collect",),
        ("play", "sound:citas/no_input_retry"),
        ("play", "sound:citas/ask_document"),
        ("collect",),
        ("play", "sound:citas/invalid"),
        ("play", "sound:citas/ask_document"),
        ("collect",),
        # no retry prompt after the last attempt: straight to on_failure
        ("play-no-barge", "sound:citas/goodbye"),
        ("hangup",),
    ]
    assert state.record.outcome == "max_retries"
    assert "document" not in state.variables
    assert steps(state, "max_retries") == [{"node": "ask"}]
    assert [s["attempt"] for s in steps(state, "digits")] == [1, 2, 3]


async def test_collect_refuses_non_digits() -> None:
    channel = ScriptedChannel(DigitResult("12*", "complete"))
    state = state_for(channel, "ask", collect_node(retries=0))

    await engine().run(state)

    assert state.record.outcome == "max_retries"
    assert ("play", "sound:citas/invalid") not in channel.log


def menu_node(**kw: object) -> MenuNode:
    return MenuNode(
        "menu", 1, prompt("main_menu"), {"1": MenuOption("bye"), "2": MenuOption("agent")}, "failed",
        retries=1, invalid_prompts=prompt("invalid"), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_menu_routes_an_option_and_saves_it() -> None:
    agent = HangupNode("agent", 5, "agent_chosen")
    channel = ScriptedChannel(DigitResult("2", "complete"))
    state = state_for(channel, "menu", menu_node(save_as="choice"), agent)

    await engine().run(state)

    assert state.record.outcome == "agent_chosen"
    assert state.variables == {"choice": "2"}
    assert channel.requests[0].max_digits == 1


async def test_menu_invalid_key_plays_invalid_prompt_and_asks_again() -> None:
    channel = ScriptedChannel(DigitResult("9", "complete"), DigitResult("1", "complete"))
    state = state_for(channel, "menu", menu_node())

    await engine().run(state)

    assert channel.log[1:6] == [
        ("play", "sound:citas/main_menu"),
        ("collect",),
        ("play", "sound:citas/invalid"),
        ("play", "sound:citas/main_menu"),
        ("collect",),
    ]
    assert state.record.outcome == "completed"


async def test_menu_silence_twice_takes_on_failure_without_a_last_retry_prompt() -> None:
    channel = ScriptedChannel(DigitResult("", "no_input"), DigitResult("", "no_input"))
    state = state_for(channel, "menu", menu_node(no_input_prompts=prompt("no_input_retry")))

    await engine().run(state)

    plays = [entry[1] for entry in channel.log if entry[0].startswith("play")]
    assert plays == [
        "sound:citas/main_menu",
        "sound:citas/no_input_retry",
        "sound:citas/main_menu",
        "sound:citas/goodbye",
    ]
    assert state.record.outcome == "max_retries"


async def test_a_sensitive_entry_stays_off_the_call_record() -> None:
    channel = ScriptedChannel(DigitResult("1234", "terminator"))
    state = state_for(channel, "ask", collect_node(sensitive=True))

    await engine().run(state)

    assert state.variables["document"] == "1234"  # the actions still get it
    assert "document" not in state.record.variables
    recorded = [str(v) for step in state.record.path for v in step.detail.values()]
    assert not [v for v in recorded if "1234" in v]
    assert state.record.outcome == "completed"


async def test_caller_hang_up_unwinds_the_run() -> None:
    state = state_for(ScriptedChannel(HANGS_UP), "ask", collect_node())

    with pytest.raises(CallerHungUp):
        await engine().run(state)

    assert state.record.outcome is None


async def test_the_real_smoke_flow_plays_back_the_key_pressed() -> None:
    prompts = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml").keys()
    flow = FlowLoader(prompts, {}).load(REPO_ROOT / "config" / "flows" / "smoke.yaml")
    channel = ScriptedChannel(DigitResult("7", "complete"))
    state = new_state(channel, flow)

    await engine().run(state)

    # The confirmation and the goodbye in one media list (PlayNode: one playback).
    confirm = ("play-no-barge", "sound:citas/smoke_you_pressed", "digits:7", "sound:citas/goodbye")
    assert channel.log[-2:] == [confirm, ("hangup",)]
    assert state.record.variables == {"smoke_digit": "7"}
    assert state.record.outcome == "completed"


def offer_menu(**kw: object) -> MenuNode:
    return MenuNode(
        "ask", 1, prompt("slot_options"), {"1": MenuOption("bye")}, "failed", retries=1,
        invalid_prompts=prompt("invalid"), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("node", "flushed"),
    [
        (offer_menu(), False),  # type-ahead by default
        (offer_menu(type_ahead=False), True),
        (collect_node(), False),
        (collect_node(type_ahead=False), True),
    ],
)
async def test_a_node_without_type_ahead_flushes_the_keys_once_before_its_prompt(
    node: AnyNode, flushed: bool
) -> None:
    # Issue 9: keys typed before a node without type-ahead never answer it; the retry after
    # an invalid key keeps the keys the caller typed while hearing this node.
    channel = ScriptedChannel(DigitResult("9", "complete"), DigitResult("12", "terminator"))
    state = state_for(channel, "ask", node)

    await engine().run(state)

    first_prompt = next(n for n, entry in enumerate(channel.log) if entry[0] == "play")
    assert channel.log.count(("flush",)) == (1 if flushed else 0)
    if flushed:
        assert channel.log[first_prompt - 1] == ("flush",)
