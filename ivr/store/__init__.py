"""Persistent state: call records now; bookings, SMS outbox and flags later.

SQLAlchemy 2 (async) over SQLite by default and PostgreSQL in production, with
the same code and Alembic migrations.
"""

from ivr.store.db import Database, StoreError, StoreUnavailable
from ivr.store.records import CallRecordStore, PathStep

__all__ = ["CallRecordStore", "Database", "PathStep", "StoreError", "StoreUnavailable"]
