"""SmsWorker over a real SQLite outbox, with a controllable clock."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.sms.gateways import FileSmsGateway, SmsPermanentError, SmsTemporaryError
from ivr.sms.outbox import FAILED, PENDING, SENT, OutboxMessage, SmsOutbox
from ivr.sms.worker import SmsWorker
from ivr.store.db import Database
from tests.unit.databases import BACKENDS, TEST_DB_TIMEOUT_S, url_for
from tests.unit.eventually import eventually

PHONE = "+573001234567"


@dataclass
class Clock:
    now: datetime = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class ScriptedGateway:
    """Fails with the scripted errors first, then sends; records every try."""

    failures: list[Exception] = field(default_factory=list)
    tries: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def send(self, msg: OutboxMessage) -> str:
        self.tries.append(msg.id)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(msg.id)
        self.delivered.set()
        async with self.changed:
            self.changed.notify_all()
        return f"prov-{len(self.sent)}"

    async def until_sent(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.sent) >= count)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(db: Database, clock: Clock) -> SmsOutbox:
    return SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_run_once_sends_once_and_marks_sent(
    outbox: SmsOutbox, clock: Clock, tmp_path: Path
) -> None:
    log = tmp_path / "deep" / "sms.jsonl"
    worker = SmsWorker(outbox, FileSmsGateway(log), clock=clock)
    first = await outbox.enqueue(to_number=PHONE, text="Agende por WhatsApp", dedupe_key="w:c1")
    second = await outbox.enqueue(to_number="+573109876543", text="otro", dedupe_key="w:c2")

    assert await worker.run_once() == 2
    assert await worker.run_once() == 0

    written = lines(log)
    assert sorted(line["id"] for line in written) == sorted([first, second])
    line = next(line for line in written if line["id"] == first)
    assert (line["dedupe_key"], line["to"], line["text"]) == ("w:c1", PHONE, "Agende por WhatsApp")
    message = await outbox.get(first)
    assert message is not None
    assert (message.status, message.provider_id, message.attempts) == (SENT, f"file-{first}", 1)


async def test_a_temporary_error_is_retried_with_backoff(outbox: SmsOutbox, clock: Clock) -> None:
    gateway = ScriptedGateway([SmsTemporaryError("timeout"), SmsTemporaryError("HTTP 503")])
    worker = SmsWorker(outbox, gateway, backoff_initial=2.0, clock=clock)
    message_id = await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")

    assert await worker.run_once() == 1
    retry = await outbox.get(message_id)
    assert retry is not None
    assert (retry.status, retry.last_error) == (PENDING, "timeout")
    assert retry.next_attempt_at == clock.now + timedelta(seconds=2)
    assert await worker.run_once() == 0  # not due yet

    clock.advance(2)
    assert await worker.run_once() == 1
    again = await outbox.get(message_id)
    assert again is not None
    assert again.next_attempt_at == clock.now + timedelta(seconds=4)  # doubled

    clock.advance(4)
    assert await worker.run_once() == 1
    clock.advance(600)
    assert await worker.run_once() == 0
    assert gateway.sent == [message_id]
    assert len(gateway.tries) == 3
    done = await outbox.get(message_id)
    assert done is not None
    assert (done.status, done.attempts) == (SENT, 3)


async def test_backoff_is_capped(outbox: SmsOutbox) -> None:
    worker = SmsWorker(outbox, ScriptedGateway(), backoff_initial=2.0, backoff_max=300.0)
    assert [worker.backoff(n) for n in (1, 2, 3, 8, 9, 30)] == [2, 4, 8, 256, 300, 300]


async def test_a_permanent_error_fails_without_retry(outbox: SmsOutbox, clock: Clock) -> None:
    gateway = ScriptedGateway([SmsPermanentError("HTTP 400: invalid number")])
    worker = SmsWorker(outbox, gateway, clock=clock)
    message_id = await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")

    assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0

    message = await outbox.get(message_id)
    assert message is not None
    assert (message.status, message.last_error) == (FAILED, "HTTP 400: invalid number")
    assert gateway.tries == [message_id]


async def test_max_attempts_then_failed(outbox: SmsOutbox, clock: Clock) -> None:
    gateway = ScriptedGateway([SmsTemporaryError(f"try {i}") for i in range(10)])
    worker = SmsWorker(outbox, gateway, max_attempts=3, backoff_initial=1.0, clock=clock)
    message_id = await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")

    for _ in range(6):
        await worker.run_once()
        clock.advance(60)

    message = await outbox.get(message_id)
    assert message is not None
    assert (message.status, message.attempts, message.last_error) == (FAILED, 3, "try 2")
    assert len(gateway.tries) == 3


async def test_a_crashed_workers_message_is_sent_after_its_lease(
    outbox: SmsOutbox, clock: Clock
) -> None:
    message_id = await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")
    await outbox.claim_due(clock.now, lease_s=60, limit=10)  # claimed, then the worker died
    gateway = ScriptedGateway()
    worker = SmsWorker(outbox, gateway, lease_s=60, clock=clock)

    assert await worker.run_once() == 0
    clock.advance(61)
    assert await worker.run_once() == 1

    assert gateway.sent == [message_id]
    message = await outbox.get(message_id)
    assert message is not None
    assert (message.status, message.attempts) == (SENT, 2)


async def test_a_message_whose_lease_keeps_expiring_is_given_up(
    outbox: SmsOutbox, clock: Clock
) -> None:
    message_id = await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")
    for _ in range(2):
        await outbox.claim_due(clock.now, lease_s=60, limit=10)
        clock.advance(61)
    gateway = ScriptedGateway()
    worker = SmsWorker(outbox, gateway, max_attempts=2, clock=clock)

    assert await worker.run_once() == 1

    assert gateway.tries == []
    message = await outbox.get(message_id)
    assert message is not None
    assert message.status == FAILED


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_workers_send_each_message_once(tmp_path: Path, backend: str) -> None:
    url = url_for(backend, tmp_path)
    log = tmp_path / "sms.jsonl"
    first_db, second_db = Database(url, timeout=10.0), Database(url, timeout=10.0)
    try:
        await first_db.migrate()
        async with first_db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM sms_outbox"))
        outbox = SmsOutbox(first_db, timeout=TEST_DB_TIMEOUT_S)
        ids = [
            await outbox.enqueue(to_number=PHONE, text=f"m{i}", dedupe_key=f"k{i}")
            for i in range(30)
        ]
        workers = [
            SmsWorker(SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S), FileSmsGateway(log), batch=4)
            for db in (first_db, second_db)
        ]

        async def drain(worker: SmsWorker) -> int:
            # Until everything is sent, not until this worker finds nothing:
            # a round can come up empty when the other worker claimed first.
            total = 0
            while len(await worker.outbox.list(SENT)) < len(ids):
                total += await worker.run_once()
            return total

        counts = await asyncio.wait_for(asyncio.gather(*(drain(w) for w in workers)), 30)

        assert sum(counts) == 30
        assert sorted(line["id"] for line in lines(log)) == sorted(ids)
        assert {m.id for m in await outbox.list(SENT)} == set(ids)
    finally:
        await first_db.close()
        await second_db.close()


async def test_run_wakes_on_enqueue_and_on_the_next_retry(outbox: SmsOutbox) -> None:
    # Real clock: the idle wait is long, so only the wakeup event and the
    # deadline at the next due retry can make these sends happen in time.
    real_outbox = SmsOutbox(outbox.db, timeout=TEST_DB_TIMEOUT_S)
    gateway = ScriptedGateway([SmsTemporaryError("busy")])
    worker = SmsWorker(real_outbox, gateway, backoff_initial=0.2, idle_wait=60.0)
    task = asyncio.create_task(worker.run())
    try:
        message_id = await real_outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")
        await asyncio.wait_for(gateway.delivered.wait(), timeout=10)
        assert gateway.tries == [message_id, message_id]
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_stop_before_run_returns_at_once(outbox: SmsOutbox) -> None:
    worker = SmsWorker(outbox, ScriptedGateway(), idle_wait=60.0)
    worker.stop()
    await asyncio.wait_for(worker.run(), timeout=5)


async def test_logs_mask_the_phone_number(
    outbox: SmsOutbox, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = ScriptedGateway([SmsTemporaryError("busy")])
    worker = SmsWorker(outbox, gateway, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="ivr.sms"):
        await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")
        await worker.run_once()
        clock.advance(10)
        await worker.run_once()

    assert "*******567" in caplog.text
    assert PHONE not in caplog.text


class CountingOutbox(SmsOutbox):
    """The real outbox, counting the worker's claims and next-due reads."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, timeout=TEST_DB_TIMEOUT_S)
        self.claims: list[int] = []  # messages per claim
        self.due_reads = 0

    async def claim_due(self, now: datetime, lease_s: float, limit: int) -> list[OutboxMessage]:
        claimed = await super().claim_due(now, lease_s, limit)
        self.claims.append(len(claimed))
        return claimed

    async def next_due(self) -> datetime | None:
        self.due_reads += 1
        return await super().next_due()


@pytest.mark.parametrize(("messages", "every_s"), [(1, 0.0), (12, 0.03), (40, 0.01), (60, 0.0)])
async def test_under_load_messages_share_claims_and_the_next_due_time_is_not_reread(
    db: Database, messages: int, every_s: float
) -> None:
    # The kind: database round trips per message. Run d1 measured the worker at
    # 8.1 % of a busy citas controller's loop: after each message another claim
    # (empty) and a next-due read (two SELECTs).
    outbox = CountingOutbox(db)
    gateway = ScriptedGateway()
    worker = SmsWorker(outbox, gateway, idle_wait=60.0, batch=20)
    task = asyncio.create_task(worker.run())
    try:
        # Idle first (its first claim found nothing, it read the next due time):
        # what is counted is the load's, not the start's race with the first enqueue.
        await eventually(lambda: outbox.due_reads == 1)
        outbox.claims.clear()
        outbox.due_reads = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        ids = []
        for i in range(messages):
            ids.append(await outbox.enqueue(to_number=PHONE, text=f"m{i}", dedupe_key=f"k{i}"))
            await asyncio.sleep(every_s)
        await asyncio.wait_for(gateway.until_sent(messages), 10)
        took = loop.time() - started
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)

    assert sorted(gateway.sent) == sorted(ids)  # each once
    assert sum(outbox.claims) == messages
    # At most one claim per claim interval, plus the first and a full batch's follow-up.
    assert len(outbox.claims) <= took / worker.pace.claim_interval + 2 + messages // worker.batch
    # An empty claim only after the last message (its wakeup came after its claim).
    assert outbox.claims.count(0) <= 1
    assert outbox.due_reads == 0  # not read again: idle_wait is 60 s, nothing fell due


async def test_stop_ends_the_wait_between_claims_at_once(outbox: SmsOutbox) -> None:
    worker = SmsWorker(outbox, ScriptedGateway(), idle_wait=60.0, claim_interval=30.0)
    task = asyncio.create_task(worker.run())
    await outbox.enqueue(to_number=PHONE, text="hola", dedupe_key="k")  # wakes it: then the pace
    await asyncio.sleep(0.2)
    stopped = asyncio.get_running_loop().time()
    worker.stop()
    await asyncio.wait_for(task, timeout=5)
    assert asyncio.get_running_loop().time() - stopped < 1.0


async def test_a_message_queued_by_another_process_is_found_within_idle_wait(
    db: Database,
) -> None:
    # No wakeup crosses processes: the next-due read, at most idle_wait old, finds it.
    gateway = ScriptedGateway()
    outbox = SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)
    worker = SmsWorker(outbox, gateway, idle_wait=0.3, claim_interval=0.1)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)  # the worker waits: nothing was due
        other = SmsOutbox(db, timeout=TEST_DB_TIMEOUT_S)  # another process's: its own wakeup
        message_id = await other.enqueue(to_number=PHONE, text="hola", dedupe_key="k")
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(gateway.delivered.wait(), timeout=5)
        assert asyncio.get_running_loop().time() - started < 0.3 + 0.5
        assert gateway.sent == [message_id]
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)


async def test_a_retry_after_a_busy_moment_goes_out_on_time(db: Database) -> None:
    # The worker's own retry moves the known next due time forward without a read.
    outbox = CountingOutbox(db)
    gateway = ScriptedGateway([SmsTemporaryError("busy")])
    worker = SmsWorker(outbox, gateway, backoff_initial=0.3, idle_wait=60.0, claim_interval=0.1)
    task = asyncio.create_task(worker.run())
    try:
        first = await outbox.enqueue(to_number=PHONE, text="uno", dedupe_key="k1")
        await asyncio.sleep(0.05)
        second = await outbox.enqueue(to_number=PHONE, text="dos", dedupe_key="k2")
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(gateway.until_sent(2), 5)
        assert asyncio.get_running_loop().time() - started < 0.3 + 0.5
        assert gateway.tries.count(first) == 2 and gateway.sent == [second, first]
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
