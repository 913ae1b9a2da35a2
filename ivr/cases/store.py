"""Cases in the database: filing, the queue, state changes and their audit log.

Every change is one transaction that writes the case **and** its
``case_events`` row together ("audited like the flags"): a change without its
event, or an event without its change, cannot be committed.

**Numbers without collisions.** ``case_sequence`` holds one row; filing runs,
as its *first* statement, ``UPDATE case_sequence SET last = last + 1
RETURNING last`` and only then checks for an open case and inserts. On
PostgreSQL the update takes the row's lock until the filing commits, so
concurrent filings are serialised by that one row (at most a few hundred
filings a day: the wait is milliseconds) and each gets the next number; on
SQLite the update makes the transaction the database's single writer (the
others wait, up to the engine's timeout). A filing that fails rolls back and
its number is given back: numbers have no gaps and are never reused. Chosen
over a PostgreSQL ``SEQUENCE`` because it behaves the same on both databases
and leaves no gaps; over ``max(seq) + 1`` because that collides under
concurrency.

**One open case per affiliate and specialty** is the database's partial
unique index; because filings are serialised by the sequence row, the second
of two concurrent filings finds the first's case and raises
:class:`OpenCaseExists` carrying it. Should an insert still hit the index
(a writer that bypassed the sequence), the IntegrityError is turned into the
same error.

**Optimistic concurrency.** Every change reads the case, checks the state
allows it, and writes ``WHERE version = <read>`` with ``version + 1``;
a concurrent change makes it :class:`CaseConflict` and nothing is written.
A caller that shows a case before changing it (the console) passes
``expected_version`` to refuse a change made on a stale view.

Errors: :class:`CaseNotFound`, :class:`CaseConflict`, :class:`OpenCaseExists`
(all :class:`CaseError`); ``ivr.store.StoreUnavailable`` when the database
cannot be reached. Logs show case numbers, never documents or phones unmasked.
"""

from __future__ import annotations

import builtins
import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ivr.cases.calendar import BusinessCalendar
from ivr.cases.config import CasesConfig
from ivr.cases.model import (
    ANSWERED,
    ANSWERED_EVENT,
    ASSIGNED,
    ASSIGNED_EVENT,
    CHANNELS,
    CLOSED,
    CLOSED_EVENT,
    FILED,
    HIGH,
    OPEN,
    PRIORITIES,
    PRIORITY_RAISED,
    STATES,
    SYSTEM,
    TIME_BANDS,
    Actor,
    Case,
    CaseEvent,
    NewCase,
)
from ivr.cases.number import format_number
from ivr.cases.sla import deadlines
from ivr.cases.tables import CaseEventRow, CaseRow, CaseSequenceRow
from ivr.masking import mask_number
from ivr.store.db import Database

logger = logging.getLogger(__name__)


# What a change did: (event action, old values, new values).
Change = tuple[str, dict[str, Any], dict[str, Any]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class CaseError(RuntimeError):
    """A case operation was refused; ``message`` is Spanish (operators read it)."""


class CaseNotFound(CaseError):
    pass


class CaseConflict(CaseError):
    """The case's state does not allow this, or it changed since it was read."""


class OpenCaseExists(CaseError):
    """The affiliate already has an open case for this specialty: ``existing``."""

    def __init__(self, existing: Case) -> None:
        super().__init__(f"ya hay un caso abierto para esta especialidad: {existing.number}")
        self.existing = existing


class CaseStore:
    """The cases of one database.

    ``calendar_for(group_id)`` gives a group's business calendar (usually
    ``CasesConfig.calendar_for``); ``clock`` gives "now" (aware UTC; tests
    pass a fake one).
    """

    def __init__(
        self,
        db: Database,
        calendar_for: Callable[[str], BusinessCalendar],
        config: CasesConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.calendar_for = calendar_for
        self.config = config
        self.clock = clock

    # --- filing ------------------------------------------------------------------------
    async def file(self, new: NewCase, *, actor: Actor = SYSTEM) -> Case:
        """File a case: a new number, the promise (``due_at``) and the SLA clocks
        from the group's policy, state ``open``, and its ``filed`` event.

        Raises :class:`OpenCaseExists` (carrying the open case) when the affiliate
        has one for ``new.specialty``; ``ValueError`` for an unknown group,
        channel or priority."""
        group_id = new.group or self.config.default_group
        group = self.config.group(group_id) if group_id in self.config.groups else None
        if group is None:
            raise ValueError(f"unknown support group {group_id!r}")
        if new.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {new.channel!r}")
        if new.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, got {new.priority!r}")
        evidence = [_evidence(e) for e in new.search_evidence]
        now = self.clock()
        due = deadlines(group.sla, self.calendar_for(group_id), now,
                        answer_within_business_days=self.config.answer_within_business_days)  # fmt: skip
        due_at = due.due_at

        async def op(session: AsyncSession) -> Case:
            seq = await session.scalar(
                update(CaseSequenceRow)
                .where(CaseSequenceRow.id == 1)
                .values(last=CaseSequenceRow.last + 1)
                .returning(CaseSequenceRow.last)
            )
            assert seq is not None, "migration 0007 seeds case_sequence"
            existing = await _open_row(session, new.affiliate_id, new.specialty)
            if existing is not None:
                raise OpenCaseExists(_case(existing))
            row = CaseRow(
                id=str(uuid.uuid4()), number=format_number(seq), seq=seq,
                affiliate_id=new.affiliate_id, specialty=new.specialty,
                service_id=new.service_id, cups=new.cups, site_id=new.site_id,
                channel=new.channel, journey_id=new.journey_id, call_id=new.call_id,
                wa_id=new.wa_id, contact_email=new.contact_email,
                contact_phone=new.contact_phone, consent=new.consent,
                consent_at=new.consent_at if new.consent_at or not new.consent else now,
                summary=new.summary, search_evidence=evidence,
                state=OPEN, priority=new.priority, priority_reason=new.priority_reason,
                group=group_id, assignee=None, filed_at=now, due_at=due_at,
                first_response_due_at=due.first_response_due_at,
                resolution_due_at=due.resolution_due_at,
                updated_at=now, version=1,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            _event(session, row.id, now, actor, FILED, new={
                "number": row.number, "group": group_id, "channel": new.channel,
                "due_at": due_at.astimezone(UTC).isoformat(), "priority": new.priority,
            })  # fmt: skip
            return _case(row)

        try:
            case = await self.db.run("file a case", op)
        except IntegrityError:
            existing_case = await self.open_for(new.affiliate_id, new.specialty)
            if existing_case is None:
                raise
            raise OpenCaseExists(existing_case) from None
        logger.info("case %s filed (%s, %s, affiliate %s), due %s", case.number, case.channel,
                    case.specialty, mask_number(case.affiliate_id), case.due_at.isoformat())  # fmt: skip
        return case

    # --- reading -------------------------------------------------------------------------
    async def open_for(self, affiliate_id: str, specialty: str) -> Case | None:
        """The affiliate's open (not closed) case for ``specialty``, if any."""

        query = _open_query(affiliate_id, specialty)

        def op(conn: Connection) -> Case | None:  # in a reader thread on SQLite: on a call's path
            with Session(bind=conn) as session:
                row = session.scalar(query)
                return None if row is None else _case(row)

        return await self.db.read_sync("find an open case", op)

    async def get(self, number: str) -> Case | None:
        """The case with this number (None when there is none)."""

        async def op(session: AsyncSession) -> Case | None:
            row = await session.scalar(select(CaseRow).where(CaseRow.number == number))
            return None if row is None else _case(row)

        return await self.db.run("read a case", op)

    async def list(
        self,
        *,
        state: str | Collection[str] | None = None,
        site_id: str | None = None,
        service_id: str | None = None,
        group: str | None = None,
        assignee: str | None = None,
        due_before: datetime | None = None,
        specialty: str | None = None,
        priority: str | None = None,
        first_response_due_before: datetime | None = None,
        resolution_due_before: datetime | None = None,
        without_first_response: bool = False,
        filed_since: datetime | None = None,
        filed_before: datetime | None = None,
        closed_since: datetime | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> builtins.list[Case]:
        """Cases matching every filter given, the soonest due first (then by number).

        ``state``: one state or several; ``due_before``: ``due_at`` before that instant
        (likewise ``first_response_due_before``, ``resolution_due_before``);
        ``without_first_response``: no answer recorded yet; ``filed_since`` (inclusive)
        and ``filed_before`` bound ``filed_at``; ``closed_since`` (inclusive): closed at
        or after. ``ValueError`` for an unknown state."""
        query = _filtered(select(CaseRow), **_filters(locals()))
        query = query.order_by(CaseRow.due_at, CaseRow.seq).limit(limit).offset(offset)

        async def op(session: AsyncSession) -> builtins.list[Case]:
            return [_case(r) for r in (await session.scalars(query)).all()]

        return await self.db.run("list cases", op)

    async def count(
        self,
        *,
        state: str | Collection[str] | None = None,
        site_id: str | None = None,
        service_id: str | None = None,
        group: str | None = None,
        assignee: str | None = None,
        due_before: datetime | None = None,
        specialty: str | None = None,
        priority: str | None = None,
        first_response_due_before: datetime | None = None,
        resolution_due_before: datetime | None = None,
        without_first_response: bool = False,
        filed_since: datetime | None = None,
        filed_before: datetime | None = None,
        closed_since: datetime | None = None,
    ) -> int:
        """How many cases :meth:`list` would give with the same filters and no limit."""
        query = _filtered(select(func.count()).select_from(CaseRow), **_filters(locals()))

        async def op(session: AsyncSession) -> int:
            return int(await session.scalar(query) or 0)

        return await self.db.run("count cases", op)

    async def events(self, number: str) -> builtins.list[CaseEvent]:
        """The case's events, oldest first. :class:`CaseNotFound` for no such case."""

        async def op(session: AsyncSession) -> builtins.list[CaseEvent]:
            row = await _row(session, number)
            rows = await session.scalars(
                select(CaseEventRow)
                .where(CaseEventRow.case_id == row.id)
                .order_by(CaseEventRow.at, CaseEventRow.id)
            )
            return [_event_of(e) for e in rows.all()]

        return await self.db.run("read case events", op)

    # --- changes -------------------------------------------------------------------------
    async def assign(
        self,
        number: str,
        *,
        to: str | None,
        group: str | None,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Case:
        """Give the case to a person (``to``) and/or move it to a support ``group``
        (None: keep the group). With a person an open case becomes ``assigned``;
        ``to=None`` takes it back to the group's queue (``assigned`` → ``open``).
        An answered case keeps its state. The SLA clocks are not restarted.

        :class:`CaseConflict` when closed; ``ValueError`` for an unknown group."""
        if group is not None and group not in self.config.groups:
            raise ValueError(f"unknown support group {group!r}")

        def change(row: CaseRow, now: datetime) -> Change | None:
            if row.state == CLOSED:
                raise CaseConflict(f"el caso {row.number} está cerrado: no se puede asignar")
            old = {"assignee": row.assignee, "group": row.group, "state": row.state}
            row.assignee = to
            row.group = group or row.group
            if row.state in (OPEN, ASSIGNED):
                row.state = ASSIGNED if to is not None else OPEN
            return ASSIGNED_EVENT, old, {"assignee": row.assignee, "group": row.group,
                                         "state": row.state}  # fmt: skip

        return await self._change(number, actor, change, expected_version, "")

    async def record_answer(
        self,
        number: str,
        *,
        text: str,
        channels: Sequence[str],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Case:
        """The case was answered (``text``, sent or to be sent on ``channels``:
        ``email``, ``whatsapp``, ``sms``…): state ``answered``, ``answered_at`` now
        and ``first_response_at`` now if it had none (the first-response clock stops).
        Sending is the caller's (events ``answer_sent`` / ``answer_failed``).

        :class:`CaseConflict` when closed; ``ValueError`` for an empty text."""
        if not text.strip():
            raise ValueError("an answer needs a text")

        def change(row: CaseRow, now: datetime) -> Change | None:
            if row.state == CLOSED:
                raise CaseConflict(f"el caso {row.number} está cerrado: no se puede responder")
            old = {"state": row.state, "first_response_at": _iso(row.first_response_at)}
            row.state = ANSWERED
            row.answered_at = now
            row.first_response_at = row.first_response_at or now
            return ANSWERED_EVENT, old, {"state": ANSWERED, "channels": list(channels),
                                         "first_response_at": _iso(row.first_response_at)}  # fmt: skip

        return await self._change(number, actor, change, expected_version, text)

    async def close(
        self,
        number: str,
        *,
        resolution: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Case:
        """Close the case (from any other state): ``closed_at`` now, ``closed_by``
        the actor, the ``resolution`` text. The affiliate may file again for
        that specialty. :class:`CaseConflict` when already closed; ``ValueError``
        for an empty resolution."""
        if not resolution.strip():
            raise ValueError("closing needs a resolution")

        def change(row: CaseRow, now: datetime) -> Change | None:
            if row.state == CLOSED:
                raise CaseConflict(f"el caso {row.number} ya está cerrado")
            old = {"state": row.state}
            row.state, row.closed_at, row.closed_by = CLOSED, now, actor.name
            row.resolution = resolution
            return CLOSED_EVENT, old, {"state": CLOSED}

        return await self._change(number, actor, change, expected_version, resolution)

    async def raise_priority(
        self,
        number: str,
        *,
        reason: str,
        actor: Actor,
        expected_version: int | None = None,
    ) -> Case:
        """Priority ``high`` with ``reason`` (a keyword that matched, an operator's
        judgement). Idempotent: a case already ``high`` is returned unchanged and
        no event is written. :class:`CaseConflict` when closed."""
        if not reason.strip():
            raise ValueError("raising the priority needs a reason")

        def change(row: CaseRow, now: datetime) -> Change | None:
            if row.state == CLOSED:
                raise CaseConflict(f"el caso {row.number} está cerrado")
            if row.priority == HIGH:
                return None  # already high: nothing written (checked in the transaction)
            old = {"priority": row.priority, "priority_reason": row.priority_reason}
            row.priority, row.priority_reason = HIGH, reason
            return PRIORITY_RAISED, old, {"priority": HIGH, "priority_reason": reason}

        return await self._change(number, actor, change, expected_version, reason)

    async def add_event(
        self,
        number: str,
        action: str,
        *,
        actor: Actor,
        detail: str = "",
        old: Any = None,
        new: Any = None,
    ) -> None:
        """Log an event that changes nothing in the case itself (``sla_warning``,
        ``escalation_*``, ``answer_sent``, ``survey_*``…). :class:`CaseNotFound`."""
        if not action or len(action) > 64:
            raise ValueError(f"an action is 1 to 64 characters, got {action!r}")

        async def op(session: AsyncSession) -> None:
            row = await _row(session, number)
            _event(session, row.id, self.clock(), actor, action, old=old, new=new, detail=detail)

        await self.db.run("log a case event", op)

    async def _change(
        self,
        number: str,
        actor: Actor,
        change: Callable[[CaseRow, datetime], Change | None],
        expected_version: int | None,
        detail: str,
    ) -> Case:
        """Read, apply ``change`` (which may raise CaseConflict, or return None when
        there is nothing to change), write with the version check and the event, in
        one transaction."""

        async def op(session: AsyncSession) -> Case:
            row = await _row(session, number)
            read_version = row.version
            if expected_version is not None and expected_version != read_version:
                raise CaseConflict(
                    f"el caso {number} cambió (versión {read_version}, se esperaba "
                    f"{expected_version}): vuelva a cargarlo"
                )
            now = self.clock()
            session.expunge(row)
            changed = change(row, now)
            if changed is None:
                return _case(row)
            action, old, new = changed
            values = {
                "state": row.state, "assignee": row.assignee, "group": row.group,
                "priority": row.priority, "priority_reason": row.priority_reason,
                "first_response_at": row.first_response_at, "answered_at": row.answered_at,
                "closed_at": row.closed_at, "closed_by": row.closed_by,
                "resolution": row.resolution, "updated_at": now, "version": read_version + 1,
            }  # fmt: skip
            result = await session.execute(
                update(CaseRow)
                .where(CaseRow.id == row.id, CaseRow.version == read_version)
                .values(**values)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise CaseConflict(f"el caso {number} cambió mientras tanto: vuelva a cargarlo")
            row.updated_at, row.version = now, read_version + 1
            _event(session, row.id, now, actor, action, old=old, new=new, detail=detail)
            return _case(row)

        case = await self.db.run(f"change case {number}", op)
        logger.info("case %s: %s by %s (%s)", number, case.state, actor.name, actor.role)
        return case


_FILTERS = (
    "state", "site_id", "service_id", "group", "assignee", "due_before", "specialty",
    "priority", "first_response_due_before", "resolution_due_before",
    "without_first_response", "filed_since", "filed_before", "closed_since",
)  # fmt: skip


def _filters(given: dict[str, Any]) -> dict[str, Any]:
    return {name: given[name] for name in _FILTERS}


S = TypeVar("S", bound=Select[Any])


def _filtered(
    query: S,
    *,
    state: str | Collection[str] | None,
    site_id: str | None,
    service_id: str | None,
    group: str | None,
    assignee: str | None,
    due_before: datetime | None,
    specialty: str | None,
    priority: str | None,
    first_response_due_before: datetime | None,
    resolution_due_before: datetime | None,
    without_first_response: bool,
    filed_since: datetime | None,
    filed_before: datetime | None,
    closed_since: datetime | None,
) -> S:
    """``query`` with the :meth:`CaseStore.list` filters applied."""
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise ValueError(f"unknown state(s) {unknown}; known: {STATES}")
        query = query.where(CaseRow.state.in_(states))
    for column, value in ((CaseRow.site_id, site_id), (CaseRow.service_id, service_id),
                          (CaseRow.group, group), (CaseRow.assignee, assignee),
                          (CaseRow.specialty, specialty), (CaseRow.priority, priority)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    for instant, before in ((CaseRow.due_at, due_before), (CaseRow.filed_at, filed_before),
                            (CaseRow.first_response_due_at, first_response_due_before),
                            (CaseRow.resolution_due_at, resolution_due_before)):  # fmt: skip
        if before is not None:
            query = query.where(instant < before)
    if filed_since is not None:
        query = query.where(CaseRow.filed_at >= filed_since)
    if closed_since is not None:
        query = query.where(CaseRow.closed_at >= closed_since)
    if without_first_response:
        query = query.where(CaseRow.first_response_at.is_(None))
    return query


def _open_query(affiliate_id: str, specialty: str) -> Select[CaseRow]:
    return select(CaseRow).where(
        CaseRow.affiliate_id == affiliate_id,
        CaseRow.specialty == specialty,
        CaseRow.state != CLOSED,
    )


async def _open_row(session: AsyncSession, affiliate_id: str, specialty: str) -> CaseRow | None:
    row: CaseRow | None = await session.scalar(_open_query(affiliate_id, specialty))
    return row


async def _row(session: AsyncSession, number: str) -> CaseRow:
    row = await session.scalar(select(CaseRow).where(CaseRow.number == number))
    if row is None:
        raise CaseNotFound(f"no existe el caso {number}")
    return row


def _event(
    session: AsyncSession,
    case_id: str,
    at: datetime,
    actor: Actor,
    action: str,
    *,
    old: Any = None,
    new: Any = None,
    detail: str = "",
) -> None:
    session.add(CaseEventRow(case_id=case_id, at=at, actor=actor.name, role=actor.role,
                             action=action, old=old, new=new, detail=detail))  # fmt: skip


def _evidence(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One search tried, checked and as JSON: ``time_band`` morning | afternoon | None,
    ``exclude_doctor_id`` str | None, ``found`` int ≥ 0, ``at`` an aware datetime or its
    ISO text (kept as ISO text); other keys are kept as given (JSON values).
    ``ValueError`` for anything else, so a filing never stores evidence the
    back office cannot read."""
    out = dict(entry)
    band = out.get("time_band")
    if band not in (*TIME_BANDS, None):
        raise ValueError(f"search_evidence: time_band {band!r} is not morning, afternoon or None")
    doctor = out.get("exclude_doctor_id")
    if doctor is not None and not isinstance(doctor, str):
        raise ValueError(f"search_evidence: exclude_doctor_id {doctor!r} is not a string")
    found = out.get("found")
    if not isinstance(found, int) or isinstance(found, bool) or found < 0:
        raise ValueError(f"search_evidence: found {found!r} is not a count")
    at = out.get("at")
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("search_evidence: at is a naive datetime")
        out["at"] = at.astimezone(UTC).isoformat()
    elif not isinstance(at, str):
        raise ValueError(f"search_evidence: at {at!r} is not an instant")
    try:
        json.dumps(out)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"search_evidence: not JSON: {exc}") from None
    return out


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _case(row: CaseRow) -> Case:
    return Case(
        id=row.id, number=row.number, affiliate_id=row.affiliate_id, specialty=row.specialty,
        service_id=row.service_id, cups=row.cups, site_id=row.site_id, channel=row.channel,
        journey_id=row.journey_id, call_id=row.call_id, wa_id=row.wa_id,
        contact_email=row.contact_email, contact_phone=row.contact_phone,
        consent=row.consent, consent_at=_utc(row.consent_at), summary=row.summary,
        search_evidence=list(row.search_evidence or []), state=row.state,
        priority=row.priority, priority_reason=row.priority_reason, group=row.group,
        assignee=row.assignee, filed_at=_req(row.filed_at), due_at=_req(row.due_at),
        first_response_due_at=_req(row.first_response_due_at),
        resolution_due_at=_req(row.resolution_due_at),
        first_response_at=_utc(row.first_response_at), answered_at=_utc(row.answered_at),
        closed_at=_utc(row.closed_at), closed_by=row.closed_by, resolution=row.resolution,
        updated_at=_req(row.updated_at), version=row.version,
    )  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _req(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _event_of(row: CaseEventRow) -> CaseEvent:
    return CaseEvent(row.id, row.case_id, _req(row.at), row.actor, row.role, row.action,
                     row.old, row.new, row.detail)  # fmt: skip
