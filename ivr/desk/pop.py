"""The screen pop: what an agent sees the moment a caller (or a chat) reaches them.

A :class:`Pop` is assembled from three things:

- the contact itself (``desk_contacts``: agent, queue, level, times);
- the line's :class:`PopSource`, which knows what the IVR or the chat did —
  who is calling, the segment and the reasons in words, the path through the
  menu in words, appointments, the open case, the chat history of the same
  journey (the platform knows no line: ``ivr.citas.desk`` is the citas one);
- the previous hops of the same journey (``DeskStore.journey``) with the
  script steps each agent took, so a level-2 agent sees what level 1 did.

Masking (``ivr.masking``, one policy for the project): document numbers and
phone numbers are shown with every digit but the last 3 masked
(``*******567``); the affiliate's name is shown in full (the agent greets the
caller by name). The source masks what it gives; :func:`masked_person` is the
one place that does it, so a source cannot forget a field. The pop is stored
as shown (``desk_contacts.context``), already masked.

>>> person = masked_person(name="Ana Pérez", document="1020304050", phone="+573001234567")
>>> person["document"], person["phone"]
('*******050', '+*********567')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ivr.masking import mask_number

VOICE = "voice"
CHAT = "chat"


def masked_person(
    *, name: str | None, document: str | None, phone: str | None, **more: str | None
) -> dict[str, str | None]:
    """Who is calling, as the desktop may show it: ``name`` in full, ``document``
    and ``phone`` masked to their last 3 digits (``ivr.masking.mask_number``; ``-``
    when unknown); ``more`` (plan, site...) as given."""
    return {"name": name, "document": mask_number(document), "phone": mask_number(phone), **more}


@dataclass(frozen=True)
class CallKeys:
    """What identifies a queued call to a :class:`PopSource`: ``sip_call_id``
    (the IVR's ``CITAS_CALL_ID``, None when the call never went through the IVR),
    the caller's ``uniqueid``, its channel ``variables`` (AMI ChanVariable), the
    ``caller_number`` (unmasked: the source masks)."""

    uniqueid: str
    sip_call_id: str | None
    variables: Mapping[str, str]
    caller_number: str | None


@dataclass(frozen=True)
class ChatKeys:
    """What identifies a chat hand-off: the conversation, the contact's ``wa_id``,
    the hand-off's ``reason`` and ``context`` (what the chat flow carried)."""

    conversation_id: str
    wa_id: str
    journey_id: str | None
    reason: str
    context: Mapping[str, Any]


@dataclass
class PopDetails:
    """What the line tells about the person (every field already in words and masked).

    ``caller``: :func:`masked_person`; ``segment``: ``{"code", "label"}``;
    ``reasons``: why the IVR sent them (Spanish sentences); ``ivr_reason``: the
    IVR's reason or last menu choice, in words (reports compare it with the
    agent's); ``path``: the IVR path, one Spanish line per step; ``facts``:
    ``[{"label", "value"}]`` (service, site, CUPS...); ``appointments``:
    ``[{"when", "what", "where", "state"}]``; ``open_case``: ``{"number",
    "state", "summary", "due"}`` or None; ``chat``: ``[{"at", "from", "text"}]``
    oldest first; ``call_record_id``; ``pending``: what is not known yet (the
    source will be asked again: ``"recorrido"`` while the call record is not
    written).
    """

    caller: dict[str, str | None] = field(default_factory=dict)
    segment: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    ivr_reason: str | None = None
    path: list[str] = field(default_factory=list)
    facts: list[dict[str, str]] = field(default_factory=list)
    appointments: list[dict[str, str]] = field(default_factory=list)
    open_case: dict[str, str] | None = None
    chat: list[dict[str, str]] = field(default_factory=list)
    call_record_id: str | None = None
    pending: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "caller": dict(self.caller), "segment": dict(self.segment),
            "reasons": list(self.reasons), "ivr_reason": self.ivr_reason,
            "path": list(self.path), "facts": [dict(f) for f in self.facts],
            "appointments": [dict(a) for a in self.appointments],
            "open_case": dict(self.open_case) if self.open_case else None,
            "chat": [dict(c) for c in self.chat], "call_record_id": self.call_record_id,
            "pending": list(self.pending),
        }  # fmt: skip


class PopSource(Protocol):
    """The line's knowledge of a person (``ivr.citas.desk.CitasPopSource``).

    Both methods return within the pop's budget (a few hundred ms): what cannot
    be known in time goes in ``PopDetails.pending`` and the pop asks again later.
    They raise nothing for missing data (an unknown caller is a pop with no name).
    """

    async def for_call(self, call: CallKeys) -> PopDetails: ...

    async def for_chat(self, chat: ChatKeys) -> PopDetails: ...


class VariablesSource:
    """A :class:`PopSource` that knows only the channel variables (no line):
    segment and reason as the IVR set them. Used when no line source is given."""

    async def for_call(self, call: CallKeys) -> PopDetails:
        segment = call.variables.get("CITAS_SEGMENT", "") or "unknown"
        reason = call.variables.get("CITAS_REASON", "") or None
        return PopDetails(
            caller=masked_person(name=None, document=call.variables.get("CITAS_AFFILIATE"),
                                 phone=call.caller_number),
            segment={"code": segment, "label": segment}, ivr_reason=reason,
            reasons=[reason] if reason else [],
        )  # fmt: skip

    async def for_chat(self, chat: ChatKeys) -> PopDetails:
        return PopDetails(
            caller=masked_person(name=None, document=None, phone=chat.wa_id),
            segment={"code": "unknown", "label": "unknown"}, ivr_reason=chat.reason,
            reasons=[chat.reason],
        )  # fmt: skip


@dataclass(frozen=True)
class Hop:
    """A previous contact of the same journey, as the pop shows it."""

    contact_id: str
    agent: str
    agent_name: str
    queue: str
    level: int
    answered_at: datetime | None
    ended_at: datetime | None
    state: str
    escalation_reason: str | None
    disposition: str | None
    steps: Sequence[Mapping[str, Any]]
    queue_name: str = ""  # desk.yaml's Spanish name of ``queue`` (the agent reads it, not the id)

    def as_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id, "agent": self.agent, "agent_name": self.agent_name,
            "queue": self.queue, "queue_name": self.queue_name or self.queue, "level": self.level,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "state": self.state, "escalation_reason": self.escalation_reason,
            "disposition": self.disposition, "steps": [dict(s) for s in self.steps],
        }  # fmt: skip


@dataclass(frozen=True)
class Pop:
    """The screen pop of one contact (``as_json`` is what the desktop renders and
    what ``desk_contacts.context`` stores).

    ``kind`` ``voice`` | ``chat``; ``queue`` ``{"id", "name", "level", "area"}``;
    ``details`` the line's :class:`PopDetails`; ``hops`` the journey's previous
    contacts, oldest first; ``answered_at`` aware UTC.
    """

    kind: str
    contact_id: str
    agent: str
    agent_name: str
    queue: Mapping[str, Any]
    answered_at: datetime
    hold_seconds: int
    details: PopDetails
    hops: Sequence[Hop] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "contact_id": self.contact_id, "agent": self.agent,
            "agent_name": self.agent_name, "queue": dict(self.queue),
            "answered_at": self.answered_at.isoformat(), "hold_seconds": self.hold_seconds,
            **self.details.as_json(), "hops": [h.as_json() for h in self.hops],
        }  # fmt: skip
