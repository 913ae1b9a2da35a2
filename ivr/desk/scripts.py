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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ivr.desk.errors import ScriptInvalid
from ivr.desk.script_rules import Builder, shape_problems
from ivr.desk.script_tree import (
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
    WrongAnswer,
    call_type_of,
)
from ivr.yamlsrc import ConfigError, Located, LocatedList, load_yaml_file

__all__ = [
    "CHOICE", "CLOSE", "CONTINUE", "DISPOSITION", "ENTRY_FACTS", "PROCEDURES", "QUESTION",
    "ROOT", "TEXT", "Answer", "EntryRule", "ScriptNode", "ScriptTree", "Variable",
    "WrongAnswer", "call_type_of", "check_profile_call_types", "entry_node", "load_script_file",
    "load_tree", "lookup", "next_node", "paths_to_dispositions", "render", "validate_tree",
    "variable_values",
]  # fmt: skip


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
    builder = Builder(raw)
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

    return VARIABLE.sub(value, text)


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
    """``data["a"]["b"]`` for ``"a.b"``; in a list of ``{"label", "value"}`` items (the
    screen pop's ``facts``) a part names an item by its label and gives its value.
    None when any part is missing.

    >>> lookup({"caller": {"name": "Ana"}}, "caller.name")
    'Ana'
    >>> lookup({"facts": [{"label": "Servicio", "value": "Pediatría"}]}, "facts.Servicio")
    'Pediatría'
    >>> lookup({"caller": {}}, "caller.name") is None
    True
    """
    for part in dotted.split("."):
        if isinstance(data, list):
            data = next((i.get("value") for i in data if isinstance(i, Mapping) and i.get("label") == part), None)
        elif isinstance(data, Mapping) and part in data:
            data = data[part]
        else:
            return None
    return data


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


def _fact_matches(fact: Any, wanted: Sequence[str]) -> bool:
    if fact is None:
        return False
    items = fact if isinstance(fact, list | tuple) else [fact]
    for item in items:
        text = str(item).lower() if isinstance(item, bool) else str(item)
        if any(text == w or text.startswith(f"{w}:") for w in wanted):
            return True
    return False


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
