"""change feed: one version row per topic (issue 13, part db)

Revision ID: 0014
Revises: 0013

``change_versions(topic, version)``: a writer of data that controllers cache
(flags, slots per site) bumps its topic's version in its own transaction;
every controller polls the table (SQLite) or gets a PostgreSQL NOTIFY at
commit (``ivr.store.changes``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_versions",
        sa.Column("topic", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("change_versions")
