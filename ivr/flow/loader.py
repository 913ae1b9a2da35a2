"""Build a ``Flow`` from YAML, refusing anything the engine could trip on mid-call.

The file's structure (known fields, types, ranges, one sub-schema per node
kind) is checked first against ``ivr/schemas/flow.json``; each node is then
built by its kind (``ivr.flow.nodes.KINDS``). Then what a schema cannot say:
references to nodes that do not exist, nodes no path reaches, nodes from which
no path reaches a transfer or a hang-up (a caller there would loop forever),
nodes from which a caller who presses nothing (or only wrong keys) never
reaches one (``silent_targets``: an off-hook line would go round until the
engine's step limit), prompts (and menu option titles) with no text in the
prompt catalogue, actions (or action outcomes) the controller does not provide,
unknown flags, ``min_digits`` above ``max_digits``, keys typed ahead that could
reach an action that commits (``type_ahead`` in ``ivr.flow.model``), a node for
one channel with no way through on the others (``channels`` without
``skip_to`` nor ``next``), and whatever the ``checks`` a channel adds refuse in
a menu (a chat's limits on titles and lengths).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ivr.flow.fields import Fields, line_at
from ivr.flow.model import Flow, Node, PromptPart, PromptTexts, Timeouts, targets
from ivr.flow.nodes import KINDS, ActionNode, MenuNode
from ivr.schemas import FieldPath, dotted, load_checked
from ivr.yamlsrc import ConfigError, Located, LocatedList

PART_KINDS = ("prompt", "number", "digits", "sound", "media")
CHANNELS = ("voice", "chat")

# A channel's check of one menu against the prompt catalogue: None when it is fine,
# else the problem, or (field under the node, e.g. "options.1.title", problem).
MenuCheck = Callable[[MenuNode, Mapping[str, PromptTexts]], "str | tuple[str, str] | None"]


def flow_field(path: FieldPath) -> str:
    """Field names in flow errors: ``nodes.<id>.<field>``, or ``flow.<key>`` for the rest."""
    if path and path[0] == "nodes":
        return dotted("flow")(path)
    return dotted("flow")(["flow", *path])


class FlowLoader:
    def __init__(
        self,
        prompt_ids: Collection[str],
        actions: Mapping[str, Collection[str]],
        flags: Collection[str] = (),
        commits: Collection[str] = (),
        checks: Sequence[MenuCheck] = (),
    ) -> None:
        """``prompt_ids``: the prompt catalogue's ids, or the catalogue itself
        (id -> ``PromptTexts``: then ``checks`` see the texts); ``actions`` maps
        each action name to the outcomes it can return; ``flags`` names the
        operations flags a decide node may read; ``commits`` names the actions
        that commit something for the caller (a booking); ``checks`` are run on
        every menu node (a channel's limits) and refuse it with their problem."""
        self.prompt_ids = set(prompt_ids)
        self.texts: Mapping[str, PromptTexts] = (
            prompt_ids if isinstance(prompt_ids, Mapping) else {}
        )
        self.actions = actions
        self.flags = set(flags)
        self.commits = set(commits)
        self.checks = tuple(checks)
        self._defaults = Timeouts()

    def known_flag(self, name: str) -> str | None:
        """None for a flag a decide node may read, else the problem."""
        if name in self.flags:
            return None
        return f"unknown flag {name!r}; known: {', '.join(sorted(self.flags)) or '(none)'}"

    def load(self, path: Path) -> Flow:
        """The flow in ``path``; raises ``ConfigError`` naming file, line and field."""
        data = load_checked(path, "flow", flow_field)
        top = Fields(data, "flow")
        name = top.get("flow", str)
        start = top.get("start", str)
        answer = top.get("answer", bool, True)
        language = top.get("language", str, "es")
        agent_vdn = top.get("agent_vdn", str, None)
        menu = top.get("menu", str, None)
        self._defaults = Timeouts()
        self._defaults = self.timeouts(top.get("timeouts", Located, None))
        raw_nodes = top.get("nodes", Located)
        nodes: dict[str, Node] = {}
        for node_id, raw in raw_nodes.items():
            nodes[node_id] = self._node(node_id, raw)
        flow = Flow(name, str(path), start, nodes, answer, language, agent_vdn, menu)
        if menu is not None and menu not in nodes:
            raise ConfigError(data.file, data.line_of("menu"), "flow.menu", f"no node {menu!r}")
        self._check_graph(flow, data, raw_nodes)
        self._check_type_ahead(flow, raw_nodes)
        self._check_menus(flow, raw_nodes)
        return flow

    def _node(self, node_id: str, raw: Located) -> Node:
        f = Fields(raw, f"nodes.{node_id}")
        kind = f.get("kind", str)
        if kind not in KINDS:  # the schema knows the same kinds: only a mismatch gets here
            raise f.error("kind", f"unknown node kind {kind!r}")
        node: Node = KINDS[kind].build(node_id, f, self)
        return self._channels(node, f)

    def _channels(self, node: Node, f: Fields) -> Node:
        """``node`` with its ``channels`` and ``skip_to`` (default: its ``next``)."""
        channels = tuple(f.get("channels", LocatedList, ()))
        skip_to = f.get("skip_to", str, None)
        if node.only_on and not (channels and set(channels) <= set(node.only_on)):
            raise f.error(
                "channels",
                f"a {node.kind} node runs on {', '.join(node.only_on)} only: "
                f"say channels: [{', '.join(node.only_on)}] and where the others go (skip_to)",
            )
        if not channels:
            if skip_to is not None:
                raise f.error("skip_to", "without channels nothing ever skips this node")
            return node
        if len(set(channels)) < len(channels):
            raise f.error("channels", "names a channel twice")
        if set(channels) >= set(CHANNELS):
            if skip_to is not None:
                raise f.error("skip_to", "the node runs on every channel: nothing skips it")
            return replace(node, channels=channels)
        if skip_to is None:
            skip_to = getattr(node, "next", None)
            if not isinstance(skip_to, str):
                raise f.error(
                    "channels",
                    f"a {node.kind} node for {', '.join(channels)} only needs skip_to: "
                    "where the other channels go instead",
                )
        return replace(node, channels=channels, skip_to=skip_to)

    def parts(self, f: Fields, key: str, *, required: bool = True) -> tuple[PromptPart, ...]:
        """The prompt parts of ``key`` (one part or a list); prompt ids must be in the catalogue."""
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

    def timeouts(self, raw: Located | None) -> Timeouts:
        """The flow's default timeouts with the fields ``raw`` sets (the schema checked
        their ranges)."""
        base = self._defaults
        if raw is None:
            return base
        return Timeouts(
            float(raw.get("first_digit", base.first_digit)),
            float(raw.get("between_digits", base.between_digits)),
            float(raw.get("total", base.total)),
        )

    def error_at(self, f: Fields, path: Sequence[str | int], problem: str) -> ConfigError:
        """An error at ``path`` under the mapping of ``f`` (its line, or the nearest one's)."""
        field = ".".join([f.where, *(str(k) for k in path)])
        return ConfigError(f.data.file, line_at(f.data, path), field, problem)

    def _check_menus(self, flow: Flow, raw_nodes: Located) -> None:
        """Run the channels' ``checks`` on every menu."""
        for node in flow.nodes.values():
            if not isinstance(node, MenuNode):
                continue
            for check in self.checks:
                problem = check(node, self.texts)
                if problem is None:
                    continue
                if isinstance(problem, str):
                    raise ConfigError(
                        flow.file, raw_nodes.line_of(node.id), f"nodes.{node.id}", problem
                    )
                where, what = problem
                path = [k for k in where.split(".") if k]
                raise self.error_at(Fields(raw_nodes[node.id], f"nodes.{node.id}"), path, what)

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
        # The main menu (``menu``) is entered from any question, as the start is.
        seen, todo = set[str](), [flow.start, *([flow.menu] if flow.menu else [])]
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
            if not node.asks or not getattr(node, "type_ahead", True):
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

    def _path_to_commit(self, flow: Flow, start: Node) -> list[str] | None:
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
            if current.asks:
                continue  # another question: keys typed ahead stop there or are its to take
            for _, nxt in targets(current):
                if nxt not in came_from:
                    came_from[nxt] = current.id
                    todo.append(nxt)
        return None


def silent_targets(node: Node) -> list[tuple[str, str]]:
    """Where a caller who presses nothing, or only keys a node refuses, can go
    from ``node``: a menu's or collect's ``on_failure`` (after its retries) and
    ``skip_to``, every target of any other node (``ivr.flow.model.targets``)."""
    return node.silent_targets()


def trapped(
    nodes: Mapping[str, Node],
    follow: Callable[[Node], list[tuple[str, str]]] = targets,
) -> list[str]:
    """The nodes (in flow order) from which no path reaches an end node (transfer, hang-up),
    going from node to node by ``follow`` (every target, or ``silent_targets``).

    Computed backwards: the ends, then every node with a target already known
    to reach an end. Targets must exist (checked before).

    >>> from ivr.flow.nodes import HangupNode, PlayNode
    >>> loop = {"a": PlayNode("a", 1, (), "b"), "b": PlayNode("b", 2, (), "a"),
    ...         "c": PlayNode("c", 3, (), "d"), "d": HangupNode("d", 4)}
    >>> trapped(loop)
    ['a', 'b']
    """
    comes_from: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for node in nodes.values():
        for _, target in follow(node):
            comes_from[target].add(node.id)
    can_end = {node.id for node in nodes.values() if node.ends}
    todo = list(can_end)
    while todo:
        for previous in comes_from[todo.pop()]:
            if previous not in can_end:
                can_end.add(previous)
                todo.append(previous)
    return [node_id for node_id in nodes if node_id not in can_end]


def cycle_among(
    nodes: Mapping[str, Node],
    trap: Collection[str],
    follow: Callable[[Node], list[tuple[str, str]]] = targets,
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


def flow_answers(directory: Path) -> dict[str, bool]:
    """Each flow's name -> its ``answer`` (default true), read from ``directory/*.yaml``
    without building the nodes: what the dialplan needs to answer a call before
    ``Stasis()`` (``ivr.sandbox.render``). Raises ``ConfigError`` for a file the
    schema refuses or a name used twice."""
    answers: dict[str, bool] = {}
    for path in sorted(directory.glob("*.yaml")):
        top = Fields(load_checked(path, "flow", flow_field), "flow")
        name = top.get("flow", str)
        if name in answers:
            raise ConfigError(str(path), 1, "flow", f"name {name!r} used by two flow files")
        answers[name] = top.get("answer", bool, True)
    return answers
