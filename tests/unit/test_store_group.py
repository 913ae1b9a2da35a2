"""GroupCommit, the batching rule alone (pure asyncio, no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ivr.store.group import GroupCommit


class Recorder:
    """A flush that records its batches; ``gate`` holds a flush until set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.written: list[list[int]] = []  # the batches whose flush got past the gate
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_on: set[int] = set()  # a batch holding one of these raises

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail_on & set(items):
            raise OSError(f"disk full at {sorted(self.fail_on & set(items))}")
        self.written.append(list(items))
        return [i * 10 for i in items]


async def test_what_is_submitted_together_is_flushed_together_and_each_gets_its_result() -> None:
    flush = Recorder()
    group: GroupCommit[int, int] = GroupCommit(flush)
    results = await asyncio.gather(*(group.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert flush.batches == [list(range(50))]
    assert (group.flushes, group.items) == (1, 50)


async def test_what_arrives_during_a_flush_waits_for_the_next_one() -> None:
    flush = Recorder()
    flush.gate.clear()
    group: GroupCommit[int, int] = GroupCommit(flush)
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0)  # the flush of [1] has started and is writing
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(group.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert flush.batches == [[1]] and not first.done()
    flush.gate.set()
    assert await first == 10 and await asyncio.gather(*later) == [20, 30, 40]
    assert flush.batches == [[1], [2, 3, 4]]


@pytest.mark.parametrize(("max_batch", "batches"), [(1, 7), (3, 3), (7, 1), (100, 1)])
async def test_a_batch_holds_at_most_max_batch_items(max_batch: int, batches: int) -> None:
    flush = Recorder()
    group: GroupCommit[int, int] = GroupCommit(flush, max_batch=max_batch)
    assert await asyncio.gather(*(group.submit(i) for i in range(7))) == [i * 10 for i in range(7)]
    assert len(flush.batches) == batches
    assert [i for b in flush.batches for i in b] == list(range(7))  # in order, none twice


async def test_a_failed_flush_fails_its_batch_only() -> None:
    flush = Recorder()
    flush.fail_on = {2}
    group: GroupCommit[int, int] = GroupCommit(flush, max_batch=2)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(6)), return_exceptions=True)
    assert [type(o).__name__ if isinstance(o, Exception) else o for o in outcomes] == [
        0, 10, "OSError", "OSError", 40, 50,
    ]  # fmt: skip
    assert "disk full at [2]" in str(outcomes[3])


async def test_a_flush_that_loses_results_is_an_error_for_its_callers() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    group: GroupCommit[int, int] = GroupCommit(short, name="sms enqueue")
    with pytest.raises(RuntimeError, match="sms enqueue: flush returned 1 results for 2 items"):
        await asyncio.gather(group.submit(1), group.submit(2))


async def test_a_caller_that_gives_up_does_not_take_its_item_back() -> None:
    flush = Recorder()
    flush.gate.clear()
    group: GroupCommit[int, int] = GroupCommit(flush)
    waiting = asyncio.ensure_future(group.submit(7))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await waiting  # the caller's own timeout
    assert waiting.cancelled()
    flush.gate.set()
    assert await group.submit(8) == 80  # one flush at a time: [7]'s has ended before
    assert flush.written == [[7], [8]]  # written all the same: nothing half-done


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder(), max_batch=0)


@pytest.mark.parametrize("size", [2, 5])
async def test_a_failure_that_may_be_one_items_is_retried_item_by_item(size: int) -> None:
    flush = Recorder()
    flush.fail_on = {3}
    group: GroupCommit[int, int] = GroupCommit(flush, alone=lambda exc: isinstance(exc, OSError))
    outcomes = await asyncio.gather(
        *(group.submit(i) for i in range(1, size + 2)), return_exceptions=True
    )
    assert [o if isinstance(o, int) else "OSError" for o in outcomes] == [
        "OSError" if i == 3 else i * 10 for i in range(1, size + 2)
    ]
    assert flush.batches == [list(range(1, size + 2)), *([i] for i in range(1, size + 2))]


async def test_an_outage_fails_the_batch_once_not_once_per_item() -> None:
    flush = Recorder()
    flush.fail_on = set(range(10))
    group: GroupCommit[int, int] = GroupCommit(flush, alone=lambda exc: False)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(10)), return_exceptions=True)
    assert all(isinstance(o, OSError) for o in outcomes) and flush.batches == [list(range(10))]
