"""chat: conversations, inbound and outbound messages, hand-offs

Revision ID: 0006
Revises: 0005 (relinked from 0004 when merged after 0005, appointment cancel and reschedule)

The tables of ``ivr.chat.tables`` (issue 10 §4 and §7): one conversation per
WhatsApp contact, inbound messages deduplicated by Meta's message id, the
outbox with its idempotency key and Meta's delivery statuses, and the queue of
conversations handed to a person.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("wa_id", sa.String(32), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("variables", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("assigned_agent", sa.String(128), nullable=True),
        sa.Column("journey_id", sa.String(36), nullable=True),
        sa.Column("last_inbound_at", TIME, nullable=True),
        sa.Column("last_activity_at", TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("wa_id", name="uq_conversations_wa_id"),
    )
    op.create_index(
        "ix_conversations_state_activity", "conversations", ["state", "last_activity_at"]
    )
    op.create_index("ix_conversations_outcome", "conversations", ["outcome"])
    op.create_index("ix_conversations_journey_id", "conversations", ["journey_id"])

    op.create_table(
        "chat_inbound",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column(
            "conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("reply_id", sa.String(256), nullable=True),
        sa.Column("meta_timestamp", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("processed_at", TIME, nullable=True),
        sa.UniqueConstraint("message_id", name="uq_chat_inbound_message_id"),
    )
    op.create_index(
        "ix_chat_inbound_pending",
        "chat_inbound",
        ["conversation_id", "processed_at", "meta_timestamp", "id"],
    )

    op.create_table(
        "chat_outbound",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column(
            "conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("wa_id", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("lease_until", TIME, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("wamid", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("delivered_at", TIME, nullable=True),
        sa.Column("read_at", TIME, nullable=True),
        sa.Column("failed_at", TIME, nullable=True),
        sa.Column("status_error", sa.Text, nullable=True),
        sa.UniqueConstraint("key", name="uq_chat_outbound_key"),
        sa.UniqueConstraint("wamid", name="uq_chat_outbound_wamid"),
    )
    op.create_index("ix_chat_outbound_state_next", "chat_outbound", ["state", "next_attempt_at"])
    op.create_index("ix_chat_outbound_conversation", "chat_outbound", ["conversation_id", "id"])

    op.create_table(
        "chat_handoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("reason", sa.String(128), nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("queued_at", TIME, nullable=False),
        sa.Column("taken_by", sa.String(128), nullable=True),
        sa.Column("taken_at", TIME, nullable=True),
        sa.Column("released_at", TIME, nullable=True),
    )
    op.create_index("ix_chat_handoffs_open", "chat_handoffs", ["released_at", "queued_at"])
    op.create_index("ix_chat_handoffs_conversation_id", "chat_handoffs", ["conversation_id"])


def downgrade() -> None:
    for table in ("chat_handoffs", "chat_outbound", "chat_inbound", "conversations"):
        op.drop_table(table)
