"""Alembic environment: runs on the connection the application hands it."""

from __future__ import annotations

from alembic import context

from ivr.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ivr.store.Database.migrate() or `ivr db upgrade`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
