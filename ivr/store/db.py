"""The database engine, its migrations and the store's exception tree.

StoreError
 └── StoreUnavailable   the database cannot be reached or timed out
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ivr.store.probe import probe_from_env

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


class StoreError(RuntimeError):
    """A database operation failed."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or did not answer in time."""


class Database:
    """Owns the async engine; built once by the composition root."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        parsed = make_url(url)
        connect_args: dict[str, object] = {}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            connect_args["timeout"] = timeout
        self.engine: AsyncEngine = create_async_engine(url, connect_args=connect_args)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._probe = probe_from_env()  # CITAS_DB_STATEMENTS: statements counted (probe.py)
        if self._probe is not None:
            self._probe.attach(self.engine)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        try:
            async with asyncio.timeout(60):
                async with self.engine.begin() as conn:
                    await conn.run_sync(_upgrade)
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"cannot migrate the database: {exc}") from exc

    async def run(
        self,
        what: str,
        op: Callable[[AsyncSession], Awaitable[T]],
        *,
        deadline_s: float | None = None,
    ) -> T:
        """Run ``op`` in one transaction within the timeout (the engine's unless
        given); failures are StoreUnavailable.

        A constraint violation (IntegrityError) is a conflict the caller handles, not an outage.
        """
        try:
            async with (
                asyncio.timeout(deadline_s or self.timeout),
                self.sessions.begin() as session,
            ):
                return await op(session)
        except IntegrityError:
            raise
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"cannot {what}: {exc}") from exc

    async def close(self) -> None:
        await self.engine.dispose()
        if self._probe is not None:
            self._probe.write()


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
