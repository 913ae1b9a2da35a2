"""escalation: ladder attempts and the SLA monitor's once-only marks

Revision ID: 0008
Revises: 0007 (cases)

The tables of ``ivr.escalation.tables`` (issue 11 §3): every try of an
escalation ladder step (``escalation_attempts``; its unique key on case, clock,
step and kind is the claim that keeps two monitors from calling twice) and the
warnings and ladder ends done once per case and clock (``sla_marks``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalation_attempts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("clock", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("answered_at", TIME, nullable=True),
        sa.Column("acknowledged_at", TIME, nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("result", sa.String(24), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "case_id", "clock", "step", "kind", name="uq_escalation_attempts_step"
        ),
    )
    op.create_index("ix_escalation_attempts_case_id", "escalation_attempts", ["case_id"])
    op.create_index("ix_escalation_attempts_started", "escalation_attempts", ["started_at"])
    op.create_table(
        "sla_marks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(36), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("clock", sa.String(16), nullable=False),
        sa.Column("mark", sa.String(16), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.UniqueConstraint("case_id", "clock", "mark", name="uq_sla_marks"),
    )
    op.create_index("ix_sla_marks_case_id", "sla_marks", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_sla_marks_case_id", table_name="sla_marks")
    op.drop_table("sla_marks")
    op.drop_index("ix_escalation_attempts_started", table_name="escalation_attempts")
    op.drop_index("ix_escalation_attempts_case_id", table_name="escalation_attempts")
    op.drop_table("escalation_attempts")
