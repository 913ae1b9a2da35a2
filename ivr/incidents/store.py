"""Incident reports in the database, each linked to the incident switch at the time of the error.

The link (:func:`incident_at`) reads the operations tables as they were at
``occurred_at``: a contingency window for ``incident_mode`` in force then
(not cancelled before, the newest created wins, as in
``ivr.ops.store.winning_window``), else the last change an operator made to
the switch before then (``set``, ``reset``, ``incident_on``, ``incident_off``),
else the default (off). Reports are written by operators (``Role.OPERATOR``:
the advisors' supervisors and the advisors' own tokens); anyone with a token
reads them, masked; operators read the detail unmasked.

Errors (``ivr.ops.service``): ``Forbidden`` (403), ``NotFound`` (404),
``InvalidChange`` (422, the form's rules in :mod:`ivr.incidents.reports`,
or a case number with no case).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.incidents.reports import IncidentLink, IncidentReport, NewIncidentReport, check
from ivr.incidents.tables import IncidentReportRow
from ivr.ops.flags import INCIDENT_FLAG, INCIDENT_MODE, Role
from ivr.ops.service import Actor, Forbidden, InvalidChange, NotFound
from ivr.ops.store import utcnow
from ivr.ops.tables import AuditRow, FlagWindowRow
from ivr.store.db import Database

SWITCH_ACTIONS = ("set", "reset", "incident_on", "incident_off")
CASES = table("cases", column("number"))


@dataclass(frozen=True)
class ReportFilter:
    """What a list asks for (all optional): the error's time range, a channel, a case."""

    since: datetime | None = None  # occurred_at >= since
    until: datetime | None = None  # occurred_at < until
    channel: str | None = None
    case_number: str | None = None
    incident_active: bool | None = None
    limit: int = 200
    offset: int = 0


async def incident_at(session: AsyncSession, at: datetime) -> IncidentLink:
    """The incident switch's state at ``at`` and the record that gave it."""
    windows = (
        await session.execute(
            select(FlagWindowRow)
            .where(
                FlagWindowRow.name == INCIDENT_MODE,
                FlagWindowRow.starts_at <= at,
                FlagWindowRow.ends_at > at,
                FlagWindowRow.created_at <= at,
            )
            .order_by(FlagWindowRow.created_at.desc(), FlagWindowRow.id)
        )
    ).scalars().all()  # fmt: skip
    for window in windows:
        if window.cancelled_at is not None and window.cancelled_at <= at:
            continue
        entry = await session.execute(
            select(AuditRow.id)
            .where(AuditRow.window_id == window.id, AuditRow.at <= at)
            .order_by(AuditRow.id.desc())
            .limit(1)
        )
        return IncidentLink(bool(window.value.get("v")), "window", entry.scalar(), window.id)
    change = (
        await session.execute(
            select(AuditRow)
            .where(AuditRow.name == INCIDENT_MODE, AuditRow.action.in_(SWITCH_ACTIONS), AuditRow.at <= at)
            .order_by(AuditRow.at.desc(), AuditRow.id.desc())
            .limit(1)
        )
    ).scalar()  # fmt: skip
    if change is None:
        return IncidentLink(bool(INCIDENT_FLAG.default), "default")
    value = bool((change.new_value or {}).get("v"))
    return IncidentLink(value, "default" if change.action == "reset" else "set", change.id)


def _row_to_report(row: IncidentReportRow) -> IncidentReport:
    new = NewIncidentReport(
        occurred_at=row.occurred_at, channels=tuple(row.channels), description=row.description,
        error_message=row.error_message, extra=row.extra, consent=row.consent,
        document_type=row.document_type, document=row.document,
        affiliate_name=row.affiliate_name, affiliate_phone=row.affiliate_phone,
        case_numbers=tuple(row.case_numbers),
    )  # fmt: skip
    link = IncidentLink(
        row.incident_active, row.incident_source, row.incident_audit_id, row.incident_window_id
    )
    return IncidentReport(row.id, new, row.consent_at, link, row.reported_by, row.reported_at)


class IncidentReportStore:
    """Files, reads and lists incident reports (``db`` migrated)."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime] = utcnow, *, check_cases: bool = True
    ) -> None:
        self.db = db
        self.clock = clock
        self.check_cases = check_cases  # False only where no cases table exists

    async def file(self, actor: Actor, new: NewIncidentReport) -> IncidentReport:
        """Check and store a report; returns it with its id and incident link."""
        if actor.role < Role.OPERATOR:
            raise Forbidden(f"{actor.role.label} no puede registrar reportes de incidente")
        now = self.clock()
        checked = check(new, now)

        async def op(session: AsyncSession) -> int:
            if self.check_cases and checked.case_numbers:
                found = await session.execute(
                    select(CASES.c.number).where(CASES.c.number.in_(checked.case_numbers))
                )
                missing = sorted(set(checked.case_numbers) - set(found.scalars()))
                if missing:
                    raise InvalidChange(
                        f"case_numbers: no existe el caso {', '.join(missing)}",
                        [{"field": "case_numbers", "message": "no existe: " + ", ".join(missing)}],
                    )
            link = await incident_at(session, checked.occurred_at)
            row = IncidentReportRow(
                occurred_at=checked.occurred_at, channels=list(checked.channels),
                document_type=checked.document_type, document=checked.document,
                affiliate_name=checked.affiliate_name, affiliate_phone=checked.affiliate_phone,
                consent=checked.consent, consent_at=now if checked.consent else None,
                description=checked.description, error_message=checked.error_message,
                extra=checked.extra, incident_active=link.active, incident_source=link.source,
                incident_audit_id=link.audit_id, incident_window_id=link.window_id,
                case_numbers=list(checked.case_numbers), reported_by=actor.name, reported_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            return row.id

        report_id = await self.db.run("file an incident report", op)
        return await self.get(report_id, details=False)

    async def get(self, report_id: int, *, details: bool = True) -> IncidentReport:
        """One report; with ``details``, the audit entry and window of its link. NotFound."""

        async def op(session: AsyncSession) -> IncidentReport:
            row = await session.get(IncidentReportRow, report_id)
            if row is None:
                raise NotFound(f"no existe el reporte de incidente {report_id}")
            report = _row_to_report(row)
            if details:
                report.details.update(await _link_details(session, report.incident))
            return report

        return await self.db.run("read an incident report", op)

    async def list(self, where: ReportFilter) -> builtins.list[IncidentReport]:
        """Reports matching ``where``, newest error first."""

        async def op(session: AsyncSession) -> builtins.list[IncidentReport]:
            query = select(IncidentReportRow).order_by(
                IncidentReportRow.occurred_at.desc(), IncidentReportRow.id.desc()
            )
            if where.since is not None:
                query = query.where(IncidentReportRow.occurred_at >= where.since)
            if where.until is not None:
                query = query.where(IncidentReportRow.occurred_at < where.until)
            if where.incident_active is not None:
                query = query.where(IncidentReportRow.incident_active.is_(where.incident_active))
            rows = [_row_to_report(r) for r in (await session.execute(query)).scalars()]
            # JSON list columns: filtered here, alike on SQLite and PostgreSQL
            if where.channel is not None:
                rows = [r for r in rows if where.channel in r.new.channels]
            if where.case_number is not None:
                rows = [r for r in rows if where.case_number in r.new.case_numbers]
            return rows[where.offset : where.offset + where.limit]

        return await self.db.run("list incident reports", op)


async def _link_details(session: AsyncSession, link: IncidentLink) -> dict[str, Any]:
    out: dict[str, Any] = {"audit": None, "window": None}
    if link.audit_id is not None:
        entry = await session.get(AuditRow, link.audit_id)
        if entry is not None:
            out["audit"] = {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
                            "action": entry.action, "reason": entry.reason}  # fmt: skip
    if link.window_id is not None:
        window = await session.get(FlagWindowRow, link.window_id)
        if window is not None:
            out["window"] = {"id": window.id, "starts_at": window.starts_at.isoformat(),
                             "ends_at": window.ends_at.isoformat(), "reason": window.reason,
                             "created_by": window.created_by}  # fmt: skip
    return out
