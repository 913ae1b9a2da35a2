"""a patient's own appointments: slots end, one serialisation row per patient

Revision ID: 0004
Revises: 0003

``slots.ends_at``: an appointment occupies ``[starts_at, ends_at)``; slots made
before this revision get the default length (``ivr.booking.model.DEFAULT_LENGTH``,
20 minutes, copied here so the migration never changes with the code).
``booking_guards``: one row per patient, written first by every booking
transaction, so two bookings for one patient are serialised
(``ivr.booking.db`` has the reasoning).
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LENGTH = timedelta(minutes=20)


def upgrade() -> None:
    with op.batch_alter_table("slots") as batch:
        batch.add_column(sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    slots = sa.table(
        "slots",
        sa.column("id", sa.String),
        sa.column("starts_at", sa.DateTime(timezone=True)),
        sa.column("ends_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(slots.c.id, slots.c.starts_at)).all()
    for slot_id, starts_at in rows:
        bind.execute(slots.update().where(slots.c.id == slot_id).values(ends_at=starts_at + LENGTH))
    with op.batch_alter_table("slots") as batch:
        batch.alter_column("ends_at", existing_type=sa.DateTime(timezone=True), nullable=False)

    op.create_table(
        "booking_guards",
        sa.Column("affiliate_id", sa.String(64), primary_key=True),
        sa.Column("bookings", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("booking_guards")
    with op.batch_alter_table("slots") as batch:
        batch.drop_column("ends_at")
