"""The dashboard's exports: the same tables as CSV (``ivr.csv_export``) and XLSX
(``ivr.xlsx_export``), both neutralised against formula injection.

Every table has Spanish headings (operators open them in a spreadsheet). Times
are local wall times (``2026-11-30 08:00``) of the line's zone; figures are
numbers (never pre-formatted text), so a spreadsheet can sum them. Text that
comes from people or configuration (group, site and person names, a flag
change's reason, its values) may start like a formula: the writers quote it.

The workbook (:func:`dashboard_xlsx`) has one sheet per table:
``Indicadores`` (the figures by the chosen dimension, and the total),
``Embudo por sede``, ``Embudo por hora``, ``Embudo detalle`` (site × hour) and
``Cambios de variables`` (the flag changes marked on the timeline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from ivr.cases.funnel import STAGES, Funnel
from ivr.cases.reports import COLUMNS, Dimension, Figures, Report
from ivr.csv_export import Cell, csv_text
from ivr.xlsx_export import Sheet, xlsx_bytes

KEY_HEADING = {
    Dimension.DAY: "Día", Dimension.WEEK: "Semana", Dimension.MONTH: "Mes",
    Dimension.GROUP: "Grupo", Dimension.SITE: "Sede", Dimension.PERSON: "Persona",
}  # fmt: skip
TOTAL = "Total"
STAGE_LABELS = [label for _, label in STAGES]


def _wall(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def figures_table(report: Report) -> tuple[list[str], list[list[Cell]]]:
    """The figures as (header, rows): one row per key, then the total."""
    header = [KEY_HEADING[report.query.by], *(label for _, label in COLUMNS)]

    def row(key: str, figures: Figures) -> list[Cell]:
        values = figures.as_json()
        return [key, *(values[k] for k, _ in COLUMNS)]

    return header, [*(row(f.key, f) for f in report.rows), row(TOTAL, report.total)]


def funnel_tables(funnel: Funnel) -> list[Sheet]:
    """The funnel as sheets: by site, by hour of the day, site × hour, flag changes."""
    by_site: list[Sequence[Cell]] = [
        [site, *counts.as_json().values()] for site, counts in funnel.by_site().items()
    ]
    by_site.append([TOTAL, *funnel.total().as_json().values()])
    by_hour: list[Sequence[Cell]] = [
        [f"{hour:02d}:00", *counts.as_json().values()]
        for hour, counts in enumerate(funnel.by_hour_of_day())
    ]
    cells: list[Sequence[Cell]] = [
        [_wall(c.hour), c.site, *c.counts.as_json().values()] for c in funnel.cells
    ]
    markers: list[Sequence[Cell]] = [
        [_wall(m.at), m.name, m.action, json.dumps(m.old, ensure_ascii=False),
         json.dumps(m.new, ensure_ascii=False), m.actor, m.reason]
        for m in funnel.markers
    ]  # fmt: skip
    return [
        Sheet("Embudo por sede", ["Sede", *STAGE_LABELS], by_site),
        Sheet("Embudo por hora", ["Hora (local)", *STAGE_LABELS], by_hour),
        Sheet("Embudo detalle", ["Hora de la llamada (local)", "Sede", *STAGE_LABELS], cells),
        Sheet("Cambios de variables",
              ["Fecha (local)", "Variable", "Acción", "Antes", "Después", "Quién", "Motivo"],
              markers),
    ]  # fmt: skip


def figures_csv(report: Report) -> str:
    """The figures table as one CSV document."""
    header, rows = figures_table(report)
    return csv_text(header, rows)


def funnel_csv(funnel: Funnel) -> str:
    """The funnel's site × hour table as one CSV document (the detail the others sum)."""
    detail = funnel_tables(funnel)[2]
    return csv_text(detail.header, detail.rows)


def dashboard_xlsx(report: Report, funnel: Funnel) -> bytes:
    """The whole dashboard as one workbook (sheets in the module docstring)."""
    header, rows = figures_table(report)
    return xlsx_bytes([Sheet("Indicadores", header, rows), *funnel_tables(funnel)])
