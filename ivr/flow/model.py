"""The call flow as typed objects. Built from YAML by ``ivr.flow.loader``.

Node kinds are few and small: play, menu, collect, decide, action, transfer,
hangup. Every node that can fail names where the call goes after the last
failure (``on_failure``): there is no empty ``Goto`` after the last retry.

Type-ahead (``type_ahead`` on menu and collect nodes, default true): keys the
caller pressed before the node's prompt (answering a previous question early,
or a burst) answer this node, so an expert caller need not wait for prompts.
With ``type_ahead: false`` the engine discards them on entering the node
(``CallChannel.flush_digits``; the rules are ``ivr.dtmf``'s). The loader refuses
``type_ahead: true`` on a node from which a path reaches an action that commits
(``COMMITS`` of the line, e.g. booking a slot) without another input node in
between: a key meant for an earlier prompt never commits anything (issue 9 §1).
The default is true because type-ahead is what callers of a menu tree expect,
and the one place it is dangerous cannot be written: the flow file says
``type_ahead: false`` exactly where a commit is one key away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Timeouts:
    """The three digit timeouts, in seconds, kept separate and named.

    first_digit: silence allowed after the prompt before the first key;
    between_digits: silence allowed between two keys;
    total: the whole entry, from the end of the prompt.
    """

    first_digit: float = 5.0
    between_digits: float = 3.0
    total: float = 20.0


@dataclass(frozen=True)
class PromptPart:
    """One piece of what the caller hears.

    ``prompt:<id>`` is one of our recorded prompts; ``number:``, ``digits:`` and
    ``sound:`` are Asterisk media (numbers are said with its Spanish sounds).
    ``media:{name}`` plays the list of media URIs an action left in a variable
    (a slot's date, time, doctor and site). ``{name}`` is replaced by the
    call's variable at play time.
    """

    kind: str  # prompt | number | digits | sound | media
    value: str

    @property
    def variables(self) -> list[str]:
        return _VAR.findall(self.value)


@dataclass(frozen=True)
class Node:
    id: str
    line: int


@dataclass(frozen=True)
class PlayNode(Node):
    prompts: tuple[PromptPart, ...]
    next: str
    barge_in: bool = False


@dataclass(frozen=True)
class MenuNode(Node):
    prompts: tuple[PromptPart, ...]
    options: Mapping[str, str]
    on_failure: str
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 2
    no_input_prompts: tuple[PromptPart, ...] = ()
    invalid_prompts: tuple[PromptPart, ...] = ()
    save_as: str | None = None
    type_ahead: bool = True  # keys pressed before its prompt answer it (module docstring)


@dataclass(frozen=True)
class CollectNode(Node):
    prompts: tuple[PromptPart, ...]
    next: str
    on_failure: str
    save_as: str
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 2
    no_input_prompts: tuple[PromptPart, ...] = ()
    invalid_prompts: tuple[PromptPart, ...] = ()
    sensitive: bool = False  # a document number: recorded masked
    type_ahead: bool = True  # keys pressed before its prompt answer it (module docstring)


@dataclass(frozen=True)
class DecideNode(Node):
    """Picks the next node by a call variable, or by a live operations flag.

    A flag is read at the moment the call reaches the node, so a change
    applies to the next decision; booleans compare as ``"true"``/``"false"``.
    """

    variable: str
    cases: Mapping[str, str]
    default: str
    flag: str | None = None  # when set, the value comes from this flag, not a variable


@dataclass(frozen=True)
class ActionNode(Node):
    """Runs a named action (Python) whose result picks the next node."""

    action: str
    outcomes: Mapping[str, str]
    on_failure: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferNode(Node):
    reason: str
    prompts: tuple[PromptPart, ...] = ()
    vdn: str | None = None


@dataclass(frozen=True)
class HangupNode(Node):
    outcome: str = "completed"
    prompts: tuple[PromptPart, ...] = ()


AnyNode = PlayNode | MenuNode | CollectNode | DecideNode | ActionNode | TransferNode | HangupNode


def targets(node: AnyNode) -> list[tuple[str, str]]:
    """(field, node id) pairs this node can go to."""
    match node:
        case PlayNode():
            return [("next", node.next)]
        case MenuNode():
            return [(f"options.{k}", v) for k, v in node.options.items()] + [
                ("on_failure", node.on_failure)
            ]
        case CollectNode():
            return [("next", node.next), ("on_failure", node.on_failure)]
        case DecideNode():
            return [(f"cases.{k}", v) for k, v in node.cases.items()] + [("default", node.default)]
        case ActionNode():
            return [(f"outcomes.{k}", v) for k, v in node.outcomes.items()] + [
                ("on_failure", node.on_failure)
            ]
        case TransferNode() | HangupNode():
            return []


@dataclass(frozen=True)
class Flow:
    name: str
    file: str
    start: str
    nodes: Mapping[str, AnyNode]
    answer: bool = True
    language: str = "es"
    agent_vdn: str | None = None

    def node(self, node_id: str) -> AnyNode:
        return self.nodes[node_id]
