"""The controller registry: every controller process, on every node, in the shared database.

Each controller process (``ivr serve`` and each of its voice workers, on every
Asterisk node) writes a heartbeat to its row of ``ops_controllers`` (migration
0015), keyed by its source id ``instance@host:pid`` (the ``source`` of the
alerts it raises): its node, Stasis application, the flags revision it runs,
its booking breaker's state, its calls in progress and whether its ARI
connection is up (``ivr.ops.heartbeat`` writes it). Any ops API then shows them
all (``GET /api/controllers``, the console's "Nodos y controladores"):

    health        rule (the age of the last heartbeat, ``seen_at``)
    active        "activo": seen within ``STALE_AFTER_S`` (``MISSED_BEATS`` beats)
    unresponsive  "sin respuesta": older, and not stopped (killed, hung, or cut off
                  from the database)
    stopped       "detenido": it marked its row at a clean stop

A controller's flags are ``current`` ("al día") when the revision it reported is
the database's (``ops_state.revision``), else behind ("atrasado"). The age is the
reading process's clock against the writer's: the nodes' clocks must agree to
well within a beat (NTP).

Rows whose last heartbeat is older than ``PRUNE_AFTER`` (stopped or gone) are
deleted by the heartbeats themselves. Storage failures raise
``ivr.store.StoreUnavailable``.

A controller's own alerts (source ``instance@host:pid``: its booking breaker) end
with the process, so they are resolved, in the beat's own transaction, when it is
known to be gone: at its clean stop; when a new process takes its key over (a
container's pid 1), those raised before the new one started; and when its row is
pruned (migration 0016 resolved those that older code left open). An unresponsive
controller keeps them open until then: it may be alive and cut off from the
database, its breaker still open. A node's alerts (source: the
instance, a broken flag rule) are the node's and outlive its processes.

>>> from datetime import UTC
>>> now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
>>> health_of(now - timedelta(seconds=4), None, now), health_of(now - timedelta(minutes=1), None, now)
('active', 'unresponsive')
>>> health_of(now, now, now)
'stopped'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update

from ivr.ops.store import Alert
from ivr.ops.tables import AlertRow, ControllerRow, OpsStateRow
from ivr.store.db import Database, dialect_insert

# A beat every 5 s: the console refreshes every 10 s, so each refresh sees a beat
# at most half a refresh old; one small upsert per process every 5 s is nothing
# beside a busy controller's call records (tens of rows a second). A change of the
# flags revision or of the breaker is written at once, not a beat later.
HEARTBEAT_S = 5.0
# Three missed beats before "sin respuesta": one beat may wait the database's whole
# deadline (``request_timeout``, 5 s by default) and the next one be late behind
# it, without a living controller being shown as lost.
MISSED_BEATS = 3
STALE_AFTER_S = HEARTBEAT_S * MISSED_BEATS
# A controller gone (stopped or dead) for a day is history, not state: its row goes.
PRUNE_AFTER = timedelta(days=1)

ACTIVE, UNRESPONSIVE, STOPPED = "active", "unresponsive", "stopped"
HEALTH_ORDER = {ACTIVE: 0, UNRESPONSIVE: 1, STOPPED: 2}


def health_of(seen_at: datetime, stopped_at: datetime | None, now: datetime) -> str:
    """``stopped`` when it stopped cleanly, else ``active`` when seen within
    ``STALE_AFTER_S`` of ``now``, else ``unresponsive``."""
    if stopped_at is not None:
        return STOPPED
    return ACTIVE if (now - seen_at).total_seconds() <= STALE_AFTER_S else UNRESPONSIVE


@dataclass(frozen=True)
class ControllerIdentity:
    """Who beats: fixed for the life of the process."""

    source_id: str  # instance@host:pid, the source of its alerts
    instance: str  # the node
    host: str
    pid: int
    app: str  # its Stasis application (slot)
    started_at: datetime


@dataclass(frozen=True)
class ControllerStatus:
    """What a beat reports: read from the process at each beat."""

    flags_revision: int  # -1: never read the flags
    breaker: str | None  # closed, open, half_open; None: no booking breaker
    active_calls: int
    ari_connected: bool


@dataclass(frozen=True)
class ControllerEntry:
    """One row as read back."""

    identity: ControllerIdentity
    status: ControllerStatus
    seen_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True)
class Registry:
    """Every controller's row, the database's flags revision, and the open alerts
    whose source is a controller or a node (its instance), read at once."""

    revision: int
    controllers: tuple[ControllerEntry, ...]
    alerts: tuple[Alert, ...]


def _row_values(identity: ControllerIdentity, status: ControllerStatus) -> dict[str, Any]:
    return {
        "source_id": identity.source_id, "instance": identity.instance, "host": identity.host,
        "pid": identity.pid, "app": identity.app, "started_at": identity.started_at,
        "flags_revision": status.flags_revision, "breaker": status.breaker,
        "active_calls": status.active_calls, "ari_connected": status.ari_connected,
    }  # fmt: skip


def _entry(row: Mapping[Any, Any]) -> ControllerEntry:
    identity = ControllerIdentity(
        row["source_id"], row["instance"], row["host"], row["pid"], row["app"], row["started_at"]
    )
    status = ControllerStatus(
        row["flags_revision"], row["breaker"], row["active_calls"], bool(row["ari_connected"])
    )
    return ControllerEntry(identity, status, row["seen_at"], row["stopped_at"])


class ControllerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def beat(
        self, identity: ControllerIdentity, status: ControllerStatus, now: datetime
    ) -> int:
        """Upsert this controller's row as seen ``now`` (not stopped), resolve the
        alerts of processes known to be gone (its predecessor's under its key, the
        pruned ones'), and delete the rows last seen before ``now - PRUNE_AFTER``, in
        one transaction; how many were deleted."""
        return await self._write("write a controller heartbeat", identity, status, now, None)

    async def stopped(
        self, identity: ControllerIdentity, status: ControllerStatus, now: datetime
    ) -> None:
        """The last beat of a clean stop: the row is marked stopped ``now``, and the
        process's own open alerts are resolved."""
        await self._write("mark a controller stopped", identity, status, now, now)

    async def _write(
        self,
        what: str,
        identity: ControllerIdentity,
        status: ControllerStatus,
        now: datetime,
        stopped_at: datetime | None,
    ) -> int:
        values = {**_row_values(identity, status), "seen_at": now, "stopped_at": stopped_at}
        # started_at too: a container's controller is pid 1 on the host's name after
        # every restart, so a new process may find its key taken by its predecessor.
        changing = {k: v for k, v in values.items() if k != "source_id"}
        mine = AlertRow.source == identity.source_id

        def write(conn: Connection) -> int:
            before = conn.execute(
                select(ControllerRow.started_at).where(
                    ControllerRow.source_id == identity.source_id
                )
            ).scalar_one_or_none()
            insert = dialect_insert(conn.dialect.name, ControllerRow).values(values)
            conn.execute(insert.on_conflict_do_update(index_elements=["source_id"], set_=changing))
            gone = (
                conn.execute(
                    select(ControllerRow.source_id).where(ControllerRow.seen_at < now - PRUNE_AFTER)
                )
                .scalars()
                .all()
            )
            # Alerts of processes known to be gone (the module's docstring), looked for
            # only when one is: most beats write nothing to the alerts.
            ended = []
            if stopped_at is not None:
                ended.append(mine)
            elif before is not None and before != identity.started_at:
                ended.append(and_(mine, AlertRow.at < identity.started_at))  # its predecessor
            if gone:
                ended.append(AlertRow.source.in_(gone))
            if ended:
                conn.execute(
                    update(AlertRow)
                    .where(AlertRow.resolved_at.is_(None), or_(*ended))
                    .values(resolved_at=now)
                )
            if not gone:
                return 0
            pruned = conn.execute(delete(ControllerRow).where(ControllerRow.source_id.in_(gone)))
            return int(pruned.rowcount)

        return await self.db.write_sync(what, write)

    async def registry(self) -> Registry:
        """Every row (none pruned here), the flags revision, the open alerts of the
        controllers and of their nodes."""

        def read(conn: Connection) -> Registry:
            revision = conn.execute(select(OpsStateRow.revision).where(OpsStateRow.id == 1))
            rows = conn.execute(select(ControllerRow.__table__)).mappings().all()
            entries = tuple(_entry(row) for row in rows)
            sources = {e.identity.source_id for e in entries} | {
                e.identity.instance for e in entries
            }
            alerts = conn.execute(
                select(AlertRow)
                .where(AlertRow.resolved_at.is_(None), AlertRow.source.in_(sorted(sources)))
                .order_by(AlertRow.id.desc())
            ).all() if sources else []  # fmt: skip
            found = tuple(
                Alert(a.id, a.at, a.kind, a.source, a.detail, a.resolved_at) for a in alerts
            )
            return Registry(int(revision.scalar_one()), entries, found)

        return await self.db.read_sync("read the controller registry", read)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def controller_json(
    entry: ControllerEntry, revision: int, alerts: Sequence[Alert], now: datetime
) -> dict[str, Any]:
    who, status = entry.identity, entry.status
    return {
        "source_id": who.source_id, "instance": who.instance, "host": who.host, "pid": who.pid,
        "app": who.app, "started_at": who.started_at.isoformat(),
        "seen_at": entry.seen_at.isoformat(), "stopped_at": _iso(entry.stopped_at),
        "seen_age_s": round(max(0.0, (now - entry.seen_at).total_seconds()), 1),
        "health": health_of(entry.seen_at, entry.stopped_at, now),
        "flags_revision": status.flags_revision, "flags_current": status.flags_revision >= revision,
        "breaker": status.breaker, "active_calls": status.active_calls,
        "ari_connected": status.ari_connected,
        "alerts": [a.as_json() for a in alerts if a.source == who.source_id],
    }  # fmt: skip


def registry_json(registry: Registry, now: datetime) -> dict[str, Any]:
    """``GET /api/controllers``: the nodes (``instance@host``, by name), each with its
    controllers (active first, then unresponsive, then stopped; by application, the
    newest first) and its own open alerts (source: the instance, e.g. a broken flag
    rule found at start)."""
    nodes: dict[tuple[str, str], list[ControllerEntry]] = {}
    for entry in registry.controllers:
        nodes.setdefault((entry.identity.instance, entry.identity.host), []).append(entry)
    out = []
    for (instance, host), entries in sorted(nodes.items()):
        entries.sort(key=lambda e: -e.identity.started_at.timestamp())
        entries.sort(
            key=lambda e: (HEALTH_ORDER[health_of(e.seen_at, e.stopped_at, now)], e.identity.app)
        )
        out.append({
            "node": f"{instance}@{host}", "instance": instance, "host": host,
            "controllers": [controller_json(e, registry.revision, registry.alerts, now) for e in entries],
            "alerts": [a.as_json() for a in registry.alerts if a.source == instance],
        })  # fmt: skip
    return {
        "as_of": now.isoformat(), "flags_revision": registry.revision,
        "heartbeat_s": HEARTBEAT_S, "stale_after_s": STALE_AFTER_S, "nodes": out,
    }  # fmt: skip
