"""Script trees (ivr.desk.scripts): valid trees validate, each kind of defect is
caught and named where it is, every path of a valid tree reaches exactly one
procedure and one of its dispositions; entry, next and render over their range.

The generator builds trees the way an administrator would (call types, reasons,
scenarios with text steps and branching questions, shared procedures); each
defect is one mutation of a generated valid tree.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.desk.errors import ScriptInvalid
from ivr.desk.scripts import (
    CLOSE,
    CONTINUE,
    DISPOSITION,
    PROCEDURES,
    ROOT,
    WrongAnswer,
    entry_node,
    load_tree,
    next_node,
    paths_to_dispositions,
    render,
    validate_tree,
)
from ivr.yamlsrc import load_yaml_file

REPO = Path(__file__).resolve().parents[2]
TREES = settings(max_examples=120, deadline=None, derandomize=True, database=None)
VARIABLES = {"nombre": {"label": "nombre del afiliado", "from": "affiliate.name"},
             "asesor": {"label": "nombre del asesor", "from": "agent_name"}}  # fmt: skip


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(["Buenos días", "{nombre}", "le habla", "{asesor}", "¿Cuenta con un smartphone?", "gracias"]), min_size=1, max_size=4))  # fmt: skip
    return " ".join(words)


@st.composite
def steps(draw: st.DrawFn, prefix: str, targets: Callable[[int], list[str]]) -> list[dict[str, Any]]:
    """Steps s0..sn; a question's first answer goes on, the others to ``targets(i)``
    (later steps, procedures...): forward only, so the tree has no cycle."""
    n = draw(st.integers(1, 3))
    out: list[dict[str, Any]] = []
    for i in range(n):
        step: dict[str, Any] = {"id": f"{prefix}{i}", "kind": "text", "text": draw(texts())}
        choices = targets(i)
        if choices and draw(st.booleans()):
            k = draw(st.integers(1, 2))
            step |= {"kind": "question", "answers": [{"id": "sigue", "label": "Sigue"}] + [
                {"id": f"r{j}", "label": f"Respuesta {j}", "next": draw(st.sampled_from(choices))}
                for j in range(k)]}  # fmt: skip
        out.append(step)
    return out


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    dispositions = {f"d{i}": f"Tipificación {i}" for i in range(draw(st.integers(1, 4)))}
    n_proc = draw(st.integers(1, 4))
    proc_ids = [f"proc{i}" for i in range(n_proc)]
    procedures = []
    for pid in proc_ids:
        proc_steps = draw(steps("p", lambda i: []))
        for i, step in enumerate(proc_steps):  # local forward jumps and straight to the end
            later = [s["id"] for s in proc_steps[i + 1:]] + [CLOSE]
            if step["kind"] == "question":
                for answer in step["answers"][1:]:
                    answer["next"] = draw(st.sampled_from(later))
        disp = draw(st.lists(st.sampled_from(sorted(dispositions)), min_size=1, max_size=3, unique=True))
        procedures.append({"id": pid, "label": f"Procedimiento {pid}", "steps": proc_steps, "dispositions": disp})
    call_types, scenario_paths = [], []
    for c in range(draw(st.integers(1, 2))):
        reasons = []
        for r in range(draw(st.integers(1, 2))):
            scenarios = []
            for s in range(draw(st.integers(1, 2))):
                path = f"ct{c}/r{r}/e{s}"
                earlier = list(scenario_paths)  # a jump goes to a scenario made before: no cycle
                scenario_paths.append(path)
                scen_steps: list[dict[str, Any]] = draw(steps("s", lambda i, e=earlier: proc_ids + e))
                scenarios.append({"id": f"e{s}", "label": f"Escenario {s}", "steps": scen_steps,
                                  "procedure": draw(st.sampled_from(proc_ids))})  # fmt: skip
            reasons.append({"id": f"r{r}", "label": f"Motivo {r}", "scenarios": scenarios})
        call_types.append({"id": f"ct{c}", "label": f"Tipo {c}", "reasons": reasons})
    tree = {"variables": VARIABLES, "dispositions": dispositions, "call_types": call_types,
            "procedures": procedures, "early_dispositions": [sorted(dispositions)[0]],
            "entry": [{"when": {"reason": "non-target"}, "node": draw(st.sampled_from(scenario_paths))}]}  # fmt: skip
    return _prune(tree)


def _prune(tree: dict[str, Any]) -> dict[str, Any]:
    """Drop the procedures no scenario leads to (an unused procedure is a defect)."""
    used = set()
    for ct in tree["call_types"]:
        for reason in ct["reasons"]:
            for scen in reason["scenarios"]:
                used.add(scen["procedure"])
                used |= {a["next"] for s in scen["steps"] for a in s.get("answers", []) if "next" in a}
    tree["procedures"] = [p for p in tree["procedures"] if p["id"] in used]
    return tree


def scenarios_of(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [scen for ct in tree["call_types"] for r in ct["reasons"] for scen in r["scenarios"]]


def details(tree: dict[str, Any]) -> list[str]:
    with pytest.raises(ScriptInvalid) as caught:
        validate_tree(tree)
    assert caught.value.details
    return caught.value.details


# --- valid trees --------------------------------------------------------------------------------
@TREES
@given(trees())
def test_generated_trees_validate(tree: dict[str, Any]) -> None:
    validate_tree(tree)


@TREES
@given(trees())
def test_every_path_passes_one_procedure_and_ends_in_one_of_its_dispositions(tree: dict[str, Any]) -> None:
    script = load_tree(tree)
    count = 0
    for path in paths_to_dispositions(script, ROOT):
        count += 1
        procedures = {script.nodes[n].procedure for n in path if script.nodes[n].procedure}
        end = script.nodes[path[-1]]
        assert len(procedures) == 1, path
        assert end.kind == DISPOSITION and end.procedure in procedures
        assert end.dispositions and set(end.dispositions) <= set(tree["dispositions"])
        assert path[0] == ROOT and script.nodes[path[1]].call_type is not None
    assert count >= 1


@TREES
@given(trees(), st.data())
def test_next_node_follows_each_answer_and_refuses_others(tree: dict[str, Any], data: st.DataObject) -> None:
    script = load_tree(tree)
    node_id = ROOT
    while script.nodes[node_id].kind != DISPOSITION:
        answer = data.draw(st.sampled_from(script.nodes[node_id].answers))
        node_id = next_node(script, node_id, answer.id)
    with pytest.raises(WrongAnswer):
        next_node(script, node_id, CONTINUE)  # a disposition is closed, not answered
    with pytest.raises(WrongAnswer):
        next_node(script, ROOT, "no_existe")
    with pytest.raises(WrongAnswer):
        next_node(script, "no/existe", CONTINUE)


# --- each kind of defect --------------------------------------------------------------------------
def _first_question_or_step(tree: dict[str, Any]) -> dict[str, Any]:
    return scenarios_of(tree)[0]["steps"][0]


def break_next(tree: dict[str, Any]) -> str:
    _first_question_or_step(tree)["next"] = "no_existe"
    _first_question_or_step(tree).pop("answers", None)
    _first_question_or_step(tree)["kind"] = "text"
    return "'next: no_existe' no es un paso de este escenario ni un procedimiento"


def duplicate_procedure(tree: dict[str, Any]) -> str:
    tree["procedures"].append(copy.deepcopy(tree["procedures"][0]))
    return f"el id de procedimiento {tree['procedures'][0]['id']!r} se repite"


def make_cycle(tree: dict[str, Any]) -> str:
    scen = scenarios_of(tree)[0]
    scen["steps"][-1] = {"id": scen["steps"][-1]["id"], "kind": "text", "text": "Otra vez", "next": scen["steps"][0]["id"]}
    return "hay un ciclo"


def unknown_variable(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["steps"][0]["text"] += " {desconocida}"
    return "la variable {desconocida} no está declarada"


def stray_brace(tree: dict[str, Any]) -> str:
    _first_question_or_step(tree)["text"] += " {sin cerrar"
    return "llave { o } suelta"


def undefined_disposition(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["dispositions"].append("no_definida")
    return "la tipificación 'no_definida' no está definida"


def no_procedure(tree: dict[str, Any]) -> str:
    scen = scenarios_of(tree)[0]
    del scen["procedure"]
    scen["steps"] = [{"id": "s0", "kind": "text", "text": "Hola"}]
    return "el camino termina sin procedimiento"


def procedure_leaves(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["steps"][-1] = {"id": "fuera", "kind": "text", "text": "Salir", "next": "ct0/r0/e0"}
    return "un procedimiento no lleva a otro lugar"


def unused_procedure(tree: dict[str, Any]) -> str:
    tree["procedures"].append({"id": "huerfano", "label": "Sin uso", "dispositions": [sorted(tree["dispositions"])[0]],
                               "steps": [{"id": "p0", "kind": "text", "text": "Nada"}]})  # fmt: skip
    return f"{PROCEDURES}/huerfano: ningún camino lleva a este procedimiento"


def entry_to_nowhere(tree: dict[str, Any]) -> str:
    tree["entry"].append({"when": {"segment": "non_target"}, "node": "ct0/no_existe"})
    return "el nodo 'ct0/no_existe' no existe"


def entry_unknown_fact(tree: dict[str, Any]) -> str:
    tree["entry"].append({"when": {"color": "rojo"}, "node": "ct0"})
    return "el dato 'color' no se conoce"


def reserved_call_type(tree: dict[str, Any]) -> str:
    tree["call_types"][0]["id"] = PROCEDURES
    return f"el id {PROCEDURES!r} está reservado"


def missing_label(tree: dict[str, Any]) -> str:
    del tree["call_types"][0]["label"]
    return "call_types[0].label: falta este campo"


def unknown_field(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["color"] = "rojo"
    return "procedures[0].color: campo desconocido"


def question_without_answers(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["steps"][0] = {"id": "q", "kind": "question", "text": "¿Sí?"}
    return "procedures[0].steps[0]"


def boolean_answer_id(tree: dict[str, Any]) -> str:
    tree["procedures"][0]["steps"][0] = {"id": "q", "kind": "question", "text": "¿Sí?",
                                         "answers": [{"id": False, "label": "No"}]}  # fmt: skip
    return "valor sí/no"


DEFECTS = [break_next, duplicate_procedure, make_cycle, unknown_variable, stray_brace,
           undefined_disposition, no_procedure, procedure_leaves, unused_procedure,
           entry_to_nowhere, entry_unknown_fact, reserved_call_type, missing_label,
           unknown_field, question_without_answers, boolean_answer_id]  # fmt: skip


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.__name__)
@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(tree=trees())
def test_each_kind_of_defect_is_caught_and_named(defect: Callable[[dict[str, Any]], str], tree: dict[str, Any]) -> None:
    broken = copy.deepcopy(tree)
    expected = defect(broken)
    found = details(broken)
    assert any(expected in d for d in found), found


def test_a_cycle_names_its_nodes() -> None:
    tree = _small()
    tree["call_types"][0]["reasons"][0]["scenarios"][0]["steps"] = [
        {"id": "a", "kind": "text", "text": "A"},
        {"id": "b", "kind": "question", "text": "¿B?", "answers": [{"id": "x", "label": "X", "next": "a"}]}]  # fmt: skip
    assert details(tree) == ["info/horario/general/a: hay un ciclo: info/horario/general/a → "
                             "info/horario/general/b → info/horario/general/a"]  # fmt: skip


def test_every_defect_is_listed_not_only_the_first() -> None:
    tree = _small()
    tree["procedures"][0]["dispositions"] = ["x1"]
    tree["procedures"][0]["steps"][0]["text"] = "Hola {quien}"
    found = details(tree)
    assert len(found) == 2 and all(d.startswith(("procedures[0]", "procedimiento/informar/p1")) for d in found)


# --- entry, render ------------------------------------------------------------------------------
def _small() -> dict[str, Any]:
    return {
        "dispositions": {"ok": "Resuelto"},
        "call_types": [{"id": "info", "label": "Información", "reasons": [{"id": "horario", "label": "Horario",
            "scenarios": [{"id": "general", "label": "General", "procedure": "informar",
                           "steps": [{"id": "s1", "kind": "text", "text": "Hola."}]}]}]}],
        "procedures": [{"id": "informar", "label": "Informar", "dispositions": ["ok"],
                        "steps": [{"id": "p1", "kind": "text", "text": "De 7 a 19."}]}],
    }  # fmt: skip


FACTS = [  # (facts, where the default citas tree opens)
    ({"reason": "incident", "segment": "unknown"}, "incidente/falla_linea/general/saludo"),
    ({"reason": "non-target", "eligibility": ["age_out_of_band:70"]}, "agendamiento/no_objetivo/edad/saludo"),
    ({"reason": "non-target", "eligibility": ["risk_marking:gestante", "age_out_of_band:60"]}, "agendamiento/no_objetivo/riesgo/saludo"),
    ({"reason": "non-target", "eligibility": ["plan_not_in_scope:PAC"]}, "agendamiento/no_objetivo/plan/saludo"),
    ({"reason": "non-target", "eligibility": ["cups_not_in_scope:890201"]}, "agendamiento/no_objetivo/servicio/saludo"),
    ({"reason": "non-target"}, "agendamiento/no_objetivo"),
    ({"reason": "redirect-off", "eligibility": ["site_phone_booking_closed"]}, "agendamiento/sede_cerrada/migracion_digital/saludo"),
    ({"reason": "redirect-off", "segment": "target"}, "agendamiento/no_pudo_agendar/sin_cupo/saludo"),
    ({"reason": "invalid-input"}, "agendamiento/no_pudo_agendar/no_marco/saludo"),
    ({"reason": "self-service-off", "choice": "3"}, "agendamiento/cancelar_reprogramar/cancelar/saludo"),
    ({"reason": "self-service-off", "choice": 4}, "agendamiento/cancelar_reprogramar/reprogramar/saludo"),
    ({"reason": "service-unavailable"}, "incidente/falla_agenda/agenda_caida/saludo"),
    ({"reason": "non-target", "case_open": True}, "agendamiento/caso_abierto/consulta_caso/saludo"),
    ({"case_open": False}, ROOT),
    ({}, ROOT),
    ({"reason": "ivr-unavailable"}, ROOT),
]  # fmt: skip


@pytest.mark.parametrize(("facts", "node"), FACTS)
def test_the_default_tree_opens_where_the_ivr_context_says(facts: dict[str, Any], node: str) -> None:
    assert entry_node(default_tree(), facts) == node


def default_tree() -> Any:
    return load_tree(load_yaml_file(REPO / "config" / "citas" / "scripts.yaml"))


def test_the_default_tree_has_the_plans_scripts() -> None:
    tree = default_tree()
    texts = " ".join(n.text for n in tree.nodes.values())
    assert "¿Cuenta con un smartphone?" in texts and "Lina" in texts
    assert "ya no asigna citas por teléfono" in texts and "falla técnica" in texts
    assert "{caso}" in texts and "{fecha_caso}" in texts
    # "No" (smartphone) goes to the agent booking for the caller
    smartphone = tree.node("agendamiento/sede_cerrada/migracion_digital/smartphone")
    assert smartphone.answer("no").next == f"{PROCEDURES}/agendar_asesor/buscar"
    assert smartphone.answer("si").next == f"{PROCEDURES}/invitar_lina/lina"
    assert {n.call_type for n in tree.nodes.values()} >= {"agendamiento", "incidente", "informacion"}


@given(st.dictionaries(st.sampled_from(["nombre", "asesor", "sede"]), st.one_of(st.none(), st.text(max_size=5))),
       st.lists(st.sampled_from(["Hola ", "{nombre}", "{asesor}", "{sede}", "{otra}", ", ", "{"]), max_size=8))  # fmt: skip
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_render_never_fails_and_marks_every_missing_value(values: dict[str, str | None], parts: list[str]) -> None:
    text = "".join(parts)
    out = render(text, values, {"sede": "sede del afiliado"})
    for name in ("nombre", "asesor", "sede", "otra"):
        if "{" + name + "}" not in text:
            continue
        value = values.get(name)
        if value is not None and value.strip():
            assert value in out
        else:
            label = "sede del afiliado" if name == "sede" else name
            assert f"[{label}: sin dato]" in out
    assert out.count("{") <= text.count("{")


def test_the_modules_examples_run() -> None:
    import doctest

    import ivr.desk.scripts

    result = doctest.testmod(ivr.desk.scripts)
    assert result.failed == 0 and result.attempted >= 5
