"""An agent following a script on one contact, every step stored (issue 12 §3, §4).

Over the stores (``DeskStore`` for the contact and its steps, ``ScriptStore`` for
the tree versions) and the desk config (which call types an agent's profile
takes). What it decides:

- **start**: a contact with a script position resumes there (same version, same
  node: a reload, or a hop the levels part opened with the previous level's
  position; with no step yet, its first step is stored); a contact that came from
  another (``previous_contact_id``, an escalation) with no position of its own
  takes the previous one's version and node; otherwise the live (published)
  version opens at :func:`entry_node` of the contact's facts (:func:`facts_of`
  filled in by the line's ``facts`` source). An entry whose call type the agent's
  profile does not take opens at the call types instead, with a Spanish notice (a
  resumed hop keeps its place: the previous level chose it).
- **answer**: only at the node the contact is at (else :class:`StaleNode`, 409:
  another tab or a double click moved on; the contact's version makes this hold
  under concurrent requests); an answer the node does not offer is
  :class:`WrongAnswer` (422); a call type outside the profile is
  ``AgentNotAllowed``. Each answer moves the contact's position and path labels
  (``DeskStore.set_script``) and is one ``DeskStore.record_step``: the open step
  is ended with its time (``left_at - entered_at``) and the answer given at it.
- **close**: the disposition must be one the reached procedure allows (at its
  end), or one of the tree's ``early_dispositions`` (before a procedure's end:
  the caller hung up); else :class:`DispositionRefused` (422). An empty one is
  ``DispositionRequired`` (the store's rule).

Which agent: the ops-API token's name is the agent's ``user`` in desk.yaml; a
contact belongs to the agent who answered it (another agent: ``AgentNotAllowed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.desk.config import DeskConfig
from ivr.desk.errors import AgentNotAllowed, ContactConflict, ContactNotFound, UnknownAgent
from ivr.desk.model import FINAL_STATES, Contact, Step
from ivr.desk.scripts import (
    DISPOSITION,
    ROOT,
    ScriptNode,
    ScriptTree,
    WrongAnswer,
    call_type_of,
    entry_node,
    load_tree,
    render,
    variable_values,
)
from ivr.desk.store import DeskStore, ScriptStore


class StaleNode(ContactConflict):
    """The answer is for a node the contact is no longer at (409)."""


class DispositionRefused(ValueError):
    """A disposition the reached point of the script does not allow (422, Spanish)."""


class NoScript(ValueError):
    """No published script version (422, Spanish)."""


@dataclass(frozen=True)
class ScriptView:
    """What the agent's panel shows: the node (text with the IVR values in), its
    answers, the path so far (from the stored steps, with their seconds), the
    path's labels, the dispositions allowed now, and a notice (Spanish) if any."""

    contact: Contact
    version: int
    node: ScriptNode
    text: str
    answers: tuple[dict[str, str], ...]
    steps: tuple[Step, ...]
    labels: Mapping[str, str | None]
    dispositions: tuple[dict[str, str], ...]
    notice: str | None = None
    answer_labels: Mapping[int, str] = field(default_factory=dict)  # step seq -> its answer's label

    def as_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact.id,
            "state": self.contact.state,
            "version": self.version,
            "node": {"id": self.node.id, "kind": self.node.kind, "label": self.node.label,
                     "text": self.text, "answers": list(self.answers)},
            "closing": self.node.kind == DISPOSITION,
            "path": [s.as_json() | {"answer_label": self.answer_labels.get(s.seq)} for s in self.steps],
            "labels": dict(self.labels),
            "dispositions": list(self.dispositions),
            "disposition": self.contact.disposition,
            "notice": self.notice,
        }  # fmt: skip


def facts_of(contact: Contact) -> dict[str, Any]:
    """The entry facts (``ivr.desk.scripts.ENTRY_FACTS``) of a contact: its queue,
    level, area and kind; from the screen pop it was shown (``context``) the
    segment (``segment.code``), whether a case is open (``open_case``), and the
    IVR's codes under ``ivr``: ``reason`` (the transfer reason, ``non-target``…),
    ``segment``, ``eligibility`` (``age_out_of_band:70``…), ``choice`` (the main
    menu's digit), ``path`` (flow node ids). The pop's other fields are words for
    people; a fact the pop does not carry is absent (it matches no rule)."""
    ctx: Mapping[str, Any] = contact.context or {}
    nested = ctx.get("ivr")
    ivr: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    segment = ctx.get("segment")
    facts: dict[str, Any] = {
        "queue": contact.queue, "level": contact.level, "area": contact.area, "kind": contact.kind,
        "reason": ivr.get("reason"),
        "segment": ivr.get("segment") or (segment.get("code") if isinstance(segment, Mapping) else segment),
        "eligibility": ivr.get("eligibility"),
        "choice": ivr.get("choice"),
        "path": ivr.get("path"),
        "case_open": bool(ctx.get("open_case")),
    }  # fmt: skip
    return {k: v for k, v in facts.items() if v not in (None, "", [])}


def render_data(contact: Contact) -> dict[str, Any]:
    """What a variable's ``from`` path reads: the screen pop, plus the contact's
    ``agent_name``, ``queue``, ``level`` and ``area``."""
    return {**(contact.context or {}), "agent_name": contact.agent_name,
            "queue": contact.queue, "level": contact.level, "area": contact.area}  # fmt: skip


FactsSource = Callable[[Contact], Awaitable[Mapping[str, Any]]]


class ScriptRunner:
    """``facts``: the line's source of a contact's IVR codes (``ivr.citas.script_facts``:
    the call record); they fill the facts the pop does not carry (:func:`facts_of`)."""

    def __init__(self, desk: DeskStore, scripts: ScriptStore, config: DeskConfig,
                 facts: FactsSource | None = None) -> None:  # fmt: skip
        self.desk, self.scripts, self.config, self.facts = desk, scripts, config, facts
        self._trees: dict[int, ScriptTree] = {}

    async def entry_facts(self, contact: Contact) -> dict[str, Any]:
        """The contact's own facts (:func:`facts_of`), filled in by the line's source."""
        own = facts_of(contact)
        line = await self.facts(contact) if self.facts is not None else {}
        return {**line, **own}

    async def tree(self, version: int) -> ScriptTree:
        """A version's tree, parsed once (versions never change once written)."""
        if version not in self._trees:
            found = await self.scripts.get(version)
            if found is None:
                raise NoScript(f"no existe la versión {version} del guion")
            self._trees[version] = load_tree(found.tree)
        return self._trees[version]

    def allowed_call_types(self, user: str) -> frozenset[str]:
        """The call types the agent's profile takes. Raises ``UnknownAgent``."""
        agent = self.config.agent_for_user(user)
        if agent is None:
            raise UnknownAgent(user)
        return frozenset(self.config.profile(agent.profile).call_types)

    async def _contact(self, contact_id: str, user: str) -> Contact:
        contact = await self.desk.get(contact_id)
        if contact is None:
            raise ContactNotFound(contact_id)
        agent = self.config.agent_for_user(user)
        if agent is None:
            raise UnknownAgent(user)
        if contact.agent != agent.extension:
            raise AgentNotAllowed(f"el contacto {contact_id} lo atiende otro asesor ({contact.agent_name})")
        return contact

    async def start(self, contact_id: str, user: str) -> ScriptView:
        """Open (or resume) the script of a contact. Raises ``ContactNotFound``,
        ``UnknownAgent``, ``AgentNotAllowed``, :class:`NoScript`."""
        contact = await self._contact(contact_id, user)
        allowed = self.allowed_call_types(user)
        if contact.script_version is not None and contact.script_node is not None:
            if not await self.desk.steps(contact.id):  # opened with a position (a hop): its first step
                await self._first_step(contact, contact.script_version, contact.script_node)
                contact = await self._contact(contact_id, user)
            return await self.view(contact, allowed)
        version, node_id = await self._opening(contact)
        tree = await self.tree(version)
        notice = None
        call_type = call_type_of(node_id) or tree.nodes[node_id].call_type
        if call_type is not None and call_type not in allowed:
            notice = (f"El guion abriría en «{tree.labels.get(call_type, call_type)}», que su perfil no "
                      "atiende: elija un tipo de llamada de su perfil.")  # fmt: skip
            node_id = ROOT
        await self._first_step(contact, version, node_id)
        return await self.view(await self._contact(contact_id, user), allowed, notice)

    async def _first_step(self, contact: Contact, version: int, node_id: str) -> None:
        """Move the contact to its opening node and store the first step. Of two
        tabs opening at once one does it (the contact's version), the other shows it."""
        tree = await self.tree(version)
        node = tree.node(node_id)
        try:
            await self._move(contact, version, tree, node, expected_version=contact.version)
        except ContactConflict as exc:
            if exc.state in FINAL_STATES:
                raise
            return
        await self.desk.record_step(contact.id, node_id=node.id, node_kind=node.kind,
                                    label=node.label, agent=contact.agent)  # fmt: skip

    async def _opening(self, contact: Contact) -> tuple[int, str]:
        if contact.previous_contact_id:
            previous = await self.desk.get(contact.previous_contact_id)
            if previous and previous.script_version is not None and previous.script_node:
                tree = await self.tree(previous.script_version)
                if previous.script_node in tree.nodes:
                    return previous.script_version, previous.script_node
        live = await self.scripts.active()
        if live is None:
            raise NoScript("no hay una versión publicada del guion")
        tree = await self.tree(live.version)
        return live.version, entry_node(tree, await self.entry_facts(contact))

    async def answer(self, contact_id: str, user: str, node_id: str, answer_id: str) -> ScriptView:
        """Record the answer at ``node_id`` and move on. Raises :class:`StaleNode`,
        ``WrongAnswer``, ``AgentNotAllowed``, ``ContactConflict`` (closed)."""
        contact = await self._contact(contact_id, user)
        allowed = self.allowed_call_types(user)
        if contact.state == "closed":
            raise ContactConflict(f"el contacto {contact_id} ya está cerrado")
        if contact.script_version is None or contact.script_node is None:
            raise StaleNode(f"el guion del contacto {contact_id} no está abierto")
        if contact.script_node != node_id:
            raise StaleNode(f"el contacto ya no está en ese paso (está en {contact.script_node}); "
                            "recargue el guion")  # fmt: skip
        tree = await self.tree(contact.script_version)
        node = tree.node(node_id)
        chosen = node.answer(answer_id)
        if node.id == ROOT and answer_id not in allowed:
            raise AgentNotAllowed(f"su perfil no atiende llamadas de tipo «{chosen.label}»")
        target = tree.node(chosen.next)
        try:  # the contact's version: of two answers read at the same node, one moves on
            contact = await self._move(contact, contact.script_version, tree, target,
                                       expected_version=contact.version)  # fmt: skip
        except ContactConflict as exc:
            if exc.state in FINAL_STATES:
                raise
            raise StaleNode("el contacto cambió mientras lo veía (otra pestaña, un doble clic o "
                            "la llamada terminó): recargue el guion") from None  # fmt: skip
        await self.desk.record_step(contact.id, node_id=target.id, node_kind=target.kind,
                                    label=target.label, answered=answer_id, agent=contact.agent)  # fmt: skip
        return await self.view(contact, allowed)

    async def close(self, contact_id: str, user: str, disposition: str, note: str) -> Contact:
        """Close the contact with a disposition the script allows where it is.
        Raises :class:`DispositionRefused`, ``DispositionRequired``, ``ContactConflict``."""
        contact = await self._contact(contact_id, user)
        if disposition.strip():
            allowed = await self._dispositions(contact)
            if disposition not in {d["id"] for d in allowed}:
                offered = ", ".join(d["id"] for d in allowed) or "ninguna"
                raise DispositionRefused(f"la tipificación {disposition!r} no corresponde a este punto "
                                         f"del guion (se admiten: {offered})")  # fmt: skip
        return await self.desk.close(contact.id, disposition=disposition, note=note, agent=contact.agent)

    async def _dispositions(self, contact: Contact) -> tuple[dict[str, str], ...]:
        if contact.script_version is None or contact.script_node is None:
            live = await self.scripts.active()
            if live is None:
                return ()
            tree = await self.tree(live.version)
            ids: tuple[str, ...] = tree.early_dispositions
        else:
            tree = await self.tree(contact.script_version)
            node = tree.nodes.get(contact.script_node)
            ids = node.dispositions if node and node.kind == DISPOSITION else tree.early_dispositions
        return tuple({"id": d, "label": tree.dispositions[d]} for d in ids)

    async def _move(self, contact: Contact, version: int, tree: ScriptTree, node: ScriptNode,
                    expected_version: int | None = None) -> Contact:  # fmt: skip
        def label(path: str | None) -> str | None:
            return None if path is None else tree.labels.get(path, path)

        ct, reason, scen = node.call_type, node.reason, node.scenario
        return await self.desk.set_script(
            contact.id, version=version, node_id=node.id,
            call_type=label(ct) if ct else None,
            reason=label(f"{ct}/{reason}") if ct and reason else None,
            scenario=label(f"{ct}/{reason}/{scen}") if ct and reason and scen else None,
            procedure=label(f"procedimiento/{node.procedure}") if node.procedure else None,
            expected_version=expected_version,
        )  # fmt: skip

    async def view(self, contact: Contact, allowed: frozenset[str], notice: str | None = None) -> ScriptView:
        assert contact.script_version is not None and contact.script_node is not None
        tree = await self.tree(contact.script_version)
        node = tree.nodes.get(contact.script_node)
        if node is None:
            raise WrongAnswer(f"el guion {contact.script_version} no tiene el paso {contact.script_node}")
        answers = tuple(a.as_json() for a in node.answers if node.id != ROOT or a.id in allowed)
        labels = {"call_type": contact.call_type, "reason": contact.reason,
                  "scenario": contact.scenario, "procedure": contact.procedure}  # fmt: skip
        text = render(node.text, variable_values(tree, render_data(contact)),
                      {k: v.label for k, v in tree.variables.items()})  # fmt: skip
        steps = tuple(await self.desk.steps(contact.id))
        return ScriptView(
            contact, contact.script_version, node, text, answers, steps, labels,
            await self._dispositions(contact), notice, _answer_labels(tree, steps),
        )  # fmt: skip


def _answer_labels(tree: ScriptTree, steps: tuple[Step, ...]) -> dict[int, str]:
    """Each answered step's answer as the agent read it (the tree's label)."""
    out: dict[int, str] = {}
    for step in steps:
        node = tree.nodes.get(step.node_id)
        found = [a.label for a in node.answers if a.id == step.answer] if node else []
        if step.answer and found:
            out[step.seq] = found[0]
    return out


__all__ = ["DispositionRefused", "FactsSource", "NoScript", "ScriptRunner", "ScriptView", "StaleNode", "facts_of"]
