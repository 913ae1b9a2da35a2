"""The change feed across processes: two engines on one database, as two
controllers are (ivr/store/changes.py). SQLite always; PostgreSQL when
CITAS_TEST_PG_URL is set, where the reader's poll is made slower than the test's
deadline so only LISTEN/NOTIFY can deliver the change.

The fault kind: a cache that serves stale data after a change made by ANOTHER
process; tested over every cached topic (flags, slots per site), each with the
change the other process can make.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.booking.db import DbSlotSource
from ivr.booking.model import Slot, SlotTaken
from ivr.citas.flags import SELF_SERVICE, citas_flags, site_closure_flag
from ivr.ops.flags import Role
from ivr.ops.live import LiveFlags
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.changes import ChangeFeed, slots_topic, touch
from ivr.store.db import Database
from tests.unit.databases import BACKENDS, TEST_DB_TIMEOUT_S, migrated_database, url_for
from tests.unit.eventually import eventually

WITHIN = 3.0  # s: a change must reach the other process within this
SLOW_POLL = 60.0  # s: PostgreSQL readers poll slower than WITHIN: only NOTIFY is in time
ADMIN = Actor("ana", Role.ADMIN)
SOON = datetime.now(UTC) + timedelta(days=1)


def registry():  # type: ignore[no-untyped-def]
    return citas_flags(age_min=11, age_max=54, cups_in_scope=["890201"], sites={"norte": None})


def slot(n: int, site: str = "norte") -> Slot:
    return Slot(f"{site}-{n}", site, "d1", "890201", SOON + timedelta(hours=n), "morning")


@dataclass
class Process:
    """What one controller holds: its own engine and change feed."""

    db: Database
    feed: ChangeFeed
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def process(backend: str, tmp_path: Path) -> AsyncIterator[Process]:
    db = Database(url_for(backend, tmp_path), timeout=TEST_DB_TIMEOUT_S)
    feed = ChangeFeed(db, poll_s=SLOW_POLL if backend == "postgresql" else 0.05)
    task = asyncio.create_task(feed.run())
    try:
        if backend == "postgresql":
            await asyncio.wait_for(feed.listening.wait(), WITHIN)
        else:
            await eventually(lambda: feed.polls >= 1, within=WITHIN)
        yield Process(db, feed, task)
    finally:
        feed.stop()
        await task
        await db.close()


@pytest.fixture(params=BACKENDS)
async def two(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Process, Process]]:
    """Two processes on one migrated database: ``a`` writes, ``b`` reads."""
    async with migrated_database(request.param, tmp_path) as migrated:
        async with migrated.engine.begin() as conn:
            await conn.execute(text("DELETE FROM change_versions"))
        async with process(request.param, tmp_path) as a, process(request.param, tmp_path) as b:
            yield a, b


async def test_a_touch_in_one_process_reaches_the_others_feed(
    two: tuple[Process, Process],
) -> None:
    a, b = two
    seen: list[str] = []
    b.feed.subscribe(seen.append)
    before = b.feed.generation("flags")

    async with a.db.sessions.begin() as session:
        await touch(session, "flags")

    await eventually(lambda: b.feed.generation("flags") > before, within=WITHIN)
    assert "flags" in seen
    assert a.feed.generation("flags") >= 1  # its own write counted at once


async def test_a_rolled_back_touch_is_never_seen(two: tuple[Process, Process]) -> None:
    a, b = two
    with contextlib.suppress(RuntimeError):
        async with a.db.sessions.begin() as session:
            await touch(session, "slots.norte")
            raise RuntimeError("the writer's change failed")
    async with a.db.sessions.begin() as session:
        await touch(session, "flags")  # a later committed change, as a marker

    await eventually(lambda: b.feed.generation("flags") >= 1, within=WITHIN)
    await asyncio.sleep(0.2)  # any notification of the rolled-back one would be here by now
    assert b.feed.generation("slots.norte") == 0


# --- the fault kind: stale caches after another process's change, every topic ---


@dataclass(frozen=True)
class Topic:
    """A cached topic: how reader ``b`` reads it, and the change writer ``a`` makes."""

    name: str
    prepare: Callable[[Process, Process], Awaitable[None]]
    read: Callable[[Process], Awaitable[object]]
    change: Callable[[Process], Awaitable[None]]
    before: object
    after: object


_readers: dict[int, tuple[LiveFlags, asyncio.Task[None]]] = {}


async def _flags_reader(p: Process) -> LiveFlags:
    """A LiveFlags following p's feed; its own poll slower than the deadline."""
    if id(p) not in _readers:
        live = LiveFlags(OpsStore(p.db), registry(), poll_interval=SLOW_POLL)
        live.follow(p.feed)
        await live.refresh()
        _readers[id(p)] = (live, asyncio.create_task(live.run()))
    return _readers[id(p)][0]


async def _no_prepare(a: Process, b: Process) -> None:
    return None


async def _read_flag(p: Process, name: str) -> object:
    return (await _flags_reader(p)).value(name)


async def _set_flag(p: Process, name: str, value: object) -> None:
    await FlagService(OpsStore(p.db), registry()).set_flag(ADMIN, name, value, "prueba")


async def _seed(a: Process, b: Process) -> None:
    await DbSlotSource(a.db, timeout=TEST_DB_TIMEOUT_S).seed_slots([slot(1), slot(2)])


async def _first_free(p: Process) -> object:
    found = await _slots_of(p).find(site_id="norte", cups="890201")
    return [s.id for s in found]


_sources: dict[int, DbSlotSource] = {}


def _slots_of(p: Process) -> DbSlotSource:
    return _sources.setdefault(id(p), DbSlotSource(p.db, timeout=TEST_DB_TIMEOUT_S, feed=p.feed))


async def _book_first(p: Process) -> None:
    await _slots_of(p).book("norte-1", affiliate_id="1001", call_id="c-a")


async def _add_earlier(p: Process) -> None:
    await _slots_of(p).seed_slots([slot(0)])


async def _free_all(p: Process) -> None:
    await _slots_of(p).delete_free_slots("norte")


TOPICS = [
    Topic("flags: a bool switched off", _no_prepare,
          lambda p: _read_flag(p, SELF_SERVICE), lambda p: _set_flag(p, SELF_SERVICE, False),
          True, False),
    Topic("flags: a site closed", _no_prepare,
          lambda p: _read_flag(p, site_closure_flag("norte")),
          lambda p: _set_flag(p, site_closure_flag("norte"), "2026-01-01"),
          None, "2026-01-01"),
    Topic("slots: the first one booked", _seed, _first_free, _book_first,
          ["norte-1"], ["norte-2"]),
    Topic("slots: an earlier one added", _seed, _first_free, _add_earlier,
          ["norte-1"], ["norte-0"]),
    Topic("slots: the site's free slots removed", _seed, _first_free, _free_all,
          ["norte-1"], []),
]  # fmt: skip


async def read_until(topic: Topic, reader: Process) -> object:
    """What ``reader`` reads, once it is ``topic.after`` or after WITHIN seconds."""
    seen = await topic.read(reader)
    for _ in range(int(WITHIN / 0.01)):
        if seen == topic.after:
            break
        await asyncio.sleep(0.01)
        seen = await topic.read(reader)
    return seen


@pytest.mark.parametrize("topic", TOPICS, ids=[t.name for t in TOPICS])
async def test_no_cache_serves_another_processs_old_data(
    two: tuple[Process, Process], topic: Topic
) -> None:
    a, b = two
    _readers.clear()
    _sources.clear()
    try:
        await topic.prepare(a, b)
        assert await topic.read(b) == topic.before  # b's cache is warm
        assert await topic.read(b) == topic.before
        await topic.read(a)

        await topic.change(a)

        for reader in (b, a):  # the other process, and the writer's own cache
            assert await read_until(topic, reader) == topic.after
    finally:
        for live, task in _readers.values():
            live.stop()
            await task


async def test_a_stale_slot_offered_by_one_process_is_never_double_booked(
    two: tuple[Process, Process],
) -> None:
    """b's cache still offers norte-1 (its feed has not seen a's booking yet):
    b's booking of it fails as taken, and b's next search offers norte-2."""
    a, b = two
    await DbSlotSource(a.db, timeout=TEST_DB_TIMEOUT_S).seed_slots([slot(1), slot(2)])
    source_a = DbSlotSource(a.db, timeout=TEST_DB_TIMEOUT_S, feed=a.feed)
    source_b = DbSlotSource(b.db, timeout=TEST_DB_TIMEOUT_S, feed=b.feed)
    b.feed.stop()  # b sees no change from now on: its cache is as stale as it gets
    await b.task
    offered = await source_b.find(site_id="norte", cups="890201")
    assert [s.id for s in offered] == ["norte-1"]

    await source_a.book("norte-1", affiliate_id="1001", call_id="c-a")
    assert [s.id for s in await source_b.find(site_id="norte", cups="890201")] == ["norte-1"]
    with pytest.raises(SlotTaken):
        await source_b.book("norte-1", affiliate_id="2002", call_id="c-b")

    assert [s.id for s in await source_b.find(site_id="norte", cups="890201")] == ["norte-2"]
    assert [bk.slot.id for bk in await source_a.pending_for("1001")] == ["norte-1"]
    assert await source_a.pending_for("2002") == []


async def test_the_feed_reloads_a_topic_after_a_load_that_overlapped_a_change(
    tmp_path: Path,
) -> None:
    """A load that ran while the topic changed is returned but not kept."""
    async with migrated_database("sqlite", tmp_path):
        pass
    async with process("sqlite", tmp_path) as p:
        from ivr.store.changes import Cached

        loads: list[int] = []

        async def load(key: str) -> int:
            loads.append(1)
            if len(loads) == 1:
                p.feed.changed(slots_topic(key))  # a change lands mid-load
            return len(loads)

        cache: Cached[str, int] = Cached(p.feed, slots_topic, load)
        assert await cache.get("norte") == 1
        assert await cache.get("norte") == 2  # not kept: loaded again
        assert await cache.get("norte") == 2  # kept now
        assert (cache.loads, cache.hits) == (2, 1)
