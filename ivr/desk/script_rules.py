"""The rules a script tree must follow, in Spanish, naming where each defect is.

Two passes: the shape (``ivr/schemas/scripts.json`` with the maintained
``jsonschema`` validator, its messages put in Spanish with the field path), then
what a schema cannot say (:class:`Builder`): ids unique, every ``next`` resolves,
every path ends in exactly one procedure and a disposition, no cycles, variables
declared, dispositions defined, nothing unreachable, entry rules that name a node.
Every defect is listed, not only the first. Used by :func:`ivr.desk.scripts.load_tree`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ivr.desk.script_tree import (
    BRACES,
    CHOICE,
    CLOSE,
    CONTINUE,
    DISPOSITION,
    ENTRY_FACTS,
    PROCEDURES,
    QUESTION,
    ROOT,
    TEXT,
    VARIABLE,
    Answer,
    EntryRule,
    ScriptNode,
    ScriptTree,
    Variable,
    call_type_of,
)
from ivr.schemas import schema


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


class Builder:
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
        for name in VARIABLE.findall(text):
            if name not in self.variables:
                known = ", ".join(sorted(self.variables)) or "ninguna"
                self.problem(where, f"la variable {{{name}}} no está declarada en variables (hay: {known})")
        if BRACES.search(VARIABLE.sub("", text)):
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

