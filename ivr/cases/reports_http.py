"""The dashboard's routes on the ops API, and its console page "Tablero".

Added through the ops API's extension hook (``ivr.ops.api.ApiExtension``): the
ops package never imports this one; the composition root builds it with
:func:`reports_extension`. Every route is read only and needs a viewer token.

=====================================  ==================================================
``GET /api/reports/headline``          cases filed today, open now, overdue now
``GET /api/reports/figures``           figures by ``by`` over ``from``–``to`` (JSON or CSV)
``GET /api/reports/funnel``            the migration funnel of the period (JSON or CSV)
``GET /api/reports/export``            the whole dashboard as one XLSX workbook
``GET /api/reports/options``           the groups, sites and people the filters offer
=====================================  ==================================================

The period is given as local calendar days, ``from`` and ``to`` both included
(``2026-11-01`` to ``2026-11-30``: the line's zone, 00:00 of the first to 24:00 of
the last); without them, the last 7 days up to today. Filters: ``group``, ``site``,
``person`` (the funnel takes ``site`` only: calls have no group nor person).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.calendar import BusinessCalendar
from ivr.cases.config import CasesConfig
from ivr.cases.funnel import MAX_FUNNEL_PERIOD, FunnelDefinition, FunnelReports
from ivr.cases.report_export import dashboard_xlsx, figures_csv, funnel_csv
from ivr.cases.report_sources import CASES
from ivr.cases.reports import MAX_PERIOD, CaseReports, Dimension, InvalidQuery, ReportQuery
from ivr.ops.api import ApiError, ApiExtension, Call, ConsolePage, Handler, OpsApi
from ivr.ops.flags import Role
from ivr.ops.openapi import Param
from ivr.ops.period import local_period
from ivr.store.db import Database

CONSOLE = Path(__file__).parent / "console"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEFAULT_DAYS = 7
TAG = "reports"

_DAY = {"type": "string", "format": "date"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 128}
PERIOD = (
    Param("from", "query", _DAY, "First local day of the period (YYYY-MM-DD; default: 6 days before `to`)."),
    Param("to", "query", _DAY, "Last local day of the period, included (default: today)."),
)  # fmt: skip
FILTERS = (
    Param("group", "query", _TEXT, "Only this support group."),
    Param("site", "query", _TEXT, "Only this site (`cases.site_id`)."),
    Param("person", "query", _TEXT, "Only this person (the case's assignee; the person called for escalation calls; the survey's agent)."),
)  # fmt: skip
BY = Param("by", "query", {"type": "string", "enum": [d.value for d in Dimension], "default": "day"},
           "One row per day, week (ISO), month, group, site or person.")  # fmt: skip
FORMAT = Param("format", "query", {"type": "string", "enum": ["json", "csv"], "default": "json"},
               "`csv` for a CSV file (formula-injection safe).")  # fmt: skip
SITE = FILTERS[1]


def _operation(method: str, path: str, op_id: str, summary: str, **kw: Any) -> Any:
    from ivr.ops.openapi import Operation

    return Operation(method, path, op_id, summary, Role.VIEWER, tag=TAG, **kw)


OPERATIONS = (
    _operation("GET", "/api/reports/headline", "reports_headline",
               "Cases filed today (local day), open now, and open past their resolution due time.",
               response="ReportHeadline"),
    _operation("GET", "/api/reports/figures", "reports_figures",
               "Cases, business-time averages, SLA met %, alerts, ratings and sentiment, by a dimension.",
               response="ReportFigures", params=(*PERIOD, BY, *FILTERS, FORMAT),
               other_media=("text/csv",)),
    _operation("GET", "/api/reports/funnel", "reports_funnel",
               "The migration funnel (target callers → booked by phone / redirected → chats → booked in chat / cases) by site and hour, with flag changes.",
               response="ReportFunnel", params=(*PERIOD, SITE, FORMAT), other_media=("text/csv",)),
    _operation("GET", "/api/reports/export", "reports_export",
               "The dashboard (figures and funnel) as one XLSX workbook (formula-injection safe).",
               media=XLSX, params=(*PERIOD, BY, *FILTERS)),
    _operation("GET", "/api/reports/options", "reports_options",
               "The groups, sites and people the dashboard's filters offer.", response="ReportOptions"),
)  # fmt: skip

_INT = {"type": "integer"}
_NUM = {"type": ["number", "null"]}
SCHEMAS: dict[str, Any] = {
    "ReportHeadline": {"type": "object", "required": ["today", "open", "overdue", "as_of"],
                       "properties": {"today": _INT, "open": _INT, "overdue": _INT,
                                      "as_of": {"type": "string", "format": "date-time"}}},
    "ReportFigures": {"type": "object", "required": ["by", "start", "end", "rows", "total", "columns"],
                      "properties": {"rows": {"type": "array", "items": {"type": "object"}},
                                     "total": {"type": "object"},
                                     "columns": {"type": "array", "items": {"type": "object"}}}},
    "ReportFunnel": {"type": "object", "required": ["start", "end", "stages", "total", "by_site",
                                                    "by_hour_of_day", "timeline", "markers"]},
    "ReportOptions": {"type": "object", "required": ["groups", "sites", "people"],
                      "properties": {k: {"type": "array", "items": {"type": "string"}}
                                     for k in ("groups", "sites", "people")}},
}  # fmt: skip


class ReportRoutes:
    """The handlers, with the report queries they use."""

    def __init__(
        self,
        figures: CaseReports,
        funnel: FunnelReports,
        tz: tzinfo,
        groups: Callable[[], list[str]] = list,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.figures = figures
        self.funnel = funnel
        self.tz = tz
        self.groups = groups
        self.today = today or (lambda: figures.clock().astimezone(tz).date())

    def handlers(self, api: OpsApi) -> Mapping[str, Handler]:
        return {
            "reports_headline": self.headline, "reports_figures": self.report,
            "reports_funnel": self.funnel_report, "reports_export": self.export,
            "reports_options": self.options,
        }  # fmt: skip

    # --- the period --------------------------------------------------------------------------
    def period(self, params: Mapping[str, Any], longest: timedelta) -> tuple[datetime, datetime]:
        """``[from 00:00, to+1 00:00)`` local, from the checked ``from``/``to`` days."""
        return local_period(params, self.tz, self.today, longest, DEFAULT_DAYS)

    def query(self, params: Mapping[str, Any]) -> ReportQuery:
        start, end = self.period(params, MAX_PERIOD)
        try:
            return ReportQuery(start, end, Dimension(params.get("by", "day")), params.get("group"),
                               params.get("site"), params.get("person"))  # fmt: skip
        except InvalidQuery as exc:
            raise ApiError(422, "invalid_parameter", str(exc), []) from None

    # --- the routes --------------------------------------------------------------------------
    async def headline(self, request: web.Request, call: Call) -> web.StreamResponse:
        return web.json_response((await self.figures.headline()).as_json())

    async def report(self, request: web.Request, call: Call) -> web.StreamResponse:
        report = await self.figures.figures(self.query(call.params))
        if call.params.get("format") == "csv":
            return _download(
                figures_csv(report).encode(),
                "text/csv",
                _name("indicadores", report.query.start, report.query.end, "csv"),
            )
        return web.json_response(report.as_json())

    async def funnel_report(self, request: web.Request, call: Call) -> web.StreamResponse:
        start, end = self.period(call.params, MAX_FUNNEL_PERIOD)
        funnel = await self.funnel.funnel(start, end, call.params.get("site"))
        if call.params.get("format") == "csv":
            return _download(
                funnel_csv(funnel).encode(), "text/csv", _name("embudo", start, end, "csv")
            )
        return web.json_response(funnel.as_json())

    async def export(self, request: web.Request, call: Call) -> web.StreamResponse:
        query = self.query(call.params)
        start, end = self.period(call.params, MAX_FUNNEL_PERIOD)
        report = await self.figures.figures(query)
        funnel = await self.funnel.funnel(start, end, query.site_id)
        return _download(dashboard_xlsx(report, funnel), XLSX, _name("tablero", start, end, "xlsx"))

    async def options(self, request: web.Request, call: Call) -> web.StreamResponse:
        c = CASES.c

        async def op(session: AsyncSession) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for key, column in (("groups", c.group), ("sites", c.site_id), ("people", c.assignee)):
                values = await session.scalars(select(column).where(column.is_not(None)).distinct())
                found[key] = sorted(str(v) for v in values)
            return found

        found = await self.figures.db.run("list the report filters", op)
        found["groups"] = sorted({*found["groups"], *self.groups()})
        return web.json_response(found)


def _name(what: str, start: datetime, end: datetime, suffix: str) -> str:
    last = (end - timedelta(days=1)).date()
    return f"citas-{what}-{start.date().isoformat()}-a-{last.isoformat()}.{suffix}"


def _download(body: bytes, media: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=media,
        charset="utf-8" if media.startswith("text/") else None,
        headers={"Content-Disposition": f"attachment; filename={filename}",
                 "Cache-Control": "no-store"},
    )  # fmt: skip


def reports_extension(routes: ReportRoutes) -> ApiExtension:
    """The dashboard's routes, schemas and console page for ``build_ops_app``."""
    files = {name: CONSOLE / name for name in ("tablero.html", "tablero.js", "tablero.css")}
    return ApiExtension(
        name="reports",
        operations=OPERATIONS,
        handlers=routes.handlers,
        schemas=SCHEMAS,
        console_files=files,
        pages=(ConsolePage("tablero.html", "Tablero"),),
        errors={InvalidQuery: (422, "invalid_parameter")},
    )


def build_reports_extension(
    db: Database,
    config: CasesConfig,
    definition: FunnelDefinition,
    clock: Callable[[], datetime] | None = None,
) -> ApiExtension:
    """The dashboard for the composition root: the figures over ``config``'s groups
    (each with its business calendar), the funnel of ``definition`` (the line's), in
    the cases' time zone.

    A case whose group is no longer in the configuration is measured on the default
    group's calendar (its business time must still be told), not refused.
    """
    tz = ZoneInfo(config.timezone)

    def calendar_for(group: str) -> BusinessCalendar:
        try:
            return config.calendar_for(group)
        except KeyError:
            return config.calendar_for(config.default_group)

    figures = CaseReports(db, calendar_for, tz, clock=clock or (lambda: datetime.now(UTC)))
    routes = ReportRoutes(
        figures, FunnelReports(db, definition, tz), tz, groups=lambda: sorted(config.groups)
    )
    return reports_extension(routes)
