"""The desk reports as files: CSV (``ivr.csv_export``) and XLSX (``ivr.xlsx_export``).

Both writers neutralise formula injection (an agent's name, a pause reason or an
escalation reason typed by a person may start with ``=``). Headings are Spanish;
figures stay numbers (seconds, counts, percentages 0–100) so a spreadsheet can
sum them. The CSV of a report is its first sheet; the XLSX has them all:

============  =================================================================
``reasons``   Motivos (key × labels), Por tipo de llamada, Por clave
``steps``     Tiempo por paso
``paths``     Rutas del guion
``mismatch``  Cruce IVR-asesor (long form), Matriz, Por motivo del IVR, Principales desajustes
``levels``    Niveles de servicio (queues, subtotals, total), Saltos
``agents``    Asesores (one column per pause reason)
============  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ivr.csv_export import Cell, csv_text
from ivr.desk.reports import DeskReport
from ivr.xlsx_export import Sheet, xlsx_bytes

KEY_HEADING = {"day": "Día", "agent": "Asesor", "site": "Sede"}
LABEL_HEADINGS = ["Tipo de llamada", "Motivo", "Escenario", "Procedimiento", "Tipificación"]


def _listed(counts: dict[str, int]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in counts.items())


def _reasons(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    key = KEY_HEADING[report.query.by]
    rows: list[Sequence[Cell]] = [
        [r["key"], r["call_type"], r["reason"], r["scenario"], r["procedure"], r["disposition"],
         r["contacts"]] for r in body["rows"]
    ]  # fmt: skip
    return [
        Sheet("Motivos", [key, *LABEL_HEADINGS, "Contactos"], rows),
        Sheet("Por tipo de llamada", ["Tipo de llamada", "Contactos"],
              [[k, v] for k, v in body["by_call_type"].items()]),
        Sheet(f"Por {key.lower()}", [key, "Contactos"], [[k, v] for k, v in body["by_key"].items()]),
    ]  # fmt: skip


def _steps(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    header = [
        "Nodo",
        "Paso",
        "Veces",
        "Cronometrados",
        "p50 (s)",
        "p90 (s)",
        "Máximo (s)",
        "Promedio (s)",
    ]
    rows = [[r["node_id"], r["label"], r["steps"], r["timed"], r["p50_s"], r["p90_s"], r["max_s"],
             r["avg_s"]] for r in body["rows"]]  # fmt: skip
    return [Sheet("Tiempo por paso", header, rows)]


def _paths(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    header = ["Ruta (nodos)", "Ruta (pasos)", "Contactos", "% de los contactos con pasos"]
    rows = [[" > ".join(p["nodes"]), " > ".join(p["labels"]), p["contacts"], p["share_pct"]]
            for p in body["rows"]]  # fmt: skip
    return [Sheet("Rutas del guion", header, rows)]


def _mismatch(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    expected: dict[str, list[str]] = body["expected"]

    def verdict(ivr: str, call_type: str) -> str:
        if ivr not in expected:
            return "sin referencia"
        return "coincide" if call_type in expected[ivr] else "no coincide"

    long_rows = [
        [ivr, t, n, verdict(ivr, t)] for ivr, row in body["cells"].items() for t, n in row.items()
    ]
    matrix = [
        [ivr, *(body["cells"][ivr].get(t, 0) for t in body["call_types"])]
        for ivr in body["ivr_reasons"]
    ]
    per_reason = [[r["ivr_reason"], ", ".join(r["expected"]) or "sin referencia", r["contacts"],
                   r["judged"], r["mismatched"], r["mismatch_pct"]] for r in body["by_ivr_reason"]]  # fmt: skip
    top = [[t["ivr_reason"], t["call_type"], t["reason"], t["contacts"]] for t in body["top"]]
    return [
        Sheet("Cruce IVR-asesor", ["Motivo del IVR", "Tipo de llamada del asesor", "Contactos", "Resultado"], long_rows),
        Sheet("Matriz", ["Motivo del IVR", *body["call_types"]], matrix),
        Sheet("Por motivo del IVR", ["Motivo del IVR", "Tipos esperados", "Contactos", "Evaluados",
                                     "No coinciden", "% que no coincide"], per_reason),
        Sheet("Principales desajustes", ["Motivo del IVR", "Tipo de llamada del asesor", "Motivo del asesor",
                                         "Contactos"], top),
    ]  # fmt: skip


def _levels(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    n = f"{report.query.within_s:g}"
    header = ["Nivel", "Cola", "Contactos", "Con espera medida", f"Atendidos en ≤ {n} s",
              f"% atendidos en ≤ {n} s", "Espera promedio (s)", "Espera máxima (s)",
              "Tiempo en el nivel promedio (s)", "Escalamientos", "Motivos de escalamiento", "Escalados a"]  # fmt: skip

    def row(r: dict[str, Any], level: Cell) -> list[Cell]:
        return [level, r["queue"], r["contacts"], r["waited"], r["within"], r["within_pct"],
                r["wait_avg_s"], r["wait_max_s"], r["at_level_avg_s"], r["escalations"],
                _listed(r["escalation_reasons"]), _listed(r["escalated_to"])]  # fmt: skip

    rows = [row(r, r["level"]) for r in body["rows"]] + [row(body["total"], "Total")]
    hops = [[int(k), v] for k, v in body["hops"].items()]
    return [Sheet("Niveles de servicio", header, rows),
            Sheet("Saltos", ["Contactos del recorrido", "Recorridos"], hops)]  # fmt: skip


def _agents(body: dict[str, Any], report: DeskReport) -> list[Sheet]:
    reasons = sorted({k for r in body["rows"] for k in r["paused_by_reason"]})
    header = ["Extensión", "Asesor", "Contactos", "Cerrados", "Escalados", "TMO promedio (s)",
              "Conversación promedio (s)", "Posllamada promedio (s)", "Conectado (s)", "En pausa (s)",
              "Pausas", *(f"Pausa: {k} (s)" for k in reasons)]  # fmt: skip
    rows = [[r["agent"], r["name"], r["contacts"], r["closed"], r["escalated"], r["handle_avg_s"],
             r["talk_avg_s"], r["wrapup_avg_s"], r["logged_in_s"], r["paused_s"], r["pauses"],
             *(r["paused_by_reason"].get(k, 0.0) for k in reasons)] for r in body["rows"]]  # fmt: skip
    return [Sheet("Asesores", header, rows)]


SHEETS: dict[str, Callable[[dict[str, Any], DeskReport], list[Sheet]]] = {
    "reasons": _reasons, "steps": _steps, "paths": _paths,
    "mismatch": _mismatch, "levels": _levels, "agents": _agents,
}  # fmt: skip


def report_sheets(report: DeskReport) -> list[Sheet]:
    """The report's tables (module docstring), first the one its CSV holds."""
    return SHEETS[report.name](report.body, report)


def report_csv(report: DeskReport) -> str:
    """The report's first table as one CSV document."""
    first = report_sheets(report)[0]
    return csv_text(first.header, first.rows)


def report_xlsx(report: DeskReport) -> bytes:
    """Every table of the report, one sheet each."""
    return xlsx_bytes(report_sheets(report))
