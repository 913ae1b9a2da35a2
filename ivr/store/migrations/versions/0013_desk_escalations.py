"""desk escalations: one row per escalation an agent asks for, and its outcome (issue 12 §5)

Revision ID: 0013
Revises: 0012

``ivr.desk.escalations`` documents the table: the escalated contact, from which
queue and level to which, the agent's reason, when it was asked for, and what
became of it (``pending`` → ``answered`` | ``unanswered`` | ``failed``) with the
seconds the caller spent between the two levels.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "desk_escalations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("desk_contacts.id"), nullable=False),
        sa.Column("journey_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("from_queue", sa.String(64), nullable=False),
        sa.Column("from_level", sa.Integer, nullable=False),
        sa.Column("to_queue", sa.String(64), nullable=False),
        sa.Column("to_level", sa.Integer, nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_at", TIME, nullable=True),
        sa.Column("queued_seconds", sa.Float, nullable=True),
        sa.Column("next_contact_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_desk_escalations_contact", "desk_escalations", ["contact_id"])
    op.create_index("ix_desk_escalations_journey", "desk_escalations", ["journey_key"])
    op.create_index("ix_desk_escalations_requested_at", "desk_escalations", ["requested_at"])


def downgrade() -> None:
    op.drop_table("desk_escalations")
