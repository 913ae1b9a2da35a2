"""The database's share of one citas bench call, without Asterisk (docs/perf/db.md).

Runs the database operations of the bench's citas call (Ana declines the first
slot and is redirected to WhatsApp: record open, pending appointments, slot
search, SMS outbox enqueue, record close) for CALLS calls, CONCURRENCY at a time,
in this one process, and prints JSON: process CPU ms per call, statements and
transactions per call (SQLAlchemy events), and the wall time of the
caller-facing part (pending + search + enqueue: between her key and the next
prompt) p50/p99. CPU time of one process is what load distorts least.

    .venv/bin/python scripts/db_call_cost.py sqlite+aiosqlite:////tmp/x.db [calls] [concurrency]

Runs against the code on PYTHONPATH (a checkout of an older commit measures
"before"); a DbSlotSource without a ``feed`` parameter is the old code.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event

from ivr.booking.db import DbSlotSource
from ivr.booking.seed import demo_slots
from ivr.citas.reference import load_reference
from ivr.sms.outbox import SmsOutbox
from ivr.store import CallRecordStore, Database

CITAS = Path(__file__).resolve().parents[1] / "config" / "citas"


async def main(url: str, calls: int, concurrency: int) -> dict[str, Any]:
    db = Database(url, timeout=10.0)
    await db.migrate()
    reference = load_reference(CITAS)
    today = datetime.now(ZoneInfo(reference.line.timezone)).date()
    feed: Any = None
    kwargs: dict[str, Any] = {}
    if "feed" in inspect.signature(DbSlotSource).parameters:
        from ivr.store.changes import ChangeFeed

        feed = ChangeFeed(db, poll_s=0.5)
        kwargs["feed"] = feed
    feed_task = asyncio.create_task(feed.run()) if feed is not None else None
    await DbSlotSource(db, timeout=10.0).seed_slots(demo_slots(today, reference.sites))
    slots = DbSlotSource(db, timeout=10.0, **kwargs)
    records = CallRecordStore(db)
    outbox = SmsOutbox(db, timeout=10.0)
    counts = {"statements": 0, "transactions": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def begin(*_: Any) -> None:
        counts["transactions"] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", statement)
    event.listen(db.engine.sync_engine, "begin", begin)
    facing: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def call(n: int) -> None:
        async with gate:
            record = await records.open(channel_id=f"probe.{n}", flow="citas",
                                        sip_call_id=f"probe-{n}", caller_number="3001234567")  # fmt: skip
            started = time.perf_counter()
            await slots.pending_for("1010101010")
            await slots.find(site_id="norte", cups="890201", limit=1)
            await outbox.enqueue_or_hold(to_number="+573001234567", text="enlace",
                                         dedupe_key=f"whatsapp:{record.id}")  # fmt: skip
            facing.append((time.perf_counter() - started) * 1000)
            record.outcome = "redirected_whatsapp"
            await records.close(record, outcome="redirected_whatsapp", reason="flow_end")

    await asyncio.gather(*(call(n) for n in range(10)))  # warm-up: caches, pool
    facing.clear()
    counts.update(statements=0, transactions=0)
    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(call(n) for n in range(10, 10 + calls)))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    if feed is not None:
        feed.stop()
        assert feed_task is not None
        await feed_task
    await db.close()
    facing.sort()
    return {
        "url": url.split("://")[0],
        "code": "after" if feed is not None else "before",
        "calls": calls,
        "concurrency": concurrency,
        "cpu_ms_per_call": round(cpu * 1000 / calls, 2),
        "statements_per_call": round(counts["statements"] / calls, 2),
        "transactions_per_call": round(counts["transactions"] / calls, 2),
        "facing_p50_ms": round(statistics.median(facing), 2),
        "facing_p99_ms": round(facing[int(len(facing) * 0.99) - 1], 2),
        "wall_s": round(wall, 2),
    }


if __name__ == "__main__":
    url = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 80
    print(json.dumps(asyncio.run(main(url, calls, concurrency))))
