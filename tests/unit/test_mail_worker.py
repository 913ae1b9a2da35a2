"""MailWorker against a real SMTP peer and a real database: each message once,
retries with backoff on 4xx, final on 5xx or after the last attempt, nothing
lost when a worker dies mid-send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.mail.outbox import FAILED, PENDING, SENT, MailMessage, MailOutbox
from ivr.mail.smtp import SmtpMailer, SmtpServer
from ivr.mail.worker import MailWorker
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.eventually import eventually
from tests.unit.mail_peer import Peer, smtp_peer

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SENDER = "Línea de citas <citas@example.org>"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    outbox: MailOutbox
    peer: Peer
    clock: Clock
    finals: list[MailMessage] = field(default_factory=list)

    def worker(self, **kwargs: object) -> MailWorker:
        mailer = SmtpMailer(SmtpServer("127.0.0.1", self.peer.port, "none", timeout=5))

        async def send(message: MailMessage) -> str:
            return await mailer.send(message.email())

        async def on_final(message: MailMessage) -> None:
            self.finals.append(message)

        return MailWorker(self.outbox, send, clock=self.clock, on_final=on_final,
                          backoff_initial=5, **kwargs)  # type: ignore[arg-type]  # fmt: skip

    async def queue(self, key: str, to: str = "ana@example.org") -> str:
        message = await self.outbox.enqueue(dedupe_key=key, sender=SENDER, to=to,
                                            subject=f"Caso {key}", text="Respuesta")  # fmt: skip
        return message.id

    async def status(self, id: str) -> tuple[str, int]:
        message = await self.outbox.get(id)
        assert message is not None
        return message.status, message.attempts


@pytest.fixture
async def rig(db: Database, tmp_path: Path) -> AsyncIterator[Rig]:
    clock = Clock()
    async with smtp_peer(tmp_path) as peer:
        yield Rig(MailOutbox(db, timeout=TEST_DB_TIMEOUT_S, clock=clock), peer, clock)


async def test_every_queued_message_goes_out_once_and_is_marked_sent(rig: Rig) -> None:
    ids = [await rig.queue(f"k{i}", to=f"p{i}@example.org") for i in range(3)]
    worker = rig.worker()

    assert await worker.run_once() == 3
    assert await worker.run_once() == 0

    assert sorted(m["to"] for m in rig.peer.received()) == ["p0@example.org", "p1@example.org", "p2@example.org"]  # fmt: skip
    for id in ids:
        message = await rig.outbox.get(id)
        assert message is not None and message.status == SENT
        assert message.server_reply and message.message_id.strip("<>") in message.server_reply
    assert sorted(f.id for f in rig.finals) == sorted(ids)
    assert {f.status for f in rig.finals} == {SENT}


async def test_a_temporary_refusal_is_retried_after_the_backoff(rig: Rig) -> None:
    mid = await rig.queue("k")
    rig.peer.replies.append("451 4.3.0 Try again later")
    worker = rig.worker()

    await worker.run_once()
    assert await rig.status(mid) == (PENDING, 1)
    assert rig.finals == []

    rig.clock.now += timedelta(seconds=4)
    assert await worker.run_once() == 0  # 5 s backoff not over
    rig.clock.now += timedelta(seconds=1)
    assert await worker.run_once() == 1

    assert await rig.status(mid) == (SENT, 2)
    assert len(rig.peer.received()) == 1


async def test_a_permanent_refusal_is_final_at_once(rig: Rig) -> None:
    mid = await rig.queue("k")
    rig.peer.replies.append("550 5.1.1 Mailbox unknown")
    worker = rig.worker()

    await worker.run_once()
    rig.clock.now += timedelta(days=1)
    await worker.run_once()

    assert await rig.status(mid) == (FAILED, 1)
    assert [(f.id, f.status) for f in rig.finals] == [(mid, FAILED)]
    assert "550" in (rig.finals[0].last_error or "")
    assert rig.peer.received() == []


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
async def test_temporary_failures_give_up_after_the_last_attempt(
    rig: Rig, max_attempts: int
) -> None:
    mid = await rig.queue("k")
    rig.peer.replies.extend(["451 4.3.0 busy"] * 10)
    worker = rig.worker(max_attempts=max_attempts)

    for _ in range(max_attempts + 2):
        await worker.run_once()
        rig.clock.now += timedelta(hours=1)

    assert await rig.status(mid) == (FAILED, max_attempts)
    assert len(rig.finals) == 1


def test_the_backoff_doubles_up_to_its_cap(db: Database) -> None:
    async def never(message: MailMessage) -> str:
        raise AssertionError

    worker = MailWorker(
        MailOutbox(db, timeout=TEST_DB_TIMEOUT_S), never, backoff_initial=5, backoff_max=60
    )
    assert [worker.backoff(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


async def test_a_message_whose_worker_died_is_sent_by_another_after_the_lease(rig: Rig) -> None:
    mid = await rig.queue("k")
    await rig.outbox.claim_due(rig.clock(), 120, 10)  # a worker took it, then died
    worker = rig.worker(lease_s=120)

    assert await worker.run_once() == 0
    rig.clock.now += timedelta(seconds=121)
    assert await worker.run_once() == 1

    assert await rig.status(mid) == (SENT, 2)
    assert len(rig.peer.received()) == 1


async def test_two_workers_never_send_one_message_twice(rig: Rig) -> None:
    ids = [await rig.queue(f"k{i}") for i in range(8)]
    a, b = rig.worker(batch=3), rig.worker(batch=3)

    for _ in range(4):
        await asyncio.gather(a.run_once(), b.run_once())

    received = [m["subject"] for m in rig.peer.received()]
    assert sorted(received) == sorted(f"Caso k{i}" for i in range(8))
    assert [(await rig.status(id))[0] for id in ids] == [SENT] * 8


async def test_the_running_worker_sends_a_message_as_soon_as_it_is_queued(rig: Rig) -> None:
    worker = rig.worker(idle_wait=30)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0)
        await rig.queue("k")
        await eventually(lambda: len(rig.peer.received()) == 1, within=5)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


async def test_under_load_messages_share_claims_and_the_next_due_time_is_not_reread(
    rig: Rig,
) -> None:
    # The SMS worker's kind (tests/unit/test_sms_worker.py), through the same
    # ClaimPace: at most one claim per claim interval, no empty claim after each
    # message, the next due time read once while idle_wait has not passed.
    claims: list[int] = []
    due_reads = 0
    claim_due, next_due = rig.outbox.claim_due, rig.outbox.next_due

    async def counted_claim(*args: object, **kwargs: object) -> list[MailMessage]:
        claimed = await claim_due(*args, **kwargs)  # type: ignore[arg-type]
        claims.append(len(claimed))
        return claimed

    async def counted_next_due() -> datetime | None:
        nonlocal due_reads
        due_reads += 1
        return await next_due()

    rig.outbox.claim_due = counted_claim  # type: ignore[method-assign]
    rig.outbox.next_due = counted_next_due  # type: ignore[method-assign]
    worker = rig.worker(idle_wait=60)
    worker.pace.next_due = counted_next_due
    task = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: due_reads == 1)  # idle first: the start is not counted
        claims.clear()
        due_reads = 0
        started = asyncio.get_running_loop().time()
        for i in range(15):
            await rig.queue(f"k{i}", to=f"p{i}@example.org")
            await asyncio.sleep(0.02)
        await eventually(lambda: len(rig.peer.received()) == 15, within=10)
        took = asyncio.get_running_loop().time() - started
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)

    assert sum(claims) == 15
    assert len(claims) <= took / worker.pace.claim_interval + 2
    assert claims.count(0) <= 1
    assert due_reads == 0
