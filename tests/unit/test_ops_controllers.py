"""The controller registry (ivr/ops/controllers.py) and the heartbeat (ivr/ops/heartbeat.py)
on the real database of each backend, and the runtime that beats (ivr/ops/runtime.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from alembic import command

from ivr.booking.model import BookingUnavailable
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.breaker import BreakerSlotSource
from ivr.ops.controllers import (
    HEARTBEAT_S,
    PRUNE_AFTER,
    STALE_AFTER_S,
    ControllerIdentity,
    ControllerStatus,
    ControllerStore,
    registry_json,
)
from ivr.ops.flags import BREAKER_OPEN_SECONDS, Role
from ivr.ops.heartbeat import Heartbeat
from ivr.ops.metrics import Metrics
from ivr.ops.runtime import BREAKER_ALERT, OpsRuntime
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import Change, OpsStore, utcnow
from ivr.settings import Ports, Settings
from ivr.store.db import Database, alembic_config
from tests.unit.eventually import eventually
from tests.unit.test_ops_breaker import FlakySource

ADMIN = Actor("cli:test", Role.ADMIN)
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
OK = ControllerStatus(flags_revision=0, breaker="closed", active_calls=2, ari_connected=True)


def who(instance: str, pid: int, app: str = "citas-ivr", host: str = "box") -> ControllerIdentity:
    return ControllerIdentity(f"{instance}@{host}:{pid}", instance, host, pid, app,
                              NOW - timedelta(hours=1))  # fmt: skip


def by_source(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["source_id"]: c for n in answer["nodes"] for c in n["controllers"]}


async def test_a_fresh_controller_is_active_and_grouped_under_its_node(db: Database) -> None:
    store = ControllerStore(db)
    await store.beat(who("lab-n1", 11), OK, NOW)
    await store.beat(who("lab-n1", 12, app="citas-ivr-2"), replace(OK, active_calls=0), NOW)
    await store.beat(who("lab-n2", 21), OK, NOW - timedelta(seconds=3))
    answer = registry_json(await store.registry(), NOW)
    assert [n["node"] for n in answer["nodes"]] == ["lab-n1@box", "lab-n2@box"]
    first = answer["nodes"][0]["controllers"]
    assert [(c["app"], c["pid"], c["active_calls"]) for c in first] == [
        ("citas-ivr", 11, 2), ("citas-ivr-2", 12, 0),
    ]  # fmt: skip
    one = by_source(answer)["lab-n2@box:21"]
    assert one["health"] == "active" and one["seen_age_s"] == 3.0
    assert one["flags_current"] and one["breaker"] == "closed" and one["ari_connected"]
    assert one["stopped_at"] is None and one["alerts"] == []
    assert answer["heartbeat_s"] == HEARTBEAT_S and answer["stale_after_s"] == STALE_AFTER_S


async def test_a_controller_past_three_missed_beats_is_unresponsive(db: Database) -> None:
    store = ControllerStore(db)
    await store.beat(who("lab-n1", 11), OK, NOW - timedelta(seconds=STALE_AFTER_S))
    await store.beat(who("lab-n1", 12), OK, NOW - timedelta(seconds=STALE_AFTER_S + 1))
    health = {
        s: c["health"] for s, c in by_source(registry_json(await store.registry(), NOW)).items()
    }
    assert health == {"lab-n1@box:11": "active", "lab-n1@box:12": "unresponsive"}


async def test_a_clean_stop_marks_the_controller_stopped(db: Database) -> None:
    store = ControllerStore(db)
    beat = Heartbeat(store, who("lab-n1", 11), lambda: OK, interval_s=0.05)
    task = asyncio.create_task(beat.run())
    await eventually(lambda: beat.beats >= 2)
    beat.stop()
    await task
    assert await beat.mark_stopped()
    (one,) = by_source(registry_json(await store.registry(), utcnow())).values()
    assert one["health"] == "stopped" and one["stopped_at"] is not None
    # A stop outranks the heartbeat's age: a day later it is still "stopped", not lost.
    later = registry_json(await store.registry(), utcnow() + timedelta(hours=23))
    assert by_source(later)["lab-n1@box:11"]["health"] == "stopped"


async def test_a_restarted_container_s_controller_takes_its_key_over(db: Database) -> None:
    # In a container the controller is pid 1 on the host's name after every restart:
    # the new process's key is its predecessor's, and the row becomes the new one.
    store = ControllerStore(db)
    old = who("dk-n1", 1)
    await store.stopped(old, OK, NOW)
    new = replace(old, started_at=NOW + timedelta(minutes=1))
    await store.beat(new, OK, NOW + timedelta(minutes=1, seconds=1))
    (one,) = by_source(
        registry_json(await store.registry(), NOW + timedelta(minutes=1, seconds=2))
    ).values()
    assert one["health"] == "active" and one["stopped_at"] is None
    assert one["started_at"] == new.started_at.isoformat()


async def test_controllers_gone_for_a_day_are_pruned_by_a_beat(db: Database) -> None:
    store = ControllerStore(db)
    await store.stopped(who("lab-n1", 1), OK, NOW - PRUNE_AFTER - timedelta(seconds=1))
    await store.beat(who("lab-n1", 2), OK, NOW - PRUNE_AFTER - timedelta(seconds=1))  # killed
    await store.stopped(who("lab-n1", 3), OK, NOW - PRUNE_AFTER + timedelta(minutes=1))
    assert await store.beat(who("lab-n2", 4), OK, NOW) == 2
    assert set(by_source(registry_json(await store.registry(), NOW))) == {
        "lab-n1@box:3", "lab-n2@box:4",
    }  # fmt: skip


async def test_a_controller_on_an_older_flags_revision_is_behind(db: Database) -> None:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    await service.set_flag(ADMIN, "promo_audio", False, "campaña pausada")
    revision = await service.store.revision()
    store = ControllerStore(db)
    await store.beat(who("lab-n1", 11), replace(OK, flags_revision=revision), NOW)
    await store.beat(who("lab-n2", 21), replace(OK, flags_revision=revision - 1), NOW)
    answer = registry_json(await store.registry(), NOW)
    assert answer["flags_revision"] == revision
    current = {s: (c["flags_revision"], c["flags_current"]) for s, c in by_source(answer).items()}
    assert current == {"lab-n1@box:11": (revision, True), "lab-n2@box:21": (revision - 1, False)}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, instance="lab-n1", ports=Ports(ops_http=unused_port()))


async def test_the_runtime_reports_a_new_revision_at_once_and_its_stop(
    db: Database, settings: Settings
) -> None:
    ops = OpsRuntime(settings, db, flag_registry(load_reference()), Metrics())
    await ops.start()
    heartbeat = ops.start_heartbeat(lambda: 3, lambda: True)
    store = ControllerStore(db)
    await eventually(lambda: heartbeat.beats >= 1)
    await ops.service.set_flag(ADMIN, "promo_audio", False, "campaña pausada")
    revision = await ops.store.revision()

    async def reported() -> dict[str, Any]:
        return by_source(registry_json(await store.registry(), utcnow()))[ops.source_id]

    # Well within one beat: the reload wakes the heartbeat (the poll reloads in 0.2 s).
    async with asyncio.timeout(HEARTBEAT_S / 2):
        while (await reported())["flags_revision"] != revision:  # noqa: ASYNC110 (the database)
            await asyncio.sleep(0.05)
    row = await reported()
    assert row["flags_current"] and row["health"] == "active"
    assert (row["instance"], row["host"], row["pid"]) == (
        "lab-n1",
        socket.gethostname(),
        os.getpid(),
    )
    assert (row["app"], row["active_calls"], row["ari_connected"]) == (settings.app_name, 3, True)
    assert row["breaker"] is None  # no booking source guarded in this process
    await ops.stop()
    assert (await reported())["health"] == "stopped"


async def guarded_runtime(
    db: Database, settings: Settings
) -> tuple[OpsRuntime, FlakySource, BreakerSlotSource, Heartbeat]:
    """A started runtime guarding a FlakySource, its heartbeat past its first beat."""
    ops = OpsRuntime(settings, db, flag_registry(load_reference()), Metrics())
    await ops.start()
    source = FlakySource()
    slots = ops.guard(source)
    heartbeat = ops.start_heartbeat(lambda: 0, lambda: True)
    await eventually(lambda: heartbeat.beats >= 1)
    return ops, source, slots, heartbeat


async def open_breaker(ops: OpsRuntime, slots: BreakerSlotSource) -> None:
    """Callers fail on the booking service until ``ops``' breaker opens."""
    assert ops.breaker is not None
    while ops.breaker.state == "closed":
        with pytest.raises(BookingUnavailable):
            await slots.find(site_id="norte", cups="890201")


async def test_an_open_breaker_shows_with_its_alert_on_its_controller(
    db: Database, settings: Settings
) -> None:
    ops, source, slots, heartbeat = await guarded_runtime(db, settings)
    source.failing, source.healthy = True, False
    await open_breaker(ops, slots)
    store = ControllerStore(db)
    await eventually(lambda: heartbeat.beats >= 2)  # woken by the transition

    async def reported() -> dict[str, Any]:
        return by_source(registry_json(await store.registry(), utcnow()))[ops.source_id]

    async with asyncio.timeout(HEARTBEAT_S / 2):
        while not (await reported())["alerts"]:  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.05)
    row = await reported()
    assert row["breaker"] in ("open", "half_open")
    (alert,) = row["alerts"]
    assert alert["kind"] == BREAKER_ALERT and alert["source"] == ops.source_id
    await ops.stop()


async def test_no_breaker_alert_outlives_the_stop_that_marks_the_controller_stopped(
    db: Database, settings: Settings
) -> None:
    """The stop's last beat resolves this process's open alerts, so an alert written
    after it would stay open until the row is pruned. A breaker alert being written
    when the stop begins is waited for (then resolved); a breaker that opens after
    the stop began raises none (a call failing on the booking service as the
    controller goes)."""
    ops, source, slots, _ = await guarded_runtime(db, settings)
    writing, release = asyncio.Event(), asyncio.Event()
    raise_alert = ops.store.raise_alert

    async def slow_raise(kind: str, source_id: str, detail: str, now: datetime) -> int:
        writing.set()
        await release.wait()
        return await raise_alert(kind, source_id, detail, now)

    ops.store.raise_alert = slow_raise  # type: ignore[method-assign]
    source.failing, source.healthy = True, False
    opening = asyncio.create_task(open_breaker(ops, slots))
    async with asyncio.timeout(5):
        await writing.wait()
    stopping = asyncio.create_task(ops.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waits for the alert being written
    release.set()
    async with asyncio.timeout(10):
        await asyncio.gather(opening, stopping)
    assert ops.source_id not in {source for source, _ in await open_alerts(db)}
    assert probes() == []  # the transition ended after close(): it started no probe

    # A breaker that opens once the stop has begun (here: after it) raises none.
    later, later_source, later_slots, _ = await guarded_runtime(db, settings)
    await later.stop()
    later_source.failing = True
    await open_breaker(later, later_slots)
    assert later.source_id not in {source for source, _ in await open_alerts(db)}
    assert probes() == []


def probes() -> list[asyncio.Task[Any]]:
    """Breaker probes still running (``CircuitBreaker`` names its task)."""
    return [t for t in asyncio.all_tasks() if t.get_name() == "breaker-probe" and not t.done()]


async def test_a_probe_recording_the_breaker_closed_when_the_stop_begins_is_waited_for(
    db: Database, settings: Settings
) -> None:
    """The probe found the booking service back and is recording it (its alert
    resolved, ``breaker_closed`` in the audit log) when the stop begins: the stop
    waits for the record instead of cancelling it half written."""
    ops, source, slots, _ = await guarded_runtime(db, settings)
    await ops.service.set_flag(ADMIN, BREAKER_OPEN_SECONDS, 1, "probar pronto")
    await ops.live.refresh()
    recording, release = asyncio.Event(), asyncio.Event()
    record_event = ops.store.record_event

    async def slow_record(change: Change, now: datetime) -> None:
        if change.action == "breaker_closed":
            recording.set()
            await release.wait()
        await record_event(change, now)

    ops.store.record_event = slow_record  # type: ignore[method-assign]
    source.failing, source.healthy = True, False
    await open_breaker(ops, slots)
    source.failing, source.healthy = False, True
    async with asyncio.timeout(10):
        await recording.wait()  # the probe (after 1 s) is recording the close
    stopping = asyncio.create_task(ops.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done()
    release.set()
    async with asyncio.timeout(10):
        await stopping

    assert [e.action for e in await ops.store.audit() if e.action.startswith("breaker_")][:2] == [
        "breaker_closed",
        "breaker_open",
    ]  # newest first
    assert ops.source_id not in {source for source, _ in await open_alerts(db)}
    assert probes() == []


async def test_a_node_shows_the_alerts_raised_under_its_instance(db: Database) -> None:
    store = ControllerStore(db)
    await store.beat(who("lab-n1", 11), OK, NOW)
    await OpsStore(db).raise_alert("flag_rule_broken", "lab-n1", "la edad mínima…", NOW)
    await OpsStore(db).raise_alert("flag_rule_broken", "otra", "no es de este nodo", NOW)
    (node,) = registry_json(await store.registry(), NOW)["nodes"]
    assert [a["source"] for a in node["alerts"]] == ["lab-n1"]
    assert node["controllers"][0]["alerts"] == []


async def open_alerts(db: Database) -> list[tuple[str, str]]:
    return sorted((a.source, a.detail) for a in await OpsStore(db).alerts(open_only=True))


async def test_a_controller_s_alerts_end_when_it_is_known_to_be_gone(db: Database) -> None:
    # Its own alerts (its breaker) die with the process: at its clean stop, when a new
    # process takes its key over, when its row is pruned. Not while it is only
    # unresponsive (it may be cut off from the database, its breaker still open), and
    # never a node's (a broken flag rule) or another controller's.
    store, ops = ControllerStore(db), OpsStore(db)
    stopping, killed, hung = who("lab-n1", 11), who("dk-n1", 1), who("lab-n2", 21)
    long_gone, alive = who("lab-n3", 31), who("lab-n1", 12)
    await store.beat(long_gone, OK, NOW - PRUNE_AFTER - timedelta(minutes=1))
    for one in (stopping, killed, hung, alive):
        await store.beat(one, OK, NOW - timedelta(minutes=2))
    for one in (stopping, killed, hung, long_gone, alive):
        await ops.raise_alert(
            BREAKER_ALERT, one.source_id, f"breaker {one.pid}", NOW - timedelta(minutes=2)
        )
    await ops.raise_alert(
        "flag_rule_broken", "lab-n1", "regla del nodo", NOW - timedelta(minutes=2)
    )

    await store.stopped(stopping, OK, NOW)
    # The container restarted: pid 1 again, started after its predecessor's alert.
    reborn = replace(killed, started_at=NOW - timedelta(minutes=1))
    await store.beat(reborn, OK, NOW)
    await ops.raise_alert(BREAKER_ALERT, reborn.source_id, "breaker del nuevo", NOW)
    await store.beat(reborn, OK, NOW + timedelta(seconds=5))  # its own stays open
    assert await open_alerts(db) == [
        ("dk-n1@box:1", "breaker del nuevo"),
        ("lab-n1", "regla del nodo"),
        ("lab-n1@box:12", "breaker 12"),
        ("lab-n2@box:21", "breaker 21"),  # unresponsive for 2 min: kept
    ]  # fmt: skip
    rows = {e.identity.source_id for e in (await store.registry()).controllers}
    assert rows == {one.source_id for one in (stopping, killed, hung, alive)}  # pruned: lab-n3


async def test_a_live_controller_s_alert_is_not_taken_for_its_predecessor_s(db: Database) -> None:
    # Its wall clock stepped back (NTP) after it started: its breaker's alert reads
    # older than its start, yet no other process took its key: the alert stays.
    store, one = ControllerStore(db), who("lab-n1", 11)
    await store.beat(one, OK, NOW)
    await OpsStore(db).raise_alert(
        BREAKER_ALERT, one.source_id, "5 fallos", one.started_at - timedelta(seconds=30)
    )
    await store.beat(one, OK, NOW + timedelta(seconds=5))
    assert await open_alerts(db) == [(one.source_id, "5 fallos")]


async def test_migration_0016_resolves_the_breaker_alerts_of_processes_without_a_row(
    db: Database,
) -> None:
    # Left open for good before a pruned row resolved its alerts: those of processes
    # from before the registry (never a row) and of rows pruned by older code.
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0015"))
    store, ops, long_ago = ControllerStore(db), OpsStore(db), NOW - timedelta(days=3)
    listed = who("lab-n1", 11)
    await store.beat(listed, OK, NOW - timedelta(minutes=5))  # a row: its alert is its own
    orphans = ["lab-n1@box:7", "dk-n1@3f2a9c1d0b7e:1", "lab-n2@nodo-2.eps.example:40123"]
    for source in [listed.source_id, *orphans]:
        await ops.raise_alert(BREAKER_ALERT, source, f"breaker {source}", long_ago)
    await ops.raise_alert("flag_rule_broken", "lab-n1", "regla del nodo", long_ago)
    await ops.raise_alert(BREAKER_ALERT, "lab-n2", "fuente sin proceso", long_ago)
    await ops.raise_alert("otro_tipo", "lab-n1@box:8", "no es del breaker", long_ago)
    await ops.raise_alert(BREAKER_ALERT, "lab-n3@box:5", "ya resuelta", long_ago)
    await ops.resolve_alerts(BREAKER_ALERT, "lab-n3@box:5", long_ago + timedelta(hours=1))

    upgraded_at = datetime.now(UTC)
    await db.migrate()

    kept = [
        ("lab-n1", "regla del nodo"),
        ("lab-n1@box:11", "breaker lab-n1@box:11"),
        ("lab-n1@box:8", "no es del breaker"),
        ("lab-n2", "fuente sin proceso"),  # not a process's source: not its to resolve
    ]  # fmt: skip
    assert await open_alerts(db) == kept
    resolved = {a.source: a.resolved_at for a in await ops.alerts() if a.resolved_at}
    assert resolved.keys() == {*orphans, "lab-n3@box:5"}
    assert resolved["lab-n3@box:5"] == long_ago + timedelta(hours=1)  # not touched again
    assert all(resolved[s] >= upgraded_at for s in orphans)  # resolved at the upgrade
    async with db.engine.begin() as conn:  # the downgrade leaves them resolved
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0015"))
    assert await open_alerts(db) == kept
    await db.migrate()


async def test_a_database_outage_is_logged_once_and_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real driver against a port nothing listens on: the connection is refused.
    down = Database(f"postgresql+asyncpg://citas@127.0.0.1:{unused_port()}/citas", timeout=1.0)
    beat = Heartbeat(ControllerStore(down), who("lab-n1", 11), lambda: OK, interval_s=0.01)
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.ops.heartbeat"):
            task = asyncio.create_task(beat.run())
            await eventually(lambda: beat.failures >= 3, within=10.0)
            beat.stop()
            await task  # the loop went on: nothing raised
            assert not await beat.mark_stopped()
        assert beat.beats == 0
        lost = [r for r in caplog.records if "heartbeat not written" in r.getMessage()]
        assert len(lost) == 1  # once per outage, not once per beat
    finally:
        await down.close()
