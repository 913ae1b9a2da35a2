"""The change feed: what another process changed in the database, soon (issue 13, part db).

Several controllers share one database (docs/perf/multi.md); each keeps in memory
what the calls read on every call (the flags snapshot, the free slots per site).
A writer of such data calls :func:`touch` (or ``ChangeFeed.touch``) with a *topic*
inside its own transaction:

- the row ``change_versions(topic, version)`` gets ``version + 1`` (committed or
  rolled back with the change itself, so a reader never sees the version move
  without the change);
- on PostgreSQL also ``pg_notify('citas_changes', topic)``, which PostgreSQL
  delivers to every listener at commit, and never for a rolled-back transaction.

Every process runs one :class:`ChangeFeed`: on PostgreSQL it LISTENs on
``citas_changes`` on a connection of its own (a change reaches it within ms of the
commit); on both databases it polls ``change_versions`` every ``poll_s``
(``CITAS_CHANGES_POLL_S``, default 0.5 s): on SQLite that is how changes arrive,
on PostgreSQL it is the fallback for notifications lost while the listening
connection was down. Readers learn of a change through :meth:`ChangeFeed.generation`
(a per-topic counter that moves on every change seen) or a subscription.

Topics (the writers are listed where the topic is defined): ``flags`` (every
flag change, ``ivr.ops.store``), ``slots.<site_id>`` (a slot of that site taken,
freed, added or removed, ``ivr.booking.db``).

:class:`Cached` is the read side: a value per key, reloaded when its topic's
generation moved since it was loaded (a load that overlaps a change is not kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.failures import failure_text
from ivr.store.db import Database, StoreUnavailable, dialect_insert
from ivr.store.models import ChangeVersionRow

logger = logging.getLogger(__name__)

CHANNEL = "citas_changes"  # the PostgreSQL NOTIFY channel
POLL_S = 0.5  # CITAS_CHANGES_POLL_S's default
RECONNECT_S = 1.0  # between attempts to LISTEN again after the connection dropped
FLAGS = "flags"


def slots_topic(site_id: str) -> str:
    """The topic of site ``site_id``'s slots (booked, freed, seeded, removed)."""
    return f"slots.{site_id}"


# The feed of this process, told of its own writes at once (see touch).
_local: list[ChangeFeed] = []


async def touch(session: AsyncSession, topic: str) -> None:
    """Mark ``topic`` changed, inside the writer's transaction (``session``).

    The version row moves with the transaction; on PostgreSQL the notification is
    sent at commit. This process's feeds count the change at once (their readers
    must not serve their own write's old data for a poll interval) and again right
    after the commit: a reader that loaded in between read the old data (the
    flags' revision, say) and is told to load once more, without waiting for the
    feed's poll (0.5 s on SQLite). Raises what the session raises (the writer's
    transaction fails with it).
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    statement = dialect_insert(dialect, ChangeVersionRow).values(topic=topic, version=1)
    statement = statement.on_conflict_do_update(
        index_elements=[ChangeVersionRow.topic], set_={"version": ChangeVersionRow.version + 1}
    )
    await session.execute(statement)
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, :topic)"),
                              {"channel": CHANNEL, "topic": topic})  # fmt: skip
    feeds = [feed for feed in _local if feed.db.engine is session.bind]  # this process's
    for feed in feeds:
        feed.changed(topic)
    if feeds:

        def committed(_session: object) -> None:
            for feed in feeds:
                feed.changed(topic)

        event.listen(session.sync_session, "after_commit", committed, once=True)


Listener = Callable[[str], None]


class ChangeFeed:
    """Changes made by any process, per topic (see the module docstring).

    ``generation(topic)`` is a local counter: it moves every time this feed sees
    ``topic`` change (a notification, a version moved at a poll, this process's own
    :func:`touch`), never otherwise. ``subscribe(listener)`` calls
    ``listener(topic)`` on each such change (from the event loop; it must not block).
    """

    def __init__(self, db: Database, *, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self.listening = asyncio.Event()  # PostgreSQL: the LISTEN connection is up
        self.polls = 0  # completed polls (tests wait on it)
        self._generations: dict[str, int] = {}
        self._versions: dict[str, int] | None = None  # as of the last poll
        self._listeners: list[Listener] = []
        self._stop = asyncio.Event()
        self._healthy = True
        _local.append(self)

    @property
    def postgresql(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    def generation(self, topic: str) -> int:
        return self._generations.get(topic, 0)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def touch(self, session: AsyncSession, topic: str) -> None:
        """:func:`touch`, for writers that hold the feed."""
        await touch(session, topic)

    def changed(self, topic: str) -> None:
        """Count a change of ``topic`` and tell the listeners."""
        self._generations[topic] = self._generations.get(topic, 0) + 1
        for listener in list(self._listeners):
            try:
                listener(topic)
            except Exception:  # one broken listener must not starve the others
                logger.exception("change feed listener failed on %s", topic)

    async def poll(self) -> list[str]:
        """Read every topic's version once; the topics whose version moved since the
        last poll (none at the first), each counted as changed. Raises StoreUnavailable."""

        async def op(session: AsyncSession) -> dict[str, int]:
            rows = await session.execute(select(ChangeVersionRow.topic, ChangeVersionRow.version))
            return {str(t): int(v) for t, v in rows.all()}

        versions = await self.db.run("read the change versions", op)
        before, self._versions = self._versions, versions
        if before is None:
            return []
        moved = [t for t, v in versions.items() if before.get(t) != v]
        for topic in moved:
            self.changed(topic)
        return moved

    async def run(self) -> None:
        """Poll (and on PostgreSQL listen) until ``stop()``."""
        listener = asyncio.create_task(self._listen(), name="changes-listen") if (
            self.postgresql) else None  # fmt: skip
        try:
            while not self._stop.is_set():
                try:
                    await self.poll()
                    if not self._healthy:
                        logger.info("change feed: database readable again")
                    self._healthy = True
                except StoreUnavailable as exc:
                    if self._healthy:
                        logger.warning("change feed: cannot poll (%s)", exc)
                    self._healthy = False
                self.polls += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.poll_s)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ValueError):
            _local.remove(self)

    async def _listen(self) -> None:
        """LISTEN on a connection of our own (asyncpg), reconnecting while running.
        After a reconnection every topic counts as changed (notifications sent
        while we were away are lost; the poll would catch them only later)."""
        import asyncpg  # type: ignore[import-untyped]  # PostgreSQL only: the driver of postgresql+asyncpg URLs

        url = self.db.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        first = True
        while not self._stop.is_set():
            try:
                await self._listen_once(asyncpg, dsn, resync=not first)
                logger.warning("change feed: the LISTEN connection dropped; reconnecting")
            except (OSError, DBAPIError, asyncpg.PostgresError, TimeoutError) as exc:
                logger.warning("change feed: cannot LISTEN (%s); retrying", failure_text(exc))
            first = False
            await asyncio.sleep(RECONNECT_S)

    async def _listen_once(self, asyncpg: Any, dsn: str, *, resync: bool) -> None:
        """One LISTEN connection, until it drops."""
        conn: Any = None
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(dsn, timeout=self.db.timeout)
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(
                CHANNEL, lambda _c, _pid, _channel, payload: self.changed(str(payload))
            )
            if resync:
                for topic in list(self._generations):
                    self.changed(topic)
            self.listening.set()
            await lost.wait()
        finally:
            self.listening.clear()
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Cached(Generic[K, V]):
    """Values loaded by ``load(key)``, kept until ``topic_of(key)`` changes.

    A load that overlaps a change of its topic (the feed's generation moved while
    it ran) is returned to its caller but not kept: the next read loads again. So
    after a change is seen, no read returns data loaded before it.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        topic_of: Callable[[K], str],
        load: Callable[[K], Awaitable[V]],
    ) -> None:
        self.feed = feed
        self.topic_of = topic_of
        self.load = load
        self.hits = 0
        self.loads = 0
        self._values: dict[K, tuple[int, V]] = {}

    def invalidate(self) -> None:
        """Count every cached key's topic as changed here: for a reader that learnt
        the data is stale before the feed did (a slot it offered was taken)."""
        for topic in sorted({self.topic_of(key) for key in self._values}):
            self.feed.changed(topic)

    async def get(self, key: K) -> V:
        topic = self.topic_of(key)
        generation = self.feed.generation(topic)
        kept = self._values.get(key)
        if kept is not None and kept[0] == generation:
            self.hits += 1
            return kept[1]
        self.loads += 1
        value = await self.load(key)
        if self.feed.generation(topic) == generation:
            self._values[key] = (generation, value)
        else:
            self._values.pop(key, None)
        return value
