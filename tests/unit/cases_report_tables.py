"""The tables of other parts of issue 11 that the reports read, for the report tests.

Built from the design's definitions only (``/work/helpers/CASES.md``, "Tables other
parts read") until each part's migration is in main: escalation attempts (0008),
surveys (0009), text analyses (0010). When a migration lands, its table leaves this
module and the tests get it from ``Database.migrate()``, as ``cases`` and
``case_events`` (core, 0007) did.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.cases.tables import CaseEventRow, CaseRow
from ivr.store.models import UtcDateTime

METADATA = MetaData()

ESCALATION_ATTEMPTS = Table(
    "escalation_attempts", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(36), nullable=False),
    Column("clock", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("person", String(64), nullable=False),
    Column("extension", String(32), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False, index=True),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("acknowledged_at", UtcDateTime(), nullable=True),
    Column("result", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)  # fmt: skip

SURVEYS = Table(
    "surveys", METADATA,
    Column("id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("call_id", String(36), nullable=True),
    Column("journey_id", String(36), nullable=True),
    Column("agent", String(128), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("rating", Integer, nullable=True),
    Column("comment", Text, nullable=True),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("answered_at", UtcDateTime(), nullable=True, index=True),
)  # fmt: skip

TEXT_ANALYSES = Table(
    "text_analyses", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(16), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("score", Float, nullable=False),
    Column("label", String(16), nullable=False),
    Column("words", JSON, nullable=False),
    Column("at", UtcDateTime(), nullable=False, index=True),
)  # fmt: skip

# Core's tables (migration 0007), under the names the tests use.
CASES = CaseRow.__table__
CASE_EVENTS = CaseEventRow.__table__

TABLES = (ESCALATION_ATTEMPTS, SURVEYS, TEXT_ANALYSES)


async def create_report_tables(engine: AsyncEngine) -> None:
    """Each table above that the migrations did not create, created; one that exists
    (a migration's, or ours left on PostgreSQL by an earlier test) emptied instead."""
    async with engine.begin() as conn:
        existing = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        for table in TABLES:
            if table.name in existing:
                await conn.execute(text(f"DELETE FROM {table.name}"))
        await conn.run_sync(METADATA.create_all)
