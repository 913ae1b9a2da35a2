"""Call records' group commit (ivr/store/records.py): one transaction for the
records queued during a commit, at most one commit per interval under load (none
for a write after a quiet interval, a checkpoint, interrupt_open or a flush),
and nothing a SIGKILL can take that the store had returned from. SQLite and (CITAS_TEST_PG_URL)
PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ivr.store import CallRecordStore, Database
from ivr.store.models import CallRecordRow

CALLS = 50
ROOT = Path(__file__).resolve().parents[2]


async def count(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CallRecordRow)) or 0)


async def test_a_lone_record_is_committed_before_open_returns(db: Database) -> None:
    store = CallRecordStore(db)
    record = await store.open(channel_id="c1", flow="citas", sip_call_id="s1", caller_number=None)

    assert [r.id for r in await store.find_by_sip_call_id("s1")] == [record.id]
    assert (store.batches, store.batched) == (1, 1)


async def test_records_queued_together_share_one_commit(db: Database) -> None:
    store = CallRecordStore(db)

    records = await asyncio.gather(*(
        store.open(channel_id=f"c{n}", flow="citas", sip_call_id=f"s{n}", caller_number=None)
        for n in range(CALLS)
    ))  # fmt: skip
    assert (store.batches, store.batched) == (1, CALLS)
    assert await count(db) == CALLS

    for record in records:
        record.step("node", node="welcome")
    await asyncio.gather(*(store.close(r, outcome="completed", reason="hangup") for r in records))
    assert (store.batches, store.batched) == (2, 2 * CALLS)
    rows = {r.id: r for r in await store.recent(CALLS)}
    assert {(r.outcome, r.steps) for r in rows.values()} == {("completed", 1)}
    assert set(rows) == {r.id for r in records}


async def test_records_arriving_one_by_one_share_a_commit_per_interval(db: Database) -> None:
    # Calls arrive one at a time, not together: at most one commit per interval,
    # the records that arrive meanwhile in it; after a quiet interval, none waits.
    store = CallRecordStore(db, commit_interval=0.3)
    loop = asyncio.get_running_loop()
    asked = loop.time()  # the first batch starts after this
    await store.open(channel_id="c0", flow="citas", sip_call_id="s0", caller_number=None)

    async def arrive(n: int) -> float:
        await asyncio.sleep(0.01 * n)
        await store.open(channel_id=f"c{n}", flow="citas", sip_call_id=f"s{n}", caller_number=None)
        return loop.time()

    landed = await asyncio.gather(*(arrive(n) for n in range(1, 9)))
    assert (store.batches, store.batched) == (2, 9)
    assert min(landed) >= asked + 0.3
    assert await count(db) == 9

    await asyncio.sleep(0.35)
    asked = loop.time()
    await store.open(channel_id="c9", flow="citas", sip_call_id="s9", caller_number=None)
    assert loop.time() - asked < 0.25
    assert (store.batches, store.batched) == (3, 10)


async def test_a_checkpoint_does_not_wait_for_the_interval(db: Database) -> None:
    # A transfer's checkpoint has CHECKPOINT_S (0.3 s) of the caller's silence:
    # pacing must not spend it.
    store = CallRecordStore(db, commit_interval=30.0)
    record = await store.open(channel_id="c1", flow="citas", sip_call_id="s1", caller_number=None)
    record.step("transfer", queue="agents")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await record.checkpoint()

    assert loop.time() - asked < 0.3
    assert store.buffered == 0
    assert [r.steps for r in await store.find_by_sip_call_id("s1")] == [1]


async def one_open_waiting_for_the_interval(
    db: Database,
) -> tuple[CallRecordStore, asyncio.Task[Any]]:
    """A store that committed c0 just now and paces 30 s, and c1's ``open`` queued
    behind that interval (its task, not done)."""
    store = CallRecordStore(db, commit_interval=30.0)
    await store.open(channel_id="c0", flow="citas", sip_call_id="s0", caller_number=None)
    opening = asyncio.create_task(
        store.open(channel_id="c1", flow="citas", sip_call_id="s1", caller_number=None)
    )
    await asyncio.sleep(0.05)
    assert not opening.done()
    return store, opening


async def test_interrupt_open_does_not_wait_for_the_interval(db: Database) -> None:
    store, opening = await one_open_waiting_for_the_interval(db)
    async with asyncio.timeout(5):
        closed = await store.interrupt_open("c1", reason="controller_lost")
    await opening
    assert closed == 1


async def test_a_writer_cancelled_while_waiting_keeps_its_records(db: Database) -> None:
    store, opening = await one_open_waiting_for_the_interval(db)
    assert store._writer is not None
    store._writer.cancel()
    async with asyncio.timeout(5):
        await opening  # returns: its record is in the buffer, not lost
    assert store.buffered == 1

    assert await store.flush()
    assert [r.channel_id for r in await store.find_by_sip_call_id("s1")] == ["c1"]


async def test_flush_writes_what_waits_for_the_interval(db: Database) -> None:
    store, opening = await one_open_waiting_for_the_interval(db)
    async with asyncio.timeout(5):
        assert await store.flush()
    assert await count(db) == 2  # written by the flush, not 30 s later
    await opening


async def test_a_close_queued_behind_a_commit_in_flight_lands_in_the_next(db: Database) -> None:
    store = CallRecordStore(db)
    first = asyncio.create_task(
        store.open(channel_id="c1", flow="citas", sip_call_id="s1", caller_number=None)
    )
    await asyncio.sleep(0)  # the writer has taken the first batch
    second = await store.open(channel_id="c2", flow="citas", sip_call_id="s2", caller_number=None)
    await store.close(second, outcome="booked", reason="flow_end")
    await first

    assert [r.outcome for r in await store.find_by_sip_call_id("s2")] == ["booked"]
    assert await count(db) == 2


CHILD = textwrap.dedent("""
    import asyncio, sys
    from ivr.store import CallRecordStore, Database

    async def main() -> None:
        db = Database(sys.argv[1], timeout=5.0)
        store = CallRecordStore(db)
        n = 0
        async def call(k: int) -> None:
            record = await store.open(channel_id=f"k{k}", flow="citas",
                                      sip_call_id=f"kill-{k}", caller_number=None)
            print(record.id, flush=True)  # open returned: the record must survive
        while True:
            await asyncio.gather(*(call(n + i) for i in range(5)))
            n += 5

    asyncio.run(main())
""")


async def test_sigkill_loses_no_record_whose_open_had_returned(db: Database) -> None:
    """A child process opens records five at a time and prints each id once
    ``open`` returned; SIGKILL it mid-stream: every printed id is in the table."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, db.engine.url.render_as_string(hide_password=False),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(printed) < 40:
                line = await child.stdout.readline()
                assert line, "the child stopped before writing 40 records"
                printed.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()

    store = CallRecordStore(db)
    found = {r.id for r in await store.recent(10_000)}
    assert set(printed) <= found
    assert child.returncode == -signal.SIGKILL


async def test_an_unexpected_write_error_buffers_the_records_it_does_not_lose_them(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any failure of a batch keeps its records for the retry, not only the database
    being unavailable (a RuntimeError from a lock of another event loop once let
    ``open`` return with the record neither written nor kept)."""
    store = CallRecordStore(db)
    real = store._write_batch
    failures = iter([RuntimeError("bound to a different event loop")])

    async def flaky(records: list[Any]) -> None:
        if (exc := next(failures, None)) is not None:
            raise exc
        await real(records)

    monkeypatch.setattr(store, "_write_batch", flaky)
    record = await store.open(channel_id="c-err", flow="smoke", sip_call_id="s", caller_number=None)
    assert store.buffered == 1
    assert await store.flush()
    assert [r.id for r in await store.recent()] == [record.id]
