"""booking slots, bookings and the SMS outbox

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slots",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("doctor_id", sa.String(64), nullable=False),
        sa.Column("cups", sa.String(16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_band", sa.String(16), nullable=False),
        sa.Column("booked_by", sa.String(64), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_slots_site_cups_starts", "slots", ["site_id", "cups", "starts_at"])

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("slot_id", sa.String(128), sa.ForeignKey("slots.id"), nullable=False),
        sa.Column("affiliate_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # The second safety net against a double booking.
        sa.UniqueConstraint("slot_id", name="uq_bookings_slot_id"),
    )
    op.create_index("ix_bookings_affiliate_id", "bookings", ["affiliate_id"])

    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dedupe_key", name="uq_sms_outbox_dedupe_key"),
    )
    op.create_index("ix_sms_outbox_status_next", "sms_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("sms_outbox")
    op.drop_table("bookings")
    op.drop_table("slots")
