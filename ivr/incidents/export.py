"""Incident reports as CSV (``ivr.csv_export``) and XLSX (``ivr.xlsx_export``).

Both exports have the same columns, in Spanish, with times in Colombia's
local time (``America/Bogota``, what the advisors wrote) and the affiliate's
data masked unless the caller asks for it in full (``masked=False``: the API
allows it to admins only). Every text cell goes through the formula-injection
rule of ``ivr.csv_export`` (an advisor copies error messages as they were, and
"=ERROR…" or "+57 300…" must stay text).

>>> from ivr.incidents.reports import IncidentLink, IncidentReport, NewIncidentReport
>>> from datetime import datetime, UTC
>>> t = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)
>>> new = NewIncidentReport(t, ("telefono",), "Se cae la llamada", "=ERROR 500", consent=True,
...                         document_type="CC", document="1020304050")
>>> report = IncidentReport(7, new, t, IncidentLink(True, "set", 3), "token:ana", t)
>>> print(reports_csv([report]).splitlines()[1][:94])
7,"2026-11-30 08:05","Teléfono","CC","*******050","","","sí","Se cae la llamada","'=ERROR 500"
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.csv_export import Cell, csv_text
from ivr.incidents.reports import CHANNELS, IncidentReport
from ivr.xlsx_export import Sheet, xlsx_bytes

LOCAL = ZoneInfo("America/Bogota")
HEADER = (
    "Reporte", "Fecha y hora del error", "Canales afectados", "Tipo de documento", "Documento",
    "Nombre del afiliado", "Teléfono del afiliado", "Autorización de datos", "Descripción",
    "Mensaje de error", "Información adicional", "Modo incidente", "Origen del modo incidente",
    "Casos", "Reportado por", "Reportado el",
)  # fmt: skip
SOURCES = {"default": "por defecto", "set": "cambio de un operador", "window": "ventana programada"}


def local(at: datetime) -> str:
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def rows(reports: Iterable[IncidentReport], *, masked: bool = True) -> list[Sequence[Cell]]:
    """One row per report, in :data:`HEADER`'s order."""
    out: list[Sequence[Cell]] = []
    for report in reports:
        data = report.as_json(masked=masked)
        out.append((
            report.id, local(report.new.occurred_at),
            ", ".join(CHANNELS[c] for c in report.new.channels),
            data["document_type"], data["document"], data["affiliate_name"],
            data["affiliate_phone"], "sí" if report.new.consent else "no",
            report.new.description, report.new.error_message, report.new.extra,
            "encendido" if report.incident.active else "apagado",
            SOURCES.get(report.incident.source, report.incident.source),
            " ".join(report.new.case_numbers), report.reported_by, local(report.reported_at),
        ))  # fmt: skip
    return out


def reports_csv(reports: Iterable[IncidentReport], *, masked: bool = True) -> str:
    return csv_text(HEADER, rows(reports, masked=masked))


def reports_xlsx(reports: Iterable[IncidentReport], *, masked: bool = True) -> bytes:
    return xlsx_bytes([Sheet("Reportes de incidente", HEADER, rows(reports, masked=masked))])
