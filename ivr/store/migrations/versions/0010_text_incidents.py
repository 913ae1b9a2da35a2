"""text analysis and incident reports: keyword lists, keywords, their audit, analyses, reports

Revision ID: 0010
Revises: 0009 (surveys; issue 11 migrations chained in number order at merge)

The tables of ``ivr.text.tables`` (issue 11 §5): keyword lists that admins edit
(``keyword_lists``, ``keywords`` with whether a match raises a case's
priority, ``keyword_audit`` with actor, reason, old and new), and
``text_analyses``: one sentiment analysis per case text or survey comment
(unique per subject, so the analysis worker never writes one twice).
The table of ``ivr.incidents.tables`` (issue 11 §6): ``incident_reports``, the
advisors' form, with the incident switch's state at the time of the error.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "keyword_lists",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("name", name="uq_keyword_lists_name"),
    )
    op.create_table(
        "keywords",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("list_id", sa.String(36), sa.ForeignKey("keyword_lists.id"), nullable=False),
        sa.Column("phrase", sa.String(120), nullable=False),
        sa.Column("match_key", sa.String(240), nullable=False),
        sa.Column("raises_priority", sa.Boolean, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("list_id", "match_key", name="uq_keywords_list_match"),
    )
    op.create_index("ix_keywords_list_id", "keywords", ["list_id"])
    op.create_table(
        "keyword_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("list_id", sa.String(36), nullable=True),
        sa.Column("keyword_id", sa.String(36), nullable=True),
        sa.Column("old_value", sa.JSON, nullable=True),
        sa.Column("new_value", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_keyword_audit_at", "keyword_audit", ["at"])
    op.create_index("ix_keyword_audit_list_id", "keyword_audit", ["list_id"])
    op.create_table(
        "text_analyses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(36), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("words", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.UniqueConstraint("subject", "subject_id", name="uq_text_analyses_subject"),
    )
    op.create_index("ix_text_analyses_label", "text_analyses", ["label"])
    op.create_index("ix_text_analyses_at", "text_analyses", ["at"])
    op.create_table(
        "incident_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("document_type", sa.String(8), nullable=True),
        sa.Column("document", sa.String(32), nullable=True),
        sa.Column("affiliate_name", sa.String(160), nullable=True),
        sa.Column("affiliate_phone", sa.String(32), nullable=True),
        sa.Column("consent", sa.Boolean, nullable=False),
        sa.Column("consent_at", TIME, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("incident_active", sa.Boolean, nullable=False),
        sa.Column("incident_source", sa.String(16), nullable=False),
        sa.Column("incident_audit_id", sa.Integer, nullable=True),
        sa.Column("incident_window_id", sa.String(36), nullable=True),
        sa.Column("case_numbers", sa.JSON, nullable=False),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("reported_at", TIME, nullable=False),
    )
    op.create_index("ix_incident_reports_occurred_at", "incident_reports", ["occurred_at"])
    op.create_index("ix_incident_reports_reported_at", "incident_reports", ["reported_at"])


def downgrade() -> None:
    op.drop_table("incident_reports")
    op.drop_table("text_analyses")
    op.drop_table("keyword_audit")
    op.drop_index("ix_keywords_list_id", table_name="keywords")
    op.drop_table("keywords")
    op.drop_table("keyword_lists")
