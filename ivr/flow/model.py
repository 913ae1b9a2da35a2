"""The call flow as typed objects, and what a call on it is. Built from YAML by
``ivr.flow.loader``, run by ``ivr.flow.engine``.

Besides ``Flow`` and ``Node``, this module holds the vocabulary that node kinds,
actions and the engine share (so that no flow module imports one that imports
it back): ``CallState``, ``Engine`` (what a kind's ``run`` uses of the engine),
``Suspended``/``Resume``, ``ActionFailed``, ``phrases_for``. ``ivr.flow.engine``
exports them too.

A node kind is one module of ``ivr.flow.nodes`` (play, menu, collect, decide,
action, transfer, hangup): its dataclass (a ``Node``), how the loader builds
it from YAML, where it can go (``targets``) and what it does on a call
(``run``); ``ivr.flow.nodes.KINDS`` registers them. Every node that can fail
names where the call goes after the last failure (``on_failure``): there is no
empty ``Goto`` after the last retry.

One channel only (issue 10 §1): a node with ``channels: [voice]`` (or
``[chat]``) runs only on that channel; on another the engine passes through it
to ``skip_to`` (a ``play``'s or ``collect``'s ``next`` unless it says
otherwise). The promotional audio is voice-only.

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ivr.channel import CallChannel, DigitResult, Phrase, phrase_json, phrases_from
from ivr.store.records import CallRecord

_VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class PromptTexts(Protocol):
    """One prompt of the catalogue (``ivr.prompts.PromptText``): the ``text`` voice
    says and the ``chat`` text a chat user reads instead (None: the same ``text``)."""

    @property
    def text(self) -> str: ...

    @property
    def chat(self) -> str | None: ...


def chat_text(prompt: PromptTexts) -> str:
    """What a chat shows for ``prompt``: its chat text, else its voice text."""
    return prompt.chat or prompt.text


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
    ``media:{name}`` says the ``Phrase``(s) an action left in a variable (a
    slot's date, time, doctor and site). ``{name}`` is replaced by the call's
    variable when said.
    """

    kind: str  # prompt | number | digits | sound | media
    value: str

    @property
    def variables(self) -> list[str]:
        return _VAR.findall(self.value)


@dataclass(frozen=True)
class Node:
    """What every node kind has: its ``id``, its ``line`` in the flow file, and
    ``channels`` (empty: every channel) with ``skip_to``, where another channel
    passes through it.

    A kind (``ivr.flow.nodes``) gives ``kind``, ``targets`` and ``run``; ``ends``
    marks a transfer or hang-up (a call there is over), ``asks`` a node that waits
    for the person's answer (menu, collect, ask_text), ``only_on`` the channels
    the kind can serve at all (ask_text: chat).
    """

    id: str
    line: int
    channels: tuple[str, ...] = field(default=(), kw_only=True)
    skip_to: str | None = field(default=None, kw_only=True)

    kind: ClassVar[str] = ""
    ends: ClassVar[bool] = False
    asks: ClassVar[bool] = False
    # The channels a kind can run on at all (empty: every one); the loader
    # refuses a node of such a kind whose ``channels`` name another.
    only_on: ClassVar[tuple[str, ...]] = ()

    def own_targets(self) -> list[tuple[str, str]]:
        """(field, node id) pairs the kind itself can go to."""
        raise NotImplementedError(f"node kind {type(self).__name__} has no targets")

    def silent_targets(self) -> list[tuple[str, str]]:
        """Where a person who answers nothing (or only what the node refuses) can
        go from here: every target, unless the kind says otherwise."""
        return targets(self)

    def runs_on(self, channel_kind: str) -> bool:
        return not self.channels or channel_kind in self.channels

    async def run(self, engine: Engine, state: CallState) -> str | None:
        """Do what the node does on ``state``'s call: the next node's id, or None
        when the call is over here (handed off, hung up)."""
        raise NotImplementedError(f"node kind {type(self).__name__} cannot run")


AnyNode = Node


def targets(node: Node) -> list[tuple[str, str]]:
    """(field, node id) pairs this node can go to: its kind's, and ``skip_to``."""
    own = node.own_targets()
    if node.skip_to is not None:
        own.append(("skip_to", node.skip_to))
    return own


@dataclass(frozen=True)
class Flow:
    """A flow: its nodes by id, where calls start, and ``menu``, the main menu a
    person may ask for at any question (``ivr.channel.ReturnToMenu``; None: start)."""

    name: str
    file: str
    start: str
    nodes: Mapping[str, Node]
    answer: bool = True
    language: str = "es"
    agent_vdn: str | None = None
    menu: str | None = None

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]


# --- a call on a flow: what actions and node kinds share with the engine ---------------------
@dataclass(frozen=True)
class Resume:
    """Where a suspended dialogue goes on: the input node ``node_id`` at ``attempt``
    (0-based), its prompt already sent."""

    node_id: str
    attempt: int


class Suspended(Exception):
    """The dialogue waits for the person's reply at ``node_id``, ``attempt``
    (0-based): save them with the variables, then ``run(state, resume=Resume(...))``."""

    def __init__(self, node_id: str, attempt: int) -> None:
        super().__init__(f"waiting for a reply at {node_id} (attempt {attempt + 1})")
        self.node_id = node_id
        self.attempt = attempt

    @property
    def resume(self) -> Resume:
        return Resume(self.node_id, self.attempt)


@dataclass
class CallState:
    """What the flow knows about this call; actions read and write it.

    ``resume`` is set by ``FlowEngine.run`` for the node it resumes and taken by it
    (``take_resume``); ``said_ahead`` names the hang-up node whose prompt a ``play``
    node already said in its own media list (``PlayNode.run``)."""

    channel: CallChannel
    record: CallRecord
    flow: Flow
    variables: dict[str, Any] = field(default_factory=dict)
    resume: Resume | None = field(default=None, repr=False)
    said_ahead: str | None = field(default=None, repr=False)

    def set(self, name: str, value: Any) -> None:
        """Set a variable, kept in the call record too (``Phrase``s as JSON mappings)."""
        self.variables[name] = value
        self.record.variables[name] = phrase_json(value)

    def take_resume(self, node_id: str) -> Resume | None:
        """The resume point if it is at ``node_id`` (then cleared), else None."""
        resume = self.resume
        if resume is None or resume.node_id != node_id:
            return None
        self.resume = None
        return resume


Action = Callable[[CallState, Mapping[str, object]], Awaitable[str]]
FlagLookup = Callable[[str], object]  # a live operations flag's value now


def decision_value(value: object) -> str:
    """How a variable or flag compares with a decide node's cases."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class ActionFailed(Exception):
    """An action could not decide (a service failed); the flow takes on_failure."""


class FlowLoopError(RuntimeError):
    pass


def phrases_for(part: PromptPart, variables: Mapping[str, Any]) -> list[Phrase]:
    """The phrases of one prompt part, its ``{name}``s replaced by the call's variables:
    ``prompt:x`` -> ``Phrase("prompt", "x")`` (likewise ``number``, ``digits``,
    ``sound``); ``media:{name}`` -> the phrases in that variable (``phrases_from``)."""
    if part.kind == "media":
        return phrases_from(variables.get(part.variables[0] if part.variables else part.value))
    value = part.value
    for name in part.variables:
        value = value.replace("{" + name + "}", str(variables.get(name, "")))
    return [Phrase(part.kind, value)]  # type: ignore[arg-type]  # the loader's PART_KINDS


class Engine(Protocol):
    """What a node kind's ``run`` uses of the engine (``ivr.flow.engine.FlowEngine``)."""

    @property
    def actions(self) -> Mapping[str, Action]: ...

    @property
    def flags(self) -> FlagLookup: ...

    @property
    def default_vdn(self) -> str: ...

    def phrases(self, state: CallState, parts: Sequence[PromptPart]) -> list[Phrase]:
        """The phrases of ``parts`` with the call's variables (``phrases_for``)."""
        ...

    def record_prompt(self, state: CallState, phrases: Sequence[Phrase]) -> bool:
        """Record what the person is told; False when that is nothing."""
        ...

    async def say(
        self, state: CallState, parts: Sequence[PromptPart], *, interruptible: bool
    ) -> bool:
        """Say ``parts`` on the call's channel; True when the person interrupted."""
        ...

    def title(self, prompt_id: str) -> str:
        """The chat text of a prompt (a menu option's title)."""
        ...

    def record_digits(
        self,
        state: CallState,
        node_id: str,
        attempt: int,
        result: DigitResult,
        *,
        sensitive: bool = False,
    ) -> None:
        """Record an answer (masked when ``sensitive``)."""
        ...
