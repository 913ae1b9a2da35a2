"""The tables the desk reports read, by the names and columns fixed in the design.

The desk's tables belong to the desk core (migration 0012: ``desk_contacts``,
``desk_steps``, ``desk_presence``, ``script_versions``; contract in
``/work/helpers/DESK.md`` → ``docs/desk/reports.md``). Each is named here as a
lightweight SQLAlchemy ``table()`` with only the columns a report reads, so the
report queries depend on the *contract* (table and column names), not on the
core's ORM classes, exactly as ``ivr.cases.report_sources`` does for the cases.
Times are ``UtcDateTime``: aware UTC datetimes on SQLite and PostgreSQL alike.

``call_records`` (the IVR side) is read through its ORM class
(``ivr.store.models.CallRecordRow``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String, column, table

from ivr.store.models import UtcDateTime

DESK_CONTACTS = table(
    "desk_contacts",
    column("id", String),
    column("kind", String),
    column("agent", String),
    column("agent_name", String),
    column("queue", String),
    column("level", Integer),
    column("area", String),
    column("call_record_id", String),
    column("context", JSON),
    column("ivr_reason", String),
    column("queued_at", UtcDateTime()),
    column("answered_at", UtcDateTime()),
    column("ended_at", UtcDateTime()),
    column("hold_seconds", Float),
    column("ring_seconds", Float),
    column("script_version", Integer),
    column("call_type", String),
    column("reason", String),
    column("scenario", String),
    column("procedure", String),
    column("disposition", String),
    column("closed_at", UtcDateTime()),
    column("state", String),
    column("escalated_at", UtcDateTime()),
    column("escalation_reason", String),
    column("escalated_to", String),
    column("previous_contact_id", String),
    column("journey_key", String),
)

DESK_STEPS = table(
    "desk_steps",
    column("id", Integer),
    column("contact_id", String),
    column("seq", Integer),
    column("node_id", String),
    column("node_kind", String),
    column("label", String),
    column("answer", String),
    column("entered_at", UtcDateTime()),
    column("left_at", UtcDateTime()),
    column("seconds", Float),
    column("agent", String),
)

DESK_PRESENCE = table(
    "desk_presence",
    column("id", Integer),
    column("agent", String),
    column("event", String),
    column("reason", String),
    column("at", UtcDateTime()),
)

SCRIPT_VERSIONS = table(
    "script_versions",
    column("version", Integer),
    column("tree", JSON),
    column("state", String),
    column("published_at", UtcDateTime()),
)

SITE_KEY = "site_id"
"""The key of the affiliate's site in ``desk_contacts.context`` (the pop part's context)."""
