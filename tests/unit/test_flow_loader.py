"""FlowLoader on valid flows: the real smoke flow, node kinds, timeout inheritance."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from ivr.flow.loader import FlowLoader, MenuCheck, load_flows
from ivr.flow.model import PromptPart, PromptTexts, Timeouts, chat_text
from ivr.flow.nodes import (
    ActionNode,
    CollectNode,
    DecideNode,
    HangupNode,
    MenuNode,
    MenuOption,
    PlayNode,
    TransferNode,
)
from ivr.prompts import PromptText, load_prompt_texts
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

FLOWS_DIR = REPO_ROOT / "config" / "flows"
REAL_PROMPTS = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml").keys()
PROMPTS = {"welcome", "goodbye", "no_input_retry", "invalid_option", "agent_transfer"}
ACTIONS = {"identify": ("found", "not_found")}


def write(tmp_path: Path, body: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def loader() -> FlowLoader:
    return FlowLoader(PROMPTS, ACTIONS)


def test_real_smoke_flow_loads_with_the_real_prompt_catalogue() -> None:
    flow = FlowLoader(REAL_PROMPTS, {}).load(FLOWS_DIR / "smoke.yaml")

    assert (flow.name, flow.start, flow.answer, flow.language) == ("smoke", "welcome", True, "es")
    assert flow.file == str(FLOWS_DIR / "smoke.yaml")
    assert set(flow.nodes) == {"welcome", "confirm", "no_input", "bye"}
    welcome = flow.node("welcome")
    assert isinstance(welcome, CollectNode)
    assert welcome.prompts == (PromptPart("prompt", "smoke_welcome"),)
    assert (welcome.save_as, welcome.max_digits, welcome.min_digits) == ("smoke_digit", 1, 1)
    assert (welcome.next, welcome.on_failure, welcome.retries) == ("confirm", "no_input", 1)
    assert welcome.no_input_prompts == (PromptPart("prompt", "no_input_retry"),)
    assert welcome.timeouts == Timeouts(first_digit=5.0, between_digits=3.0, total=10.0)
    confirm = flow.node("confirm")
    assert isinstance(confirm, PlayNode)
    assert confirm.prompts[1] == PromptPart("digits", "{smoke_digit}")
    assert confirm.prompts[1].variables == ["smoke_digit"]
    no_input = flow.node("no_input")
    assert isinstance(no_input, HangupNode) and no_input.outcome == "no_input"


def test_load_flows_keys_flows_by_name(tmp_path: Path) -> None:
    # A copy: other flows in config/flows may need actions this test does not offer.
    (tmp_path / "smoke.yaml").write_bytes((FLOWS_DIR / "smoke.yaml").read_bytes())

    flows = load_flows(tmp_path, FlowLoader(REAL_PROMPTS, {}))

    assert list(flows) == ["smoke"]
    assert flows["smoke"].start == "welcome"


def test_every_node_kind_is_built_with_its_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow: all_kinds
        start: intro
        answer: false
        agent_vdn: "5550002"
        nodes:
          intro:
            kind: play
            prompt: [welcome, "number:{count}", "sound:beep"]
            barge_in: true
            next: main
          main:
            kind: menu
            prompt: welcome
            options: {1: who, 2: route, "#": agent}
            save_as: choice
            retries: 0
            invalid_prompt: invalid_option
            on_failure: bye
          who:
            kind: action
            action: identify
            params: {source: caller_id}
            outcomes: {found: route}
            on_failure: agent
          route:
            kind: decide
            variable: segment
            cases: {contributivo: bye, 2: agent}
            default: bye
          agent:
            kind: transfer
            reason: asked-for-agent
            prompt: agent_transfer
            vdn: "5550009"
          bye:
            kind: hangup
        """,
    )

    flow = loader().load(path)

    assert (flow.answer, flow.agent_vdn) == (False, "5550002")
    intro = flow.node("intro")
    assert isinstance(intro, PlayNode) and intro.barge_in is True
    assert intro.prompts == (
        PromptPart("prompt", "welcome"),
        PromptPart("number", "{count}"),
        PromptPart("sound", "beep"),
    )
    main = flow.node("main")
    assert isinstance(main, MenuNode)
    # YAML reads 1 and 2 as integers; the loader keys options by the key text.
    assert dict(main.options) == {
        "1": MenuOption("who"), "2": MenuOption("route"), "#": MenuOption("agent")
    }  # fmt: skip
    assert (main.save_as, main.retries, main.on_failure) == ("choice", 0, "bye")
    assert main.invalid_prompts == (PromptPart("prompt", "invalid_option"),)
    assert main.no_input_prompts == ()
    who = flow.node("who")
    assert isinstance(who, ActionNode)
    assert (who.action, dict(who.outcomes), dict(who.params)) == (
        "identify",
        {"found": "route"},
        {"source": "caller_id"},
    )
    route = flow.node("route")
    assert isinstance(route, DecideNode)
    assert dict(route.cases) == {"contributivo": "bye", "2": "agent"}
    agent = flow.node("agent")
    assert isinstance(agent, TransferNode)
    assert (agent.reason, agent.vdn) == ("asked-for-agent", "5550009")
    bye = flow.node("bye")
    assert isinstance(bye, HangupNode)
    assert (bye.outcome, bye.prompts) == (None, ())  # no outcome: kept, else "completed"


def test_timeouts_flow_defaults_then_node_overrides_per_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow: timed
        start: plain
        timeouts: {first_digit: 7, total: 30}
        nodes:
          plain:
            kind: collect
            prompt: welcome
            save_as: a
            next: between
            on_failure: bye
          between:
            kind: collect
            prompt: welcome
            save_as: b
            timeouts: {between_digits: 1.5}
            next: menu
            on_failure: bye
          menu:
            kind: menu
            prompt: welcome
            options: {1: bye}
            timeouts: {first_digit: 2}
            on_failure: bye
          bye:
            kind: hangup
        """,
    )

    flow = loader().load(path)

    plain, between, menu = flow.node("plain"), flow.node("between"), flow.node("menu")
    assert isinstance(plain, CollectNode) and isinstance(between, CollectNode)
    assert isinstance(menu, MenuNode)
    assert plain.timeouts == Timeouts(first_digit=7.0, between_digits=3.0, total=30.0)
    assert between.timeouts == Timeouts(first_digit=7.0, between_digits=1.5, total=30.0)
    assert menu.timeouts == Timeouts(first_digit=2.0, between_digits=3.0, total=30.0)


def test_without_flow_timeouts_nodes_get_the_model_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow: untimed
        start: ask
        nodes:
          ask: {kind: collect, prompt: welcome, save_as: a, next: bye, on_failure: bye}
          bye: {kind: hangup}
        """,
    )

    ask = loader().load(path).node("ask")

    assert isinstance(ask, CollectNode)
    assert ask.timeouts == Timeouts()


def test_a_collect_node_can_be_marked_sensitive(tmp_path: Path) -> None:
    # model.CollectNode.sensitive: a document number is kept off the call record.
    path = write(
        tmp_path,
        """
        flow: doc
        start: ask
        nodes:
          ask:
            kind: collect
            prompt: welcome
            save_as: document
            max_digits: 12
            terminator: "#"
            sensitive: true
            next: bye
            on_failure: bye
          bye: {kind: hangup}
        """,
    )

    ask = loader().load(path).node("ask")

    assert isinstance(ask, CollectNode)
    assert (ask.sensitive, ask.terminator, ask.max_digits) == (True, "#", 12)


def test_load_flows_refuses_two_files_with_one_flow_name(tmp_path: Path) -> None:
    body = """
        flow: same
        start: bye
        nodes:
          bye: {kind: hangup}
        """
    write(tmp_path, body, "a.yaml")
    second = write(tmp_path, body, "b.yaml")

    with pytest.raises(ConfigError) as caught:
        load_flows(tmp_path, loader())

    err = caught.value
    assert (err.file, err.line, err.field) == (str(second), 1, "flow")
    assert f"name 'same' also used by {tmp_path / 'a.yaml'}" in str(err)


def test_load_flows_refuses_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_flows(tmp_path, loader())

    assert (caught.value.file, caught.value.field) == (str(tmp_path), "flows")
    assert "no flow files" in str(caught.value)


# --- a channel's checks of menus (issue 10 §1: the chat's WhatsApp limits) ---------------
CHECKED_MENU = """
    flow: t
    start: ask
    nodes:
      ask:
        kind: menu
        prompt: welcome
        options:
          "1": bye
          "2":
            next: bye
            title: long_title
        on_failure: bye
      bye:
        kind: hangup
"""
CATALOGUE = {
    "welcome": PromptText("welcome", "Marque 1.", chat="¿Qué desea?"),
    "long_title": PromptText("long_title", "x", chat="Un título más largo que veinticuatro"),
}


def long_titles(node: MenuNode, texts: Mapping[str, PromptTexts]) -> tuple[str, str] | None:
    for key, option in node.options.items():
        if option.title and len(chat_text(texts[option.title])) > 24:
            return f"options.{key}.title", "a list row title holds 24 characters"
    return None


def body_says_marque(node: MenuNode, texts: Mapping[str, PromptTexts]) -> str | None:
    said = " ".join(chat_text(texts[p.value]) for p in node.prompts if p.kind == "prompt")
    return "tells a chat to press keys" if "marque" in said.lower() else None


def never(node: MenuNode, texts: Mapping[str, PromptTexts]) -> None:
    return None


@pytest.mark.parametrize(
    ("checks", "needle", "field", "problem"),
    [
        ((never, long_titles), "title: long_title", "nodes.ask.options.2.title", "24 characters"),
        ((body_says_marque,), None, None, None),  # the chat text of welcome has no "marque"
        ((never,), None, None, None),
    ],
)
def test_a_channels_checks_refuse_a_menu_with_file_line_and_field(
    tmp_path: Path,
    checks: tuple[MenuCheck, ...],
    needle: str | None,
    field: str | None,
    problem: str | None,
) -> None:
    path = write(tmp_path, CHECKED_MENU)
    text = path.read_text()
    load = FlowLoader(CATALOGUE, {}, checks=checks).load

    if needle is None:
        assert isinstance(load(path).node("ask"), MenuNode)
        return
    with pytest.raises(ConfigError) as caught:
        load(path)
    line = text.splitlines().index(next(t for t in text.splitlines() if needle in t)) + 1
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(path), line, field)
    assert problem is not None and problem in caught.value.problem


def test_a_check_without_a_field_names_the_menu_node(tmp_path: Path) -> None:
    path = write(tmp_path, CHECKED_MENU)
    catalogue = {**CATALOGUE, "welcome": PromptText("welcome", "Marque 1.")}  # no chat text

    with pytest.raises(ConfigError) as caught:
        FlowLoader(catalogue, {}, checks=[body_says_marque]).load(path)

    assert (caught.value.line, caught.value.field) == (4, "nodes.ask")
    assert caught.value.problem == "tells a chat to press keys"


def test_channels_skip_to_and_titles_are_built(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow: t
        start: promo
        menu: ask
        nodes:
          promo: {kind: play, channels: [voice], prompt: welcome, next: ask}
          ask:
            kind: menu
            prompt: welcome
            options: {"1": {next: bye, title: goodbye}, "2": bye}
            on_failure: bye
          bye: {kind: hangup, channels: [chat, voice]}
        """,
    )
    flow = loader().load(path)

    promo, ask, bye = flow.node("promo"), flow.node("ask"), flow.node("bye")
    assert (promo.channels, promo.skip_to) == (("voice",), "ask")
    assert promo.runs_on("voice") and not promo.runs_on("chat")
    assert (bye.channels, bye.skip_to) == (("chat", "voice"), None) and bye.runs_on("chat")
    assert isinstance(ask, MenuNode)
    assert dict(ask.options) == {"1": MenuOption("bye", "goodbye"), "2": MenuOption("bye")}
    assert flow.menu == "ask"
