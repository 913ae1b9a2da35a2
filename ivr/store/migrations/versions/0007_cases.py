"""cases: the case record, its event log and the number sequence

Revision ID: 0007
Revises: 0006

The tables of ``ivr.cases.tables`` (issue 11 §1 and §3): one row per case
("radicado"), with the promised due date and the SLA clocks' due instants; its
events (every state change, written in the same transaction); the one-row
sequence the case numbers come from. One open case per affiliate and specialty
is a partial unique index (``state <> 'closed'``) on both databases.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
OPEN = sa.text("state <> 'closed'")


def upgrade() -> None:
    op.create_table(
        "case_sequence",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        sa.table("case_sequence", sa.column("id", sa.Integer), sa.column("last", sa.Integer)),
        [{"id": 1, "last": 0}],
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("number", sa.String(8), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("affiliate_id", sa.String(64), nullable=False),
        sa.Column("specialty", sa.String(32), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("cups", sa.String(16), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("journey_id", sa.String(36), nullable=True),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("wa_id", sa.String(32), nullable=True),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("contact_phone", sa.String(32), nullable=True),
        sa.Column("consent", sa.Boolean, nullable=False),
        sa.Column("consent_at", TIME, nullable=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("search_evidence", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("priority_reason", sa.Text, nullable=True),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("assignee", sa.String(128), nullable=True),
        sa.Column("filed_at", TIME, nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("first_response_due_at", TIME, nullable=False),
        sa.Column("resolution_due_at", TIME, nullable=False),
        sa.Column("first_response_at", TIME, nullable=True),
        sa.Column("answered_at", TIME, nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("number", name="uq_cases_number"),
        sa.UniqueConstraint("seq", name="uq_cases_seq"),
    )
    op.create_index(
        "uq_cases_open_per_affiliate_specialty",
        "cases",
        ["affiliate_id", "specialty"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_cases_state_due", "cases", ["state", "due_at"])
    op.create_index("ix_cases_group_state", "cases", ["group", "state"])
    op.create_index("ix_cases_site_id", "cases", ["site_id"])
    op.create_index("ix_cases_journey_id", "cases", ["journey_id"])
    op.create_index("ix_cases_assignee", "cases", ["assignee"])
    op.create_index("ix_cases_filed_at", "cases", ["filed_at"])
    op.create_index("ix_cases_closed_at", "cases", ["closed_at"])

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("old", sa.JSON, nullable=True),
        sa.Column("new", sa.JSON, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_case_events_case_at", "case_events", ["case_id", "at"])
    op.create_index("ix_case_events_at", "case_events", ["at"])
    op.create_index("ix_case_events_action", "case_events", ["action"])


def downgrade() -> None:
    for table in ("case_events", "cases", "case_sequence"):
        op.drop_table(table)
