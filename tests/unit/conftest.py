from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.store.db import Database
from tests.leaks import pytest_configure, pytest_sessionfinish  # noqa: F401
from tests.unit.databases import BACKENDS, migrated_database


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database on each backend (a test module may override it)."""
    async with migrated_database(request.param, tmp_path) as database:
        yield database
