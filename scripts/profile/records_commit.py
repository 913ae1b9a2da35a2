"""What a call record costs to commit, by batch size and by commit interval (run t52).

Not a test and not the bench: a microbenchmark of ``CallRecordStore`` on a real
SQLite file (WAL, synchronous=FULL, its writer thread), as ``ivr serve`` uses it.

    .venv/bin/python scripts/profile/records_commit.py batch 1 4 16
        N calls (open, 8 steps, close) at a time, one group after another:
        CPU per call (process, and the event loop's thread alone).
    .venv/bin/python scripts/profile/records_commit.py rate 0 0.05 0.1
        32 calls a second for 8 s, each open 1 s, for each commit interval (s):
        CPU per call, commits, and how long ``open`` waited (p50, p99).

Each run uses a new file under $TMPDIR; the CPU includes this script's own loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from ivr.store.db import Database
from ivr.store.records import CallRecordStore

RATE = 32  # calls per second: the smoke line at 320 up (10 s calls)
SECONDS = 8


async def _store(interval: float | None = None) -> CallRecordStore:
    path = Path(tempfile.mkdtemp()) / "records.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    return (
        CallRecordStore(db) if interval is None else CallRecordStore(db, commit_interval=interval)
    )


async def _call(store: CallRecordStore, n: int, waits: list[float], hold: float = 0.0) -> None:
    asked = time.perf_counter()
    record = await store.open(
        channel_id=f"c{n}", flow="smoke", sip_call_id=f"s{n}", caller_number="3001234567"
    )
    waits.append(time.perf_counter() - asked)
    for step in range(8):
        record.step("node", node="welcome", n=step)
    if hold:
        await asyncio.sleep(hold)
    await store.close(record, outcome="completed", reason="flow_end")


async def batch(size: int, calls: int = 400) -> None:
    store = await _store(interval=0.0)
    waits: list[float] = []
    await asyncio.gather(*(_call(store, -n - 1, waits) for n in range(20)))  # warm
    cpu, loop = time.process_time(), time.thread_time()
    for first in range(0, calls, size):
        await asyncio.gather(*(_call(store, n, waits) for n in range(first, first + size)))
    cpu, loop = time.process_time() - cpu, time.thread_time() - loop
    print(f"batch {size:3d}: {cpu * 1000 / calls:.2f} ms CPU per call "
          f"(event loop {loop * 1000 / calls:.2f}); commits {store.batches} for {store.batched} records")  # fmt: skip


async def rate(interval: float) -> None:
    store = await _store(interval)
    waits: list[float] = []
    tasks = []
    cpu = time.process_time()
    for n in range(RATE * SECONDS):
        tasks.append(asyncio.create_task(_call(store, n, waits, hold=1.0)))
        await asyncio.sleep(1 / RATE)
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu
    calls = RATE * SECONDS
    waits.sort()
    print(f"interval {interval:.2f} s: {cpu * 1000 / calls:.2f} ms CPU per call; commits "
          f"{store.batches} for {store.batched} records; open waited p50 "
          f"{waits[calls // 2] * 1000:.1f} ms, p99 {waits[int(calls * 0.99)] * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    mode, values = sys.argv[1], sys.argv[2:]
    for value in values:
        if mode == "batch":
            asyncio.run(batch(int(value)))
        elif mode == "rate":
            asyncio.run(rate(float(value)))
        else:
            raise SystemExit(f"unknown mode {mode!r}: batch or rate")


if __name__ == "__main__":
    os.environ.setdefault("CITAS_LOG_LEVEL", "WARNING")
    main()
