"""MailOutbox on a real database, schema made by the migrations (SQLite; PostgreSQL
too when CITAS_TEST_PG_URL names one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.mail.message import InvalidAddress
from ivr.mail.outbox import FAILED, PENDING, SENDING, SENT, MailOutbox
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SENDER = "Línea de citas <citas@example.org>"


@pytest.fixture
def outbox(db: Database) -> MailOutbox:
    return MailOutbox(db, timeout=TEST_DB_TIMEOUT_S, clock=lambda: NOW)


async def queue(outbox: MailOutbox, key: str = "case-answer:0000013:1", to: str = "ana@example.org") -> str:  # fmt: skip
    message = await outbox.enqueue(dedupe_key=key, sender=SENDER, to=to,
                                   subject="Respuesta a su caso", text="Hola")  # fmt: skip
    return message.id


async def test_enqueue_is_idempotent_by_key_and_keeps_the_first_message(outbox: MailOutbox) -> None:
    first = await outbox.enqueue(dedupe_key="k1", sender=SENDER, to="ana@example.org",
                                 subject="Uno", text="primero")  # fmt: skip
    again = await outbox.enqueue(dedupe_key="k1", sender=SENDER, to="otro@example.org",
                                 subject="Dos", text="segundo")  # fmt: skip

    assert again == first
    assert [m.id for m in await outbox.list()] == [first.id]
    assert (first.status, first.attempts, first.subject, first.created_at) == (
        PENDING,
        0,
        "Uno",
        NOW,
    )
    assert first.message_id.endswith("@example.org>")


async def test_concurrent_enqueues_of_one_key_make_one_message(outbox: MailOutbox) -> None:
    ids = await asyncio.gather(*(queue(outbox) for _ in range(10)))

    assert len(set(ids)) == 1
    assert len(await outbox.list()) == 1


@pytest.mark.parametrize(("to", "sender"), [("ana@", SENDER), ("ana@example.org", "citas")])
async def test_a_bad_address_stores_nothing(outbox: MailOutbox, to: str, sender: str) -> None:
    with pytest.raises(InvalidAddress):
        await outbox.enqueue(dedupe_key="k", sender=sender, to=to, subject="s", text="t")

    assert await outbox.list() == []


async def test_an_empty_subject_or_text_stores_nothing(outbox: MailOutbox) -> None:
    with pytest.raises(ValueError, match="subject and a text"):
        await outbox.enqueue(dedupe_key="k", sender=SENDER, to="a@example.org", subject=" ", text="t")  # fmt: skip
    assert await outbox.list() == []


async def test_a_claim_leases_each_message_to_one_worker(outbox: MailOutbox) -> None:
    ids = {await queue(outbox, key=f"k{i}") for i in range(5)}

    batches = await asyncio.gather(*(outbox.claim_due(NOW, 60, 5) for _ in range(4)))

    claimed = [m.id for batch in batches for m in batch]
    assert sorted(claimed) == sorted(ids)  # each once, none twice
    assert {m.status for m in await outbox.list()} == {SENDING}
    assert all(m.attempts == 1 for m in await outbox.list())


async def test_a_dead_workers_message_is_claimed_again_after_its_lease(outbox: MailOutbox) -> None:
    mid = await queue(outbox)
    assert [m.id for m in await outbox.claim_due(NOW, 60, 10)] == [mid]

    assert await outbox.claim_due(NOW + timedelta(seconds=59), 60, 10) == []
    again = await outbox.claim_due(NOW + timedelta(seconds=61), 60, 10)

    assert [(m.id, m.attempts) for m in again] == [(mid, 2)]


async def test_sent_stays_sent_whatever_a_late_worker_says(outbox: MailOutbox) -> None:
    mid = await queue(outbox)
    await outbox.claim_due(NOW, 60, 10)
    await outbox.mark_sent(mid, "250 queued as A1")

    await outbox.mark_retry(mid, "late failure", NOW)
    await outbox.mark_failed(mid, "late failure")

    message = await outbox.get(mid)
    assert message is not None
    assert (message.status, message.server_reply, message.last_error) == (SENT, "250 queued as A1", None)  # fmt: skip
    assert await outbox.claim_due(NOW + timedelta(hours=1), 60, 10) == []


async def test_retry_waits_until_its_time_and_failed_is_final(outbox: MailOutbox) -> None:
    retry, fail = await queue(outbox, key="r"), await queue(outbox, key="f")
    await outbox.claim_due(NOW, 60, 10)
    await outbox.mark_retry(retry, "451", NOW + timedelta(seconds=30))
    await outbox.mark_failed(fail, "550")

    assert await outbox.next_due() == NOW + timedelta(seconds=30)
    assert await outbox.claim_due(NOW + timedelta(seconds=29), 60, 10) == []
    assert [m.id for m in await outbox.claim_due(NOW + timedelta(seconds=30), 60, 10)] == [retry]
    failed = await outbox.get(fail)
    assert failed is not None and (failed.status, failed.last_error) == (FAILED, "550")


async def test_list_by_key_prefix_treats_wildcards_literally(outbox: MailOutbox) -> None:
    await queue(outbox, key="case-answer:0000013:1")
    await queue(outbox, key="case-answer:0000021:4")
    await queue(outbox, key="survey:0000013")
    await queue(outbox, key="case_answer:x")  # '_' is a LIKE wildcard: not a match

    keys = sorted(m.dedupe_key for m in await outbox.list(key_prefix="case-answer:"))
    assert keys == ["case-answer:0000013:1", "case-answer:0000021:4"]
    assert [m.dedupe_key for m in await outbox.list(key_prefix="case_answer:")] == ["case_answer:x"]
    assert await outbox.list(since=NOW + timedelta(seconds=1)) == []


async def test_every_attempt_rebuilds_the_same_email(outbox: MailOutbox) -> None:
    mid = await queue(outbox)
    first = (await outbox.claim_due(NOW, 60, 10))[0].email()
    again = (await outbox.claim_due(NOW + timedelta(seconds=61), 60, 10))[0].email()

    assert first.as_bytes() == again.as_bytes()
    assert first["Message-ID"] == (await outbox.get(mid)).message_id  # type: ignore[union-attr]
