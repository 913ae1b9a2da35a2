"""The tables the dashboard reads, by the names and columns fixed in the design.

Reports read five tables that other parts own (cases and their events: core,
migration 0007; escalation attempts: 0008; surveys: 0009; text analyses:
0010). Each is named here as a lightweight SQLAlchemy ``table()`` with only the
columns a report reads, so the report queries depend on the *contract* (the
table and column names of ``/work/helpers/CASES.md`` → ``docs/cases/reports.md``),
not on the other parts' ORM classes: a part may add columns, rename its classes
or move its module without touching the reports. Times are ``UtcDateTime``:
aware UTC datetimes on SQLite and PostgreSQL alike.

Tables this project already had (``call_records``, ``conversations``,
``ops_audit``) are read through their ORM classes.
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String, column, table

from ivr.store.models import UtcDateTime

CASES = table(
    "cases",
    column("id", String),
    column("number", String),
    column("site_id", String),
    column("channel", String),
    column("journey_id", String),
    column("state", String),
    column("group", String),
    column("assignee", String),
    column("filed_at", UtcDateTime()),
    column("first_response_due_at", UtcDateTime()),
    column("resolution_due_at", UtcDateTime()),
    column("first_response_at", UtcDateTime()),
    column("closed_at", UtcDateTime()),
)

CASE_EVENTS = table(
    "case_events",
    column("id", Integer),
    column("case_id", String),
    column("at", UtcDateTime()),
    column("action", String),
    column("new", JSON),
)

ESCALATION_ATTEMPTS = table(
    "escalation_attempts",
    column("id", String),
    column("case_id", String),
    column("clock", String),
    column("person", String),
    column("started_at", UtcDateTime()),
    column("answered_at", UtcDateTime()),
    column("acknowledged_at", UtcDateTime()),
    column("result", String),
)

SURVEYS = table(
    "surveys",
    column("id", String),
    column("kind", String),
    column("case_id", String),
    column("agent", String),
    column("channel", String),
    column("state", String),
    column("rating", Integer),
    column("answered_at", UtcDateTime()),
)

TEXT_ANALYSES = table(
    "text_analyses",
    column("id", String),
    column("subject", String),
    column("subject_id", String),
    column("score", Float),
    column("label", String),
    column("at", UtcDateTime()),
)

SLA_WARNING = "sla_warning"
"""The ``case_events.action`` of an SLA warning (escalation part; ``new`` = ``{"clock", "percent"}``)."""

NOT_A_CALL = ("skipped_quiet_hours", "suppressed_duplicate")
"""``escalation_attempts.result`` values where no phone call was placed."""

SENTIMENT_LABELS = ("negativo", "neutral", "positivo")
