"""How long an SMS enqueue takes when several processes write one SQLite file.

P processes (as ``CITAS_CONTROLLERS`` controllers) each run W concurrent
writers; a writer queues an SMS (``SmsOutbox.enqueue``: the group commit, the
write turn) every ``gap`` ms for ``seconds``. Prints each enqueue's wall time
(p50/p90/p99/max, ms) over all processes, with the lock file between the
processes (``Database.write_turn``, ivr/store/filelock.py) and without it
(SQLite's busy handler alone). No calls, no event loop load: the database's
share alone (docs/perf/db.md).

    .venv/bin/python scripts/db_write_wait.py /tmp/ww 2 40 50 10

Arguments: a scratch directory (a fresh database file per mode), P, W, gap (ms), seconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import sys
import time
import uuid
from pathlib import Path

from ivr.sms.outbox import SmsOutbox
from ivr.store import Database


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return (f"n={len(values)} p50 {cuts[49]:.1f} p90 {cuts[89]:.1f} p99 {cuts[98]:.1f} "
            f"max {values[-1]:.1f} ms")  # fmt: skip


async def writer(outbox: SmsOutbox, gap: float, until: float, out: list[float]) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        await outbox.enqueue(to_number="+573001234567", text="x", dedupe_key=str(uuid.uuid4()))
        out.append((time.monotonic() - start) * 1000)
        await asyncio.sleep(gap)


async def process_main(
    url: str, file_lock: bool, writers: int, gap: float, until: float
) -> list[float]:
    db = Database(url)
    if not file_lock:
        db._file_turn = None  # SQLite's busy handler alone, as before the lock file
    outbox = SmsOutbox(db, timeout=10.0)
    out: list[float] = []
    await asyncio.gather(*(writer(outbox, gap, until, out) for _ in range(writers)))
    await db.close()
    return out


def child(url: str, file_lock: bool, writers: int, gap: float, until: float,
          queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    queue.put(asyncio.run(process_main(url, file_lock, writers, gap, until)))


def run(
    folder: Path, file_lock: bool, procs: int, writers: int, gap_ms: float, seconds: float
) -> None:
    path = folder / f"ww-{'lock' if file_lock else 'busy'}-{uuid.uuid4().hex[:6]}.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def migrate() -> None:
        db = Database(url)
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    until = time.monotonic() + seconds
    children = [
        multiprocessing.Process(
            target=child, args=(url, file_lock, writers, gap_ms / 1000, until, queue)
        )
        for _ in range(procs)
    ]
    for c in children:
        c.start()
    waits = [w for _ in children for w in queue.get()]
    for c in children:
        c.join()
    print(f"{'lock file' if file_lock else 'busy handler'}: {procs} processes × {writers} writers, "
          f"one SMS every {gap_ms:g} ms each: {quantiles(waits)}")  # fmt: skip


if __name__ == "__main__":
    folder, p, w, gap, secs = Path(sys.argv[1]), *map(float, sys.argv[2:6])
    folder.mkdir(parents=True, exist_ok=True)
    for lock in (False, True):
        run(folder, lock, int(p), int(w), gap, secs)
