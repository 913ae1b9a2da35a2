"""Build a ``Flow`` from YAML, refusing anything the engine could trip on mid-call.

Checked at load: unknown or missing fields, wrong types, unknown node kinds,
references to nodes that do not exist, nodes no path reaches, prompts with no
text in the prompt catalogue, actions (or action outcomes) the controller
does not provide, and type-ahead that could reach an action that commits
(``type_ahead`` in ``ivr.flow.model``).
"""

from __future__ import annotations

import math
import re
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
from ivr.flow.yamlsrc import ConfigError, Located, load_yaml_file

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_KEYS = re.compile(r"^[0-9*#]$")
PART_KINDS = ("prompt", "number", "digits", "sound", "media")


class _Fields:
    """Typed access to one YAML mapping, with errors naming file, line and field."""

    def __init__(self, data: Located, where: str) -> None:
        self.data, self.where, self.used = data, where, set[str]()

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.data.file, self.data.line_of(key), f"{self.where}.{key}", problem)

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ConfigError(
                    self.data.file, self.data.line, f"{self.where}.{key}", "is required"
                )
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 10**300:  # float() would raise OverflowError
                raise self.error(key, "is too large")
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = "/".join(_type_name(k) for k in kinds)
            raise self.error(key, f"must be {names}, got {_type_name(type(value))}")
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(key, problem)
        return value

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                raise self.error(key, "unknown field")


def _type_name(kind: type) -> str:
    return "mapping" if issubclass(kind, dict) else kind.__name__


def _positive(v: float) -> str | None:
    if not math.isfinite(v):
        return "must be a finite number of seconds"  # .inf would keep a silent caller forever
    return None if v > 0 else "must be greater than 0"


def _node_id(v: str) -> str | None:
    return None if _ID.match(v) else "must be a node id (lowercase letters, digits, _)"


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
        data = load_yaml_file(path)
        if not isinstance(data, Located):
            raise ConfigError(str(path), 1, "flow", "the file must be a mapping")
        top = _Fields(data, "flow")
        name = top.get("flow", str, check=_node_id)
        start = top.get("start", str, check=_node_id)
        answer = top.get("answer", bool, True)
        language = top.get("language", str, "es")
        agent_vdn = top.get("agent_vdn", str, None)
        defaults = self._timeouts(top.get("timeouts", Located, None), Timeouts(), "flow.timeouts")
        raw_nodes = top.get("nodes", Located)
        top.finish()
        nodes: dict[str, AnyNode] = {}
        for node_id, raw in raw_nodes.items():
            if not _ID.match(node_id):
                raise ConfigError(
                    data.file, raw_nodes.line_of(node_id), f"nodes.{node_id}", "bad node id"
                )
            if not isinstance(raw, Located):
                raise ConfigError(
                    data.file, raw_nodes.line_of(node_id), f"nodes.{node_id}", "must be a mapping"
                )
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
                f.get("next", str, check=_node_id),
                f.get("barge_in", bool, False),
            )
        elif kind == "menu":
            options = f.get("options", Located)
            for key, target in options.items():
                if not _KEYS.match(key) or not isinstance(target, str):
                    raise ConfigError(
                        raw.file,
                        options.line_of(key),
                        f"nodes.{node_id}.options.{key}",
                        "keys are one of 0-9 * # and values node ids",
                    )
            node = MenuNode(
                node_id,
                line,
                self._parts(f, "prompt"),
                dict(options),
                f.get("on_failure", str, check=_node_id),
                self._timeouts(
                    f.get("timeouts", Located, None), defaults, f"nodes.{node_id}.timeouts"
                ),
                f.get("retries", int, 2, check=lambda v: None if 0 <= v <= 9 else "must be 0-9"),
                self._parts(f, "no_input_prompt", required=False),
                self._parts(f, "invalid_prompt", required=False),
                f.get("save_as", str, None, check=_node_id),
                f.get("type_ahead", bool, True),
            )
        elif kind == "collect":
            max_digits = f.get(
                "max_digits", int, 1, check=lambda v: None if 1 <= v <= 32 else "must be 1-32"
            )
            node = CollectNode(
                node_id,
                line,
                self._parts(f, "prompt"),
                f.get("next", str, check=_node_id),
                f.get("on_failure", str, check=_node_id),
                f.get("save_as", str, check=_node_id),
                f.get(
                    "min_digits",
                    int,
                    1,
                    check=lambda v: None if 1 <= v <= max_digits else f"must be 1-{max_digits}",
                ),
                max_digits,
                f.get(
                    "terminator",
                    str,
                    None,
                    check=lambda v: None if v in ("#", "*") else "must be # or *",
                ),
                self._timeouts(
                    f.get("timeouts", Located, None), defaults, f"nodes.{node_id}.timeouts"
                ),
                f.get("retries", int, 2, check=lambda v: None if 0 <= v <= 9 else "must be 0-9"),
                self._parts(f, "no_input_prompt", required=False),
                self._parts(f, "invalid_prompt", required=False),
                f.get("sensitive", bool, False),
                f.get("type_ahead", bool, True),
            )
        elif kind == "decide":
            cases = f.get("cases", Located)
            flag = f.get("flag", str, None, check=self._known_flag)
            variable = f.get("variable", str, None, check=_node_id)
            if (flag is None) == (variable is None):
                raise f.error("variable", "a decide node reads exactly one of: variable, flag")
            node = DecideNode(
                node_id,
                line,
                variable or "",
                {str(k): str(v) for k, v in cases.items()},
                f.get("default", str, check=_node_id),
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
                f.get("on_failure", str, check=_node_id),
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
        else:
            raise f.error(
                "kind",
                f"unknown node kind {kind!r}; known: play, menu, collect, decide, action, transfer, hangup",
            )
        f.finish()
        return node

    def _parts(self, f: _Fields, key: str, *, required: bool = True) -> tuple[PromptPart, ...]:
        raw = f.get(key, (str, list), ... if required else None)
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        parts = []
        for item in items:
            if not isinstance(item, str) or not item:
                raise f.error(key, "each part must be non-empty text")
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
        if required and not parts:
            raise f.error(key, "needs at least one prompt")
        return tuple(parts)

    def _timeouts(self, raw: Located | None, base: Timeouts, where: str) -> Timeouts:
        if raw is None:
            return base
        f = _Fields(raw, where)
        t = Timeouts(
            f.get("first_digit", float, base.first_digit, check=_positive),
            f.get("between_digits", float, base.between_digits, check=_positive),
            f.get("total", float, base.total, check=_positive),
        )
        f.finish()
        return t

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
