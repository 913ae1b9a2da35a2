"""Failure reasons are never empty (``ivr.failures.failure_text``).

The kind of fault: a reason built from an exception's text (``f"cannot {what}:
{exc}"``) is empty when the exception has none, and asyncio's deadlines raise
a bare ``TimeoutError``. The instance: bench b66's controller logs said
``mail worker: outbox unavailable: cannot find the next due mail: `` at its
overloaded steps. Here: the function over its range, then every way the store
gives up on a deadline, on each backend.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.failures import failure_text
from ivr.store.db import Database, StoreUnavailable
from tests.unit.databases import BACKENDS, url_for


def _bare_timeout() -> TimeoutError:
    async def expire() -> None:
        async with asyncio.timeout(0):
            await asyncio.sleep(1)

    try:
        asyncio.run(expire())
    except TimeoutError as exc:
        return exc
    raise AssertionError("asyncio.timeout(0) did not expire")


def test_asyncio_deadlines_raise_a_timeout_without_text() -> None:
    assert str(_bare_timeout()) == ""  # why the helper exists


@pytest.mark.parametrize(
    ("exc", "deadline_s", "expected"),
    [
        (_bare_timeout(), 5.0, "no answer within 5 s"),
        (_bare_timeout(), 0.05, "no answer within 0.05 s"),
        (_bare_timeout(), 2.5, "no answer within 2.5 s"),
        (_bare_timeout(), None, "no answer in time"),
        (TimeoutError(), 30.0, "no answer within 30 s"),
        (TimeoutError("pool exhausted after 3 s"), 5.0, "pool exhausted after 3 s"),
        (TimeoutError("  "), None, "no answer in time"),
        (ConnectionResetError(), None, "ConnectionResetError"),
        (ConnectionResetError(), 5.0, "ConnectionResetError"),  # not a timeout: no deadline
        (OSError(111, "Connection refused"), None, "[Errno 111] Connection refused"),
        (RuntimeError("database is locked"), None, "database is locked"),
        (ValueError(), None, "ValueError"),
    ],
)
def test_failure_text(exc: BaseException, deadline_s: float | None, expected: str) -> None:
    assert failure_text(exc, deadline_s=deadline_s) == expected


def _sleep_statement(backend: str, seconds: float) -> str:
    return f"SELECT pg_sleep({seconds})" if backend == "postgresql" else "SELECT 1"


def _slow(backend: str):  # type: ignore[no-untyped-def]
    """A statement that outlasts a 0.05 s deadline on either backend (SQLite: in its
    thread, which read_sync and write_sync run it in)."""

    def fn(conn: Connection) -> None:
        if backend != "postgresql":
            time.sleep(0.4)
        conn.execute(text(_sleep_statement(backend, 0.4)))

    return fn


async def _run_slow(session: AsyncSession) -> None:
    await asyncio.sleep(0.4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ["read_sync", "write_sync", "run"])
async def test_every_store_deadline_says_what_happened(
    backend: str, entry: str, tmp_path: Path
) -> None:
    database = Database(url_for(backend, tmp_path), timeout=5.0)
    try:
        with pytest.raises(StoreUnavailable) as raised:
            if entry == "read_sync":
                await database.read_sync("find the next due mail", _slow(backend), deadline_s=0.05)
            elif entry == "write_sync":
                await database.write_sync("mark a mail sent", _slow(backend), deadline_s=0.05)
            else:
                await database.run("claim due mail", _run_slow, deadline_s=0.05)
        message = str(raised.value)
        what, _, reason = message.partition(": ")
        assert what.startswith("cannot ")
        assert reason.strip(), message
        assert "0.05 s" in reason, message
        # The store goes on after a deadline passed.
        one = lambda conn: conn.execute(text("SELECT 1")).scalar()  # noqa: E731
        assert await database.read_sync("one", one) == 1
    finally:
        await database.close()
