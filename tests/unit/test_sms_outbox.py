"""SmsOutbox on a real database, schema made by the migrations.

SQLite always; PostgreSQL too when CITAS_TEST_PG_URL names one (its sms_outbox
table is emptied first).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.sms.outbox import FAILED, PENDING, SENDING, SENT, SmsOutbox
from ivr.store.db import Database

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def outbox(db: Database) -> SmsOutbox:
    return SmsOutbox(db, timeout=5.0, clock=lambda: NOW)


async def test_enqueue_is_idempotent_by_dedupe_key(outbox: SmsOutbox) -> None:
    first = await outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="whatsapp:c1")
    again = await outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="whatsapp:c1")
    other = await outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="whatsapp:c2")

    assert first == again != other
    assert {m.id for m in await outbox.list()} == {first, other}
    message = await outbox.get(first)
    assert message is not None
    assert (message.status, message.attempts, message.to_number, message.text) == (
        PENDING,
        0,
        "+573001234567",
        "hola",
    )
    assert message.next_attempt_at == message.created_at == NOW


async def test_concurrent_enqueues_of_one_key_make_one_message(outbox: SmsOutbox) -> None:
    ids = await asyncio.gather(
        *(
            outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="whatsapp:c1")
            for _ in range(10)
        )
    )

    assert len(set(ids)) == 1
    assert [m.id for m in await outbox.list()] == [ids[0]]


async def test_enqueue_wakes_the_worker(outbox: SmsOutbox) -> None:
    assert not outbox.wakeup.is_set()
    await outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="k")
    assert outbox.wakeup.is_set()


async def test_claim_takes_due_messages_once(outbox: SmsOutbox) -> None:
    ids = [
        await outbox.enqueue(to_number="+573001234567", text=f"m{i}", dedupe_key=f"k{i}")
        for i in range(3)
    ]
    await outbox.mark_retry(ids[2], "later", NOW + timedelta(minutes=5))

    claimed = await outbox.claim_due(NOW, lease_s=600, limit=10)

    assert sorted(m.id for m in claimed) == sorted(ids[:2])
    assert all(m.status == SENDING and m.attempts == 1 for m in claimed)
    assert all(m.lease_until == NOW + timedelta(seconds=600) for m in claimed)
    assert await outbox.claim_due(NOW, lease_s=600, limit=10) == []
    [later] = await outbox.claim_due(NOW + timedelta(minutes=5), lease_s=600, limit=10)
    assert later.id == ids[2]


async def test_claim_respects_the_limit(outbox: SmsOutbox) -> None:
    for i in range(5):
        await outbox.enqueue(to_number="+573001234567", text=f"m{i}", dedupe_key=f"k{i}")

    assert len(await outbox.claim_due(NOW, lease_s=60, limit=2)) == 2
    assert len(await outbox.claim_due(NOW, lease_s=60, limit=10)) == 3


async def test_an_expired_lease_is_claimed_again(outbox: SmsOutbox) -> None:
    message_id = await outbox.enqueue(to_number="+573001234567", text="hola", dedupe_key="k")
    await outbox.claim_due(NOW, lease_s=60, limit=10)  # a worker that then dies

    assert await outbox.claim_due(NOW + timedelta(seconds=59), lease_s=60, limit=10) == []
    [again] = await outbox.claim_due(NOW + timedelta(seconds=61), lease_s=60, limit=10)
    assert (again.id, again.attempts) == (message_id, 2)


async def test_marks(outbox: SmsOutbox) -> None:
    sent = await outbox.enqueue(to_number="+573001234567", text="a", dedupe_key="a")
    failed = await outbox.enqueue(to_number="+573001234567", text="b", dedupe_key="b")
    await outbox.claim_due(NOW, lease_s=60, limit=10)

    await outbox.mark_sent(sent, "prov-1")
    await outbox.mark_failed(failed, "número inválido")
    await outbox.mark_retry(sent, "late worker", NOW)  # a sent message stays sent

    got = await outbox.get(sent)
    assert got is not None
    assert (got.status, got.provider_id, got.sent_at, got.lease_until) == (
        SENT,
        "prov-1",
        NOW,
        None,
    )
    bad = await outbox.get(failed)
    assert bad is not None
    assert (bad.status, bad.last_error) == (FAILED, "número inválido")
    assert [m.id for m in await outbox.list(SENT)] == [sent]
    assert [m.id for m in await outbox.list(FAILED)] == [failed]
    assert await outbox.get("nope") is None


async def test_next_due(outbox: SmsOutbox) -> None:
    assert await outbox.next_due() is None
    first = await outbox.enqueue(to_number="+573001234567", text="a", dedupe_key="a")
    await outbox.mark_retry(first, "later", NOW + timedelta(seconds=30))
    assert await outbox.next_due() == NOW + timedelta(seconds=30)
    await outbox.enqueue(to_number="+573001234567", text="b", dedupe_key="b")
    await outbox.claim_due(NOW, lease_s=10, limit=10)  # leases b until NOW+10s
    assert await outbox.next_due() == NOW + timedelta(seconds=10)
