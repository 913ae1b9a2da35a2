"""The desk's reports: why people call, how the scripts are walked, how fast they are served.

Read only, over ``desk_contacts``, ``desk_steps``, ``desk_presence``,
``script_versions`` (``ivr.desk.report_sources``) and ``call_records`` (the IVR
side). One question (:class:`DeskQuery`: a period of local days, an agent, a
site) and six reports (:data:`REPORTS`):

=============  =================================================================================
``reasons``    contacts by day, agent or site × call type, reason, scenario, procedure, disposition
``steps``      time per script node: steps, p50, p90, max seconds
``paths``      the sequences of nodes taken, with counts, most frequent first
``mismatch``   the callers' IVR reason × the agents' call type, and the share of mismatches
``levels``     per level and queue: contacts, answered within N s, queue wait, time at level,
               escalations and their reasons; journeys by hops
``agents``     per agent: contacts, handle time, logged-in and paused time by reason
=============  =================================================================================

What belongs to the period: a contact by its ``answered_at`` (a Bogotá day
runs 00:00–24:00 local, ``[start, end)``), a step by its contact, a presence
event by its ``at`` (time before or after the period is cut off). The agent
filter is ``desk_contacts.agent`` (the extension) and ``desk_presence.agent``;
the site filter is the contact's ``context.site_id`` (what the pop showed:
presence has no site and is not filtered by it). Definitions of each figure:
``ivr.desk.report_figures`` and ``docs/desk/reports.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.desk import report_figures as f
from ivr.desk import report_service as sl
from ivr.desk.report_sources import (
    DESK_CONTACTS,
    DESK_PRESENCE,
    DESK_STEPS,
    SCRIPT_VERSIONS,
    SITE_KEY,
)
from ivr.store.db import Database
from ivr.store.models import CallRecordRow

REPORTS = ("reasons", "steps", "paths", "mismatch", "levels", "agents")
MAX_PERIOD = timedelta(days=400)
MAX_WITHIN_S = 3600.0
_CHUNK = 500  # ids per IN (...) list


class InvalidQuery(ValueError):
    """A report question that cannot be answered (naive times, end before start, too long)."""


@dataclass(frozen=True)
class DeskQuery:
    """``[start, end)`` (aware), filters (``None``: all), ``by`` for ``reasons``
    (``day`` | ``agent`` | ``site``) and the service-level threshold ``within_s``.

    Raises :class:`InvalidQuery` for a naive time, ``end <= start``, a period over
    ``MAX_PERIOD``, an unknown ``by`` or a threshold outside 0–3600 s.
    """

    start: datetime
    end: datetime
    agent: str | None = None
    site: str | None = None
    by: str = "day"
    within_s: float = sl.DEFAULT_WITHIN_S

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidQuery("el periodo necesita horas con zona horaria")
        if self.end <= self.start:
            raise InvalidQuery("el periodo termina antes de empezar")
        if self.end - self.start > MAX_PERIOD:
            raise InvalidQuery(f"el periodo es de {MAX_PERIOD.days} días como máximo")
        if self.by not in f.BY_VALUES:
            raise InvalidQuery(f"«by» es uno de {', '.join(f.BY_VALUES)}")
        if not 0 <= self.within_s <= MAX_WITHIN_S:
            raise InvalidQuery("el umbral de nivel de servicio va de 0 a 3600 s")

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "filters": {"agent": self.agent, "site": self.site},
                "by": self.by, "within_s": self.within_s}  # fmt: skip


@dataclass(frozen=True)
class DeskReport:
    """One report's answer: ``body`` (JSON-ready; its shape per report in the docs),
    and ``options``: the agents (extension → name) and sites of the period, for filters."""

    name: str
    query: DeskQuery
    as_of: datetime
    body: dict[str, Any]
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"report": self.name, **self.query.as_json(), "as_of": self.as_of.isoformat(),
                **self.body, "options": self.options}  # fmt: skip


def site_of(context: Any) -> str | None:
    """The affiliate's site in a contact's pop context, if any: ``context["site_id"]``
    (the agreed key), else the caller's ``site_id`` or ``site`` as the pop showed it
    (``context["caller"]``)."""
    if not isinstance(context, Mapping):
        return None
    caller = context.get("caller")
    caller = caller if isinstance(caller, Mapping) else {}
    for site in (context.get(SITE_KEY), caller.get(SITE_KEY), caller.get("site")):
        if site not in (None, ""):
            return str(site)
    return None


def ivr_reason_of(path: Any) -> str | None:
    """The reason of the last ``transfer`` step of a call record's path (the IVR side)."""
    if not isinstance(path, list):
        return None
    for step in reversed(path):
        if isinstance(step, Mapping) and step.get("kind") == "transfer" and step.get("reason"):
            return str(step["reason"])
    return None


def expected_call_types(tree: Any) -> dict[str, list[str]]:
    """IVR reason → the call types the script's entry rules open it at.

    ``tree["entry"]``: ``[{"when": {"reason": R, ...}, "node": N}, ...]`` (the scripts
    part's schema, ``ivr/schemas/scripts.json``). ``N`` names a node of the tree
    (``tipo/motivo/escenario``, or a bare id); its call type is the ``call_types``
    entry that holds it. Each call type is given by its id *and* its label (the
    desk records the label in ``desk_contacts.call_type``). Rules without a reason,
    or whose node is not found, add nothing; a reason that opens at several call
    types expects any of them.

    >>> tree = {"call_types": [{"id": "incidente", "label": "Incidentes", "reasons": [{"id": "caida"}]}],
    ...         "entry": [{"when": {"reason": "incident"}, "node": "incidente/caida"},
    ...                   {"when": {"choice": "2"}, "node": "incidente"}]}
    >>> expected_call_types(tree)
    {'incident': ['Incidentes', 'incidente']}
    """
    if not isinstance(tree, Mapping):
        return {}
    call_types = tree.get("call_types")
    owners = _node_owners(call_types)
    labels = {
        t["id"]: str(t.get("label") or t["id"])
        for t in (call_types if isinstance(call_types, list) else ())
        if isinstance(t, Mapping) and isinstance(t.get("id"), str)
    }
    found: dict[str, set[str]] = {}
    for rule in tree.get("entry") or ():
        if not isinstance(rule, Mapping) or not isinstance(rule.get("when"), Mapping):
            continue
        reason, node = rule["when"].get("reason"), str(rule.get("node") or "")
        owner = owners.get(node.split("/")[0]) or owners.get(node.split("/")[-1])
        if reason and owner:
            found.setdefault(str(reason), set()).update((owner, labels[owner]))
    return {k: sorted(v) for k, v in sorted(found.items())}


def _node_owners(call_types: Any) -> dict[str, str]:
    """Node id → the id of the call type that holds it (a call type owns its own id)."""
    owners: dict[str, str] = {}

    def walk(value: Any, owner: str) -> None:
        if isinstance(value, Mapping):
            if isinstance(value.get("id"), str):
                owners.setdefault(value["id"], owner)
            for child in value.values():
                walk(child, owner)
        elif isinstance(value, list):
            for child in value:
                walk(child, owner)

    for call_type in call_types if isinstance(call_types, list) else ():
        if isinstance(call_type, Mapping) and isinstance(call_type.get("id"), str):
            owners[call_type["id"]] = call_type["id"]
            walk(call_type, call_type["id"])
    return owners


class DeskReports:
    """The six reports over ``db`` (read only), days in ``tz`` (the line's zone).

    ``clock``: now (aware UTC), for presence still open today. ``reason_labels``: the
    line's IVR reason codes → the words the pop stores in ``ivr_reason``
    (``non-target`` → "Población no objetivo..."), so the mismatch report matches
    the script's entry rules (written with codes) and shows the words.
    ``pause_labels``: pause reason ids (``desk_presence.reason``, desk.yaml
    ``pause_reasons``) → their Spanish labels, the keys of the agents' time in pause.
    Each method raises ``StoreUnavailable`` when the database does not answer in time.
    """

    def __init__(
        self,
        db: Database,
        tz: tzinfo,
        clock: Callable[[], datetime] | None = None,
        reason_labels: Mapping[str, str] | None = None,
        pause_labels: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.tz = tz
        self.clock = clock or (lambda: datetime.now(UTC))
        self.labels = dict(reason_labels or {})
        self.codes = {label: code for code, label in self.labels.items()}
        self.pause_labels = dict(pause_labels or {})

    async def report(self, name: str, query: DeskQuery) -> DeskReport:
        """The report ``name`` (one of :data:`REPORTS`; else ValueError) for ``query``."""
        if name not in REPORTS:
            raise ValueError(f"unknown report {name!r}")
        now = self.clock()

        async def op(session: AsyncSession) -> DeskReport:
            # Every contact of the period (the filters' options), then the filtered ones.
            every = await self._contacts(session, query, ivr_side=name == "mismatch")
            contacts = [
                c for c in every if query.agent in (None, c.agent) and query.site in (None, c.site)
            ]
            compute = {
                "reasons": self._reasons, "steps": self._steps, "paths": self._paths,
                "mismatch": self._mismatch, "levels": self._levels, "agents": self._agents,
            }[name]  # fmt: skip
            body = await compute(session, query, contacts, now)
            return DeskReport(name, query, now, body, _options(every))

        return await self.db.run(f"compute the desk report {name}", op,
                                 deadline_s=max(self.db.timeout, 30.0))  # fmt: skip

    # --- the reports -------------------------------------------------------------------------
    async def _reasons(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                       now: datetime) -> dict[str, Any]:  # fmt: skip
        rows = f.reasons(contacts, q.by, self.tz)
        keys = f.days_between(q.start, q.end, self.tz) if q.by == "day" else ()
        return {"contacts": len(contacts), "rows": [r.as_json() for r in rows],
                "by_key": f.totals_by_key(rows, keys),
                "by_call_type": f.totals_by_call_type(rows)}  # fmt: skip

    async def _steps(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                     now: datetime) -> dict[str, Any]:  # fmt: skip
        steps = await self._steps_of(session, q, contacts)
        return {"contacts": len(contacts), "steps": len(steps),
                "rows": [r.as_json() for r in f.step_times(steps)]}  # fmt: skip

    async def _paths(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                     now: datetime) -> dict[str, Any]:  # fmt: skip
        paths = f.script_paths(await self._steps_of(session, q, contacts))
        walked = sum(p.contacts for p in paths)
        return {"contacts": len(contacts), "with_steps": walked,
                "rows": [p.as_json() for p in paths]}  # fmt: skip

    async def _mismatch(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                        now: datetime) -> dict[str, Any]:  # fmt: skip
        tree = await session.scalar(
            select(SCRIPT_VERSIONS.c.tree).where(SCRIPT_VERSIONS.c.state == "published")
            .order_by(SCRIPT_VERSIONS.c.version.desc()).limit(1)
        )  # fmt: skip
        body = f.mismatch(contacts, expected_call_types(tree)).as_json()
        body["labels"] = {r: self.labels[r] for r in body["ivr_reasons"] if r in self.labels}
        return body

    async def _levels(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                      now: datetime) -> dict[str, Any]:  # fmt: skip
        return {"contacts": len(contacts),
                "rows": [r.as_json() for r in sl.service_levels(contacts, q.within_s)],
                "total": sl.service_total(contacts, q.within_s).as_json(),
                "hops": sl.hops(contacts)}  # fmt: skip

    async def _agents(self, session: AsyncSession, q: DeskQuery, contacts: list[f.ContactFacts],
                      now: datetime) -> dict[str, Any]:  # fmt: skip
        events = await self._presence(session, q)
        presence = sl.presence_time(events, q.start, max(q.start, min(q.end, now)))
        names = {c.agent: c.agent_name for c in contacts}
        return {"contacts": len(contacts),
                "rows": [a.as_json() for a in sl.agents(contacts, presence, names)]}  # fmt: skip

    # --- the queries -------------------------------------------------------------------------
    def _period(self, q: DeskQuery) -> list[Any]:
        c = DESK_CONTACTS.c
        found = [c.answered_at >= q.start, c.answered_at < q.end]
        if q.agent is not None:
            found.append(c.agent == q.agent)
        return found

    async def _contacts(
        self, session: AsyncSession, q: DeskQuery, *, ivr_side: bool = False
    ) -> list[f.ContactFacts]:
        """The period's contacts, every agent's; with ``ivr_side``, each with its IVR
        reason as a code (:meth:`ivr_reason`), reading the call records it needs."""
        c = DESK_CONTACTS.c
        result = await session.execute(
            select(c.id, c.kind, c.agent, c.agent_name, c.queue, c.level, c.answered_at, c.state,
                   c.context, c.ivr_reason, c.call_record_id, c.call_type, c.reason, c.scenario,
                   c.procedure, c.disposition, c.queued_at, c.ended_at, c.closed_at,
                   c.escalated_at, c.escalation_reason, c.escalated_to, c.hold_seconds,
                   c.previous_contact_id, c.journey_key)
            .where(c.answered_at >= q.start, c.answered_at < q.end).order_by(c.answered_at, c.id)
        )  # fmt: skip
        rows = [dict(r) for r in result.mappings()]
        if not ivr_side:
            return [_contact(r, r["ivr_reason"]) for r in rows]
        missing = [r["call_record_id"] for r in rows if not r["ivr_reason"] and r["call_record_id"]]
        from_ivr = await self._ivr_reasons(session, missing)
        return [_contact(r, self.ivr_reason(r["ivr_reason"], from_ivr.get(r["call_record_id"] or "")))
                for r in rows]  # fmt: skip

    def ivr_reason(self, stored: str | None, from_record: str | None) -> str | None:
        """A contact's IVR reason as a code: its own (the words of ``reason_labels``
        turned back into their code; anything else as stored), else the reason of its
        call record's last transfer, else None."""
        if stored:
            return self.codes.get(stored, stored)
        return from_record

    async def _ivr_reasons(
        self, session: AsyncSession, record_ids: Sequence[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for i in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[i : i + _CHUNK]
            result = await session.execute(
                select(CallRecordRow.id, CallRecordRow.path).where(CallRecordRow.id.in_(chunk))
            )
            for record_id, path in result:
                reason = ivr_reason_of(path)
                if reason is not None:
                    found[record_id] = reason
        return found

    async def _steps_of(self, session: AsyncSession, q: DeskQuery,
                        contacts: Iterable[f.ContactFacts]) -> list[f.StepFacts]:  # fmt: skip
        s, c = DESK_STEPS.c, DESK_CONTACTS.c
        wanted = {x.id for x in contacts}
        result = await session.execute(
            select(s.contact_id, s.seq, s.node_id, s.label, s.seconds)
            .select_from(DESK_STEPS.join(DESK_CONTACTS, c.id == s.contact_id))
            .where(*self._period(q)).order_by(c.answered_at, s.contact_id, s.seq)
        )  # fmt: skip
        return [
            f.StepFacts(r.contact_id, int(r.seq), r.node_id, r.label or r.node_id,
                        None if r.seconds is None else float(r.seconds))
            for r in result if r.contact_id in wanted
        ]  # fmt: skip

    async def _presence(self, session: AsyncSession, q: DeskQuery) -> list[f.PresenceFacts]:
        p = DESK_PRESENCE.c
        mine = [] if q.agent is None else [p.agent == q.agent]
        during = select(p.agent, p.event, p.reason, p.at).where(
            p.at >= q.start, p.at < q.end, *mine
        )
        last = (
            select(p.agent, func.max(p.at).label("at"))
            .where(p.at < q.start, *mine).group_by(p.agent).subquery()
        )  # fmt: skip
        before = select(p.agent, p.event, p.reason, p.at).select_from(
            DESK_PRESENCE.join(last, and_(p.agent == last.c.agent, p.at == last.c.at))
        )
        events: list[f.PresenceFacts] = []
        for statement in (before, during):
            for r in await session.execute(statement):
                reason = self.pause_labels.get(r.reason, r.reason) if r.reason else None
                events.append(f.PresenceFacts(r.agent, r.event, r.at, reason))
        return events


def _contact(r: Mapping[str, Any], ivr_reason: str | None) -> f.ContactFacts:
    hold = r["hold_seconds"]
    return f.ContactFacts(
        id=r["id"], kind=r["kind"], agent=r["agent"], agent_name=r["agent_name"] or r["agent"],
        queue=r["queue"], level=int(r["level"]), answered_at=r["answered_at"], state=r["state"],
        site=site_of(r["context"]), ivr_reason=ivr_reason, call_type=r["call_type"],
        reason=r["reason"], scenario=r["scenario"], procedure=r["procedure"],
        disposition=r["disposition"], queued_at=r["queued_at"], ended_at=r["ended_at"],
        closed_at=r["closed_at"], escalated_at=r["escalated_at"],
        escalation_reason=r["escalation_reason"], escalated_to=r["escalated_to"],
        hold_seconds=None if hold is None else float(hold),
        previous_contact_id=r["previous_contact_id"], journey_key=r["journey_key"],
    )  # fmt: skip


def _options(contacts: Iterable[f.ContactFacts]) -> dict[str, Any]:
    agents: dict[str, str] = {}
    sites: set[str] = set()
    for c in contacts:
        agents.setdefault(c.agent, c.agent_name)
        if c.site is not None:
            sites.add(c.site)
    return {"agents": [{"agent": a, "name": agents[a]} for a in sorted(agents)],
            "sites": sorted(sites)}  # fmt: skip
