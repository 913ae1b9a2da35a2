"""Call scripts: the decision tree an agent follows (issue 12 §3). Pure: no I/O.

A tree (YAML in ``config/citas/scripts.yaml``, JSON in ``script_versions.tree``,
shape in ``ivr/schemas/scripts.json``; docs/desk/scripts.md) is::

    call type -> reason -> scenario (steps) -> procedure (steps) -> disposition

Steps are ``text`` (read aloud, then "Continuar") or ``question`` (answers that
branch). A step goes to its answer's ``next`` (or its own ``next``), else to the
following step, else to the end of its container: a scenario's ``procedure``, a
procedure's closing (the disposition form). ``next`` names a step of the same
container, a procedure id, or (from a scenario only) another scenario or step by
path ``call_type/reason/scenario[/step]``; in a procedure, ``cierre`` goes
straight to its end. A procedure never leaves itself, so a
path passes through exactly one procedure and ends in one of its dispositions.

Node ids (what ``desk_contacts.script_node`` and ``desk_steps.node_id`` hold)::

    inicio                                  the call types (a choice)
    agendamiento                            a call type: its reasons (a choice)
    agendamiento/sin_cupo                   a reason: its scenarios (a choice)
    agendamiento/sin_cupo/sin_smartphone/s1 a scenario's step
    procedimiento/agendar_asesor/p1         a procedure's step
    procedimiento/agendar_asesor/cierre     the procedure's end: the disposition

``inicio`` and ``procedimiento`` are reserved call-type ids, ``cierre`` a
reserved procedure step id.

>>> tree = load_tree({
...     "dispositions": {"ok": "Resuelto"},
...     "variables": {"nombre": {"label": "Nombre", "from": "affiliate.name"}},
...     "call_types": [{"id": "info", "label": "Información", "reasons": [{"id": "horario",
...         "label": "Horario", "scenarios": [{"id": "general", "label": "General",
...         "steps": [{"id": "s1", "kind": "text", "text": "Hola {nombre}."}],
...         "procedure": "informar"}]}]}],
...     "procedures": [{"id": "informar", "label": "Informar", "dispositions": ["ok"],
...         "steps": [{"id": "p1", "kind": "text", "text": "De 7 a 19."}]}]})
>>> entry_node(tree, {})
'inicio'
>>> next_node(tree, "info/horario/general/s1", CONTINUE)
'procedimiento/informar/p1'
>>> next_node(tree, "procedimiento/informar/p1", CONTINUE)
'procedimiento/informar/cierre'
>>> render("Hola {nombre}.", {"nombre": "Ana"})
'Hola Ana.'
>>> render("Hola {nombre}.", {})
'Hola [nombre: sin dato].'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ivr.desk.errors import ScriptInvalid
from ivr.schemas import schema
from ivr.yamlsrc import ConfigError, Located, LocatedList, load_yaml_file

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

_VARIABLE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_BRACES = re.compile(r"[{}]")


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


# --- the public functions ---------------------------------------------------------------------
def validate_tree(raw: Mapping[str, Any]) -> None:
    """Check a tree (parsed YAML or JSON). Raises ``ScriptInvalid(details)``: one
    Spanish message per defect, each starting with where it is (a field path for
    the shape, a node id for the rules). The check :class:`ScriptStore` runs."""
    load_tree(raw)


def load_tree(raw: Mapping[str, Any]) -> ScriptTree:
    """A :class:`ScriptTree` from a tree; raises ``ScriptInvalid`` like :func:`validate_tree`."""
    problems = list(shape_problems(raw))
    if problems:
        raise ScriptInvalid(problems)
    builder = _Builder(raw)
    tree = builder.build()
    if builder.problems:
        raise ScriptInvalid(list(dict.fromkeys(builder.problems)))
    return tree


def entry_node(tree: ScriptTree, facts: Mapping[str, Any]) -> str:
    """Where a script opens for a contact whose IVR context is ``facts``
    (:data:`ENTRY_FACTS`): the first entry rule all of whose facts match, else
    :data:`ROOT`. A rule's value matches a fact equal to it, or a tagged fact
    ``value:detail`` (``age_out_of_band:70`` matches ``age_out_of_band``); a fact
    that is a list matches if any item does; an absent fact never matches."""
    for rule in tree.entry:
        if all(_fact_matches(facts.get(name), wanted) for name, wanted in rule.when.items()):
            return tree.nodes[rule.node].id
    return ROOT


def next_node(tree: ScriptTree, node_id: str, answer_id: str) -> str:
    """The node an answer leads to. Raises :class:`WrongAnswer` (unknown node or
    answer; a disposition node has no answers: it is closed, not answered)."""
    return tree.node(node_id).answer(answer_id).next


def render(text: str, values: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """``text`` with each ``{name}`` replaced by ``values[name]``; a name with no
    value (absent, None, empty) becomes an honest ``[name: sin dato]`` (its
    label when ``labels`` has it), never an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = values.get(name)
        if found is None or str(found).strip() == "":
            return f"[{(labels or {}).get(name, name)}: sin dato]"
        return str(found)

    return _VARIABLE.sub(value, text)


def variable_values(tree: ScriptTree, data: Mapping[str, Any]) -> dict[str, str]:
    """Each variable's value read from ``data`` at its ``from`` dotted path
    (absent or empty: left out, so :func:`render` shows the placeholder)."""
    out: dict[str, str] = {}
    for name, variable in tree.variables.items():
        found = lookup(data, variable.source)
        if found is not None and not isinstance(found, dict | list) and str(found).strip():
            out[name] = str(found)
    return out


def lookup(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None when any part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def call_type_of(node_id: str) -> str | None:
    """The call type a (non-procedure) node id lies under; None for the root and procedures."""
    head = node_id.split("/", 1)[0]
    return None if head in (ROOT, PROCEDURES) else head


def paths_to_dispositions(tree: ScriptTree, start: str, limit: int = 10_000) -> Iterator[list[str]]:
    """Every path of node ids from ``start`` to a disposition node, following every
    answer (depth first; at most ``limit`` paths). For tests and reports."""
    count = 0
    stack: list[list[str]] = [[start]]
    while stack and count < limit:
        path = stack.pop()
        node = tree.nodes[path[-1]]
        if node.kind == DISPOSITION:
            count += 1
            yield path
            continue
        stack.extend([*path, a.next] for a in reversed(node.answers))


# --- the shape (JSON Schema), in Spanish ------------------------------------------------------
@cache
def _shape_validator() -> Draft202012Validator:
    return Draft202012Validator(schema("scripts"))


def shape_problems(raw: Any) -> Iterator[str]:
    """The schema's errors, in Spanish, each prefixed by its field path."""
    errors = sorted(_shape_validator().iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    seen: set[str] = set()
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            path += [k for k in error.validator_value if k not in error.instance][:1]
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            path += sorted(k for k in error.instance if k not in known)[:1]
        message = f"{_field(path)}: {_spanish(error)}"
        if message not in seen:
            seen.add(message)
            yield message


def _field(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out or "guion"


def _spanish(error: ValidationError) -> str:
    keyword, value = str(error.validator), error.instance
    expected: Any = error.validator_value
    own = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if own and keyword == "pattern":
        return str(own).format(value=value)
    match keyword:
        case "required":
            return "falta este campo"
        case "additionalProperties":
            known = sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
            return "campo desconocido" + (f" (se admiten: {', '.join(known)})" if known else "")
        case "type":
            return f"se esperaba {_TYPES.get(str(expected), expected)}, no {_kind(value)}"
        case "minItems" | "minProperties":
            return "no puede estar vacío"
        case "minLength":
            return "no puede estar vacío"
        case "maxLength":
            return f"es demasiado largo (máximo {expected} caracteres)"
        case "pattern":
            if "\\S" in str(expected):
                return "no puede estar en blanco"
            return f"{value!r} no es un identificador válido (minúsculas, dígitos y _, empezando por letra; rutas con /)"
        case "enum":
            return f"debe ser uno de: {', '.join(map(str, expected))} (no {value!r})"
        case "uniqueItems":
            return "tiene elementos repetidos"
        case "not":
            return "una pregunta lleva respuestas y no 'next'; un texto lleva 'next' y no respuestas"
        case "anyOf":
            return "debe ser un valor o una lista de valores"
    return error.message


_TYPES = {"object": "un objeto", "array": "una lista", "string": "un texto", "integer": "un número entero"}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "un objeto"
    if isinstance(value, list):
        return "una lista"
    if isinstance(value, str):
        return "un texto"
    if isinstance(value, bool):  # YAML reads an unquoted no/sí/yes as a boolean
        return "un valor sí/no (escriba el texto entre comillas: \"no\")"
    return "nulo" if value is None else type(value).__name__


def _fact_matches(fact: Any, wanted: Sequence[str]) -> bool:
    if fact is None:
        return False
    items = fact if isinstance(fact, list | tuple) else [fact]
    for item in items:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if any(text == w or text.startswith(f"{w}:") for w in wanted):
            return True
    return False


# --- the rules (what a schema cannot say) -----------------------------------------------------
@dataclass
class _Container:
    """A scenario or a procedure: its steps, in order, and where it ends."""

    path: str  # node-id prefix
    where: str  # field path, for messages
    steps: list[Mapping[str, Any]]
    procedure: str | None  # scenario: its `procedure`; procedure: its own id
    is_procedure: bool
    ids: tuple[str, ...] = ()
    call_type: str | None = None
    reason: str | None = None
    scenario: str | None = None


class _Builder:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.nodes: dict[str, ScriptNode] = {}
        self.labels: dict[str, str] = {}
        self.first: dict[str, str] = {}  # scenario/procedure path -> its first node id
        self.containers: list[_Container] = []
        self.dispositions: dict[str, str] = dict(raw["dispositions"])
        self.variables = {
            name: Variable(v["label"], v["from"]) for name, v in raw.get("variables", {}).items()
        }
        self.procedures: dict[str, Mapping[str, Any]] = {}
        self.step_ids: set[str] = set()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def build(self) -> ScriptTree:
        self._procedures()
        self._call_types()
        for container in self.containers:
            self._steps(container)
        for i, name in enumerate(self.raw.get("early_dispositions", [])):
            if name not in self.dispositions:
                self.problem(f"early_dispositions[{i}]", f"la tipificación {name!r} no está definida en dispositions")
        entry = self._entry()
        if not self.problems:
            self._cycles()
        if not self.problems:
            self._reachable(entry)
        return ScriptTree(
            self.nodes, tuple(entry), self.variables, self.dispositions,
            tuple(self.raw.get("early_dispositions", [])), self.labels,
        )  # fmt: skip

    def _unique(self, items: Sequence[Mapping[str, Any]], where: str, what: str) -> list[str]:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if item["id"] in seen:
                self.problem(f"{where}[{i}]", f"{what} {item['id']!r} se repite (ya está en {where}[{seen[item['id']]}])")
            else:
                seen[item["id"]] = i
        return list(seen)

    def _procedures(self) -> None:
        raw = self.raw["procedures"]
        self._unique(raw, "procedures", "el id de procedimiento")
        for i, proc in enumerate(raw):
            pid, where = proc["id"], f"procedures[{i}] ({PROCEDURES}/{proc['id']})"
            if pid in self.procedures:
                continue
            self.procedures[pid] = proc
            path = f"{PROCEDURES}/{pid}"
            self.labels[path] = proc["label"]
            for j, disposition in enumerate(proc["dispositions"]):
                if disposition not in self.dispositions:
                    self.problem(f"{where}.dispositions[{j}]", f"la tipificación {disposition!r} no está definida en dispositions")
            self.nodes[f"{path}/{CLOSE}"] = ScriptNode(
                f"{path}/{CLOSE}", DISPOSITION, "Tipificación", "Elija la tipificación y cierre el contacto.",
                procedure=pid, dispositions=tuple(proc["dispositions"]),
            )  # fmt: skip
            self._container(_Container(path, where, proc["steps"], pid, True))

    def _call_types(self) -> None:
        call_types = self.raw["call_types"]
        for ct_id in self._unique(call_types, "call_types", "el tipo de llamada"):
            if ct_id in (ROOT, PROCEDURES):
                self.problem(f"call_types ({ct_id})", f"el id {ct_id!r} está reservado")
        root_answers = []
        for i, ct in enumerate(call_types):
            ct_path, ct_where = ct["id"], f"call_types[{i}] ({ct['id']})"
            if ct_path in self.nodes:
                continue
            self.labels[ct_path] = ct["label"]
            root_answers.append(Answer(ct["id"], ct["label"], ct_path))
            reasons = ct["reasons"]
            self._unique(reasons, f"{ct_where}.reasons", "el motivo")
            ct_answers = []
            for j, reason in enumerate(reasons):
                r_path, r_where = f"{ct_path}/{reason['id']}", f"{ct_where}.reasons[{j}] ({ct_path}/{reason['id']})"
                if r_path in self.nodes:
                    continue
                self.labels[r_path] = reason["label"]
                ct_answers.append(Answer(reason["id"], reason["label"], r_path))
                scenarios = reason["scenarios"]
                self._unique(scenarios, f"{r_where}.scenarios", "el escenario")
                r_answers = []
                for k, scen in enumerate(scenarios):
                    s_path = f"{r_path}/{scen['id']}"
                    if s_path in self.labels:
                        continue
                    self.labels[s_path] = scen["label"]
                    first = f"{s_path}/{scen['steps'][0]['id']}"
                    r_answers.append(Answer(scen["id"], scen["label"], first))
                    self._container(_Container(
                        s_path, f"{r_where}.scenarios[{k}] ({s_path})", scen["steps"], scen.get("procedure"),
                        False, call_type=ct["id"], reason=reason["id"], scenario=scen["id"],
                    ))  # fmt: skip
                self.nodes[r_path] = ScriptNode(
                    r_path, CHOICE, reason["label"], "¿Cuál es la situación?", tuple(r_answers),
                    call_type=ct["id"], reason=reason["id"],
                )  # fmt: skip
            self.nodes[ct_path] = ScriptNode(ct_path, CHOICE, ct["label"], "¿Cuál es el motivo de la llamada?",
                                             tuple(ct_answers), call_type=ct["id"])  # fmt: skip
        self.nodes[ROOT] = ScriptNode(ROOT, CHOICE, "Inicio", "¿Qué tipo de llamada es?", tuple(root_answers))

    def _container(self, container: _Container) -> None:
        container.ids = tuple(self._unique(container.steps, f"{container.where}.steps", "el paso"))
        if container.is_procedure and CLOSE in container.ids:
            self.problem(f"{container.where}", f"el id de paso {CLOSE!r} está reservado para el cierre")
        self.first[container.path] = f"{container.path}/{container.steps[0]['id']}"
        self.step_ids.update(f"{container.path}/{step}" for step in container.ids)
        self.containers.append(container)

    def _steps(self, c: _Container) -> None:
        if not c.is_procedure and c.procedure is not None and c.procedure not in self.procedures:
            self.problem(f"{c.where}.procedure", f"no existe el procedimiento {c.procedure!r}")
        for i, step in enumerate(c.steps):
            node_id, where = f"{c.path}/{step['id']}", f"{c.path}/{step['id']}"
            if node_id in self.nodes:
                continue
            following = c.steps[i + 1]["id"] if i + 1 < len(c.steps) else None

            def then(spec: Mapping[str, Any], c: _Container = c, where: str = where,
                     following: str | None = following) -> str:  # fmt: skip
                if "next" in spec:
                    return self._target(c, where, spec["next"])
                return f"{c.path}/{following}" if following else self._end(c, where)

            self._variables(where, step["text"])
            if step["kind"] == QUESTION:
                self._unique(step["answers"], f"{where}.answers", "la respuesta")
                answers = tuple(Answer(a["id"], a["label"], then(a)) for a in step["answers"])
            else:
                answers = (Answer(CONTINUE, "Continuar", then(step)),)
            self.nodes[node_id] = ScriptNode(
                node_id, step["kind"], step.get("label") or _short(step["text"]), step["text"], answers,
                call_type=c.call_type, reason=c.reason, scenario=c.scenario,
                procedure=c.procedure if c.is_procedure else None,
            )  # fmt: skip

    def _end(self, c: _Container, where: str) -> str:
        if c.is_procedure:
            return f"{c.path}/{CLOSE}"
        if c.procedure is None:
            self.problem(where, "el camino termina sin procedimiento: dé al escenario un 'procedure' "
                                "o haga que cada respuesta lleve a uno")  # fmt: skip
            return ""
        return self.first.get(f"{PROCEDURES}/{c.procedure}", "")

    def _target(self, c: _Container, where: str, target: str) -> str:
        if c.is_procedure and target == CLOSE:
            return f"{c.path}/{CLOSE}"
        if target in c.ids:
            if target in self.procedures and not c.is_procedure:
                self.problem(where, f"'next: {target}' es ambiguo: es un paso de este escenario y un procedimiento")
            return f"{c.path}/{target}"
        if c.is_procedure:
            self.problem(where, f"'next: {target}' no es un paso de este procedimiento: un procedimiento "
                                "no lleva a otro lugar (cada camino termina en un solo procedimiento)")  # fmt: skip
            return ""
        if "/" not in target:
            if target in self.procedures:
                return self.first[f"{PROCEDURES}/{target}"]
            self.problem(where, f"'next: {target}' no es un paso de este escenario ni un procedimiento")
            return ""
        if target in self.first and not target.startswith(f"{PROCEDURES}/"):
            return self.first[target]
        if target in self.step_ids and not target.startswith(f"{PROCEDURES}/"):
            return target
        self.problem(where, f"'next: {target}' no existe en el guion")
        return ""

    def _variables(self, where: str, text: str) -> None:
        for name in _VARIABLE.findall(text):
            if name not in self.variables:
                known = ", ".join(sorted(self.variables)) or "ninguna"
                self.problem(where, f"la variable {{{name}}} no está declarada en variables (hay: {known})")
        if _BRACES.search(_VARIABLE.sub("", text)):
            self.problem(where, "hay una llave { o } suelta: las variables se escriben {nombre}")

    def _entry(self) -> list[EntryRule]:
        rules = []
        for i, rule in enumerate(self.raw.get("entry", [])):
            where, node = f"entry[{i}]", rule["node"]
            for fact in rule.get("when", {}):
                if fact not in ENTRY_FACTS:
                    self.problem(where, f"el dato {fact!r} no se conoce (se conocen: {', '.join(ENTRY_FACTS)})")
            target = self.first.get(node, node)
            if target not in self.nodes or (call_type_of(target) is None and target != ROOT):
                self.problem(where, f"el nodo {node!r} no existe entre los tipos de llamada")
                continue
            when = {
                k: tuple(str(x) for x in v) if isinstance(v, list) else (str(v),)
                for k, v in rule.get("when", {}).items()
            }
            rules.append(EntryRule(when, target))
        return rules

    def _cycles(self) -> None:
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        for start in self.nodes:
            if state.get(start):
                continue
            stack: list[tuple[str, Iterator[Answer]]] = [(start, iter(self.nodes[start].answers))]
            state[start] = 1
            while stack:
                node_id, answers = stack[-1]
                nxt = next(answers, None)
                if nxt is None:
                    state[node_id] = 2
                    stack.pop()
                elif state.get(nxt.next) == 1:
                    loop = [n for n, _ in stack][[n for n, _ in stack].index(nxt.next):] + [nxt.next]
                    self.problem(loop[0], "hay un ciclo: " + " → ".join(loop))
                    return
                elif not state.get(nxt.next):
                    state[nxt.next] = 1
                    stack.append((nxt.next, iter(self.nodes[nxt.next].answers)))

    def _reachable(self, entry: list[EntryRule]) -> None:
        seen: set[str] = set()
        todo = [ROOT, *(rule.node for rule in entry)]
        while todo:
            node_id = todo.pop()
            if node_id not in seen:
                seen.add(node_id)
                todo.extend(a.next for a in self.nodes[node_id].answers)
        unused = {pid for pid in self.procedures if self.first[f"{PROCEDURES}/{pid}"] not in seen}
        for pid in unused:
            self.problem(f"{PROCEDURES}/{pid}", "ningún camino lleva a este procedimiento")
        for node_id, node in self.nodes.items():
            if node_id not in seen and node.kind in (TEXT, QUESTION) and node.procedure not in unused:
                self.problem(node_id, "ningún camino lleva a este paso")


def _short(text: str, size: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


# --- the file -----------------------------------------------------------------------------------
def load_script_file(path: Path) -> ScriptTree:
    """``config/<line>/scripts.yaml`` as a tree. Raises ``ConfigError`` naming the
    file, the line of the first problem, and every problem (``ivr config check``,
    and the seed at start)."""
    raw = load_yaml_file(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(str(path), 1, "scripts", "el guion debe ser un objeto (call_types, procedures…)")
    try:
        return load_tree(raw)
    except ScriptInvalid as exc:
        line = _line_for(raw, exc.details[0])
        raise ConfigError(str(path), line, "scripts", "; ".join(exc.details)) from None


def check_profile_call_types(
    profiles: Mapping[str, Sequence[str]], tree: ScriptTree, file: str
) -> None:
    """Every call type a desk profile takes (desk.yaml ``profiles.<id>.call_types``)
    is a call type of ``tree``; else ``ConfigError`` naming the profile (``file``:
    desk.yaml). A profile with an unknown call type would show its agents nothing."""
    known = [a.id for a in tree.nodes[ROOT].answers]
    for pid, call_types in profiles.items():
        for call_type in call_types:
            if call_type not in known:
                raise ConfigError(file, None, f"profiles.{pid}.call_types",
                                  f"el tipo de llamada {call_type!r} no está en el guion "
                                  f"(scripts.yaml tiene: {', '.join(known)})")  # fmt: skip


def _line_for(raw: Any, detail: str) -> int | None:
    """The YAML line a problem points at: a field path (``call_types[0].label``) or a
    node id (``agendamiento/sin_cupo/e1/s2``, ``procedimiento/p/s1``)."""
    where = detail.split(": ", 1)[0].split(" (", 1)[0]
    steps: list[str | int] = []
    if "/" in where:
        parts = where.split("/")
        if parts[0] == PROCEDURES:
            steps = ["procedures", _index(raw.get("procedures"), parts[1]), "steps"]
            steps.append(_index(_get(raw, steps), parts[2]) if len(parts) > 2 else 0)
        else:
            keys: list[str | int] = ["call_types"]
            for part, child in zip(parts, ("reasons", "scenarios", "steps", ""), strict=False):
                keys.append(_index(_get(raw, keys), part))
                if child:
                    keys.append(child)
            steps = keys
    else:
        for name, index in re.findall(r"([a-z_]+)|\[(\d+)\]", where):
            steps.append(int(index) if index else name)
    line, node = getattr(raw, "line", None), raw
    for step in steps:
        if isinstance(node, Located) and isinstance(step, str) and step in node:
            line, node = node.line_of(step), node[step]
        elif isinstance(node, LocatedList) and isinstance(step, int) and 0 <= step < len(node):
            line, node = node.line_of(step), node[step]
        else:
            break
    return line


def _get(raw: Any, keys: Sequence[str | int]) -> Any:
    for key in keys:
        try:
            raw = raw[key]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _index(items: Any, item_id: str) -> int:
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, Mapping) and item.get("id") == item_id:
            return i
    return -1
