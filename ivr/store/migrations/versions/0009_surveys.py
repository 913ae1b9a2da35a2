"""surveys: ratings 1-10 and comments after a closed case or a call

Revision ID: 0009
Revises: 0008 (escalation; issue 11 migrations chained in number order at merge)

The table of ``ivr.surveys.tables`` (issue 11 §4): one survey per case and one
per call (partial unique indexes, both databases), its channel, state, the
rating and the comment. No foreign key to ``cases`` or ``call_records``: a
call survey is stored while its call record may still be in the records
buffer (the database was down mid-call), and the reports join by id.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
CASE_WHERE = sa.text("kind = 'case'")
CALL_WHERE = sa.text("kind = 'call'")


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("case_number", sa.String(8), nullable=True),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("journey_id", sa.String(36), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("contact", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_message_id", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("answered_at", TIME, nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
    )
    op.create_index(
        "uq_surveys_case", "surveys", ["case_id"], unique=True,
        sqlite_where=CASE_WHERE, postgresql_where=CASE_WHERE,
    )  # fmt: skip
    op.create_index(
        "uq_surveys_call", "surveys", ["call_id"], unique=True,
        sqlite_where=CALL_WHERE, postgresql_where=CALL_WHERE,
    )  # fmt: skip
    op.create_index("ix_surveys_state_contact", "surveys", ["state", "contact"])
    op.create_index("ix_surveys_journey_id", "surveys", ["journey_id"])
    op.create_index("ix_surveys_agent", "surveys", ["agent"])
    op.create_index("ix_surveys_created_at", "surveys", ["created_at"])
    op.create_index("ix_surveys_answered_at", "surveys", ["answered_at"])


def downgrade() -> None:
    op.drop_table("surveys")
