"""From queue events to the agent's screen: open the contact, assemble the pop, push it.

:class:`ScreenPop` is the desk's reaction to app_queue's events
(``ivr.desk.events``), and to a chat hand-off taken from the desktop:

- ``AgentConnect`` of a desk agent: ``DeskStore.open_contact`` (idempotent on
  ``(kind, journey_key, agent, answered_at)``: a re-delivered event, or a
  second controller listening to the same Asterisk, finds the same contact),
  with ``previous_contact_id`` from ``CITAS_DESK_PREV`` (set by an escalation)
  and ``journey_key`` = the previous contact's, else the caller's Uniqueid;
  then the pop (:mod:`ivr.desk.pop`) is pushed to the agent's desktops.
- ``AgentComplete``: ``DeskStore.end`` (wrap-up), pushed too.
- ``AgentCalled`` / ``AgentRingNoAnswer``: the agent's desktop shows the ring.
- ``QueueMemberStatus`` / ``QueueMemberPause``: the agent's state.

Events of one caller are handled in the order received (a lock per Uniqueid,
taken before the first ``await``), so a short call's ``AgentComplete`` never
overtakes its ``AgentConnect``. When the line source could not know everything
in time (``PopDetails.pending``: the call record not written yet), the pop is
pushed at once and asked again in the background, every ``refresh_s`` for at
most ``refresh_for_s``; the desktop then receives ``pop`` again (same contact).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ivr.desk.config import DeskConfig
from ivr.desk.events import (
    AgentCalled,
    AgentCompleted,
    AgentConnected,
    AgentRingNoAnswer,
    MemberPaused,
    MemberStatus,
    QueueEvent,
)
from ivr.desk.model import Contact, NewContact
from ivr.desk.pop import CHAT, VOICE, CallKeys, ChatKeys, Hop, Pop, PopDetails, PopSource
from ivr.desk.push import PushHub
from ivr.desk.store import DeskStore
from ivr.masking import mask_number

logger = logging.getLogger(__name__)

PREVIOUS_VARIABLE = "CITAS_DESK_PREV"
CALL_ID_VARIABLE = "CITAS_CALL_ID"
REFRESH_S = 0.25
REFRESH_FOR_S = 10.0


class ScreenPop:
    """The desk's screen pop (see the module docstring).

    ``store``: ``DeskStore``; ``config``: the desk.yaml (agents, queues);
    ``source``: the line's :class:`PopSource`; ``hub``: where pushes go.
    """

    def __init__(
        self,
        store: DeskStore,
        config: DeskConfig,
        source: PopSource,
        hub: PushHub,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_s: float = REFRESH_S,
        refresh_for_s: float = REFRESH_FOR_S,
    ) -> None:
        self.store = store
        self.config = config
        self.source = source
        self.hub = hub
        self.clock = clock
        self.refresh_s = refresh_s
        self.refresh_for_s = refresh_for_s
        self._locks: dict[str, _KeyLock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- events ----------------------------------------------------------------------
    async def on_event(self, event: QueueEvent) -> None:
        """Handle one desk event (``ivr.desk.events.listen`` calls it)."""
        key = event.uniqueid or f"member:{event.fields.get('Interface', '')}"
        held = self._locks.setdefault(key, _KeyLock())
        held.users += 1
        try:
            async with held.lock:
                await self._handle(event)
        finally:
            held.users -= 1
            if held.users == 0:
                del self._locks[key]

    async def _handle(self, event: QueueEvent) -> None:
        if isinstance(event, AgentConnected):
            await self.connected(event)
        elif isinstance(event, AgentCompleted):
            await self.completed(event)
        elif isinstance(event, AgentCalled | AgentRingNoAnswer):
            self._ring(event)
        elif isinstance(event, MemberStatus | MemberPaused):
            self._presence(event)

    async def connected(self, event: AgentConnected) -> Contact | None:
        """Open the agent's contact and push its pop; None when the member is no desk agent."""
        agent = event.agent
        known = self.config.agents.get(agent) if agent else None
        if agent is None or known is None:
            logger.info("desk: %s answered queue %s; not a desk agent", event.interface, event.queue)
            return None
        previous = await self._previous(event.variables.get(PREVIOUS_VARIABLE, ""))
        keys = CallKeys(
            uniqueid=event.uniqueid,
            sip_call_id=event.variables.get(CALL_ID_VARIABLE) or None,
            variables=dict(event.variables),
            caller_number=event.caller_number or None,
        )
        details = await self.source.for_call(keys)
        queue = self.config.queues.get(event.queue)
        new = NewContact(
            kind=VOICE, agent=agent, agent_name=known.name,
            queue=event.queue, level=queue.level if queue else 0, area=queue.area if queue else "",
            channel=event.channel, uniqueid=event.uniqueid, linkedid=event.linkedid,
            sip_call_id=keys.sip_call_id, call_record_id=details.call_record_id,
            context=details.as_json(), ivr_reason=details.ivr_reason,
            queued_at=event.at - timedelta(seconds=event.hold_seconds + event.ring_seconds),
            answered_at=event.at, hold_seconds=event.hold_seconds, ring_seconds=event.ring_seconds,
            previous_contact_id=previous.id if previous else None,
            journey_key=previous.journey_key if previous else event.uniqueid,
            source_key=event.dest_uniqueid or None,
            # An escalated caller's script resumes where the previous level left it.
            script_version=previous.script_version if previous else None,
            script_node=previous.script_node if previous else None,
            call_type=previous.call_type if previous else None,
        )  # fmt: skip
        contact = await self.store.open_contact(new)
        logger.info("desk: call %s (caller %s) answered by %s in %s: contact %s",
                    event.uniqueid, mask_number(event.caller_number), agent, event.queue,
                    contact.id)  # fmt: skip
        await self.push_pop(contact)
        if details.pending:
            self._spawn(self._refresh(contact, keys))
        return contact

    async def completed(self, event: AgentCompleted) -> Contact | None:
        """The call ended: the agent's active contact of this caller goes to wrap-up."""
        agent = event.agent
        if agent is None:
            return None
        for contact in await self.store.by_uniqueid(event.uniqueid):
            if contact.agent == agent and contact.state == "active":
                ended = await self.store.end(contact.id, at=event.at)
                self.hub.publish(agent, "wrapup", {"contact": ended.as_json(),
                                                   "reason": event.reason})  # fmt: skip
                return ended
        return None

    def _ring(self, event: AgentCalled | AgentRingNoAnswer) -> None:
        if event.agent is None:
            return
        name = "ringing" if isinstance(event, AgentCalled) else "ring_no_answer"
        self.hub.publish(event.agent, name, {
            "queue": self._queue_json(event.queue), "at": event.at.isoformat(),
            "caller": mask_number(event.caller_number or None),
        })  # fmt: skip

    def _presence(self, event: MemberStatus | MemberPaused) -> None:
        if event.agent is None:
            return
        data: dict[str, Any] = {"queue": event.queue, "paused": event.paused,
                                "paused_reason": event.paused_reason, "at": event.at.isoformat()}  # fmt: skip
        if isinstance(event, MemberStatus):
            data |= {"status": event.status, "status_words": event.state_words,
                     "in_call": event.in_call}  # fmt: skip
        self.hub.publish(event.agent, "presence", data)

    # --- chat ---------------------------------------------------------------------------
    async def chat_taken(
        self, *, agent: str, handoff_id: int, keys: ChatKeys, queued_at: datetime
    ) -> Contact:
        """A chat hand-off taken by ``agent`` (desk.yaml extension): its contact,
        opened (idempotent) and popped like a call's. The queue is the first
        level-1 queue of the agent's profile (chat has no app_queue queue)."""
        known = self.config.agents[agent]
        profile = self.config.profiles.get(known.profile)
        queue_id = profile.queues[0] if profile and profile.queues else ""
        # An escalated chat (docs/desk/levels.md): re-queued for the target level's
        # queue, chained to the contact that escalated it, its script resumed.
        context = keys.context or {}
        previous = await self._previous(str(context.get("desk_prev") or ""))
        if previous is not None and str(context.get("desk_queue")) in self.config.queues:
            queue_id = str(context["desk_queue"])
        queue = self.config.queues.get(queue_id)
        details = await self.source.for_chat(keys)
        now = self.clock()
        new = NewContact(
            kind=CHAT, agent=agent, agent_name=known.name,
            queue=queue_id, level=queue.level if queue else 1, area=queue.area if queue else "",
            conversation_id=keys.conversation_id, wa_id=keys.wa_id, handoff_id=str(handoff_id),
            context=details.as_json(), ivr_reason=details.ivr_reason,
            queued_at=queued_at, answered_at=now,
            hold_seconds=max(0, int((now - queued_at).total_seconds())), ring_seconds=0,
            previous_contact_id=previous.id if previous else None,
            journey_key=previous.journey_key if previous else keys.conversation_id,
            source_key=f"handoff:{handoff_id}:{agent}",
            script_version=previous.script_version if previous else None,
            script_node=previous.script_node if previous else None,
            call_type=previous.call_type if previous else None,
        )  # fmt: skip
        contact = await self.store.open_contact(new)
        await self.push_pop(contact)
        return contact

    # --- the pop ------------------------------------------------------------------------
    async def pop_of(self, contact: Contact) -> Pop:
        """The contact's pop as the desktop shows it (its stored context, plus the
        journey's earlier hops with their script steps)."""
        hops = []
        for other in await self.store.journey(contact.journey_key):
            if other.id == contact.id:
                break
            steps = [s.as_json() for s in await self.store.steps(other.id)]
            hops.append(Hop(
                other.id, other.agent, other.agent_name, other.queue, other.level,
                other.answered_at, other.ended_at or other.escalated_at, other.state,
                other.escalation_reason, other.disposition, steps,
            ))  # fmt: skip
        return Pop(
            kind=contact.kind, contact_id=contact.id, agent=contact.agent,
            agent_name=contact.agent_name, queue=self._queue_json(contact.queue),
            answered_at=contact.answered_at, hold_seconds=round(contact.hold_seconds or 0),
            details=details_from(contact.context), hops=hops,
        )  # fmt: skip

    async def push_pop(self, contact: Contact) -> None:
        pop = await self.pop_of(contact)
        self.hub.publish(contact.agent, "pop", {"contact": contact.as_json(), "pop": pop.as_json()})

    async def current(self, agent: str) -> dict[str, Any]:
        """What ``GET /api/desk/current`` answers: the agent's active (or wrap-up)
        contact with its pop, or ``{"contact": None, "pop": None}``."""
        contact = await self.store.active_for(agent)
        if contact is None:
            return {"contact": None, "pop": None}
        return {"contact": contact.as_json(), "pop": (await self.pop_of(contact)).as_json()}

    def _queue_json(self, queue_id: str) -> dict[str, Any]:
        queue = self.config.queues.get(queue_id)
        if queue is None:
            return {"id": queue_id, "name": queue_id, "level": None, "area": None}
        return {"id": queue_id, "name": queue.name, "level": queue.level, "area": queue.area}

    async def _previous(self, contact_id: str) -> Contact | None:
        if not contact_id:
            return None
        previous = await self.store.get(contact_id)
        if previous is None:
            logger.warning("desk: %s names contact %s, which does not exist",
                           PREVIOUS_VARIABLE, contact_id)  # fmt: skip
        return previous

    async def _refresh(self, contact: Contact, keys: CallKeys) -> None:
        """Ask the source again until nothing is pending (or ``refresh_for_s``)."""
        deadline = asyncio.get_running_loop().time() + self.refresh_for_s
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(self.refresh_s)
            details = await self.source.for_call(keys)
            if not details.pending:
                updated = await self.store.set_context(contact.id, details.as_json(),
                                                       ivr_reason=details.ivr_reason,
                                                       call_record_id=details.call_record_id)  # fmt: skip
                await self.push_pop(updated)
                return
        logger.warning("desk: contact %s: %s still unknown after %.0f s",
                       contact.id, ", ".join(details.pending), self.refresh_for_s)  # fmt: skip

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel the background refreshes."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class _KeyLock:
    """One caller's events in order; dropped when nobody holds or waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def details_from(context: Any) -> PopDetails:
    """A stored context (``PopDetails.as_json``) back as :class:`PopDetails`;
    unknown keys are ignored (a context written by an older version)."""
    data = context if isinstance(context, dict) else {}
    return PopDetails(
        caller=dict(data.get("caller") or {}), segment=dict(data.get("segment") or {}),
        reasons=list(data.get("reasons") or []), ivr_reason=data.get("ivr_reason"),
        path=list(data.get("path") or []), facts=list(data.get("facts") or []),
        appointments=list(data.get("appointments") or []), open_case=data.get("open_case"),
        chat=list(data.get("chat") or []), call_record_id=data.get("call_record_id"),
        pending=list(data.get("pending") or []),
    )  # fmt: skip
