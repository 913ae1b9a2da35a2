"""controller registry: one heartbeat row per controller process (issue 14, part 3)

Revision ID: 0015
Revises: 0014

``ops_controllers``: every controller process (``ivr serve`` and its voice
workers, on every node) upserts its row, keyed by its source id
(``instance@host:pid``, the ``source`` of its alerts), every few seconds: what it
runs (flags revision, breaker state, calls, ARI connection) and when it was last
seen. ``ivr.ops.controllers`` reads them for ``GET /api/controllers`` and prunes
the rows of controllers gone for a day (``seen_at`` is indexed for that).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ops_controllers",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("instance", sa.String(128), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("app", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flags_revision", sa.Integer, nullable=False),
        sa.Column("breaker", sa.String(16), nullable=True),
        sa.Column("active_calls", sa.Integer, nullable=False),
        sa.Column("ari_connected", sa.Boolean, nullable=False),
    )
    op.create_index("ix_ops_controllers_seen_at", "ops_controllers", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_ops_controllers_seen_at", "ops_controllers")
    op.drop_table("ops_controllers")
