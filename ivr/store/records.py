"""Call records: every call's path (nodes, prompts, digits, decisions, outcome).

The record is written when the call starts and again when it ends, so a call
always leaves a row even if the controller dies mid-call (its outcome is then
empty, which reports show as "interrupted").

A database outage never loses a record nor holds a caller: ``open`` and
``close`` keep a record they cannot write in a bounded in-memory buffer and
return normally; ``run()`` (a task the composition root owns) writes the buffer
with backoff until the database answers, and ``flush()`` tries once more at
shutdown. Every buffered write is an upsert of the record's latest state, so a
record opened and closed during the outage is written once, complete. While
the buffer is not empty new writes queue behind it (order kept, and only the
first call of an outage waits for the database's timeout).

**Group commit** (issue 13, part db): ``open``, ``close`` and ``checkpoint`` put
the record's latest state in a queue and wait for the commit that carries it.
One writer (a task started on demand) writes everything queued in one
transaction, one upsert per record, then the next batch, at least
``COMMIT_INTERVAL_S`` (0.1 s) after the one before started: a write that comes
that long after the last batch goes out at once, and otherwise waits for the
next batch with the records queued meanwhile (one commit, one write lock on
SQLite, for many records). A checkpoint and ``interrupt_open`` do not wait for
the interval. Each call still returns only once its record is committed, so a
crash (SIGKILL included) loses nothing this store had returned from; what it
loses are the writes still waiting for their commit, as before group commit
(a write in flight), but under load up to ``COMMIT_INTERVAL_S`` of them: a lost
close leaves its record without an end, counted in progress, then interrupted
after ``IN_PROGRESS_MAX``. A writer cancelled while waiting keeps its queued
records in the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.db import Database, StoreUnavailable, dialect_insert
from ivr.store.models import CallRecordRow

logger = logging.getLogger(__name__)

MAX_BUFFERED = 10_000  # records kept in memory while the database is down
# A call without an end older than this is not in progress but interrupted (the
# controller died, or its close was lost): no call of this line lasts 2 hours.
IN_PROGRESS_MAX = timedelta(hours=2)
SUMMARY_WINDOW = timedelta(hours=24)  # the console's "last 24 h" of calls by outcome
INTERRUPTED = "interrupted"
# How long a transfer waits for its record to be written (the caller hears the
# transfer prompt end, then this, then the queue's music): the write takes a few
# ms, and is not paced (COMMIT_INTERVAL_S); a slow database is not worth more of
# the caller's silence.
CHECKPOINT_S = 0.3  # the outcome reported for a record that never closed
# Under load, at most one group commit per this many seconds: the records queued
# meanwhile share it. Calls arrive one by one, so without it a commit carried about
# one record (485 commits for 512 records at 32 calls/s), and one record per commit
# cost 0.9 ms of CPU against 0.17 ms in batches of 16 (SQLite, the process and its
# writer thread: scripts/profile/records_commit.py, docs/PERFORMANCE.md runs
# t51-t59). A write waits at most this long more; one that comes this long after
# the last batch started goes at once. The welcome prompt waits for the call's
# open: at 32 calls/s it waited 53 ms at p50, 102 ms at p99 (2 and 7 ms before).
# A checkpoint (a transfer) and interrupt_open are not paced.
COMMIT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class PathStep:
    """One thing that happened on a call, in order."""

    at: float
    kind: str  # node, prompt, digits, decision, transfer, hangup, error ...
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "kind": self.kind, **self.detail}


@dataclass
class CallRecord:
    id: str
    channel_id: str
    flow: str
    sip_call_id: str | None
    caller_number: str | None
    started_at: datetime
    path: list[PathStep] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None
    # Writes the record as it is now (set by CallRecordStore.open): see checkpoint().
    saver: Callable[[CallRecord], Awaitable[None]] | None = field(
        default=None, repr=False, compare=False
    )

    async def checkpoint(self) -> None:
        """Write the record as it is now, before the call leaves our control: the
        agent's screen pop reads the path the moment the agent answers, sooner
        than the record's close (which follows the transfer) may land. Bounded
        (``CHECKPOINT_S``) and never raising: the close writes it anyway."""
        if self.saver is not None:
            await self.saver(self)

    def step(self, kind: str, **detail: Any) -> None:
        elapsed = (datetime.now(UTC) - self.started_at).total_seconds()
        self.path.append(PathStep(elapsed, kind, detail))


@dataclass(frozen=True)
class CallSummary:
    """Counts of calls (:meth:`CallRecordStore.summary`): ``in_progress`` now,
    ``by_outcome`` (outcome -> calls) over the window ``[since, as_of]``."""

    in_progress: int
    by_outcome: dict[str, int]
    since: datetime
    as_of: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "in_progress": self.in_progress,
            "by_outcome": dict(self.by_outcome),
            "window_hours": (self.as_of - self.since) / timedelta(hours=1),
            "since": self.since.isoformat(),
            "as_of": self.as_of.isoformat(),
        }


def _row_values(record: CallRecord) -> dict[str, Any]:
    """The ``call_records`` row of ``record`` as it is now."""
    return {
        "id": record.id,
        "channel_id": record.channel_id,
        "sip_call_id": record.sip_call_id,
        "flow": record.flow,
        "caller_number": record.caller_number,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "outcome": record.outcome,
        "end_reason": record.end_reason,
        "steps": len(record.path),
        "path": [s.as_json() for s in record.path],
        "variables": dict(record.variables),
    }


@functools.cache
def _upsert(dialect: str) -> Any:
    """``INSERT INTO call_records ... ON CONFLICT (id) DO UPDATE SET <every other
    column> = excluded.<column>`` for ``dialect`` (``postgresql`` or ``sqlite``):
    built once, its compiled form cached by SQLAlchemy. Profiled: building one
    ORM upsert per record cost 15 % of the controller's samples on the smoke line
    (docs/perf/budget.md)."""
    insert = dialect_insert(dialect, CallRecordRow)
    columns = [c.name for c in CallRecordRow.__table__.columns if c.name != "id"]
    return insert.on_conflict_do_update(
        index_elements=[CallRecordRow.id],
        set_={name: insert.excluded[name] for name in columns},
    )


class CallRecordStore:
    def __init__(
        self,
        db: Database,
        *,
        max_buffered: int = MAX_BUFFERED,
        retry_initial: float = 0.5,
        retry_max: float = 5.0,
        commit_interval: float = COMMIT_INTERVAL_S,
    ) -> None:
        self.db = db
        self.commit_interval = commit_interval
        self.max_buffered = max_buffered
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.dropped = 0  # records lost because the buffer was full (logged as errors)
        # record id -> (record, generation of its last save): newest last
        self._buffer: OrderedDict[str, tuple[CallRecord, int]] = OrderedDict()
        self._generation = 0
        # record id -> a checkpoint write still running (see checkpoint)
        self._slow: dict[str, asyncio.Future[None]] = {}
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        # Group commit: records waiting for the next batch (latest state), the
        # future that batch resolves, and the writer task while one runs.
        self._queue: dict[str, CallRecord] = {}
        self._next: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._last_batch = float("-inf")  # loop time the last batch started
        self._urgent = asyncio.Event()  # a queued write that must not wait for the interval
        # The batch being written: its records' channels and its future.
        self._inflight: tuple[frozenset[str], asyncio.Future[None] | None] = (frozenset(), None)
        self.batches = 0  # transactions the group-commit writer committed
        self.batched = 0  # records they carried

    @property
    def buffered(self) -> int:
        """Records waiting for the database."""
        return len(self._buffer)

    async def open(
        self, *, channel_id: str, flow: str, sip_call_id: str | None, caller_number: str | None
    ) -> CallRecord:
        """The call's record, with its id; written now, or buffered if the database is down."""
        record = CallRecord(
            id=str(uuid.uuid4()),
            channel_id=channel_id,
            flow=flow,
            sip_call_id=sip_call_id,
            caller_number=caller_number,
            started_at=datetime.now(UTC),
        )
        await self._save(record, insert=True)
        record.saver = self.checkpoint
        return record

    async def checkpoint(self, record: CallRecord, *, within: float | None = None) -> None:
        """Write ``record``'s current state now, waiting at most ``within`` seconds
        (default ``CHECKPOINT_S``). A slower write is not cancelled (a cancelled
        SQLite write can leave its connection waiting on the lock): it goes on,
        the record is kept in the buffer, and ``flush`` writes the latest state
        only after that write ends, so an older state never lands last. A database
        that is down leaves the record to the buffer too; never raises."""
        if self._buffer:
            self._keep(record)
            return
        write = self._enqueue(record, urgent=True)
        done, _ = await asyncio.wait({write}, timeout=CHECKPOINT_S if within is None else within)
        if write in done and record.id not in self._buffer:
            return
        problem = "database unavailable" if write in done else "slower than the checkpoint allows"
        logger.warning("call %s: record %s checkpoint buffered: %s",
                       record.channel_id, record.id, problem)  # fmt: skip
        if write not in done:
            self._slow[record.id] = write
        self._keep(record)

    async def close(self, record: CallRecord, *, outcome: str, reason: str) -> None:
        record.outcome = outcome
        record.end_reason = reason
        record.ended_at = datetime.now(UTC)
        await self._save(record, insert=False)

    async def interrupt_open(self, channel_id: str, *, reason: str) -> int:
        """Close every record of ``channel_id`` that has no end (``ended_at`` null)
        as outcome ``INTERRUPTED`` with end_reason ``reason`` and ``ended_at`` now;
        returns how many rows it closed (0 when none was open).

        Whoever adopts a call (another controller after a controller's death, or
        this one at reconcile after a restart) closes the call's old record with
        this before opening its own, so no call stays without an end (issue 13,
        item 6). Rows already closed are left as they are, so it is idempotent.
        Waits for this store's queued writes first (a record of that channel
        still buffered here lands before the update, never after it).

        Raises StoreUnavailable when the database does not answer in time.
        """
        await self._settle(channel_id)
        now = datetime.now(UTC)
        row = CallRecordRow

        async def op(session: AsyncSession) -> int:
            result = await session.execute(
                update(row)
                .where(row.channel_id == channel_id, row.ended_at.is_(None))
                .values(ended_at=now, outcome=INTERRUPTED, end_reason=reason)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

        closed = await self.db.run("close interrupted call records", op)
        if closed:
            logger.info("call %s: %d open record(s) closed as %s (%s)",
                        channel_id, closed, INTERRUPTED, reason)  # fmt: skip
        return closed

    async def _settle(self, channel_id: str) -> None:
        """Let this store's writes of ``channel_id`` land first: a batch carrying
        one (in flight or queued) ends, and buffered ones are written now."""
        inflight, done = self._inflight
        if done is not None and channel_id in inflight:
            await asyncio.shield(done)
        if self._next is not None and any(r.channel_id == channel_id for r in self._queue.values()):
            self._urgent.set()
            await asyncio.shield(self._next)
        if any(rec.channel_id == channel_id for rec, _ in self._buffer.values()):
            await self.flush()

    async def run(self) -> None:
        """Write buffered records until ``stop()``, backing off while the database is down."""
        failures = 0
        while not self._stopping.is_set():
            if not self._buffer:
                self._wakeup.clear()
                await self._until_stopped(self._wakeup.wait())
                continue
            if await self.flush():
                failures = 0
                continue
            delay = min(self.retry_max, self.retry_initial * 2 ** min(failures, 16))
            failures += 1
            await self._until_stopped(asyncio.sleep(delay))

    def stop(self) -> None:
        self._stopping.set()

    async def flush(self) -> bool:
        """Write what is queued for the next batch now, then the buffer, oldest first;
        True when it is empty."""
        if self._next is not None:
            self._urgent.set()
            await asyncio.shield(self._next)
        while self._buffer:
            record_id, (record, generation) = next(iter(self._buffer.items()))
            slow = self._slow.pop(record_id, None)
            if slow is not None:  # an older state in flight: let it land first
                await asyncio.wait({slow})
                if not slow.cancelled():
                    slow.exception()  # retrieved: its failure was logged by checkpoint's caller
            try:
                await self._write(record, insert=False)
            except StoreUnavailable as exc:
                logger.warning(
                    "%d call record(s) still buffered, database unavailable: %s",
                    len(self._buffer),
                    exc,
                )
                return False
            # Saved again while this write was in flight (closed, say): write that too.
            if self._buffer.get(record_id, (None, None))[1] == generation:
                del self._buffer[record_id]
            logger.info("call %s: buffered record %s written", record.channel_id, record_id)
        return True

    async def _save(self, record: CallRecord, *, insert: bool) -> None:
        if not self._buffer:
            await asyncio.shield(self._enqueue(record))
            return
        self._keep(record)

    def _enqueue(self, record: CallRecord, *, urgent: bool = False) -> asyncio.Future[None]:
        """Queue ``record`` for the next batch; the future resolves when that batch
        is over (committed, or its records moved to the buffer). ``urgent``: the
        batch goes without waiting for the interval. Never fails."""
        self._queue[record.id] = record
        if urgent:
            self._urgent.set()
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        batch = self._next
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="records-commit")
        return batch

    async def _drain(self) -> None:
        """Commit queued records, one transaction per batch, until none is queued;
        a batch starts at least ``commit_interval`` s after the one before."""
        loop = asyncio.get_running_loop()
        while self._queue:
            try:
                await self._paced(loop)  # the records queuing meanwhile join this batch
            except BaseException:  # cancelled while waiting: the queued records are kept
                queued, self._queue = self._queue, {}
                waiting, self._next = self._next, None
                for record in queued.values():
                    self._keep(record)
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)
                raise
            self._urgent.clear()
            self._last_batch = loop.time()
            batch, self._queue = self._queue, {}
            done, self._next = self._next, None
            self._inflight = (frozenset(r.channel_id for r in batch.values()), done)
            try:
                await self._write_batch(list(batch.values()))
                self.batches += 1
                self.batched += len(batch)
            except Exception as exc:  # any failure: the records are kept, never lost
                if isinstance(exc, StoreUnavailable):
                    logger.warning("%d call record(s) buffered, database unavailable: %s",
                                   len(batch), exc)  # fmt: skip
                else:
                    logger.exception("%d call record(s) buffered after an unexpected error",
                                     len(batch))  # fmt: skip
                for record in batch.values():
                    self._keep(record)
            except asyncio.CancelledError:  # the write may have landed: written again
                for record in batch.values():
                    self._keep(record)
                raise
            finally:
                self._inflight = (frozenset(), None)
                if done is not None and not done.done():
                    done.set_result(None)

    async def _paced(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until ``commit_interval`` s after the last batch started, or until an
        urgent write is queued."""
        wait = self._last_batch + self.commit_interval - loop.time()
        if wait <= 0 or self._urgent.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._urgent.wait()

    def _keep(self, record: CallRecord) -> None:
        self._generation += 1
        self._buffer.pop(record.id, None)
        self._buffer[record.id] = (record, self._generation)  # written as it is then: latest
        while len(self._buffer) > self.max_buffered:
            _, (lost, _) = self._buffer.popitem(last=False)
            self.dropped += 1
            logger.error(
                "call %s: record %s lost, %d records buffered while the database is down",
                lost.channel_id,
                lost.id,
                self.max_buffered,
            )
        self._wakeup.set()

    async def _until_stopped(self, waiting: Awaitable[object]) -> None:
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, stop):
                pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(task, stop)

    async def _write(self, record: CallRecord, *, insert: bool) -> None:
        await self._write_batch([record])

    async def _write_batch(self, records: list[CallRecord]) -> None:
        """Upsert ``records`` as they are now, in one transaction: one Core statement
        (built once per dialect), executed for all rows (executemany; no read first,
        no ORM unit of work). Raises StoreUnavailable."""
        if not records:
            return
        statement = _upsert(self.db.engine.dialect.name)
        rows = [_row_values(record) for record in records]
        ids = ", ".join(r.id for r in records[:3]) + ("..." if len(records) > 3 else "")
        await self.db.write_sync(
            f"write call record(s) {ids}", lambda conn: conn.execute(statement, rows)
        )

    async def summary(
        self, now: datetime | None = None, window: timedelta = SUMMARY_WINDOW
    ) -> CallSummary:
        """The console's call counts at ``now`` (aware; default: the clock).

        ``in_progress``: records without an end (``ended_at`` null) that started
        at or after ``now - IN_PROGRESS_MAX`` (2 h). A record without an end that
        started before that is *interrupted*, not in progress: the controller died
        mid-call or its close never reached the database (see the module docstring).

        ``by_outcome``: every other record that started at or after ``now - window``
        (24 h by default; a start exactly on the boundary counts), by its outcome;
        a record with no outcome (ended without one, or interrupted by age) counts
        as ``"interrupted"``. Each record in the window is thus counted once: in
        progress, or under one outcome. One query per number; the same SQL on
        SQLite and PostgreSQL (times are compared as UTC, ``UtcDateTime``).

        Raises ValueError for a naive ``now``, StoreUnavailable when the database
        does not answer in time.
        """
        now = now if now is not None else datetime.now(UTC)
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r}: give it a timezone")
        since = now - window
        row = CallRecordRow
        running = and_(row.ended_at.is_(None), row.started_at >= now - IN_PROGRESS_MAX)

        async def op(session: AsyncSession) -> CallSummary:
            count = await session.scalar(select(func.count()).select_from(row).where(running))
            outcomes = await session.execute(
                select(row.outcome, func.count())
                .where(row.started_at >= since, or_(row.ended_at.is_not(None),
                                                    row.started_at < now - IN_PROGRESS_MAX))
                .group_by(row.outcome)
            )  # fmt: skip
            by_outcome: dict[str, int] = {}
            for found, n in outcomes.all():  # no outcome: interrupted (grouped here, portably)
                key = str(found) if found is not None else INTERRUPTED
                by_outcome[key] = by_outcome.get(key, 0) + int(n)
            return CallSummary(
                in_progress=int(count or 0),
                by_outcome=by_outcome,
                since=since,
                as_of=now,
            )

        return await self.db.run("count calls", op)

    async def find_by_sip_call_id(self, sip_call_id: str) -> list[CallRecordRow]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(CallRecordRow)
                .where(CallRecordRow.sip_call_id == sip_call_id)
                .order_by(CallRecordRow.started_at)
            )
            return list(rows)

    async def recent(self, limit: int = 20) -> list[CallRecordRow]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(CallRecordRow).order_by(CallRecordRow.started_at.desc()).limit(limit)
            )
            return list(rows)
