"""The desk in the database: contacts and their script steps, agents' presence
(:class:`DeskStore`), script tree versions (:class:`ScriptStore`).

**Idempotent opening.** AMI may deliver ``AgentConnect`` twice (a reconnect, two
listeners): :meth:`DeskStore.open_contact` gives the same contact for the same
event. The database decides: unique ``source_key`` (the event's identity) and unique
``(kind, journey_key, agent, answered_at)``. The store looks first, inserts, and on
the unique violation (a concurrent delivery that committed first; on PostgreSQL the
second insert waits for the first's commit) reads and returns the winner's row.

**Serialised changes.** Every change of a contact starts with a write to its row
(``UPDATE … SET version = version``): on PostgreSQL that takes the row's lock until
the change commits, on SQLite it makes the transaction the database's single writer
(both before anything is read), so two concurrent changes run one after the other
and the second sees the first's result: two concurrent ``close`` → one closes, the
other gets :class:`ContactConflict`. The change itself is written ``WHERE version =
<read>`` with ``version + 1`` (optimistic: a caller that showed the contact passes
``expected_version`` and a change on a stale view is refused).

**Steps.** :meth:`DeskStore.record_step` ends the contact's open step (``left_at``,
``seconds``) and starts the next (``seq`` + 1) in one transaction; closing or
escalating the contact ends its open step too, so every step has its time.

**Script versions.** At most one version is published: a partial unique index
(``ivr.desk.tables``). :meth:`ScriptStore.publish` retires the published one and
publishes the new one in one transaction; a concurrent publish that loses the race
hits the index and is retried (it then retires the winner): exactly one published
at the end, the last to commit. :meth:`ScriptStore.seed` publishes version 1 only
into an empty table; a concurrent seed hits the unique version and returns None.

Errors: ``ivr.desk.errors`` (Spanish messages); ``ivr.store.StoreUnavailable`` when
the database cannot be reached. Logs name contacts by id, agents by extension,
never a caller's number.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.desk.errors import (
    ContactConflict,
    ContactNotFound,
    DispositionRequired,
    ReasonRequired,
    ScriptNotDraft,
    ScriptVersionNotFound,
)
from ivr.desk.model import (
    ACTIVE,
    CLOSED,
    DRAFT,
    ESCALATED,
    KINDS,
    OPEN_STATES,
    PRESENCE_EVENTS,
    PUBLISHED,
    RETIRED,
    STATE_LABELS,
    STATES,
    WRAPUP,
    Contact,
    NewContact,
    Presence,
    ScriptVersion,
    Step,
)
from ivr.desk.tables import DeskContactRow, DeskPresenceRow, DeskStepRow, ScriptVersionRow
from ivr.store.db import Database

logger = logging.getLogger(__name__)

# How often a ScriptStore write retries after losing a race on a unique index. Each
# round of a race has one winner, so n writers at once need up to n attempts: the
# bound is well above the administrators who could save at the same instant, and the
# jittered pause between attempts spreads the losers out instead of colliding again.
RETRIES = 20
RETRY_PAUSE_S = 0.01


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime, got {at!r}")
    return at.astimezone(UTC)


class DeskStore:
    """Contacts, steps and presence of one database; ``clock`` gives "now" (aware UTC)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # --- opening ---------------------------------------------------------------------------
    async def open_contact(self, new: NewContact) -> Contact:
        """Open the contact of an answer (state ``active``), or give the one already
        opened for the same event (same ``source_key``, else same ``(kind,
        journey_key, agent, answered_at)``).

        With ``previous_contact_id`` (a hop after an escalation) the journey key and
        the script's place (version, node, call type, reason, scenario, procedure)
        are taken from that contact unless ``new`` gives them: the script resumes
        where the previous level left it, on the same tree version.

        Raises ``ValueError`` (unknown kind, naive instant), :class:`ContactNotFound`
        (unknown previous contact)."""
        if new.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {new.kind!r}")
        answered_at = _aware(new.answered_at, "answered_at")
        queued_at = _aware(new.queued_at, "queued_at") if new.queued_at else None
        existing = await self._same_event(new, answered_at)
        if existing is not None:
            return existing
        now = self.clock()

        async def op(session: AsyncSession) -> Contact:
            carried: dict[str, Any] = {
                "journey_key": new.journey_key, "script_version": new.script_version,
                "script_node": new.script_node, "call_type": new.call_type,
                "reason": None, "scenario": None, "procedure": None,
            }  # fmt: skip
            if new.previous_contact_id is not None:
                previous = await session.get(DeskContactRow, new.previous_contact_id)
                if previous is None:
                    raise ContactNotFound(new.previous_contact_id)
                for key in carried:
                    if key == "journey_key" or carried[key] is None:
                        carried[key] = getattr(previous, key)
            row = DeskContactRow(
                id=str(uuid.uuid4()), kind=new.kind, agent=new.agent,
                agent_name=new.agent_name, queue=new.queue, level=new.level, area=new.area,
                channel=new.channel, uniqueid=new.uniqueid, linkedid=new.linkedid,
                sip_call_id=new.sip_call_id, call_record_id=new.call_record_id,
                conversation_id=new.conversation_id, wa_id=new.wa_id,
                handoff_id=new.handoff_id, context=dict(new.context),
                ivr_reason=new.ivr_reason, queued_at=queued_at, answered_at=answered_at,
                hold_seconds=new.hold_seconds, ring_seconds=new.ring_seconds,
                disposition_note="", state=ACTIVE,
                previous_contact_id=new.previous_contact_id, source_key=new.source_key,
                created_at=now, updated_at=now, version=1, **carried,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            return _contact(row)

        try:
            contact = await self.db.run("open a desk contact", op)
        except IntegrityError:
            # A concurrent delivery of the same event committed first.
            winner = await self._same_event(new, answered_at)
            if winner is None:
                raise
            return winner
        logger.info("desk contact %s opened: %s, agent %s, queue %s (level %d)%s", contact.id,
                    contact.kind, contact.agent, contact.queue, contact.level,
                    f", after {contact.previous_contact_id}" if contact.previous_contact_id
                    else "")  # fmt: skip
        return contact

    async def _same_event(self, new: NewContact, answered_at: datetime) -> Contact | None:
        if new.source_key is not None:
            query = select(DeskContactRow).where(DeskContactRow.source_key == new.source_key)
        else:
            query = select(DeskContactRow).where(
                DeskContactRow.kind == new.kind,
                DeskContactRow.journey_key == new.journey_key,
                DeskContactRow.agent == new.agent,
                DeskContactRow.answered_at == answered_at,
            )
        found = await self._select(query.limit(1), "find a desk contact")
        return found[0] if found else None

    # --- reading -------------------------------------------------------------------------
    async def _select(self, query: Select[DeskContactRow], what: str) -> list[Contact]:
        async def op(session: AsyncSession) -> list[Contact]:
            return [_contact(r) for r in (await session.scalars(query)).all()]

        return await self.db.run(what, op)

    async def get(self, contact_id: str) -> Contact | None:
        """The contact ``contact_id``, or None."""
        found = await self._select(
            select(DeskContactRow).where(DeskContactRow.id == contact_id), "read a desk contact"
        )
        return found[0] if found else None

    async def active_for(self, agent: str) -> Contact | None:
        """The agent's newest contact still open (``active`` or ``wrapup``), or None."""
        found = await self._select(
            select(DeskContactRow)
            .where(DeskContactRow.agent == agent, DeskContactRow.state.in_(OPEN_STATES))
            .order_by(DeskContactRow.answered_at.desc(), DeskContactRow.created_at.desc())
            .limit(1),
            "read an agent's contact",
        )
        return found[0] if found else None

    async def journey(self, journey_key: str) -> list[Contact]:
        """Every hop of one caller (same ``journey_key``), oldest first."""
        return await self._select(
            select(DeskContactRow)
            .where(DeskContactRow.journey_key == journey_key)
            .order_by(DeskContactRow.answered_at, DeskContactRow.created_at),
            "read a journey",
        )

    async def by_uniqueid(self, uniqueid: str) -> list[Contact]:
        """The contacts of the caller's Asterisk channel ``uniqueid``, oldest first."""
        return await self._select(
            select(DeskContactRow)
            .where(DeskContactRow.uniqueid == uniqueid)
            .order_by(DeskContactRow.answered_at, DeskContactRow.created_at),
            "read contacts by uniqueid",
        )

    async def contacts(
        self,
        *,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        state: str | None = None,
        limit: int = 500,
    ) -> list[Contact]:
        """Contacts newest first (by ``answered_at``): of ``agent``, answered in
        ``[since, until)``, in ``state``; at most ``limit``. ``ValueError`` for an unknown state."""
        query = select(DeskContactRow)
        if agent is not None:
            query = query.where(DeskContactRow.agent == agent)
        if since is not None:
            query = query.where(DeskContactRow.answered_at >= _aware(since, "since"))
        if until is not None:
            query = query.where(DeskContactRow.answered_at < _aware(until, "until"))
        if state is not None:
            if state not in STATES:
                raise ValueError(f"state must be one of {STATES}, got {state!r}")
            query = query.where(DeskContactRow.state == state)
        query = query.order_by(DeskContactRow.answered_at.desc(), DeskContactRow.id).limit(limit)
        return await self._select(query, "list desk contacts")

    async def steps(self, contact_id: str) -> list[Step]:
        """The contact's script steps in order (``seq``)."""

        async def op(session: AsyncSession) -> list[Step]:
            rows = await session.scalars(
                select(DeskStepRow)
                .where(DeskStepRow.contact_id == contact_id)
                .order_by(DeskStepRow.seq)
            )
            return [_step(r) for r in rows.all()]

        return await self.db.run("read a contact's steps", op)

    async def steps_of(self, contact_ids: Sequence[str]) -> dict[str, list[Step]]:
        """Contact id -> its steps in order, for many contacts at once (a journey's hops)."""
        if not contact_ids:
            return {}

        async def op(session: AsyncSession) -> dict[str, list[Step]]:
            rows = await session.scalars(
                select(DeskStepRow)
                .where(DeskStepRow.contact_id.in_(list(contact_ids)))
                .order_by(DeskStepRow.contact_id, DeskStepRow.seq)
            )
            out: dict[str, list[Step]] = {c: [] for c in contact_ids}
            for row in rows.all():
                out[row.contact_id].append(_step(row))
            return out

        return await self.db.run("read contacts' steps", op)

    # --- changes -------------------------------------------------------------------------
    async def _change(
        self,
        contact_id: str,
        what: str,
        decide: Callable[[DeskContactRow, datetime], dict[str, Any] | None],
        *,
        expected_version: int | None = None,
        end_open_step: bool = False,
        at: datetime | None = None,
    ) -> Contact:
        """Lock the contact's row, let ``decide`` check its state and give the new
        values (None: nothing to change), write them with ``version + 1``."""
        now = _aware(at, "at") if at is not None else self.clock()

        async def op(session: AsyncSession) -> Contact:
            row = await _lock(session, contact_id)
            if expected_version is not None and row.version != expected_version:
                raise ContactConflict(
                    "el contacto cambió mientras lo veía: recargue e intente de nuevo",
                    state=row.state,
                )
            values = decide(row, now)
            if values is None:
                return _contact(row)
            if end_open_step:
                await _end_open_step(session, contact_id, now)
            done: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                update(DeskContactRow)
                .where(DeskContactRow.id == contact_id, DeskContactRow.version == row.version)
                .values(**values, version=row.version + 1, updated_at=now)
            )
            if done.rowcount != 1:
                raise ContactConflict("el contacto cambió: recargue e intente de nuevo")
            refreshed = await session.get(DeskContactRow, contact_id, populate_existing=True)
            assert refreshed is not None
            return _contact(refreshed)

        return await self.db.run(what, op)

    async def end(self, contact_id: str, *, at: datetime | None = None) -> Contact:
        """The call hung up (AMI ``AgentComplete``) or the chat ended: ``active`` →
        ``wrapup`` with ``ended_at``. On a contact already ended, closed or escalated
        it only records ``ended_at`` if missing (a re-delivered event changes nothing).
        :class:`ContactNotFound`."""

        def decide(row: DeskContactRow, now: datetime) -> dict[str, Any] | None:
            if row.state == ACTIVE:
                return {"state": WRAPUP, "ended_at": now}
            if row.ended_at is None:
                return {"ended_at": now}
            return None

        contact = await self._change(contact_id, "end a desk contact", decide, at=at)
        logger.info("desk contact %s ended (%s)", contact_id, contact.state)
        return contact

    async def set_context(
        self,
        contact_id: str,
        context: Mapping[str, Any],
        *,
        ivr_reason: str | None = None,
        call_record_id: str | None = None,
    ) -> Contact:
        """Replace the contact's screen pop (``context``, already masked) once its
        source knows more (the call record landed after the answer: ``ivr.desk.screen``);
        ``ivr_reason``/``call_record_id`` are set when given. Any state.
        :class:`ContactNotFound`."""

        def decide(row: DeskContactRow, now: datetime) -> dict[str, Any]:
            values: dict[str, Any] = {"context": dict(context)}
            if ivr_reason is not None:
                values["ivr_reason"] = ivr_reason
            if call_record_id is not None:
                values["call_record_id"] = call_record_id
            return values

        return await self._change(contact_id, "update a desk contact's pop", decide)

    async def record_step(
        self,
        contact_id: str,
        *,
        node_id: str,
        node_kind: str,
        label: str,
        answer: str | None = None,
        agent: str,
        at: datetime | None = None,
        answered: str | None = None,
    ) -> Step:
        """The agent is now at script node ``node_id`` (``answer``: the answer id chosen
        there, if any): ends the open step (``left_at``, ``seconds``; ``answered``: the
        answer the agent gave at it, stored on it, as the script runner records each
        answer), stores the next (``seq`` + 1) and moves the contact's ``script_node``,
        in one transaction. Allowed while the contact is ``active`` or ``wrapup``.

        Raises :class:`ContactNotFound`, :class:`ContactConflict` (closed or escalated)."""
        now = _aware(at, "at") if at is not None else self.clock()

        async def op(session: AsyncSession) -> Step:
            row = await _lock(session, contact_id)
            if row.state not in OPEN_STATES:
                raise ContactConflict(
                    f"el contacto está {STATE_LABELS[row.state].lower()}: ya no admite pasos",
                    state=row.state,
                )
            await _end_open_step(session, contact_id, now, answered)
            last = await session.scalar(
                select(func.max(DeskStepRow.seq)).where(DeskStepRow.contact_id == contact_id)
            )
            step = DeskStepRow(
                contact_id=contact_id, seq=(last or 0) + 1, node_id=node_id,
                node_kind=node_kind, label=label, answer=answer, entered_at=now, agent=agent,
            )  # fmt: skip
            session.add(step)
            row.script_node = node_id
            await session.flush()
            return _step(step)

        return await self.db.run("record a script step", op)

    async def set_script(
        self,
        contact_id: str,
        *,
        version: int,
        node_id: str,
        call_type: str | None = None,
        reason: str | None = None,
        scenario: str | None = None,
        procedure: str | None = None,
        expected_version: int | None = None,
    ) -> Contact:
        """Where the contact is in the script: tree ``version``, ``node_id`` and the
        path's labels so far (``None`` leaves a label as it is). Allowed while
        ``active`` or ``wrapup``. :class:`ContactNotFound`, :class:`ContactConflict`."""

        def decide(row: DeskContactRow, now: datetime) -> dict[str, Any]:
            if row.state not in OPEN_STATES:
                raise ContactConflict(
                    f"el contacto está {STATE_LABELS[row.state].lower()}", state=row.state
                )
            values: dict[str, Any] = {"script_version": version, "script_node": node_id}
            for key, value in (("call_type", call_type), ("reason", reason),
                               ("scenario", scenario), ("procedure", procedure)):  # fmt: skip
                if value is not None:
                    values[key] = value
            return values

        return await self._change(contact_id, "set a contact's script", decide,
                                  expected_version=expected_version)  # fmt: skip

    async def close(
        self,
        contact_id: str,
        *,
        disposition: str,
        note: str = "",
        agent: str,
        expected_version: int | None = None,
    ) -> Contact:
        """Close with a disposition (the script procedure's, or the agent's choice):
        ``active``/``wrapup`` → ``closed``, ending the open step.

        Raises :class:`DispositionRequired` (empty), :class:`ContactNotFound`,
        :class:`ContactConflict` (closed or escalated already, or a stale
        ``expected_version``)."""
        disposition = disposition.strip()
        if not disposition:
            raise DispositionRequired()

        def decide(row: DeskContactRow, now: datetime) -> dict[str, Any]:
            if row.state not in OPEN_STATES:
                raise ContactConflict(
                    f"el contacto ya está {STATE_LABELS[row.state].lower()}", state=row.state
                )
            return {"state": CLOSED, "disposition": disposition, "disposition_note": note,
                    "closed_at": now, "closed_by": agent}  # fmt: skip

        contact = await self._change(contact_id, "close a desk contact", decide,
                                     expected_version=expected_version, end_open_step=True)  # fmt: skip
        logger.info("desk contact %s closed by %s: %s", contact_id, agent, disposition)
        return contact

    async def escalate(
        self,
        contact_id: str,
        *,
        reason: str,
        to_queue: str,
        agent: str,
        expected_version: int | None = None,
    ) -> Contact:
        """Hand the caller up a level: ``active`` → ``escalated`` (``escalated_at``,
        ``escalation_reason``, ``escalated_to``), ending the open step. The next
        level's agent opens a new contact with ``previous_contact_id`` = this one.

        Raises :class:`ReasonRequired` (empty reason), :class:`ContactNotFound`,
        :class:`ContactConflict` (not active: hung up, closed or escalated already;
        or a stale ``expected_version``)."""
        reason = reason.strip()
        if not reason:
            raise ReasonRequired()

        def decide(row: DeskContactRow, now: datetime) -> dict[str, Any]:
            if row.state != ACTIVE:
                raise ContactConflict(
                    f"solo se escala un contacto en curso; este está "
                    f"{STATE_LABELS[row.state].lower()}",
                    state=row.state,
                )
            return {"state": ESCALATED, "escalated_at": now, "escalation_reason": reason,
                    "escalated_to": to_queue}  # fmt: skip

        contact = await self._change(contact_id, "escalate a desk contact", decide,
                                     expected_version=expected_version, end_open_step=True)  # fmt: skip
        logger.info("desk contact %s escalated by %s to %s", contact_id, agent, to_queue)
        return contact

    # --- presence ------------------------------------------------------------------------
    async def log_presence(
        self,
        agent: str,
        event: str,
        *,
        queues: Sequence[str] = (),
        reason: str | None = None,
        actor: str,
    ) -> Presence:
        """Record one presence change (``login``/``logout``/``pause``/``unpause``) of the
        agent at extension ``agent``, done by ``actor``. ``ValueError`` for another event."""
        if event not in PRESENCE_EVENTS:
            raise ValueError(f"event must be one of {PRESENCE_EVENTS}, got {event!r}")
        now = self.clock()

        async def op(session: AsyncSession) -> Presence:
            row = DeskPresenceRow(agent=agent, event=event, reason=reason, queues=list(queues),
                                  at=now, actor=actor)  # fmt: skip
            session.add(row)
            await session.flush()
            return _presence(row)

        return await self.db.run("log an agent's presence", op)

    async def presence(self, agent: str) -> Presence | None:
        """The agent's latest presence change, or None (never logged in)."""
        found = await self.presence_log(agent=agent, limit=1)
        return found[0] if found else None

    async def presence_now(self) -> dict[str, Presence]:
        """Agent extension -> its latest presence change, for every agent ever logged.
        An agent is logged in when that event is ``login``/``pause``/``unpause``."""

        async def op(session: AsyncSession) -> dict[str, Presence]:
            latest = (
                select(DeskPresenceRow.agent, func.max(DeskPresenceRow.id).label("id"))
                .group_by(DeskPresenceRow.agent)
                .subquery()
            )
            rows = await session.scalars(
                select(DeskPresenceRow).join(latest, DeskPresenceRow.id == latest.c.id)
            )
            return {r.agent: _presence(r) for r in rows.all()}

        return await self.db.run("read agents' presence", op)

    async def presence_log(
        self,
        *,
        agent: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[Presence]:
        """Presence changes newest first, of ``agent``, in ``[since, until)``."""
        query = select(DeskPresenceRow)
        if agent is not None:
            query = query.where(DeskPresenceRow.agent == agent)
        if since is not None:
            query = query.where(DeskPresenceRow.at >= _aware(since, "since"))
        if until is not None:
            query = query.where(DeskPresenceRow.at < _aware(until, "until"))
        query = query.order_by(DeskPresenceRow.at.desc(), DeskPresenceRow.id.desc()).limit(limit)

        async def op(session: AsyncSession) -> list[Presence]:
            return [_presence(r) for r in (await session.scalars(query)).all()]

        return await self.db.run("read agents' presence", op)


class ScriptStore:
    """The versions of the script tree. ``validate(tree)`` raises
    ``ivr.desk.errors.ScriptInvalid`` for a tree that breaks the rules (the scripts
    part's validator); it runs before any write."""

    def __init__(
        self,
        db: Database,
        validate: Callable[[Mapping[str, Any]], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.validate = validate
        self.clock = clock

    async def _retrying(self, what: str, op: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        for attempt in range(RETRIES):
            try:
                return await self.db.run(what, op)
            except IntegrityError:
                if attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(random.uniform(0, RETRY_PAUSE_S * (attempt + 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def create(self, tree: Mapping[str, Any], *, note: str, author: str) -> ScriptVersion:
        """Store ``tree`` as the next version, a draft. ``ScriptInvalid`` (the validator)."""
        self.validate(tree)
        now = self.clock()

        async def op(session: AsyncSession) -> ScriptVersion:
            last = await session.scalar(select(func.max(ScriptVersionRow.version)))
            row = ScriptVersionRow(id=str(uuid.uuid4()), version=(last or 0) + 1,
                                   tree=dict(tree), note=note, state=DRAFT,
                                   created_by=author, created_at=now)  # fmt: skip
            session.add(row)
            await session.flush()
            return _script(row)

        created: ScriptVersion = await self._retrying("store a script version", op)
        logger.info("script version %d created by %s", created.version, author)
        return created

    async def save_draft(
        self, version: int, tree: Mapping[str, Any], *, note: str, author: str
    ) -> ScriptVersion:
        """Replace the tree and note of draft ``version`` (an administrator saving
        work in progress without making a new number each time).

        Raises ``ScriptInvalid`` (the validator), :class:`ScriptVersionNotFound`,
        :class:`ScriptNotDraft` (published or retired: those stay as agents saw them)."""
        self.validate(tree)

        async def op(session: AsyncSession) -> ScriptVersion:
            done: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                update(ScriptVersionRow)
                .where(ScriptVersionRow.version == version, ScriptVersionRow.state == DRAFT)
                .values(tree=dict(tree), note=note)
            )
            row = await session.scalar(
                select(ScriptVersionRow).where(ScriptVersionRow.version == version)
            )
            if row is None:
                raise ScriptVersionNotFound(version)
            if done.rowcount != 1:
                raise ScriptNotDraft(version, row.state)
            await session.refresh(row)
            return _script(row)

        saved: ScriptVersion = await self.db.run("save a script draft", op)
        logger.info("script draft %d saved by %s", version, author)
        return saved

    async def publish(self, version: int, *, author: str) -> ScriptVersion:
        """Make ``version`` the active tree: the published one is retired and this one
        published, in one transaction (already published: returned as is). A retired
        version may be published again (a rollback). The tree is validated again (the
        rules may have grown since it was stored).

        Raises :class:`ScriptVersionNotFound`, ``ScriptInvalid``."""
        found = await self.get(version)
        if found is None:
            raise ScriptVersionNotFound(version)
        if found.state == PUBLISHED:
            return found
        self.validate(found.tree)
        now = self.clock()

        async def op(session: AsyncSession) -> ScriptVersion:
            await session.execute(
                update(ScriptVersionRow)
                .where(ScriptVersionRow.state == PUBLISHED, ScriptVersionRow.version != version)
                .values(state=RETIRED)
            )
            await session.execute(
                update(ScriptVersionRow)
                .where(ScriptVersionRow.version == version, ScriptVersionRow.state != PUBLISHED)
                .values(state=PUBLISHED, published_by=author, published_at=now)
            )
            row = await session.scalar(
                select(ScriptVersionRow).where(ScriptVersionRow.version == version)
            )
            if row is None:
                raise ScriptVersionNotFound(version)
            await session.refresh(row)
            return _script(row)

        published: ScriptVersion = await self._retrying("publish a script version", op)
        logger.info("script version %d published by %s", version, author)
        return published

    async def active(self) -> ScriptVersion | None:
        """The published version (the tree agents follow), or None."""
        return await self._one(
            select(ScriptVersionRow).where(ScriptVersionRow.state == PUBLISHED).limit(1)
        )

    async def get(self, version: int) -> ScriptVersion | None:
        """Version ``version``, or None."""
        return await self._one(select(ScriptVersionRow).where(ScriptVersionRow.version == version))

    async def versions(self) -> list[ScriptVersion]:
        """Every version, newest first."""

        async def op(session: AsyncSession) -> list[ScriptVersion]:
            rows = await session.scalars(
                select(ScriptVersionRow).order_by(ScriptVersionRow.version.desc())
            )
            return [_script(r) for r in rows.all()]

        return await self.db.run("list script versions", op)

    async def seed(
        self, tree: Mapping[str, Any], *, author: str = "sistema"
    ) -> ScriptVersion | None:
        """Publish ``tree`` as version 1 when there is no version at all (a fresh
        database: the shipped default tree); otherwise None. Race-safe: of concurrent
        seeds one publishes, the others get None. ``ScriptInvalid``."""
        self.validate(tree)
        now = self.clock()

        async def op(session: AsyncSession) -> ScriptVersion | None:
            if await session.scalar(select(func.count()).select_from(ScriptVersionRow)):
                return None
            row = ScriptVersionRow(id=str(uuid.uuid4()), version=1, tree=dict(tree),
                                   note="Guion inicial", state=PUBLISHED, created_by=author,
                                   created_at=now, published_by=author, published_at=now)  # fmt: skip
            session.add(row)
            await session.flush()
            return _script(row)

        try:
            seeded = await self.db.run("seed the script tree", op)
        except IntegrityError:
            return None  # a concurrent seed published version 1
        if seeded is not None:
            logger.info("script tree seeded as version 1 by %s", author)
        return seeded

    async def _one(self, query: Select[ScriptVersionRow]) -> ScriptVersion | None:
        async def op(session: AsyncSession) -> ScriptVersion | None:
            row = await session.scalar(query)
            return _script(row) if row is not None else None

        return await self.db.run("read a script version", op)


# --- rows -> values ----------------------------------------------------------------------
async def _lock(session: AsyncSession, contact_id: str) -> DeskContactRow:
    """Take the contact's row lock first (a no-op write; see the module doc), then read it."""
    done: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(DeskContactRow)
        .where(DeskContactRow.id == contact_id)
        .values(version=DeskContactRow.version)
    )
    if done.rowcount != 1:
        raise ContactNotFound(contact_id)
    row = await session.get(DeskContactRow, contact_id, populate_existing=True)
    assert row is not None
    return row


async def _end_open_step(
    session: AsyncSession, contact_id: str, now: datetime, answer: str | None = None
) -> None:
    rows = await session.scalars(
        select(DeskStepRow).where(
            DeskStepRow.contact_id == contact_id, DeskStepRow.left_at.is_(None)
        )
    )
    for step in rows.all():
        step.left_at = now
        step.seconds = max(0.0, (now - step.entered_at).total_seconds())
        if answer is not None:
            step.answer = answer
    await session.flush()


_CONTACT_FIELDS = tuple(
    name for name in Contact.__dataclass_fields__ if name not in ("context", "disposition_note")
)


def _contact(row: DeskContactRow) -> Contact:
    values = {name: getattr(row, name) for name in _CONTACT_FIELDS}
    return Contact(**values, context=dict(row.context or {}),
                   disposition_note=row.disposition_note or "")  # fmt: skip


def _step(row: DeskStepRow) -> Step:
    return Step(id=row.id, contact_id=row.contact_id, seq=row.seq, node_id=row.node_id,
                node_kind=row.node_kind, label=row.label, agent=row.agent,
                entered_at=row.entered_at, answer=row.answer, left_at=row.left_at,
                seconds=row.seconds)  # fmt: skip


def _presence(row: DeskPresenceRow) -> Presence:
    return Presence(id=row.id, agent=row.agent, event=row.event, at=row.at, actor=row.actor,
                    queues=tuple(row.queues or ()), reason=row.reason)  # fmt: skip


def _script(row: ScriptVersionRow) -> ScriptVersion:
    return ScriptVersion(id=row.id, version=row.version, tree=dict(row.tree), note=row.note,
                         state=row.state, created_by=row.created_by, created_at=row.created_at,
                         published_by=row.published_by, published_at=row.published_at)  # fmt: skip
