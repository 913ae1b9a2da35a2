"""A bad flow file fails at load with file, line and field (never mid-call)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.flow.loader import FlowLoader
from ivr.flow.nodes import DecideNode
from ivr.yamlsrc import ConfigError, load_yaml

PROMPTS = {"welcome", "goodbye"}
ACTIONS = {"identify": ("found", "not_found")}


def flow_text(ask: str, *, top: str = "") -> str:
    """A flow whose start node ``ask`` is the given body; ``bye`` is a hang-up."""
    body = textwrap.indent(textwrap.dedent(ask).strip("\n"), "    ")
    return f"flow: t\nstart: ask\n{top}nodes:\n  ask:\n{body}\n  bye: {{kind: hangup}}\n"


def line_with(text: str, needle: str) -> int:
    lines = text.splitlines()
    found = [n for n, line in enumerate(lines, start=1) if needle in line]
    assert found, f"{needle!r} not in the test flow"
    return found[0]


def load_error(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        FlowLoader(PROMPTS, ACTIONS).load(path)
    return path, caught.value


PLAY = "kind: play\nprompt: welcome\n"
COLLECT = "kind: collect\nprompt: welcome\nsave_as: code\non_failure: bye\n"
MENU_HEAD = "kind: menu\nprompt: welcome\non_failure: bye\noptions:\n"
MENU = MENU_HEAD + "  1: bye\n"

# (flow text, text on the line the error must name, field, words of the problem)
CASES = {
    "unknown kind": (flow_text("kind: dance\nnext: bye"), "kind: dance", "nodes.ask.kind", "unknown node kind 'dance'"),
    "unknown field": (flow_text(PLAY + "nxt: bye\nnext: bye"), "nxt: bye", "nodes.ask.nxt", "unknown field"),
    "missing field": (flow_text("kind: collect\nprompt: welcome\nnext: bye\non_failure: bye"), "kind: collect", "nodes.ask.save_as", "is required"),
    "wrong type": (flow_text(COLLECT + 'next: bye\nretries: "two"'), "retries:", "nodes.ask.retries", "must be int, got str"),
    "bool is no int": (flow_text(COLLECT + "next: bye\nmax_digits: true"), "max_digits:", "nodes.ask.max_digits", "must be int, got bool"),
    "bad reference": (flow_text(PLAY + "next: nowhere"), "kind: play", "nodes.ask.next", "no node 'nowhere'"),
    "unreachable": (flow_text(PLAY + "next: bye") + "  orphan: {kind: hangup}\n", "orphan:", "nodes.orphan", "unreachable from start 'ask'"),
    "unknown prompt": (flow_text("kind: play\nprompt: [welcome, nosuch]\nnext: bye"), "nosuch", "nodes.ask.prompt", "prompt 'nosuch' has no text"),
    "unknown part kind": (flow_text("kind: play\nprompt: 'video:x'\nnext: bye"), "video", "nodes.ask.prompt", "unknown part kind 'video'"),
    "empty prompt list": (flow_text("kind: play\nprompt: []\nnext: bye"), "prompt: []", "nodes.ask.prompt", "needs at least one prompt"),
    "unknown action": (flow_text("kind: action\naction: book\noutcomes: {}\non_failure: bye"), "action: book", "nodes.ask.action", "unknown action 'book'; known: identify"),
    "outcome not offered": (flow_text("kind: action\naction: identify\noutcomes:\n  found: bye\n  maybe: bye\non_failure: bye"), "maybe:", "nodes.ask.outcomes.maybe", "action identify has no such outcome; it returns: found, not_found"),
    "duplicate key": (flow_text(PLAY + "next: bye\nnext: ask"), "next: ask", "next", "duplicate key"),
    "yaml syntax": (flow_text(PLAY + "next: bye: now"), "bye: now", "yaml", "mapping values are not allowed here"),
    "start missing": ("flow: t\nnodes:\n  bye: {kind: hangup}\n", "flow: t", "flow.start", "is required"),
    "start unknown": ("flow: t\nstart: nowhere\nnodes:\n  bye: {kind: hangup}\n", "start: nowhere", "flow.start", "no node 'nowhere'"),
    "menu key 10": (flow_text('kind: menu\nprompt: welcome\non_failure: bye\noptions:\n  1: bye\n  "10": bye'), '"10"', "nodes.ask.options.10", "keys are one of 0-9 * #"),
    "menu target not id": (flow_text("kind: menu\nprompt: welcome\non_failure: bye\noptions:\n  1: [bye]"), "1: [bye]", "nodes.ask.options.1", "values node ids"),
    "min over max": (flow_text(COLLECT + "next: bye\nmax_digits: 2\nmin_digits: 3"), "min_digits: 3", "nodes.ask.min_digits", "must be 1-2"),
    "bad terminator": (flow_text(COLLECT + "next: bye\nterminator: x"), "terminator", "nodes.ask.terminator", "must be # or *"),
    "negative flow timeout": (flow_text(PLAY + "next: bye", top="timeouts:\n  first_digit: -1\n"), "first_digit: -1", "flow.timeouts.first_digit", "must be greater than 0"),
    "zero node timeout": (flow_text(COLLECT + "next: bye\ntimeouts:\n  total: 0"), "total: 0", "nodes.ask.timeouts.total", "must be greater than 0"),
    "unknown timeout": (flow_text(COLLECT + "next: bye\ntimeouts:\n  first: 2"), "first: 2", "nodes.ask.timeouts.first", "unknown field"),
    "bad node id": (flow_text(PLAY + "next: bye") + "  Other: {kind: hangup}\n", "Other:", "nodes.Other", "bad node id"),
    "node not mapping": (flow_text(PLAY + "next: bye") + "  other: hangup\n", "other: hangup", "nodes.other", "must be a mapping"),
    # One channel only (issue 10 §1): the other channels need a way through.
    "one channel, no way through": (flow_text("kind: hangup\nchannels: [chat]"), "channels: [chat]", "nodes.ask.channels", "needs skip_to"),
    "one-channel menu, no skip_to": (flow_text(MENU + "channels: [voice]"), "channels: [voice]", "nodes.ask.channels", "a menu node for voice only needs skip_to"),
    "skip_to without channels": (flow_text(PLAY + "next: bye\nskip_to: bye"), "skip_to: bye", "nodes.ask.skip_to", "nothing ever skips"),
    "skip_to on every channel": (flow_text(PLAY + "next: bye\nchannels: [chat, voice]\nskip_to: bye"), "skip_to: bye", "nodes.ask.skip_to", "runs on every channel"),
    "skip_to nowhere": (flow_text(PLAY + "next: bye\nchannels: [voice]\nskip_to: nowhere"), "kind: play", "nodes.ask.skip_to", "no node 'nowhere'"),
    "unknown channel": (flow_text(PLAY + "next: bye\nchannels: [sms]"), "channels: [sms]", "nodes.ask.channels[0]", "a channel is voice or chat"),
    "channel twice": (flow_text(PLAY + "next: bye\nchannels: [voice, voice]"), "channels: [voice, voice]", "nodes.ask.channels", "names a channel twice"),
    "no channels": (flow_text(PLAY + "next: bye\nchannels: []"), "channels: []", "nodes.ask.channels", "names at least one channel"),
    # Menu options with a chat title, and the main menu.
    "option title unknown": (flow_text(MENU_HEAD + "  1: {next: bye, title: nosuch}"), "title: nosuch", "nodes.ask.options.1.title", "prompt 'nosuch' has no text"),
    "option title on its line": (flow_text(MENU_HEAD + "  1:\n    next: bye\n    title: nosuch"), "title: nosuch", "nodes.ask.options.1.title", "prompt 'nosuch' has no text"),
    "option without next": (flow_text(MENU_HEAD + "  1: {title: welcome}"), "1: {title: welcome}", "nodes.ask.options.1.next", "an option needs next"),
    "option unknown field": (flow_text(MENU_HEAD + "  1: {next: bye, label: welcome}"), "1: {next: bye", "nodes.ask.options.1.label", "unknown field; an option has next"),
    "option a list": (flow_text(MENU_HEAD + "  1: [bye]"), "1: [bye]", "nodes.ask.options.1", "values node ids or {next: node id, title: prompt id}"),
    "option next nowhere": (flow_text(MENU_HEAD + "  1: {next: nowhere, title: welcome}"), "kind: menu", "nodes.ask.options.1", "no node 'nowhere'"),
    "main menu unknown": (flow_text(PLAY + "next: bye", top="menu: nowhere\n"), "menu: nowhere", "flow.menu", "no node 'nowhere'"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "needle", "field", "problem"), CASES.values(), ids=CASES.keys())
def test_error_names_file_line_and_field(
    tmp_path: Path, text: str, needle: str, field: str, problem: str
) -> None:
    path, err = load_error(tmp_path, text)

    line = line_with(text, needle)
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert problem in err.problem
    assert str(err) == f"{path}:{line}: {field}: {err.problem}"


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "- just\n- a list\n")

    assert (err.file, err.line, err.field) == (str(path), 1, "flow")


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        FlowLoader(PROMPTS, ACTIONS).load(missing)

    assert (caught.value.file, caught.value.line, caught.value.field) == (
        str(missing),
        None,
        "file",
    )
    assert str(caught.value).startswith(f"{missing}: file: cannot read")


def test_located_mappings_remember_key_lines() -> None:
    data = load_yaml("a: 1\nnested:\n  b: 2\n\n  c: 3\n", "mem.yaml")

    assert (data.file, data.line) == ("mem.yaml", 1)
    assert data.line_of("nested") == 2
    assert (data["nested"].line_of("b"), data["nested"].line_of("c")) == (3, 5)
    assert data["nested"].line_of("absent") == 3  # falls back to the mapping's own line


def test_yes_and_no_case_keys_do_not_become_true_and_false(tmp_path: Path) -> None:
    # YAML 1.1 reads unquoted yes/no as booleans. The loader turns them into the
    # text "True"/"False", so a caller's answer "yes" silently takes the
    # default branch. It must either keep the key as written or refuse it.
    text = flow_text("kind: decide\nvariable: answer\ncases:\n  yes: bye\n  no: bye\ndefault: bye")
    path = tmp_path / "yesno.yaml"
    path.write_text(text, encoding="utf-8")

    try:
        flow = FlowLoader(PROMPTS, ACTIONS).load(path)
    except ConfigError as exc:
        assert exc.line == line_with(text, "yes: bye")
        return
    node = flow.node("ask")
    assert isinstance(node, DecideNode)
    assert set(node.cases) == {"yes", "no"}


def test_a_node_reached_only_as_the_flows_main_menu_is_reachable(tmp_path: Path) -> None:
    """The main menu (``menu:``) is entered from any question (a chat's "menú"), as
    the start is: what it leads to is reachable; a node it does not lead to is not."""
    menu_only = "  home: {kind: play, prompt: welcome, next: after}\n  after: {kind: hangup}\n"
    path = tmp_path / "menu.yaml"
    path.write_text(flow_text(PLAY + "next: bye", top="menu: home\n") + menu_only)
    assert FlowLoader(PROMPTS, ACTIONS).load(path).menu == "home"

    orphan = flow_text(PLAY + "next: bye", top="menu: home\n") + menu_only
    _, error = load_error(tmp_path, orphan + "  orphan: {kind: hangup}\n")
    assert (error.field, error.problem) == ("nodes.orphan", "unreachable from start 'ask'")
