"""``type_ahead`` on menu and collect nodes: a flow in which a typed-ahead key could reach an
action that commits is refused at load, naming file, line and node (issue 9 §1)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.citas.actions import COMMITS
from ivr.controller import flow_loader
from ivr.flow.loader import FlowLoader
from ivr.flow.nodes import CollectNode, MenuNode
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

PROMPTS = {"welcome", "goodbye"}
ACTIONS = {"book": ("booked", "taken"), "lookup": ("found", "none")}
CITAS = REPO_ROOT / "config" / "flows" / "citas.yaml"


def flow(nodes: str) -> str:
    body = textwrap.indent(textwrap.dedent(nodes).strip("\n"), "  ")
    return f"flow: t\nstart: ask\nnodes:\n{body}\n  bye: {{kind: hangup}}\n"


def load(tmp_path: Path, text: str, commits: frozenset[str] = frozenset({"book"})) -> object:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return FlowLoader(PROMPTS, ACTIONS, commits=commits).load(path)


def menu(type_ahead: str = "", to: str = "commit") -> str:
    extra = f"\n    type_ahead: {type_ahead}" if type_ahead else ""
    return f"""
ask:
    kind: menu
    prompt: welcome
    options: {{"1": {to}, "2": bye}}
    on_failure: bye{extra}
"""


COMMIT = """
commit:
    kind: action
    action: book
    outcomes: {booked: bye, taken: bye}
    on_failure: bye
"""
LOOKUP_THEN_COMMIT = """
via:
    kind: action
    action: lookup
    outcomes: {found: say, none: bye}
    on_failure: bye
say:
    kind: play
    prompt: welcome
    next: gate
gate:
    kind: decide
    variable: x
    cases: {"a": commit}
    default: bye
"""
CONFIRM = """
confirm:
    kind: menu
    prompt: welcome
    options: {"1": commit}
    on_failure: bye
    type_ahead: false
"""
COLLECT_TO_COMMIT = """
ask:
    kind: collect
    prompt: welcome
    save_as: code
    next: commit
    on_failure: bye
"""

# (nodes, the path the error names) for flows that must be refused
REFUSED = {
    "menu option straight to the commit (default true)": (menu() + COMMIT, "ask -> commit"),
    "menu with type_ahead: true": (menu("true") + COMMIT, "ask -> commit"),
    "through an action, a play and a decide": (
        menu(to="via") + LOOKUP_THEN_COMMIT + COMMIT,
        "ask -> via -> say -> gate -> commit",
    ),
    "a collect whose entry commits": (COLLECT_TO_COMMIT + COMMIT, "ask -> commit"),
}
# flows that load: no type-ahead where it matters, or another question in between
ACCEPTED = {
    "type_ahead: false on the committing menu": menu("false") + COMMIT,
    "another menu without type-ahead in between": menu(to="confirm") + CONFIRM + COMMIT,
    "type-ahead far from any commit": menu(to="via") + LOOKUP_THEN_COMMIT.replace("commit", "bye"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_type_ahead_that_reaches_a_commit_is_refused(tmp_path: Path, name: str) -> None:
    nodes, path = REFUSED[name]
    text = flow(nodes)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    err = caught.value
    assert err.file == str(tmp_path / "t.yaml")
    assert err.field == "nodes.ask.type_ahead"
    # The line of the type_ahead field when written, else the node's own line.
    needle = "type_ahead: true" if "type_ahead: true" in text else "ask:"
    assert (
        err.line == text.splitlines().index(next(x for x in text.splitlines() if needle in x)) + 1
    )
    assert f"({path})" in str(err) and "'book'" in str(err) and "type_ahead: false" in str(err)


@pytest.mark.parametrize("name", ACCEPTED)
def test_type_ahead_away_from_commits_loads(tmp_path: Path, name: str) -> None:
    load(tmp_path, flow(ACCEPTED[name]))


def test_without_committing_actions_any_type_ahead_loads(tmp_path: Path) -> None:
    load(tmp_path, flow(menu() + COMMIT), commits=frozenset())


def test_type_ahead_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be bool, got str"):
        load(tmp_path, flow(menu('"no"') + COMMIT))


def test_type_ahead_is_read_on_menus_and_collects(tmp_path: Path) -> None:
    loaded = load(tmp_path, flow(menu(to="confirm") + CONFIRM + COMMIT))
    nodes = loaded.nodes  # type: ignore[attr-defined]
    assert isinstance(nodes["ask"], MenuNode) and nodes["ask"].type_ahead is True
    assert isinstance(nodes["confirm"], MenuNode) and nodes["confirm"].type_ahead is False
    text = flow(
        COLLECT_TO_COMMIT.replace("on_failure: bye", "on_failure: bye\n    type_ahead: false")
        + COMMIT
    )
    collect = load(tmp_path, text).nodes["ask"]  # type: ignore[attr-defined]
    assert isinstance(collect, CollectNode) and collect.type_ahead is False


def test_the_citas_line_commits_by_booking_and_its_offer_takes_no_type_ahead() -> None:
    # Issue 10 §2: cancelling and moving an appointment commit too; issue 11: filing a case.
    assert COMMITS == frozenset(
        {"book_slot", "cancel_appointment", "move_appointment", "file_case"}
    )
    nodes = flow_loader().load(CITAS).nodes
    for name in ("offer_slot", "confirm_cancel", "case_consent", "case_email_voice"):
        assert isinstance(nodes[name], MenuNode) and nodes[name].type_ahead is False, name
    for name in ("main_menu", "offer_cancel", "offer_reschedule"):  # another menu follows
        assert isinstance(nodes[name], MenuNode) and nodes[name].type_ahead is True, name


def test_the_citas_flow_with_type_ahead_on_its_offer_is_refused(tmp_path: Path) -> None:
    # The regression: the flow as it was before issue 9 is refused, naming the offer.
    text = CITAS.read_text(encoding="utf-8")
    assert "    type_ahead: false" in text
    path = tmp_path / "citas.yaml"
    path.write_text(
        "\n".join(x for x in text.splitlines() if "type_ahead: false" not in x), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        flow_loader().load(path)
    assert caught.value.field == "nodes.offer_slot.type_ahead"
    # Accepting books, or, when rescheduling (issue 10 §2), moves the appointment.
    assert "(offer_slot -> accept_route -> " in str(caught.value)


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ("offer_slot", "offer_slot -> accept_route -> "),
        ("confirm_cancel", "confirm_cancel -> cancel_appointment"),
    ],
)
def test_each_committing_menu_of_the_citas_flow_needs_its_type_ahead_off(
    tmp_path: Path, node: str, path: str
) -> None:
    lines = CITAS.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"  {node}:")
    end = next(i for i in range(start + 1, len(lines)) if "type_ahead: false" in lines[i])
    flow_path = tmp_path / "citas.yaml"
    flow_path.write_text("\n".join(lines[:end] + lines[end + 1 :]), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        flow_loader().load(flow_path)
    assert caught.value.field == f"nodes.{node}.type_ahead"
    assert f"({path}" in str(caught.value)
