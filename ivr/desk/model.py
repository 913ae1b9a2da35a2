"""What the desk stores: contacts (one per agent per answered call or taken chat),
the script steps an agent takes in a contact, agents' presence, script versions.

A contact's life (``state``)::

    active ──end()──▶ wrapup ──close(disposition)──▶ closed
      │ └──────────────close(disposition)──────────▶ closed   (disposed during the call)
      └──escalate(reason, queue)──▶ escalated                 (handed up a level: a new hop)

``closed`` and ``escalated`` are final; ``end()`` on them only records when the
agent's leg hung up. A hop is a new contact whose ``previous_contact_id`` is the
escalated one; every hop of one caller shares ``journey_key`` (the caller's
Uniqueid, or the chat's conversation id).

All instants are aware UTC ``datetime``; ``as_json`` gives ISO 8601 text. Personal
numbers: ``context`` is stored as shown (the pop masks it before it is stored);
``as_json`` masks ``wa_id`` and any long digit run of ``channel`` with
``ivr.masking.mask_number`` (a channel name may carry the caller's number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.masking import mask_number

VOICE, CHAT = "voice", "chat"
KINDS = (VOICE, CHAT)

ACTIVE, WRAPUP, CLOSED, ESCALATED = "active", "wrapup", "closed", "escalated"
STATES = (ACTIVE, WRAPUP, CLOSED, ESCALATED)
OPEN_STATES = (ACTIVE, WRAPUP)  # the agent still works on it
FINAL_STATES = (CLOSED, ESCALATED)

LOGIN, LOGOUT, PAUSE, UNPAUSE = "login", "logout", "pause", "unpause"
PRESENCE_EVENTS = (LOGIN, LOGOUT, PAUSE, UNPAUSE)

DRAFT, PUBLISHED, RETIRED = "draft", "published", "retired"
SCRIPT_STATES = (DRAFT, PUBLISHED, RETIRED)

STATE_LABELS = {  # as agents read them (Spanish)
    ACTIVE: "En curso",
    WRAPUP: "Pendiente de tipificar",
    CLOSED: "Cerrado",
    ESCALATED: "Escalado",
}

# 7+ digits standing alone (not the hex counter after a channel name's "-").
_DIGIT_RUN = re.compile(r"(?<![-\w+])\+?\d{7,}(?![\w])")


def mask_digit_runs(text: str | None) -> str | None:
    """``text`` with every run of 7 or more digits standing alone (a phone or document
    number; not the counter after a channel name's ``-``) masked by ``mask_number``:
    ``PJSIP/3001234567-00000012`` → ``PJSIP/*******567-00000012``."""
    if text is None:
        return None
    return _DIGIT_RUN.sub(lambda m: mask_number(m.group(0)), text)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True)
class NewContact:
    """A contact to open (from the AMI ``AgentConnect``, or an agent taking a chat).

    ``journey_key``: the caller's Uniqueid (voice) or the conversation id (chat);
    with ``previous_contact_id`` it is taken from that contact. ``source_key``: the
    identity of the event that opened it (voice: the agent leg's Uniqueid, AMI
    ``DestUniqueid``; chat: ``handoff:<id>:<agent>``): a re-delivered event with the
    same key gives the same contact. Without it the unique ``(kind, journey_key,
    agent, answered_at)`` does that. ``hold_seconds``/``ring_seconds``: AMI
    ``HoldTime``/``RingTime``. ``context``: the pop as shown (already masked)."""

    kind: str
    agent: str
    agent_name: str
    queue: str
    level: int
    area: str
    journey_key: str
    answered_at: datetime
    queued_at: datetime | None = None
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    sip_call_id: str | None = None
    call_record_id: str | None = None
    conversation_id: str | None = None
    wa_id: str | None = None
    handoff_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    ivr_reason: str | None = None
    hold_seconds: float | None = None
    ring_seconds: float | None = None
    previous_contact_id: str | None = None
    source_key: str | None = None
    script_version: int | None = None
    script_node: str | None = None
    call_type: str | None = None


@dataclass(frozen=True)
class Contact:
    """One agent's contact with one caller (a hop); see the module doc for ``state``."""

    id: str
    kind: str
    agent: str
    agent_name: str
    queue: str
    level: int
    area: str
    journey_key: str
    state: str
    answered_at: datetime
    version: int
    queued_at: datetime | None = None
    ended_at: datetime | None = None
    channel: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    sip_call_id: str | None = None
    call_record_id: str | None = None
    conversation_id: str | None = None
    wa_id: str | None = None
    handoff_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    ivr_reason: str | None = None
    hold_seconds: float | None = None
    ring_seconds: float | None = None
    script_version: int | None = None
    script_node: str | None = None
    call_type: str | None = None
    reason: str | None = None
    scenario: str | None = None
    procedure: str | None = None
    disposition: str | None = None
    disposition_note: str = ""
    closed_at: datetime | None = None
    closed_by: str | None = None
    escalated_at: datetime | None = None
    escalation_reason: str | None = None
    escalated_to: str | None = None
    previous_contact_id: str | None = None
    source_key: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """The agent still works on it (``active`` or ``wrapup``)."""
        return self.state in OPEN_STATES

    @property
    def left_at(self) -> datetime | None:
        """When this hop ended for its level: escalated, closed or hung up, the first."""
        ends = [t for t in (self.escalated_at, self.ended_at, self.closed_at) if t is not None]
        return min(ends) if ends else None

    @property
    def seconds_at_level(self) -> float | None:
        """Seconds from the answer to :attr:`left_at` (None while it goes on)."""
        left = self.left_at
        return (left - self.answered_at).total_seconds() if left is not None else None

    def as_json(self) -> dict[str, Any]:
        """For the API: plain JSON types, instants ISO 8601, ``wa_id`` and long digit
        runs of ``channel`` masked (``context`` is stored masked already)."""
        return {
            "id": self.id, "kind": self.kind, "agent": self.agent,
            "agent_name": self.agent_name, "queue": self.queue, "level": self.level,
            "area": self.area, "journey_key": self.journey_key, "state": self.state,
            "state_label": STATE_LABELS[self.state], "version": self.version,
            "queued_at": _iso(self.queued_at), "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at), "channel": mask_digit_runs(self.channel),
            "uniqueid": self.uniqueid, "linkedid": self.linkedid,
            "sip_call_id": self.sip_call_id, "call_record_id": self.call_record_id,
            "conversation_id": self.conversation_id,
            "wa_id": mask_number(self.wa_id) if self.wa_id else None,
            "handoff_id": self.handoff_id, "context": dict(self.context),
            "ivr_reason": self.ivr_reason, "hold_seconds": self.hold_seconds,
            "ring_seconds": self.ring_seconds, "script_version": self.script_version,
            "script_node": self.script_node, "call_type": self.call_type,
            "reason": self.reason, "scenario": self.scenario, "procedure": self.procedure,
            "disposition": self.disposition, "disposition_note": self.disposition_note,
            "closed_at": _iso(self.closed_at), "closed_by": self.closed_by,
            "escalated_at": _iso(self.escalated_at),
            "escalation_reason": self.escalation_reason, "escalated_to": self.escalated_to,
            "previous_contact_id": self.previous_contact_id,
            "seconds_at_level": self.seconds_at_level,
        }  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One script node an agent was at in a contact: ``seq`` 1, 2, … in order;
    ``left_at``/``seconds`` are set when the next step (or the contact's close or
    escalation) ends it. ``answer``: the answer id chosen at a question."""

    id: int
    contact_id: str
    seq: int
    node_id: str
    node_kind: str
    label: str
    agent: str
    entered_at: datetime
    answer: str | None = None
    left_at: datetime | None = None
    seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "contact_id": self.contact_id, "seq": self.seq,
            "node_id": self.node_id, "node_kind": self.node_kind, "label": self.label,
            "answer": self.answer, "agent": self.agent,
            "entered_at": self.entered_at.isoformat(), "left_at": _iso(self.left_at),
            "seconds": self.seconds,
        }  # fmt: skip


@dataclass(frozen=True)
class Presence:
    """One presence change of an agent (``login``/``logout``/``pause``/``unpause``)."""

    id: int
    agent: str
    event: str
    at: datetime
    actor: str
    queues: tuple[str, ...] = ()
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "agent": self.agent, "event": self.event,
            "at": self.at.isoformat(), "actor": self.actor, "queues": list(self.queues),
            "reason": self.reason,
        }  # fmt: skip


@dataclass(frozen=True)
class ScriptVersion:
    """One version of the script tree; ``state`` draft → published → retired. At most
    one is published at a time (the active tree)."""

    id: str
    version: int
    tree: Mapping[str, Any]
    note: str
    state: str
    created_by: str
    created_at: datetime
    published_by: str | None = None
    published_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "version": self.version, "tree": dict(self.tree),
            "note": self.note, "state": self.state, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(), "published_by": self.published_by,
            "published_at": _iso(self.published_at),
        }  # fmt: skip
