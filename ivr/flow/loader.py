"""Build a ``Flow`` from YAML, refusing anything the engine could trip on mid-call.

The file's structure (known fields, types, ranges, one sub-schema per node
kind) is checked first against ``ivr/schemas/flow.json``. Then what a schema
cannot say: references to nodes that do not exist, nodes no path reaches,
nodes from which no path reaches a transfer or a hang-up (a caller there
would loop forever), nodes from which a caller who presses nothing (or only
wrong keys) never reaches one (``silent_targets``: an off-hook line would go
round until the engine's step limit), prompts with no text in the prompt catalogue, actions
(or action outcomes) the controller does not provide, unknown flags,
``min_digits`` above ``max_digits``, and keys typed ahead that could reach an
action that commits (``type_ahead`` in ``ivr.flow.model``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from ivr.flow.model import (
    ActionNode,
    AnyNode,
    CollectNode,
    DecideNode,
    Flow,
    HangupNode,
    MenuNode,
    PlayNode,
    PromptPart,
    Timeouts,
    TransferNode,
    targets,
)
from ivr.schemas import FieldPath, dotted, load_checked
from ivr.yamlsrc import ConfigError, Located

PART_KINDS = ("prompt", "number", "digits", "sound", "media")
END_KINDS = (TransferNode, HangupNode)


def flow_field(path: FieldPath) -> str:
    """Field names in flow errors: ``nodes.<id>.<field>``, or ``flow.<key>`` for the rest."""
    if path and path[0] == "nodes":
        return dotted("flow")(path)
    return dotted("flow")(["flow", *path])


class _Fields:
    """Access to one schema-checked YAML mapping, with errors naming file, line and field."""

    def __init__(self, data: Located, where: str) -> None:
        self.data, self.where = data, where

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.data.file, self.data.line_of(key), f"{self.where}.{key}", problem)

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of ``key`` (types are the schema's: ``kind`` only turns an
        int into a float); ``check`` returns a problem for what the schema cannot say."""
        if key not in self.data:
            if default is ...:  # the schema requires it: only a schema/builder mismatch gets here
                raise ConfigError(
                    self.data.file, self.data.line, f"{self.where}.{key}", "is required"
                )
            return default
        value = self.data[key]
        if kind is float:
            value = float(value)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(key, problem)
        return value


class FlowLoader:
    def __init__(
        self,
        prompt_ids: Collection[str],
        actions: Mapping[str, Collection[str]],
        flags: Collection[str] = (),
        commits: Collection[str] = (),
    ) -> None:
        """``actions`` maps each action name to the outcomes it can return;
        ``flags`` names the operations flags a decide node may read; ``commits``
        names the actions that commit something for the caller (a booking)."""
        self.prompt_ids = set(prompt_ids)
        self.actions = actions
        self.flags = set(flags)
        self.commits = set(commits)

    def _known_flag(self, name: str) -> str | None:
        if name in self.flags:
            return None
        return f"unknown flag {name!r}; known: {', '.join(sorted(self.flags)) or '(none)'}"

    def load(self, path: Path) -> Flow:
        """The flow in ``path``; raises ``ConfigError`` naming file, line and field."""
        data = load_checked(path, "flow", flow_field)
        top = _Fields(data, "flow")
        name = top.get("flow", str)
        start = top.get("start", str)
        answer = top.get("answer", bool, True)
        language = top.get("language", str, "es")
        agent_vdn = top.get("agent_vdn", str, None)
        defaults = self._timeouts(top.get("timeouts", Located, None), Timeouts())
        raw_nodes = top.get("nodes", Located)
        nodes: dict[str, AnyNode] = {}
        for node_id, raw in raw_nodes.items():
            nodes[node_id] = self._node(node_id, raw, defaults)
        flow = Flow(name, str(path), start, nodes, answer, language, agent_vdn)
        self._check_graph(flow, data, raw_nodes)
        self._check_type_ahead(flow, raw_nodes)
        return flow

    def _node(self, node_id: str, raw: Located, defaults: Timeouts) -> AnyNode:
        f = _Fields(raw, f"nodes.{node_id}")
        kind = f.get("kind", str)
        line = raw.line
        node: AnyNode
        if kind == "play":
            node = PlayNode(
                node_id,
                line,
                self._parts(f, "prompt"),
                f.get("next", str),
                f.get("barge_in", bool, False),
            )
        elif kind == "menu":
            options = f.get("options", Located)
            node = MenuNode(
                node_id,
                line,
                self._parts(f, "prompt"),
                dict(options),
                f.get("on_failure", str),
                self._timeouts(f.get("timeouts", Located, None), defaults),
                f.get("retries", int, 2),
                self._parts(f, "no_input_prompt", required=False),
                self._parts(f, "invalid_prompt", required=False),
                f.get("save_as", str, None),
                f.get("type_ahead", bool, True),
            )
        elif kind == "collect":
            max_digits = f.get("max_digits", int, 1)
            node = CollectNode(
                node_id,
                line,
                self._parts(f, "prompt"),
                f.get("next", str),
                f.get("on_failure", str),
                f.get("save_as", str),
                f.get(
                    "min_digits",
                    int,
                    1,
                    check=lambda v: None if 1 <= v <= max_digits else f"must be 1-{max_digits}",
                ),
                max_digits,
                f.get("terminator", str, None),
                self._timeouts(f.get("timeouts", Located, None), defaults),
                f.get("retries", int, 2),
                self._parts(f, "no_input_prompt", required=False),
                self._parts(f, "invalid_prompt", required=False),
                f.get("sensitive", bool, False),
                f.get("type_ahead", bool, True),
            )
        elif kind == "decide":
            cases = f.get("cases", Located)
            flag = f.get("flag", str, None, check=self._known_flag)
            variable = f.get("variable", str, None)
            node = DecideNode(
                node_id,
                line,
                variable or "",
                {str(k): str(v) for k, v in cases.items()},
                f.get("default", str),
                flag,
            )
        elif kind == "action":
            action = f.get("action", str)
            if action not in self.actions:
                raise f.error(
                    "action", f"unknown action {action!r}; known: {', '.join(sorted(self.actions))}"
                )
            outcomes = f.get("outcomes", Located)
            for key in outcomes:
                if key not in self.actions[action]:
                    raise ConfigError(
                        raw.file,
                        outcomes.line_of(key),
                        f"nodes.{node_id}.outcomes.{key}",
                        f"action {action} has no such outcome; it returns: {', '.join(sorted(self.actions[action]))}",
                    )
            node = ActionNode(
                node_id,
                line,
                action,
                {str(k): str(v) for k, v in outcomes.items()},
                f.get("on_failure", str),
                dict(f.get("params", Located, Located())),
            )
        elif kind == "transfer":
            node = TransferNode(
                node_id,
                line,
                f.get("reason", str),
                self._parts(f, "prompt", required=False),
                f.get("vdn", str, None),
            )
        elif kind == "hangup":
            node = HangupNode(
                node_id,
                line,
                f.get("outcome", str, "completed"),
                self._parts(f, "prompt", required=False),
            )
        else:  # the schema knows the same kinds: only a schema/builder mismatch gets here
            raise f.error("kind", f"unknown node kind {kind!r}")
        return node

    def _parts(self, f: _Fields, key: str, *, required: bool = True) -> tuple[PromptPart, ...]:
        raw = f.get(key, (str, list), ... if required else None)
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        parts = []
        for item in items:
            kind, sep, value = item.partition(":")
            if not sep:
                kind, value = "prompt", item
            if kind not in PART_KINDS:
                raise f.error(
                    key, f"unknown part kind {kind!r} in {item!r}; known: {', '.join(PART_KINDS)}"
                )
            if kind == "prompt" and value not in self.prompt_ids:
                raise f.error(key, f"prompt {value!r} has no text in the prompt catalogue")
            parts.append(PromptPart(kind, value))
        return tuple(parts)

    def _timeouts(self, raw: Located | None, base: Timeouts) -> Timeouts:
        """``base`` with the fields ``raw`` sets (the schema checked their ranges)."""
        if raw is None:
            return base
        return Timeouts(
            float(raw.get("first_digit", base.first_digit)),
            float(raw.get("between_digits", base.between_digits)),
            float(raw.get("total", base.total)),
        )

    def _check_graph(self, flow: Flow, data: Located, raw_nodes: Located) -> None:
        if flow.start not in flow.nodes:
            raise ConfigError(
                data.file, data.line_of("start"), "flow.start", f"no node {flow.start!r}"
            )
        for node in flow.nodes.values():
            for field_name, target in targets(node):
                if target not in flow.nodes:
                    raise ConfigError(
                        data.file, node.line, f"nodes.{node.id}.{field_name}", f"no node {target!r}"
                    )
        seen, todo = set[str](), [flow.start]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(t for _, t in targets(flow.nodes[current]))
        for node_id in flow.nodes:
            if node_id not in seen:
                raise ConfigError(
                    data.file,
                    raw_nodes.line_of(node_id),
                    f"nodes.{node_id}",
                    f"unreachable from start {flow.start!r}",
                )
        trap = trapped(flow.nodes)
        if trap:
            cycle = cycle_among(flow.nodes, trap)
            raise ConfigError(
                data.file,
                raw_nodes.line_of(cycle[0]),
                f"nodes.{cycle[0]}",
                "a caller can loop forever: no path from "
                f"{', '.join(trap)} reaches a transfer or a hang-up "
                f"(loop: {' -> '.join(cycle)})",
            )
        trap = trapped(flow.nodes, silent_targets)
        if trap:
            cycle = cycle_among(flow.nodes, trap, silent_targets)
            raise ConfigError(
                data.file,
                raw_nodes.line_of(cycle[0]),
                f"nodes.{cycle[0]}",
                "a caller who presses nothing loops forever: no path from "
                f"{', '.join(trap)} reaches a transfer or a hang-up without a key "
                f"(loop: {' -> '.join(cycle)}); send a menu's or collect's "
                "on_failure out of the loop",
            )

    def _check_type_ahead(self, flow: Flow, raw_nodes: Located) -> None:
        """Refuse ``type_ahead: true`` on an input node from which a path reaches
        a committing action without another menu or collect in between."""
        for node in flow.nodes.values():
            if not isinstance(node, MenuNode | CollectNode) or not node.type_ahead:
                continue
            path = self._path_to_commit(flow, node)
            if path is None:
                continue
            raw = raw_nodes[node.id]
            assert isinstance(raw, Located)
            commit = flow.nodes[path[-1]]
            assert isinstance(commit, ActionNode)
            raise ConfigError(
                raw.file,
                raw.line_of("type_ahead") if "type_ahead" in raw else raw_nodes.line_of(node.id),
                f"nodes.{node.id}.type_ahead",
                f"keys typed ahead would reach action {commit.action!r}, which commits "
                f"({' -> '.join(path)}); set type_ahead: false",
            )

    def _path_to_commit(self, flow: Flow, start: MenuNode | CollectNode) -> list[str] | None:
        """Node ids from ``start`` to a committing action node, through no input node."""
        came_from: dict[str, str] = {}
        todo = [t for _, t in targets(start)]
        for t in todo:
            came_from.setdefault(t, start.id)
        while todo:
            current = flow.nodes[todo.pop(0)]
            if isinstance(current, ActionNode) and current.action in self.commits:
                path = [current.id]
                while path[-1] != start.id:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if isinstance(current, MenuNode | CollectNode):
                continue  # another question: keys typed ahead stop there or are its to take
            for _, nxt in targets(current):
                if nxt not in came_from:
                    came_from[nxt] = current.id
                    todo.append(nxt)
        return None


def silent_targets(node: AnyNode) -> list[tuple[str, str]]:
    """Where a caller who presses nothing, or only keys a node refuses, can go
    from ``node``: a menu's or collect's ``on_failure`` (after its retries),
    every target of any other node (``ivr.flow.model.targets``)."""
    if isinstance(node, MenuNode | CollectNode):
        return [("on_failure", node.on_failure)]
    return targets(node)


def trapped(
    nodes: Mapping[str, AnyNode],
    follow: Callable[[AnyNode], list[tuple[str, str]]] = targets,
) -> list[str]:
    """The nodes (in flow order) from which no path reaches an end node (transfer, hang-up),
    going from node to node by ``follow`` (every target, or ``silent_targets``).

    Computed backwards: the ends, then every node with a target already known
    to reach an end. Targets must exist (checked before).

    >>> from ivr.flow.model import HangupNode, PlayNode
    >>> loop = {"a": PlayNode("a", 1, (), "b"), "b": PlayNode("b", 2, (), "a"),
    ...         "c": PlayNode("c", 3, (), "d"), "d": HangupNode("d", 4)}
    >>> trapped(loop)
    ['a', 'b']
    """
    comes_from: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for node in nodes.values():
        for _, target in follow(node):
            comes_from[target].add(node.id)
    can_end = {node.id for node in nodes.values() if isinstance(node, END_KINDS)}
    todo = list(can_end)
    while todo:
        for previous in comes_from[todo.pop()]:
            if previous not in can_end:
                can_end.add(previous)
                todo.append(previous)
    return [node_id for node_id in nodes if node_id not in can_end]


def cycle_among(
    nodes: Mapping[str, AnyNode],
    trap: Collection[str],
    follow: Callable[[AnyNode], list[tuple[str, str]]] = targets,
) -> list[str]:
    """A cycle inside ``trap`` (from ``trapped`` with the same ``follow``), first node
    repeated at the end, starting from its node that comes first in the flow.

    Every node but an end has a target, and a trapped node's targets are all
    trapped, so walking from any trapped node must come back on itself.
    """
    at: dict[str, int] = {}
    walk: list[str] = []
    current = next(iter(trap))
    while current not in at:
        at[current] = len(walk)
        walk.append(current)
        current = follow(nodes[current])[0][1]
    cycle = walk[at[current] :]
    order = list(nodes)
    first = min(range(len(cycle)), key=lambda i: order.index(cycle[i]))
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def load_flows(directory: Path, loader: FlowLoader) -> dict[str, Flow]:
    flows: dict[str, Flow] = {}
    for path in sorted(directory.glob("*.yaml")):
        flow = loader.load(path)
        if flow.name in flows:
            raise ConfigError(
                str(path), 1, "flow", f"name {flow.name!r} also used by {flows[flow.name].file}"
            )
        flows[flow.name] = flow
    if not flows:
        raise ConfigError(str(directory), None, "flows", "no flow files (*.yaml)")
    return flows
