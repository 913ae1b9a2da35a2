"""A flow in which a caller can loop forever is refused, naming the nodes of the loop.

Rule: every node must reach an end node (transfer or hang-up). The loader
computes it backwards from the ends (``ivr.flow.loader.trapped``); the tests
check it against an independent brute force (a forward search from every
node) over random flow graphs.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.flow.loader import FlowLoader, cycle_among, silent_targets, trapped
from ivr.flow.model import targets
from ivr.yamlsrc import ConfigError

PROMPTS = {"welcome", "goodbye"}
ACTIONS = {"identify": ("found", "not_found")}
LOOP_PROBLEM = re.compile(
    r"a caller can loop forever: no path from (?P<trap>[a-z0-9_, ]+) reaches a transfer "
    r"or a hang-up \(loop: (?P<cycle>[a-z0-9_ >-]+)\)"
)


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return FlowLoader(PROMPTS, ACTIONS).load(path)


def test_observed_a_menu_whose_failure_path_loops_without_end_is_refused(tmp_path: Path) -> None:
    # `ivr flow check` accepted this: after the retries the caller went round
    # "sorry" and "again" for ever, never reaching a hang-up or an agent.
    text = """
        flow: t
        start: ask
        nodes:
          ask:
            kind: menu
            prompt: welcome
            options: {"1": bye}
            on_failure: sorry
          sorry:
            kind: play
            prompt: goodbye
            next: again
          again:
            kind: action
            action: identify
            outcomes: {found: sorry, not_found: sorry}
            on_failure: sorry
          bye: {kind: hangup}
        """
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)

    err = caught.value
    assert (err.line, err.field) == (9, "nodes.sorry")
    found = LOOP_PROBLEM.fullmatch(err.problem)
    assert found, err.problem
    assert (found["trap"], found["cycle"]) == ("sorry, again", "sorry -> again -> sorry")


def test_a_loop_with_an_exit_is_fine(tmp_path: Path) -> None:
    # Retrying loops are normal as long as some path leaves them, with or without a key.
    flow = load(
        tmp_path,
        """
        flow: t
        start: ask
        nodes:
          ask:
            kind: menu
            prompt: welcome
            options: {"1": bye, "2": ask}
            on_failure: sorry
          sorry: {kind: play, prompt: goodbye, next: again}
          again:
            kind: action
            action: identify
            outcomes: {found: ask, not_found: bye}
            on_failure: ask
          bye: {kind: transfer, reason: done}
        """,
    )
    assert flow is not None


SILENT_PROBLEM = re.compile(
    r"a caller who presses nothing loops forever: no path from (?P<trap>[a-z0-9_, ]+) reaches "
    r"a transfer or a hang-up without a key \(loop: (?P<cycle>[a-z0-9_ >-]+)\); send a "
    r"menu's or collect's on_failure out of the loop"
)


@pytest.mark.parametrize("kind", ["menu", "collect"])
def test_observed_a_silent_caller_going_round_a_menu_for_ever_is_refused(
    tmp_path: Path, kind: str
) -> None:
    # Review of issue 9: `ivr flow check` accepted this (key 1 leads out); a caller
    # who presses nothing, or an off-hook line, went round `ask` until the
    # engine's step limit, hundreds of prompts later.
    node = (
        'options: {"1": bye}' if kind == "menu" else "min_digits: 1\n            max_digits: 2\n            save_as: d\n            next: bye"
    )
    text = f"""
        flow: t
        start: hello
        nodes:
          hello: {{kind: play, prompt: welcome, next: ask}}
          ask:
            kind: {kind}
            prompt: welcome
            {node}
            on_failure: sorry
          sorry: {{kind: play, prompt: goodbye, next: ask}}
          bye: {{kind: hangup}}
        """
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)

    err = caught.value
    assert (err.line, err.field) == (5, "nodes.ask")
    found = SILENT_PROBLEM.fullmatch(err.problem)
    assert found, err.problem
    assert (found["trap"], found["cycle"]) == ("hello, ask, sorry", "ask -> sorry -> ask")


# --- the rule over random flow graphs ----------------------------------------------------------
@st.composite
def flow_graphs(draw: st.DrawFn) -> dict[str, list[str] | None]:
    """node id -> its targets, or None for an end node. n0 is not the start: the start
    (a decide node reaching every node) is added by ``flow_yaml``."""
    count = draw(st.integers(1, 9))
    ids = [f"n{i}" for i in range(count)]
    graph: dict[str, list[str] | None] = {}
    for node_id in ids:
        if draw(st.integers(0, 3)) == 0:
            graph[node_id] = None
        else:
            graph[node_id] = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))
    return graph


def flow_yaml(graph: dict[str, list[str] | None], kinds: list[str]) -> str:
    lines = ["flow: g", "start: entry", "nodes:", "  entry:", "    kind: decide",
             "    variable: x", "    default: n0", "    cases:"]  # fmt: skip
    lines += [f"      c{i}: {node_id}" for i, node_id in enumerate(graph)]
    for (node_id, out), kind in zip(graph.items(), kinds, strict=True):
        lines.append(f"  {node_id}:")
        if out is None:
            lines.append(
                "    kind: hangup" if kind != "transfer" else "    kind: transfer\n    reason: r"
            )
        elif len(out) == 1 and kind == "play":
            lines += ["    kind: play", "    prompt: welcome", f"    next: {out[0]}"]
        elif kind == "menu":
            lines += [
                "    kind: menu",
                "    prompt: welcome",
                f"    on_failure: {out[0]}",
                "    options:",
            ]
            lines += [f'      "{key}": {target}' for key, target in enumerate(out[1:], 1)] or [
                '      "9": ' + out[0]
            ]
        else:
            lines += ["    kind: decide", "    variable: y", f"    default: {out[0]}", "    cases:"]
            lines += [f"      v{key}: {target}" for key, target in enumerate(out[1:])] or [
                f"      v: {out[0]}"
            ]
    return "\n".join(lines) + "\n"  # fmt: skip


def silent_graph(graph: dict[str, list[str] | None], kinds: list[str]) -> dict[str, list[str] | None]:
    """The edges a caller who presses nothing takes: a menu node only its on_failure
    (``flow_yaml`` writes a non-end node as a menu exactly in these cases)."""
    silent: dict[str, list[str] | None] = {}
    for (node_id, out), kind in zip(graph.items(), kinds, strict=True):
        is_menu = out is not None and kind == "menu" and not (len(out) == 1 and kind == "play")
        silent[node_id] = [out[0]] if is_menu and out is not None else out
    return silent


def brute_force_trapped(graph: dict[str, list[str] | None]) -> set[str]:
    """Nodes from which a forward search finds no end node (independent of the loader)."""
    trapped_ids = set()
    for node_id in graph:
        seen, todo, ends = set(), [node_id], False
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            out = graph[current]
            if out is None:
                ends = True
                break
            todo.extend(out)
        if not ends:
            trapped_ids.add(node_id)
    return trapped_ids


GRAPHS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@GRAPHS
@given(graph=flow_graphs(), data=st.data())
def test_a_flow_loads_exactly_when_every_node_can_reach_an_end(
    tmp_path: Path, graph: dict[str, list[str] | None], data: st.DataObject
) -> None:
    kinds = data.draw(
        st.lists(st.sampled_from(["play", "menu", "decide", "transfer"]), min_size=len(graph), max_size=len(graph))
    )  # fmt: skip
    expected = brute_force_trapped(graph)
    # Every node reaches an end: then a caller who presses nothing must reach one too.
    problem, edges = LOOP_PROBLEM, graph
    if not expected:
        edges = silent_graph(graph, kinds)
        problem, expected = SILENT_PROBLEM, brute_force_trapped(edges)
    if expected and len(expected) == len(graph):
        expected.add("entry")  # nothing reaches an end: the start is trapped too
    text = flow_yaml(graph, kinds)
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    loader = FlowLoader(PROMPTS, ACTIONS)

    if not expected:
        flow = loader.load(path)
        assert trapped(flow.nodes) == []
        assert trapped(flow.nodes, silent_targets) == []
        return
    with pytest.raises(ConfigError) as caught:
        loader.load(path)
    found = problem.fullmatch(caught.value.problem)
    assert found, caught.value.problem
    named = found["trap"].split(", ")
    assert set(named) == expected
    order = ["entry", *graph]
    assert named == sorted(named, key=order.index)  # in flow order
    cycle = found["cycle"].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) <= expected
    for here, there in itertools.pairwise(cycle):
        out = edges[here] if here != "entry" else [*graph]
        assert out is not None and there in out, (here, there)  # a real cycle of the graph
    assert caught.value.field == f"nodes.{cycle[0]}"
    assert caught.value.line == text.splitlines().index(f"  {cycle[0]}:") + 1


def test_cycle_among_starts_at_the_first_node_of_the_flow() -> None:
    from ivr.flow.model import PlayNode

    nodes = {
        n: PlayNode(n, i, (), nxt)
        for i, (n, nxt) in enumerate([("a", "b"), ("b", "c"), ("c", "b")])
    }
    assert trapped(nodes) == ["a", "b", "c"]
    assert cycle_among(nodes, ["c", "a"]) == ["b", "c", "b"]
    assert all(t in nodes for node in nodes.values() for _, t in targets(node))
