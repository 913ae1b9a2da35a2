"""The script tree's values: node ids, nodes, answers, entry rules (pure).

See :mod:`ivr.desk.scripts` for the tree's shape and rules; built only by
:func:`ivr.desk.scripts.load_tree` (``ivr.desk.script_rules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ROOT = "inicio"
PROCEDURES = "procedimiento"
CLOSE = "cierre"
CONTINUE = "continuar"
CHOICE, TEXT, QUESTION, DISPOSITION = "choice", "text", "question", "disposition"

# What an entry rule's `when` may test: fact -> what it is (docs/desk/scripts.md).
ENTRY_FACTS: dict[str, str] = {
    "reason": "el motivo con el que el IVR transfirió (non-target, incident, invalid-input…)",
    "segment": "el segmento del llamante (target, non_target, unknown)",
    "eligibility": "por qué no es población objetivo (age_out_of_band, plan_not_in_scope, "
    "risk_marking, cups_not_in_scope, site_phone_booking_closed)",
    "choice": "la opción del menú principal del IVR (1 agendar, 2 consultar, 3 cancelar, 4 reprogramar)",
    "path": "los nodos del flujo del IVR por los que pasó",
    "case_open": "si tiene un caso abierto (true/false)",
    "queue": "la cola que contestó",
    "level": "el nivel de servicio de la cola (1, 2, 3)",
    "area": "el área de la cola (recepcion, tecnico, clinico, comercial)",
    "kind": "voz o chat (voice, chat)",
}

VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
BRACES = re.compile(r"[{}]")


class WrongAnswer(ValueError):
    """An answer the node does not offer, or a node the tree does not have (Spanish)."""


@dataclass(frozen=True)
class Answer:
    id: str
    label: str
    next: str  # the node it leads to

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label}


@dataclass(frozen=True)
class ScriptNode:
    """One place an agent stands. ``kind``: ``choice`` (pick a call type, reason
    or scenario), ``text``, ``question``, ``disposition`` (the procedure's end).
    ``call_type``…``procedure``: the ids of the path this node lies on
    (``procedure`` only on procedure nodes; ``call_type`` None on procedure nodes
    and the root: a procedure is shared)."""

    id: str
    kind: str
    label: str
    text: str = ""
    answers: tuple[Answer, ...] = ()
    call_type: str | None = None
    reason: str | None = None
    scenario: str | None = None
    procedure: str | None = None
    dispositions: tuple[str, ...] = ()

    def answer(self, answer_id: str) -> Answer:
        for answer in self.answers:
            if answer.id == answer_id:
                return answer
        offered = ", ".join(a.id for a in self.answers) or "ninguna"
        raise WrongAnswer(f"el paso {self.id} no tiene la respuesta {answer_id!r} (tiene: {offered})")


@dataclass(frozen=True)
class Variable:
    label: str
    source: str  # dotted path into the contact's data


@dataclass(frozen=True)
class EntryRule:
    when: Mapping[str, tuple[str, ...]]
    node: str


@dataclass(frozen=True)
class ScriptTree:
    """A validated tree: its nodes by id, entry rules, variables and dispositions."""

    nodes: Mapping[str, ScriptNode]
    entry: tuple[EntryRule, ...]
    variables: Mapping[str, Variable]
    dispositions: Mapping[str, str]
    early_dispositions: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)  # call type/reason/scenario/procedure path -> label

    def node(self, node_id: str) -> ScriptNode:
        """Raises :class:`WrongAnswer` for an id the tree does not have."""
        found = self.nodes.get(node_id)
        if found is None:
            raise WrongAnswer(f"el guion no tiene el paso {node_id!r}")
        return found


def call_type_of(node_id: str) -> str | None:
    """The call type a (non-procedure) node id lies under; None for the root and procedures."""
    head = node_id.split("/", 1)[0]
    return None if head in (ROOT, PROCEDURES) else head
