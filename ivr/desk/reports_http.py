"""The desk reports' routes on the ops API, and the console page "Reportes del escritorio".

Added through the ops API's extension hook (``ivr.ops.api.ApiExtension``): the
ops package never imports the desk; the composition root builds it with
:func:`build_desk_reports_extension`. Every route is read only and needs a viewer token.

=================================================  ===========================================
``GET /api/desk/reports/{report}``                 one report (``ivr.desk.reports.REPORTS``) as JSON
``GET /api/desk/reports/{report}/export``          the same as CSV (its main table) or XLSX (all)
=================================================  ===========================================

The period is given as local calendar days, ``from`` and ``to`` both included
(``2026-11-01`` to ``2026-11-30``: the line's zone, 00:00 of the first to 24:00
of the last); without them, the last 7 days up to today. Filters: ``agent``
(the extension), ``site`` (``site_id``); ``by`` (``day`` | ``agent`` | ``site``)
for ``reasons``; ``within`` (seconds, default 20) for ``levels``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.desk.report_export import report_csv, report_xlsx
from ivr.desk.report_figures import BY_VALUES
from ivr.desk.report_service import DEFAULT_WITHIN_S
from ivr.desk.reports import MAX_PERIOD, MAX_WITHIN_S, REPORTS, DeskQuery, DeskReports, InvalidQuery
from ivr.ops.api import ApiExtension, Call, ConsolePage, Handler, OpsApi
from ivr.ops.flags import Role
from ivr.ops.openapi import Operation, Param
from ivr.ops.period import local_period
from ivr.store.db import Database
from ivr.xlsx_export import XLSX_MEDIA_TYPE

CONSOLE = Path(__file__).parent / "console"
PAGE = "reportes-escritorio.html"
DEFAULT_DAYS = 7
TAG = "desk-reports"

_DAY = {"type": "string", "format": "date"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 64}
REPORT = Param("report", "path", {"type": "string", "enum": list(REPORTS)},
               "reasons | steps | paths | mismatch | levels | agents (docs/desk/reports.md).")  # fmt: skip
PARAMS = (
    Param("from", "query", _DAY, "First local day of the period (YYYY-MM-DD; default: 6 days before `to`)."),
    Param("to", "query", _DAY, "Last local day of the period, included (default: today)."),
    Param("agent", "query", _TEXT, "Only this agent (extension)."),
    Param("site", "query", _TEXT, "Only contacts of this site (`context.site_id`)."),
    Param("by", "query", {"type": "string", "enum": list(BY_VALUES), "default": "day"},
          "`reasons`: a row per day, agent or site."),
    Param("within", "query", {"type": "number", "minimum": 0, "maximum": MAX_WITHIN_S, "default": DEFAULT_WITHIN_S},
          "`levels`: the service level's threshold, seconds of queue wait."),
)  # fmt: skip
FORMAT = Param("format", "query", {"type": "string", "enum": ["csv", "xlsx"], "default": "csv"},
               "`csv` (the report's main table) or `xlsx` (every table); formula-injection safe.")  # fmt: skip

OPERATIONS = (
    Operation("GET", "/api/desk/reports/{report}", "desk_report",
              "A desk report over a period of local days: reasons, time per step, script paths, IVR vs agents' reasons, service levels, agents.",
              Role.VIEWER, response="DeskReport", params=(REPORT, *PARAMS), tag=TAG),
    Operation("GET", "/api/desk/reports/{report}/export", "desk_report_export",
              "A desk report as a CSV (its main table) or XLSX (all its tables) file.",
              Role.VIEWER, media="text/csv", other_media=(XLSX_MEDIA_TYPE,),
              params=(REPORT, *PARAMS, FORMAT), tag=TAG),
)  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "DeskReport": {
        "type": "object",
        "required": ["report", "start", "end", "filters", "as_of", "options"],
        "properties": {
            "report": {"type": "string", "enum": list(REPORTS)},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "as_of": {"type": "string", "format": "date-time"},
            "filters": {"type": "object"},
            "options": {"type": "object", "required": ["agents", "sites"]},
        },
    },
}


class DeskReportRoutes:
    """The handlers over :class:`DeskReports`, days in ``tz``."""

    def __init__(
        self, reports: DeskReports, tz: tzinfo, today: Callable[[], date] | None = None
    ) -> None:
        self.reports = reports
        self.tz = tz
        self.today = today or (lambda: reports.clock().astimezone(tz).date())

    def handlers(self, api: OpsApi) -> Mapping[str, Handler]:
        return {"desk_report": self.report, "desk_report_export": self.export}

    def query(self, params: Mapping[str, Any]) -> DeskQuery:
        """The question of the checked query parameters; ApiError 422 when the days do not fit."""
        start, end = local_period(params, self.tz, self.today, MAX_PERIOD, DEFAULT_DAYS)
        return DeskQuery(start, end, params.get("agent"), params.get("site"), params.get("by", "day"),
                         float(params.get("within", DEFAULT_WITHIN_S)))  # fmt: skip

    async def report(self, request: web.Request, call: Call) -> web.StreamResponse:
        found = await self.reports.report(call.params["report"], self.query(call.params))
        return web.json_response(found.as_json())

    async def export(self, request: web.Request, call: Call) -> web.StreamResponse:
        name = call.params["report"]
        query = self.query(call.params)
        found = await self.reports.report(name, query)
        last = (query.end - timedelta(days=1)).astimezone(self.tz).date()
        stem = f"escritorio-{name}-{query.start.astimezone(self.tz).date()}-a-{last}"
        if call.params.get("format", "csv") == "xlsx":
            return _download(report_xlsx(found), XLSX_MEDIA_TYPE, f"{stem}.xlsx")
        return _download(report_csv(found).encode(), "text/csv", f"{stem}.csv")


def _download(body: bytes, media: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=media,
        charset="utf-8" if media.startswith("text/") else None,
        headers={"Content-Disposition": f"attachment; filename={filename}",
                 "Cache-Control": "no-store"},
    )  # fmt: skip


def desk_reports_extension(routes: DeskReportRoutes) -> ApiExtension:
    """The routes, schemas and console page for ``build_ops_app``."""
    files = {
        name: CONSOLE / name for name in (PAGE, "reportes-escritorio.js", "reportes-escritorio.css")
    }
    return ApiExtension(
        name="desk-reports",
        operations=OPERATIONS,
        handlers=routes.handlers,
        schemas=SCHEMAS,
        console_files=files,
        pages=(ConsolePage(PAGE, "Reportes del escritorio"),),
        errors={InvalidQuery: (422, "invalid_parameter")},
    )


def build_desk_reports_extension(
    db: Database,
    tz: tzinfo,
    clock: Callable[[], datetime] | None = None,
    reason_labels: Mapping[str, str] | None = None,
    pause_labels: Mapping[str, str] | None = None,
) -> ApiExtension:
    """The desk reports over ``db`` in the line's time zone ``tz`` (composition root);
    ``reason_labels``: the line's IVR reason codes → the words its pop stores;
    ``pause_labels``: desk.yaml's pause reasons (:class:`ivr.desk.reports.DeskReports`)."""
    reports = DeskReports(db, tz, clock=clock or (lambda: datetime.now(UTC)),
                          reason_labels=reason_labels, pause_labels=pause_labels)  # fmt: skip
    return desk_reports_extension(DeskReportRoutes(reports, tz))
