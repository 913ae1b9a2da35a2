"""Group commit: the writes callers make at the same time, in one transaction.

On SQLite every commit is a turn of the process's single writer and an fsync
(``synchronous=FULL``); at 640 citas calls on two controllers the SMS
enqueues, one commit each, waited 0.5 s p50 for their turn (docs/perf/db.md).
A :class:`GroupCommit` queues each caller's item and lets one task write all
the items queued so far in one ``flush``: the first caller's item starts a
flush at once (no timer, no added wait when the line is quiet), and whatever
arrives while a flush runs goes in the next one. Each caller awaits its own
item's result, so a caller is answered only once its write is committed.

The shape is the classic database group commit (PostgreSQL's
``commit_delay``, InnoDB's binary-log group commit) without the delay: a
batch is what queued up while the previous flush was writing.

A flush that raises fails every item in its batch with that exception; the
next batch is flushed anyway. When the failure may be one item's own (a row
the database refuses: ``alone(exc)`` says so), the batch's items are flushed
again one by one, so only that item's caller gets the error: batching never
makes one caller's bad row another caller's failure. A caller cancelled while
waiting does not take its item back (it is written or failed with its batch;
nothing is half-done).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the item, as in the standard typing examples
R = TypeVar("R")

Flush = Callable[[Sequence[I]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[I, R]):
    """Batch ``submit(item)`` calls into ``flush(items) -> results`` (one result per
    item, in order); at most ``max_batch`` items per flush. One flush runs at a
    time per instance; use an instance from one event loop. ``alone(exc)``: the
    failure may be one item's, flush the batch's items one by one (default: never;
    an outage fails the whole batch at once instead of once per item).

    Raises, from ``submit``: whatever the item's flush raised; ``RuntimeError``
    when ``flush`` returns a different number of results than it was given.
    """

    def __init__(
        self,
        flush: Flush[I, R],
        *,
        max_batch: int = 256,
        name: str = "group commit",
        alone: Callable[[Exception], bool] = lambda exc: False,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._flush = flush
        self._alone = alone
        self.max_batch = max_batch
        self.name = name
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0  # how many flushes ran (for tests and metrics)
        self.items = 0  # how many items they carried

    async def submit(self, item: I) -> R:
        """Queue ``item`` and wait until the flush that carries it has returned."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self.name)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = (
                self._pending[: self.max_batch],
                self._pending[self.max_batch :],
            )
            try:
                await self._flush_batch(batch)
            except asyncio.CancelledError:
                for _, future in batch + self._pending:
                    future.cancel()
                self._pending = []
                raise

    async def _flush_batch(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        self.flushes += 1
        self.items += len(batch)
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(
                    f"{self.name}: flush returned {len(results)} results for {len(batch)} items"
                )
        except Exception as exc:
            if len(batch) > 1 and self._alone(exc):
                for one in batch:  # each item's own outcome, in the order submitted
                    await self._flush_batch([one])
                return
            for _, future in batch:  # every waiter of this batch gets it
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
