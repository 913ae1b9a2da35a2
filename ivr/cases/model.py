"""What a case is: :class:`Case`, :class:`NewCase`, :class:`CaseEvent`, :class:`Actor`.

A case ("radicado") is a request the line could not serve on the spot (no
slot after trying the other time band and another doctor), filed with a
number and a promised answer date. Its life::

    open ──assign──▶ assigned ──record_answer──▶ answered ──close──▶ closed
      │                 ▲  │                       │  ▲
      │                 └──┘ (re-assign)           └──┘ (another answer)
      ├──record_answer──▶ answered
      └──close──▶ closed            (closed is final; any state but closed may close)

``due_at`` is the promise told to the caller (the end of the 5th business
day); ``first_response_due_at`` and ``resolution_due_at`` are the SLA clocks of
the group's policy, all fixed at filing. Instants are aware UTC datetimes.

Masking: :meth:`Case.as_json` (what the API and console get) shows the
affiliate's document, the contact phone and the WhatsApp id masked
(``ivr.masking.mask_number``); the e-mail is shown, since it is where the
operator's answer goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.masking import mask_number

OPEN, ASSIGNED, ANSWERED, CLOSED = "open", "assigned", "answered", "closed"
STATES = (OPEN, ASSIGNED, ANSWERED, CLOSED)
NORMAL, HIGH = "normal", "high"
PRIORITIES = (NORMAL, HIGH)
CHANNELS = ("voice", "chat")
TIME_BANDS = ("morning", "afternoon")

# The actions of case_events written by core; other parts add their own
# (answer_sent, answer_failed, sla_warning, escalation_*, survey_* …).
FILED, ASSIGNED_EVENT, ANSWERED_EVENT, CLOSED_EVENT = "filed", "assigned", "answered", "closed"
PRIORITY_RAISED = "priority_raised"


@dataclass(frozen=True)
class Actor:
    """Who did it: a console user (``name`` from the token, ``role`` viewer |
    operator | admin) or the product itself (:data:`SYSTEM`)."""

    name: str
    role: str


SYSTEM = Actor("sistema", "system")


@dataclass(frozen=True)
class NewCase:
    """What filing needs. ``search_evidence``: the searches tried, each
    ``{"time_band": "morning"|"afternoon"|None, "exclude_doctor_id": str|None,
    "found": int, "at": iso}``. ``group``: the support group (default: the
    config's ``default_group``). ``contact_phone`` is E.164."""

    affiliate_id: str
    specialty: str
    service_id: str
    cups: str
    site_id: str
    channel: str  # voice | chat
    summary: str
    journey_id: str | None = None
    call_id: str | None = None
    wa_id: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    consent: bool = False
    consent_at: datetime | None = None
    search_evidence: Sequence[dict[str, Any]] = ()
    group: str | None = None
    priority: str = NORMAL
    priority_reason: str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    number: str
    affiliate_id: str
    specialty: str
    service_id: str
    cups: str
    site_id: str
    channel: str
    journey_id: str | None
    call_id: str | None
    wa_id: str | None
    contact_email: str | None
    contact_phone: str | None
    consent: bool
    consent_at: datetime | None
    summary: str
    search_evidence: list[dict[str, Any]]
    state: str
    priority: str
    priority_reason: str | None
    group: str
    assignee: str | None
    filed_at: datetime
    due_at: datetime
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_response_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    resolution: str | None
    updated_at: datetime
    version: int

    @property
    def is_open(self) -> bool:
        """Not closed (it blocks a new case for the same affiliate and specialty)."""
        return self.state != CLOSED

    def as_json(self) -> dict[str, Any]:
        """The case for the API: instants ISO 8601, personal numbers masked."""
        return {
            "id": self.id,
            "number": self.number,
            "affiliate_id": mask_number(self.affiliate_id),
            "specialty": self.specialty,
            "service_id": self.service_id,
            "cups": self.cups,
            "site_id": self.site_id,
            "channel": self.channel,
            "journey_id": self.journey_id,
            "call_id": self.call_id,
            "wa_id": mask_number(self.wa_id) if self.wa_id else None,
            "contact_email": self.contact_email,
            "contact_phone": mask_number(self.contact_phone) if self.contact_phone else None,
            "consent": self.consent,
            "consent_at": _iso(self.consent_at),
            "summary": self.summary,
            "search_evidence": list(self.search_evidence),
            "state": self.state,
            "priority": self.priority,
            "priority_reason": self.priority_reason,
            "group": self.group,
            "assignee": self.assignee,
            "filed_at": self.filed_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "first_response_due_at": self.first_response_due_at.isoformat(),
            "resolution_due_at": self.resolution_due_at.isoformat(),
            "first_response_at": _iso(self.first_response_at),
            "answered_at": _iso(self.answered_at),
            "closed_at": _iso(self.closed_at),
            "closed_by": self.closed_by,
            "resolution": self.resolution,
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }


@dataclass(frozen=True)
class CaseEvent:
    id: int
    case_id: str
    at: datetime
    actor: str
    role: str
    action: str
    old: Any = None
    new: Any = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "case_id": self.case_id, "at": self.at.isoformat(),
            "actor": self.actor, "role": self.role, "action": self.action,
            "old": self.old, "new": self.new, "detail": self.detail,
        }  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
