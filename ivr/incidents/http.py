"""Incident reports over the ops API, and the console page "Reportes de incidente".

Routes (tag ``incidents``), plugged into the ops app through its extension hook::

    GET  /api/incident-reports        viewer    the list, filtered, masked; ``format=csv|xlsx``
                                                for a file (``personal=full``: admins only,
                                                the affiliate's data unmasked)
    POST /api/incident-reports        operator  file a report (201)
    GET  /api/incident-reports/{id}   viewer    one report with its incident-switch link
                                                (audit entry, window); unmasked for operators
    /console/incidents.html, /console/incidents.js    the page, linked from the console

Filters: ``since``/``until`` (the error's time, ISO 8601 with offset),
``channel``, ``case`` (a case number), ``incident`` (true/false: the switch
was on / off at the error), ``limit``, ``offset``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.incidents.export import reports_csv, reports_xlsx
from ivr.incidents.reports import CHANNELS, DOCUMENT_TYPES, MAX_NAME, MAX_TEXT, NewIncidentReport
from ivr.incidents.store import IncidentReportStore, ReportFilter
from ivr.ops.api import (
    ApiError,
    ApiExtension,
    Call,
    ConsolePage,
    Handler,
    _flag_param,
    _instant,
    _int_param,
)
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param
from ivr.store.db import Database
from ivr.xlsx_export import XLSX_MEDIA_TYPE

logger = logging.getLogger(__name__)

CONSOLE = Path(__file__).parent / "console"
PAGE, SCRIPT = CONSOLE / "incidents.html", CONSOLE / "incidents.js"

V, OP = Role.VIEWER, Role.OPERATOR
LIST_PARAMS = (
    Param("since", "query", {"type": "string", "format": "date-time"}, "Errors from this instant on."),
    Param("until", "query", {"type": "string", "format": "date-time"}, "Errors before this instant."),
    Param("channel", "query", {"type": "string", "enum": list(CHANNELS)}, "Only reports with this channel affected."),
    Param("case", "query", {"type": "string", "pattern": "^[0-9]{7}$"}, "Only reports linked to this case number."),
    Param("incident", "query", {"type": "boolean"}, "Only reports whose error happened with the incident switch on (true) or off (false)."),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 200}, "At most this many, newest error first."),
    Param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}, "Skip this many."),
    Param("format", "query", {"type": "string", "enum": ["json", "csv", "xlsx"]}, "`csv` or `xlsx` for a file."),
    Param("personal", "query", {"type": "string", "enum": ["masked", "full"]}, "`full`: the affiliate's data unmasked in a file (admins only)."),
)  # fmt: skip
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/incident-reports", "list_incident_reports", "Incident reports (masked), newest error first; CSV or XLSX with `format`.", V, response="IncidentReportList", params=LIST_PARAMS, tag="incidents", other_media=("text/csv", XLSX_MEDIA_TYPE)),
    Operation("POST", "/api/incident-reports", "file_incident_report", "File an incident report (the advisors' form).", OP, body="IncidentReportCreate", ok=201, response="IncidentReport", tag="incidents"),
    Operation("GET", "/api/incident-reports/{id}", "get_incident_report", "One incident report, with the incident switch's audit entry or window at the error.", V, response="IncidentReport", params=(Param("id", "path", {"type": "integer", "minimum": 1}, "The report's number."),), tag="incidents"),
)  # fmt: skip

_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_TEXT = {"type": "string", "maxLength": MAX_TEXT}
SCHEMAS: dict[str, Any] = {
    "IncidentReportCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["occurred_at", "channels", "description", "error_message", "consent"],
        "properties": {
            "occurred_at": {"type": "string", "format": "date-time", "description": "When the error happened (ISO 8601 with offset)."},
            "channels": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(CHANNELS)}},
            "description": {**_TEXT, "minLength": 1},
            "error_message": {**_TEXT, "minLength": 1, "description": "The exact message, as seen; «sin mensaje» when there was none."},
            "extra": _TEXT,
            "consent": {"type": "boolean", "description": "The affiliate authorised keeping their data (Ley 1581 de 2012)."},
            "document_type": {"type": ["string", "null"], "enum": [*DOCUMENT_TYPES, None]},
            "document": {"type": ["string", "null"], "maxLength": 20},
            "affiliate_name": {"type": ["string", "null"], "maxLength": MAX_NAME},
            "affiliate_phone": {"type": ["string", "null"], "maxLength": 32},
            "case_numbers": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 16}},
        },
    },
    "IncidentReport": {
        "type": "object",
        "required": ["id", "occurred_at", "channels", "description", "error_message", "consent", "incident", "masked"],
        "properties": {
            "id": {"type": "integer"}, "occurred_at": {"type": "string", "format": "date-time"},
            "channels": {"type": "array", "items": _STR}, "description": _STR,
            "error_message": _STR, "extra": _STR, "consent": {"type": "boolean"},
            "consent_at": _NULL_STR, "document_type": _NULL_STR, "document": _NULL_STR,
            "affiliate_name": _NULL_STR, "affiliate_phone": _NULL_STR,
            "masked": {"type": "boolean", "description": "Whether the affiliate's data is masked (ivr.masking)."},
            "case_numbers": {"type": "array", "items": _STR},
            "incident": {"type": "object", "description": "The incident switch at the error: active, source (default|set|window), audit_id, window_id; in a detail, the audit entry and the window."},
            "reported_by": _STR, "reported_at": {"type": "string", "format": "date-time"},
        },
    },
    "IncidentReportList": {
        "type": "object", "required": ["reports"],
        "properties": {"reports": {"type": "array", "items": {"$ref": "#/components/schemas/IncidentReport"}}},
    },
}  # fmt: skip


class IncidentRoutes:
    """The handlers, over one :class:`IncidentReportStore`."""

    def __init__(self, store: IncidentReportStore) -> None:
        self.store = store

    def handlers(self) -> dict[str, Handler]:
        return {
            "list_incident_reports": self.list, "file_incident_report": self.file,
            "get_incident_report": self.get,
        }  # fmt: skip

    async def list(self, request: web.Request, call: Call) -> web.StreamResponse:
        q = request.query
        form = q.get("format", "json")
        personal = q.get("personal", "masked")
        if form not in ("json", "csv", "xlsx") or personal not in ("masked", "full"):
            raise ApiError(422, "invalid_parameter", "format: json, csv o xlsx; personal: masked o full",
                           [{"field": "format", "message": "json, csv o xlsx"}])  # fmt: skip
        if personal == "full" and (form == "json" or call.who.role < Role.ADMIN):
            raise ApiError(403, "forbidden", "solo un administrador exporta los datos del afiliado sin enmascarar")  # fmt: skip
        channel, case = q.get("channel"), q.get("case")
        if channel is not None and channel not in CHANNELS:
            raise ApiError(422, "invalid_parameter", f"canal desconocido: {channel!r}",
                           [{"field": "channel", "message": ", ".join(CHANNELS)}])  # fmt: skip
        where = ReportFilter(
            since=_instant(q["since"], "since") if "since" in q else None,
            until=_instant(q["until"], "until") if "until" in q else None,
            channel=channel, case_number=case,
            incident_active=_flag_param(request, "incident") if "incident" in q else None,
            limit=_int_param(request, "limit", 200, 1, 5000),
            offset=_int_param(request, "offset", 0, 0, 10**9),
        )  # fmt: skip
        reports = await self.store.list(where)
        masked = personal != "full"
        if form == "json":
            return web.json_response({"reports": [r.as_json(masked=True) for r in reports]})
        if not masked:
            logger.info("incident reports exported unmasked by %s (%d reports)", call.who.name, len(reports))  # fmt: skip
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        if form == "csv":
            return web.Response(
                text=reports_csv(reports, masked=masked), content_type="text/csv", charset="utf-8",
                headers={"Content-Disposition": f"attachment; filename=reportes-incidente-{stamp}.csv"},
            )  # fmt: skip
        return web.Response(
            body=reports_xlsx(reports, masked=masked), content_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f"attachment; filename=reportes-incidente-{stamp}.xlsx"},
        )  # fmt: skip

    async def file(self, request: web.Request, call: Call) -> web.StreamResponse:
        b = call.body
        new = NewIncidentReport(
            occurred_at=_instant(b["occurred_at"], "occurred_at"),
            channels=tuple(b["channels"]), description=b["description"],
            error_message=b["error_message"], extra=b.get("extra", ""), consent=b["consent"],
            document_type=b.get("document_type"), document=b.get("document"),
            affiliate_name=b.get("affiliate_name"), affiliate_phone=b.get("affiliate_phone"),
            case_numbers=tuple(b.get("case_numbers", ())),
        )  # fmt: skip
        report = await self.store.file(call.who, new)
        return web.json_response(report.as_json(masked=False), status=201)

    async def get(self, request: web.Request, call: Call) -> web.StreamResponse:
        try:
            report_id = int(request.match_info["id"])
        except ValueError:
            raise ApiError(404, "not_found", "no existe ese reporte de incidente") from None
        report = await self.store.get(report_id)
        return web.json_response(report.as_json(masked=call.who.role < Role.OPERATOR))


def incident_extension_for(db: Database) -> ApiExtension:
    """The extension over ``db`` (incident reports checked against its cases)."""
    return incident_extension(IncidentReportStore(db))


def incident_extension(store: IncidentReportStore) -> ApiExtension:
    """The incident-report routes and the page «Reportes de incidente», for ``build_ops_app``."""
    routes = IncidentRoutes(store)
    return ApiExtension(
        name="incidents",
        operations=OPERATIONS,
        handlers=lambda api: routes.handlers(),
        schemas=SCHEMAS,
        console_files={"incidents.html": PAGE, "incidents.js": SCRIPT},
        pages=(ConsolePage("incidents.html", "Reportes de incidente"),),
    )
