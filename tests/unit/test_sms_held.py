"""An SMS promised to a caller while the database is down is held, stored and sent later."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.sms.gateways import FileSmsGateway
from ivr.sms.outbox import SENT, SmsOutbox
from ivr.sms.worker import SmsWorker
from ivr.store import Database
from tests.unit.databases import locked
from tests.unit.eventually import eventually


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite only: the outage is another connection's exclusive lock."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=0.2)
    try:
        await database.migrate()
        yield database
    finally:
        await database.close()


async def test_held_while_locked_then_stored_and_sent_exactly_once(
    db: Database,
    tmp_path: Path,
) -> None:
    outbox = SmsOutbox(db, timeout=0.2)
    sent_log = tmp_path / "sms-sent.jsonl"
    worker = SmsWorker(outbox, FileSmsGateway(sent_log), idle_wait=0.05, backoff_initial=0.05)
    with locked(db):
        held = await outbox.enqueue_or_hold(to_number="+573001234567", text="hola", dedupe_key="k1")
        again = await outbox.enqueue_or_hold(
            to_number="+573001234567", text="hola", dedupe_key="k1"
        )
        assert held is None and again is None and len(outbox.held) == 2
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)  # the worker tries while the lock holds
        assert len(outbox.held) == 2
    try:
        await eventually(lambda: not outbox.held and sent_log.exists(), within=5)
        stored = [m for m in await outbox.list() if m.dedupe_key == "k1"]
        assert len(stored) == 1  # the two held enqueues of one key are one message
        message_id = stored[0].id
        await eventually(lambda: len(sent_log.read_text().splitlines()) >= 1, within=5)
        # The worker marks it sent after the gateway took it: wait for that commit
        # (in WAL mode this read no longer waits behind the worker's write).
        for _ in range(500):  # up to 5 s
            message = await outbox.get(message_id)
            if message is not None and message.status == SENT:
                break
            await asyncio.sleep(0.01)
        assert message is not None and message.status == SENT
        assert len(sent_log.read_text().splitlines()) == 1  # the duplicate key was not sent twice
    finally:
        worker.stop()
        await running


async def test_with_the_database_up_nothing_is_held(db: Database) -> None:
    outbox = SmsOutbox(db, timeout=1)
    assert (
        await outbox.enqueue_or_hold(to_number="+573001234567", text="x", dedupe_key="k")
        is not None
    )
    assert not outbox.held
