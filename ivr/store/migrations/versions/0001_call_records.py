"""call records

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("sip_call_id", sa.String(255), nullable=True),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("end_reason", sa.String(128), nullable=True),
        sa.Column("steps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("path", sa.JSON, nullable=False),
        sa.Column("variables", sa.JSON, nullable=False),
    )
    op.create_index("ix_call_records_channel_id", "call_records", ["channel_id"])
    op.create_index("ix_call_records_sip_call_id", "call_records", ["sip_call_id"])
    op.create_index("ix_call_records_started_at", "call_records", ["started_at"])
    op.create_index("ix_call_records_outcome", "call_records", ["outcome"])


def downgrade() -> None:
    op.drop_table("call_records")
