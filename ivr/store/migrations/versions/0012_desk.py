"""desk: the agent desktop's contacts, script steps, presence and script versions (issue 12)

Revision ID: 0012
Revises: 0011

``ivr.desk.tables`` documents each table. The database keeps: one contact per
answering event (unique ``source_key``; unique ``(kind, journey_key, agent,
answered_at)``), steps numbered once per contact, unique script version numbers
and at most one published version (a partial unique index, ``state = 'published'``,
on both databases).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
PUBLISHED = sa.text("state = 'published'")


def upgrade() -> None:
    op.create_table(
        "desk_contacts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=True),
        sa.Column("uniqueid", sa.String(64), nullable=True),
        sa.Column("linkedid", sa.String(64), nullable=True),
        sa.Column("sip_call_id", sa.String(255), nullable=True),
        sa.Column("call_record_id", sa.String(36), nullable=True),
        sa.Column("conversation_id", sa.String(36), nullable=True),
        sa.Column("wa_id", sa.String(32), nullable=True),
        sa.Column("handoff_id", sa.String(36), nullable=True),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("ivr_reason", sa.Text, nullable=True),
        sa.Column("queued_at", TIME, nullable=True),
        sa.Column("answered_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("hold_seconds", sa.Float, nullable=True),
        sa.Column("ring_seconds", sa.Float, nullable=True),
        sa.Column("script_version", sa.Integer, nullable=True),
        sa.Column("script_node", sa.String(255), nullable=True),
        sa.Column("call_type", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("scenario", sa.String(64), nullable=True),
        sa.Column("procedure", sa.String(64), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("disposition_note", sa.Text, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("escalated_at", TIME, nullable=True),
        sa.Column("escalation_reason", sa.Text, nullable=True),
        sa.Column("escalated_to", sa.String(64), nullable=True),
        sa.Column(
            "previous_contact_id", sa.String(36), sa.ForeignKey("desk_contacts.id"), nullable=True
        ),
        sa.Column("journey_key", sa.String(64), nullable=False),
        sa.Column("source_key", sa.String(128), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "kind", "journey_key", "agent", "answered_at", name="uq_desk_contacts_answer"
        ),
        sa.UniqueConstraint("source_key", name="uq_desk_contacts_source_key"),
    )
    op.create_index("ix_desk_contacts_agent_state", "desk_contacts", ["agent", "state"])
    op.create_index("ix_desk_contacts_answered_at", "desk_contacts", ["answered_at"])
    op.create_index("ix_desk_contacts_uniqueid", "desk_contacts", ["uniqueid"])
    op.create_index("ix_desk_contacts_sip_call_id", "desk_contacts", ["sip_call_id"])
    op.create_index("ix_desk_contacts_conversation_id", "desk_contacts", ["conversation_id"])
    op.create_index("ix_desk_contacts_journey_key", "desk_contacts", ["journey_key"])

    op.create_table(
        "desk_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("desk_contacts.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("node_id", sa.String(255), nullable=False),
        sa.Column("node_kind", sa.String(32), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("answer", sa.String(255), nullable=True),
        sa.Column("entered_at", TIME, nullable=False),
        sa.Column("left_at", TIME, nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.UniqueConstraint("contact_id", "seq", name="uq_desk_steps_contact_seq"),
    )
    op.create_index("ix_desk_steps_node", "desk_steps", ["node_id"])

    op.create_table(
        "desk_presence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("queues", sa.JSON, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )
    op.create_index("ix_desk_presence_agent_at", "desk_presence", ["agent", "at"])

    op.create_table(
        "script_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("tree", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=True),
        sa.Column("published_at", TIME, nullable=True),
        sa.UniqueConstraint("version", name="uq_script_versions_version"),
    )
    op.create_index(
        "uq_script_versions_one_published",
        "script_versions",
        ["state"],
        unique=True,
        sqlite_where=PUBLISHED,
        postgresql_where=PUBLISHED,
    )


def downgrade() -> None:
    op.drop_table("script_versions")
    op.drop_table("desk_presence")
    op.drop_table("desk_steps")
    op.drop_table("desk_contacts")
