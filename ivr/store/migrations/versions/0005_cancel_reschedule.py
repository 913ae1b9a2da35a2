"""appointments can be cancelled and rescheduled (issue 10 §2)

Revision ID: 0005
Revises: 0004

``bookings.cancelled_at``: set when the patient cancels (or a reschedule
replaces) the appointment; the row stays, for the record, and its slot is
freed. ``bookings.replaced_by``: the booking a reschedule moved it to.
The UNIQUE constraint on ``bookings.slot_id`` becomes a unique index over the
live bookings only (``WHERE cancelled_at IS NULL``, a partial index on both
SQLite and PostgreSQL), so a freed slot can be booked again while still never
twice at once.

Downgrade deletes the cancelled bookings (the old schema cannot hold a slot's
cancelled booking beside its new one) before restoring the constraint.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LIVE = sa.text("cancelled_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replaced_by", sa.String(36), nullable=True))
        batch.drop_constraint("uq_bookings_slot_id", type_="unique")
    op.create_index(
        "uq_bookings_live_slot_id",
        "bookings",
        ["slot_id"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.execute("DELETE FROM bookings WHERE cancelled_at IS NOT NULL")
    op.drop_index("uq_bookings_live_slot_id", table_name="bookings")
    with op.batch_alter_table("bookings") as batch:
        batch.create_unique_constraint("uq_bookings_slot_id", ["slot_id"])
        batch.drop_column("replaced_by")
        batch.drop_column("cancelled_at")
