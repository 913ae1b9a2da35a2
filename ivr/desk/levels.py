"""Service levels: an agent hands a caller up a level (issue 12 §5).

Level 1 (reception) escalates to level 2 (técnico, clínico, comercial), level 2 to
level 3 (técnico, clínico especializado): desk.yaml's ``escalation`` table gives
the target queue (``DeskConfig.escalation_target(queue, area)``).

**Voice.** The caller is moved, the agent's leg ends. Over AMI, on the caller's
channel (``Contact.channel``)::

    Setvar  __CITAS_LEVEL=<target level>      inherited: the next agent's leg sees it
    Setvar  __CITAS_DESK_PREV=<contact id>    the hop the next contact chains to
    Setvar  CITAS_DESK_ANNOUNCE=desk_escalate_<queue id>
    Redirect  citas-desk-escalate,<target extension>,1

The dialplan context ``citas-desk-escalate`` plays the announcement ("Le comunico
con el área clínica de nivel dos. Un momento, por favor.") and continues at the
target queue's extension in ``citas-agents``. Every other ``CITAS_*`` variable
stays on the channel untouched, so the next agent gets the same X-Citas-* headers
and the same screen pop.

Why ``Redirect`` of the caller's channel (measured on the sandbox by
``scripts/desk-transfer-compare.py``; docs/desk/levels.md has the figures):

- ``Redirect`` and ``BlindTransfer`` both move the caller's **own** channel (same
  name, same Uniqueid: the journey key and the next queue's AMI events still
  match), keep every variable and hang up the agent's leg within ~10 ms;
- ``Redirect`` needs only the caller's channel, which the contact stores;
  ``BlindTransfer`` needs the agent's channel (not stored) and goes through the
  bridge's transfer logic (``BLINDTRANSFER`` set, a transfer event), which gives
  nothing we use;
- ``Atxfer`` moves the **agent** (the agent dials the target and the caller
  follows only when the agent hangs up): the call that reaches the next queue is
  the agent's, without the caller's variables; it needs a ``features.conf``
  transfer code; and panoramisk reads its "successfully queued" answer as an
  async ``Originate`` (a ``KeyError`` that drops the AMI connection). Refused.

Order, so a fault never loses the caller or the record: the variables are set
first (AMI down → :class:`TelephonyUnavailable`, nothing written, the call stays
with the agent), then the contact is marked ``escalated`` (``DeskStore.escalate``:
it ends the open script step) and logged ``pending`` (``ivr.desk.escalations``),
then the caller is redirected; if that fails the escalation is undone
(``EscalationLog.reopen``: the contact is ``active`` again, the log says ``failed``).

The outcome: the next agent's ``AgentConnect`` carries ``CITAS_DESK_PREV`` (AMI
``channelvars``) → ``answered``; the caller's channel hanging up first (the target
queue empty or nobody answered in its time: the dialplan said
``agents_unavailable``; or the caller gave up) → ``unanswered``.

**Chat.** A hand-off escalates by going back to the queue with the target level
(:class:`HandoffRequeue`): the same conversation and hand-off row, no agent,
``context`` marked with the target queue; the agent who takes it opens a new
contact (a hop) chained to this one.

**The next hop.** :meth:`Levels.hop_fields` gives the contact the next agent opens
its chain: ``previous_contact_id``, the same ``journey_key``, and the previous
contact's script ``version``/``node``/``call_type``, so the script resumes where
the previous level left it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ivr.desk.config import DeskConfig, Queue
from ivr.desk.errors import ContactConflict, ContactNotFound, DeskError
from ivr.desk.escalations import ANSWERED, PENDING, UNANSWERED, Escalation, EscalationLog
from ivr.desk.model import ACTIVE, STATE_LABELS, VOICE, Contact, Step
from ivr.desk.store import DeskStore, utcnow
from ivr.store.db import Database

logger = logging.getLogger(__name__)

# The dialplan context a moved caller enters: it plays ${CITAS_DESK_ANNOUNCE} and
# continues at the same extension in citas-agents (dialplans/asterisk/extensions.conf).
ESCALATE_CONTEXT = "citas-desk-escalate"
ANNOUNCE_PREFIX = "desk_escalate"
LEVEL_VAR, PREV_VAR, ANNOUNCE_VAR = "CITAS_LEVEL", "CITAS_DESK_PREV", "CITAS_DESK_ANNOUNCE"
# The hand-off's context keys of a chat escalation (read by whoever takes it).
HANDOFF_QUEUE, HANDOFF_LEVEL, HANDOFF_PREV = "desk_queue", "desk_level", "desk_prev"


class NoEscalationTarget(DeskError):
    """This level has no escalation to that area (desk.yaml ``escalation``)."""

    def __init__(self, contact: Contact, area: str, areas: Collection[str]) -> None:
        offered = ", ".join(sorted(areas)) or "ninguna: es el último nivel"
        super().__init__(f"desde el nivel {contact.level} no se escala al área {area!r} "
                         f"(áreas posibles: {offered})")  # fmt: skip
        self.area = area


class TelephonyUnavailable(DeskError):
    """Asterisk's AMI did not take the move: the call stays with the agent."""

    def __init__(self, detail: str) -> None:
        super().__init__("no se pudo transferir: la central telefónica no responde. "
                         "La llamada sigue con usted; intente de nuevo en un momento.")  # fmt: skip
        self.detail = detail


class AmiActions(Protocol):
    """What the mover needs of ``ivr.ami.manager.AmiConnection``."""

    @property
    def healthy(self) -> bool: ...

    async def action(self, fields: Mapping[str, str]) -> dict[str, str]: ...


class CallGone(ContactConflict):
    """The caller's channel no longer exists (the caller hung up meanwhile)."""

    def __init__(self, channel: str) -> None:
        super().__init__("la llamada ya terminó: no hay a quién transferir", state=None)
        self.channel = channel


class AmiCallMover:
    """Moves a caller's channel over AMI (``Setvar``, ``Redirect``).

    Raises :class:`TelephonyUnavailable` when AMI is down or does not answer in its
    timeout, :class:`CallGone` when Asterisk does not know the channel."""

    def __init__(self, ami: AmiActions) -> None:
        self.ami = ami

    async def set_variables(self, channel: str, variables: Mapping[str, str]) -> None:
        if not self.ami.healthy:
            raise TelephonyUnavailable("AMI not connected")
        for name, value in variables.items():
            await self._send({"Action": "Setvar", "Channel": channel,
                              "Variable": name, "Value": value})  # fmt: skip

    async def redirect(self, channel: str, *, context: str, exten: str) -> None:
        await self._send({"Action": "Redirect", "Channel": channel, "Context": context,
                          "Exten": exten, "Priority": "1"})  # fmt: skip

    async def _send(self, fields: Mapping[str, str]) -> None:
        from ivr.ami.errors import AmiActionFailed, AmiError

        try:
            await self.ami.action(fields)
        except AmiActionFailed as exc:
            # "No such channel" / "Channel does not exist": the caller hung up.
            raise CallGone(fields["Channel"]) from exc
        except AmiError as exc:
            raise TelephonyUnavailable(str(exc)) from exc


class ChatRequeue(Protocol):
    async def requeue(self, contact: Contact, target: Queue, area: str) -> None: ...


def announce_prompt(target: Queue, prompts: Collection[str]) -> str:
    """The prompt id said before ``target``'s queue: ``desk_escalate_<queue id>`` when
    prompts.yaml has it, else the generic ``desk_escalate``.

    >>> q = Queue("l2_clinico", "Nivel 2 – Clínico", "5550022", 2, "clinico")
    >>> announce_prompt(q, {"desk_escalate", "desk_escalate_l2_clinico"})
    'desk_escalate_l2_clinico'
    >>> announce_prompt(q, {"desk_escalate"})
    'desk_escalate'
    """
    own = f"{ANNOUNCE_PREFIX}_{target.id}"
    return own if own in prompts else ANNOUNCE_PREFIX


def missing_announcements(config: DeskConfig, prompts: Collection[str]) -> list[str]:
    """The escalation target queues with no ``desk_escalate_<queue id>`` prompt (they
    would hear the generic one), plus ``desk_escalate`` itself if absent."""
    targets = {q for areas in config.escalation.values() for q in areas.values()}
    missing = [f"{ANNOUNCE_PREFIX}_{q}" for q in sorted(targets)
               if f"{ANNOUNCE_PREFIX}_{q}" not in prompts]  # fmt: skip
    return ([ANNOUNCE_PREFIX] if ANNOUNCE_PREFIX not in prompts else []) + missing


def escalation_variables(contact: Contact, target: Queue, prompts: Collection[str]) -> dict[str, str]:
    """The caller channel's variables for the move (``__``: inherited by the next
    agent's leg, so its AMI events carry them too)."""
    return {
        f"__{LEVEL_VAR}": str(target.level),
        f"__{PREV_VAR}": contact.id,
        ANNOUNCE_VAR: announce_prompt(target, prompts),
    }


@dataclass(frozen=True)
class HopFields:
    """What a contact opened after an escalation takes from the one it came from
    (``NewContact`` fields of the same names)."""

    previous_contact_id: str
    journey_key: str
    script_version: int | None
    script_node: str | None
    call_type: str | None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "previous_contact_id": self.previous_contact_id, "journey_key": self.journey_key,
            "script_version": self.script_version, "script_node": self.script_node,
            "call_type": self.call_type,
        }  # fmt: skip


@dataclass(frozen=True)
class Hop:
    """One hop of a journey as the API shows it: the contact, its script steps, the
    seconds it waited in its queue (``hold_seconds``, else queued → answered), the
    seconds at its level (answered → escalated/ended) and its escalation, if any."""

    contact: Contact
    steps: list[Step]
    escalations: list[Escalation] = field(default_factory=list)

    @property
    def queued_seconds(self) -> float | None:
        c = self.contact
        if c.hold_seconds is not None:
            return c.hold_seconds
        if c.queued_at is not None:
            return max(0.0, (c.answered_at - c.queued_at).total_seconds())
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "contact": self.contact.as_json(),
            "level": self.contact.level,
            "queued_seconds": self.queued_seconds,
            "seconds_at_level": self.contact.seconds_at_level,
            "steps": [s.as_json() for s in self.steps],
            "escalations": [e.as_json() for e in self.escalations],
        }


def seconds_per_level(hops: list[Hop]) -> dict[int, float]:
    """Total seconds answered at each level over a journey's hops (hops still going
    on are left out)."""
    totals: dict[int, float] = {}
    for hop in hops:
        seconds = hop.contact.seconds_at_level
        if seconds is not None:
            totals[hop.contact.level] = totals.get(hop.contact.level, 0.0) + seconds
    return totals


class Levels:
    """Escalation, the next hop's chain, the outcomes and the journey view.

    ``mover``: the AMI mover (None: voice escalation answers 503); ``chats``: the
    hand-off re-queue (None: chat escalation answers 503); ``prompts``: the prompt
    ids prompts.yaml defines (to pick the announcement)."""

    def __init__(
        self,
        config: DeskConfig,
        contacts: DeskStore,
        log: EscalationLog,
        *,
        mover: AmiCallMover | None = None,
        chats: ChatRequeue | None = None,
        prompts: Collection[str] = (),
    ) -> None:
        self.config = config
        self.contacts = contacts
        self.log = log
        self.mover = mover
        self.chats = chats
        self.prompts = frozenset(prompts)

    def targets(self, contact: Contact) -> dict[str, Queue]:
        """Area → target queue an agent of ``contact``'s queue may escalate to."""
        try:
            return self.config.escalation_areas(contact.queue)
        except KeyError:  # a queue since removed from desk.yaml: nowhere to go
            return {}

    async def contact(self, contact_id: str) -> Contact:
        found = await self.contacts.get(contact_id)
        if found is None:
            raise ContactNotFound(contact_id)
        return found

    async def escalate(self, contact_id: str, *, area: str, reason: str, agent: str) -> tuple[Contact, Escalation]:  # fmt: skip
        """Hand ``contact_id``'s caller to the ``area`` queue one level up.

        Returns the contact (``escalated``) and its escalation (``pending``). Raises
        :class:`ContactNotFound`; :class:`ContactConflict` (not in progress: hung up,
        closed, escalated; or :class:`CallGone`); :class:`NoEscalationTarget`;
        ``ReasonRequired`` (empty reason); :class:`TelephonyUnavailable` (AMI down or
        no mover: nothing changed, the call stays with the agent)."""
        contact = await self.contact(contact_id)
        if contact.state != ACTIVE:
            raise ContactConflict(
                f"solo se escala un contacto en curso; este está "
                f"{STATE_LABELS[contact.state].lower()}",
                state=contact.state,
            )
        areas = self.targets(contact)
        target = areas.get(area)
        if target is None:
            raise NoEscalationTarget(contact, area, areas)
        if contact.kind == VOICE:
            return await self._escalate_call(contact, target, area, reason, agent)
        return await self._escalate_chat(contact, target, area, reason, agent)

    async def _escalate_call(self, contact: Contact, target: Queue, area: str, reason: str,
                             agent: str) -> tuple[Contact, Escalation]:  # fmt: skip
        if self.mover is None or not contact.channel:
            raise TelephonyUnavailable("no AMI mover, or the contact has no channel")
        if not reason.strip():
            from ivr.desk.errors import ReasonRequired

            raise ReasonRequired()
        channel = contact.channel
        await self.mover.set_variables(channel, escalation_variables(contact, target, self.prompts))
        escalated = await self.contacts.escalate(contact.id, reason=reason, to_queue=target.id, agent=agent)
        pending = await self.log.open(escalated, to_queue=target.id, to_level=target.level,
                                      area=area, reason=reason.strip(), agent=agent)  # fmt: skip
        try:
            await self.mover.redirect(channel, context=ESCALATE_CONTEXT, exten=target.extension)
        except (TelephonyUnavailable, CallGone) as exc:
            await self.log.reopen(contact.id, detail=f"{type(exc).__name__}: {exc}")
            logger.warning("desk contact %s: escalation to %s failed, back with agent %s: %s",
                           contact.id, target.id, agent, exc)  # fmt: skip
            raise
        logger.info("desk contact %s: caller moved to %s (%s) by agent %s", contact.id,
                    target.id, target.extension, agent)  # fmt: skip
        return escalated, pending

    async def _escalate_chat(self, contact: Contact, target: Queue, area: str, reason: str,
                             agent: str) -> tuple[Contact, Escalation]:  # fmt: skip
        if self.chats is None:
            raise TelephonyUnavailable("no chat re-queue configured")
        escalated = await self.contacts.escalate(contact.id, reason=reason, to_queue=target.id, agent=agent)
        pending = await self.log.open(escalated, to_queue=target.id, to_level=target.level,
                                      area=area, reason=reason.strip(), agent=agent)  # fmt: skip
        try:
            await self.chats.requeue(escalated, target, area)
        except ContactConflict as exc:
            await self.log.reopen(contact.id, detail=f"chat: {exc}")
            raise
        logger.info("desk chat contact %s re-queued to %s by agent %s", contact.id, target.id, agent)
        return escalated, pending

    async def hop_fields(self, previous_contact_id: str | None) -> HopFields | None:
        """The chain for a contact opened from ``previous_contact_id`` (AMI
        ``CITAS_DESK_PREV``, or a hand-off's ``desk_prev``): None when it is empty or
        names no contact (a stale variable must not break the pop)."""
        if not previous_contact_id:
            return None
        previous = await self.contacts.get(previous_contact_id)
        if previous is None:
            logger.warning("desk: previous contact %s not found; opening an unchained contact",
                           previous_contact_id)  # fmt: skip
            return None
        return HopFields(previous.id, previous.journey_key, previous.script_version,
                         previous.script_node, previous.call_type)  # fmt: skip

    async def hop_opened(self, contact: Contact) -> Escalation | None:
        """``contact`` was opened by the next level's agent: its previous contact's
        escalation is ``answered`` (idempotent)."""
        if contact.previous_contact_id is None:
            return None
        return await self.log.settle(contact.previous_contact_id, ANSWERED,
                                     at=contact.answered_at, next_contact_id=contact.id)  # fmt: skip

    async def on_ami_event(self, event: Mapping[str, str]) -> None:
        """AMI ``AgentConnect`` and ``Hangup`` carrying ``CITAS_DESK_PREV``
        (``ChanVariable``): settle the pending escalation ``answered`` / ``unanswered``."""
        prev = channel_variables(event.get("ChanVariable")).get(PREV_VAR)
        if not prev:
            return
        name, at = event.get("Event"), _event_time(event)
        if name == "AgentConnect":
            await self.log.settle(prev, ANSWERED, at=at)
        elif name == "Hangup":
            escalated = await self.contacts.get(prev)
            # Only the caller's own channel: the agents' legs inherit the variable too.
            if escalated is not None and escalated.uniqueid == event.get("Uniqueid"):
                await self.log.settle(prev, UNANSWERED, at=at,
                                      detail=f"colgó: {event.get('Cause-txt', '')}".strip())  # fmt: skip

    async def journey(self, journey_key: str) -> list[Hop]:
        """Every hop of one caller (``journey_key``), oldest first, with steps and
        escalations. Empty when the key is unknown."""
        contacts = await self.contacts.journey(journey_key)
        if not contacts:
            return []
        escalations = [await self._linked(e, contacts) for e in await self.log.of_journey(journey_key)]
        steps = await self.contacts.steps_of([c.id for c in contacts])
        return [Hop(c, steps.get(c.id, []), [e for e in escalations if e.contact_id == c.id])
                for c in contacts]  # fmt: skip


    async def _linked(self, escalation: Escalation, contacts: list[Contact]) -> Escalation:
        """``escalation`` with its next hop (the contact chained to the escalated one),
        stored the first time it is found. A hop found while the escalation is still
        ``pending`` (a chat taken, or an ``AgentConnect`` lost in an AMI reconnect)
        settles it ``answered`` at that hop's answer."""
        if escalation.next_contact_id is not None or escalation.outcome not in (ANSWERED, PENDING):
            return escalation
        nxt = next((c for c in contacts if c.previous_contact_id == escalation.contact_id), None)
        if nxt is None:
            return escalation
        if escalation.outcome == PENDING:
            settled = await self.log.settle(escalation.contact_id, ANSWERED, at=nxt.answered_at,
                                            next_contact_id=nxt.id)  # fmt: skip
            return settled or escalation
        await self.log.link_next(escalation.id, nxt.id)
        return dataclasses.replace(escalation, next_contact_id=nxt.id)


class EventSource(Protocol):
    """Where AMI events come from (``ivr.ami.manager.AmiConnection.on_event``)."""

    def on_event(self, pattern: str, handler: Callable[[Mapping[str, str]], Awaitable[None]]) -> None: ...


def listen_for_outcomes(source: EventSource, levels: Levels) -> None:
    """Settle escalations from AMI: ``AgentConnect`` (answered) and ``Hangup``
    (unanswered) carrying ``CITAS_DESK_PREV`` (manager.conf ``channelvars``)."""
    source.on_event("AgentConnect", levels.on_ami_event)
    source.on_event("Hangup", levels.on_ami_event)


class HandoffRequeue:
    """Chat escalation: the conversation's open hand-off goes back to the queue, with
    no agent, marked for the target queue (``context.desk_queue``/``desk_level``/
    ``desk_prev``), in one transaction (``ivr.chat`` tables)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def requeue(self, contact: Contact, target: Queue, area: str) -> None:
        from sqlalchemy import select, update
        from sqlalchemy.ext.asyncio import AsyncSession

        from ivr.chat.tables import ChatHandoffRow, ConversationRow

        now = self.clock()

        async def op(session: AsyncSession) -> None:
            row = await session.scalar(
                select(ChatHandoffRow).where(
                    ChatHandoffRow.conversation_id == contact.conversation_id,
                    ChatHandoffRow.released_at.is_(None),
                ).with_for_update()
            )
            if row is None:
                raise ContactConflict("la conversación ya no está con un asesor", state=None)
            row.context = {**(row.context or {}), HANDOFF_QUEUE: target.id,
                           HANDOFF_LEVEL: target.level, HANDOFF_PREV: contact.id, "desk_area": area}  # fmt: skip
            row.taken_by, row.taken_at, row.queued_at = None, None, now
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == row.conversation_id)
                .values(assigned_agent=None, updated_at=now, version=ConversationRow.version + 1)
                .execution_options(synchronize_session=False)
            )  # fmt: skip

        await self.db.run("re-queue a chat hand-off", op)


def channel_variables(raw: str | None) -> dict[str, str]:
    """AMI ``ChanVariable`` headers (joined by newlines when repeated) as a dict.

    >>> channel_variables("CITAS_LEVEL=2\\nCITAS_DESK_PREV=abc")
    {'CITAS_LEVEL': '2', 'CITAS_DESK_PREV': 'abc'}
    """
    found: dict[str, str] = {}
    for line in (raw or "").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            found[name.strip()] = value.strip()
    return found


def _event_time(event: Mapping[str, str]) -> datetime | None:
    stamp = event.get("Timestamp")
    try:
        return datetime.fromtimestamp(float(stamp), UTC) if stamp else None
    except ValueError:
        return None



def build_levels(
    config: DeskConfig,
    contacts: DeskStore,
    db: Database,
    *,
    ami: AmiActions | None,
    prompts: Collection[str],
    events: EventSource | None = None,
) -> Levels:
    """The service levels as the composition root wires them: voice moves over
    ``ami`` (None: ``ivr ops serve`` without telephony, voice escalation answers
    503), chat re-queues over ``db``, outcomes from ``events`` (the AMI connection)."""
    levels = Levels(
        config, contacts, EscalationLog(db, clock=contacts.clock),
        mover=AmiCallMover(ami) if ami is not None else None,
        chats=HandoffRequeue(db, clock=contacts.clock), prompts=prompts,
    )  # fmt: skip
    if events is not None:
        listen_for_outcomes(events, levels)
    return levels
