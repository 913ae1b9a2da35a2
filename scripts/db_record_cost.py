"""CPU per call-record write of the group commit (docs/perf/db.md), without Asterisk.

Writes N records of 40 steps each through ``CallRecordStore._write_batch`` in
batches of B (as the group commit does under load), once as inserts (the
record's open) and once as updates (its close), and prints the process CPU
(``time.process_time``) per record write and the wall time:

    .venv/bin/python scripts/db_record_cost.py sqlite+aiosqlite:////tmp/rc.db 1000 8
    .venv/bin/python scripts/db_record_cost.py postgresql+asyncpg://citas@127.0.0.1:55437/db 1000 1

Runs against the code on PYTHONPATH (``git stash`` or an older checkout measures
"before").
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime

from ivr.store import CallRecordStore, Database
from ivr.store.records import CallRecord


def record(i: int) -> CallRecord:
    rec = CallRecord(
        id=str(uuid.uuid4()), channel_id=f"bench.{i}", sip_call_id=f"cost-{i}", flow="citas",
        caller_number="+573001234567", started_at=datetime.now(UTC),
    )  # fmt: skip
    for k in range(40):
        rec.step("node", node=f"node_{k}")
    rec.variables["segment"] = "target"
    return rec


async def main(url: str, n: int, batch: int) -> None:
    db = Database(url)
    await db.migrate()
    store = CallRecordStore(db)
    records = [record(i) for i in range(n)]
    await store._write_batch([record(-1)])  # connect, compile
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in ("open", "close"):
        for i in range(0, n, batch):
            await store._write_batch(records[i : i + batch])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{db.engine.dialect.name}: {n} records in batches of {batch}: "
        f"{cpu * 1000 / (2 * n):.3f} ms CPU per record write, wall {wall:.2f} s"
    )
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
