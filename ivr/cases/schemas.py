"""JSON Schemas (2020-12) of what the cases API answers: ``Case``, ``CaseEvent``, ``SlaClock``.

For the parts' ``ApiExtension.schemas`` (``{**CASE_SCHEMAS, ...}``), so every route
that answers a case documents the same shape, the one :meth:`Case.as_json`,
:meth:`CaseEvent.as_json` and :meth:`ClockState.as_json` produce (tested).
Personal numbers are masked (``*******678``).
"""

from __future__ import annotations

from typing import Any

from ivr.cases.model import CHANNELS, PRIORITIES, STATES

_STR: dict[str, Any] = {"type": "string"}
_NSTR: dict[str, Any] = {"type": ["string", "null"]}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_NTIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_MASKED: dict[str, Any] = {
    "type": ["string", "null"],
    "description": "Masked (ivr.masking): *******678.",
}

CASE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id", "number", "affiliate_id", "specialty", "service_id", "cups", "site_id", "channel",
        "journey_id", "call_id", "wa_id", "contact_email", "contact_phone", "consent",
        "consent_at", "summary", "search_evidence", "state", "priority", "priority_reason",
        "group", "assignee", "filed_at", "due_at", "first_response_due_at",
        "resolution_due_at", "first_response_at", "answered_at", "closed_at", "closed_by",
        "resolution", "updated_at", "version",
    ],
    "properties": {
        "id": _STR,
        "number": {"type": "string", "pattern": "^[0-9]{7}$", "description": "6-digit sequence + Damm check digit."},
        "affiliate_id": {**_MASKED, "type": "string"},
        "specialty": _STR, "service_id": _STR, "cups": _STR, "site_id": _STR,
        "channel": {"type": "string", "enum": list(CHANNELS)},
        "journey_id": _NSTR, "call_id": _NSTR, "wa_id": _MASKED,
        "contact_email": _NSTR, "contact_phone": _MASKED,
        "consent": {"type": "boolean"}, "consent_at": _NTIME,
        "summary": _STR,
        "search_evidence": {"type": "array", "items": {"type": "object"}},
        "state": {"type": "string", "enum": list(STATES)},
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "priority_reason": _NSTR, "group": _STR, "assignee": _NSTR,
        "filed_at": _TIME,
        "due_at": {**_TIME, "description": "The promise told to the caller: the end of the 5th business day."},
        "first_response_due_at": _TIME, "resolution_due_at": _TIME,
        "first_response_at": _NTIME, "answered_at": _NTIME, "closed_at": _NTIME,
        "closed_by": _NSTR, "resolution": _NSTR, "updated_at": _TIME,
        "version": {"type": "integer", "minimum": 1, "description": "Pass it back as expected_version."},
    },
}  # fmt: skip

CASE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "case_id", "at", "actor", "role", "action", "old", "new", "detail"],
    "properties": {
        "id": {"type": "integer"}, "case_id": _STR, "at": _TIME, "actor": _STR, "role": _STR,
        "action": _STR, "old": {}, "new": {}, "detail": _STR,
    },
}  # fmt: skip

SLA_CLOCK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["clock", "started_at", "due_at", "stopped_at", "budget_s", "elapsed_s",
                 "remaining_s", "percent", "running", "met", "breached"],
    "properties": {
        "clock": {"type": "string", "enum": ["first_response", "resolution"]},
        "started_at": _TIME, "due_at": _TIME, "stopped_at": _NTIME,
        "budget_s": {"type": "integer", "description": "Business seconds from start to due."},
        "elapsed_s": {"type": "integer"},
        "remaining_s": {"type": "integer", "description": "Negative when overdue."},
        "percent": {"type": "number"},
        "running": {"type": "boolean"}, "met": {"type": "boolean"}, "breached": {"type": "boolean"},
    },
}  # fmt: skip

CASE_SCHEMAS: dict[str, Any] = {
    "Case": CASE_SCHEMA,
    "CaseEvent": CASE_EVENT_SCHEMA,
    "SlaClock": SLA_CLOCK_SCHEMA,
}
