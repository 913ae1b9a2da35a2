"""Rules across flags hold at every instant: the timeline against brute-force sampling.

The oracle here is written apart from ``ivr.ops.timeline``: it replays the
windows oldest first ("the last one written wins") at every half minute from
now on, while every boundary the strategies produce falls on a whole minute,
so the samples visit every stretch of constant values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ivr.citas.flags import AGE_BAND, AGE_MAX, AGE_MIN, PROMO_AUDIO, flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.flags import FlagValue, Role
from ivr.ops.metrics import Metrics
from ivr.ops.runtime import RULE_ALERT, OpsRuntime
from ivr.ops.service import Actor, FlagService, InvalidChange, RuleBroken, base_values
from ivr.ops.store import Change, OpsStore, Window, utcnow
from ivr.ops.timeline import check_instants, effective_at, first_violation
from ivr.settings import Settings
from ivr.store.db import Database
from tests.unit.databases import migrated_database

T0 = datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
ADMIN = Actor("token:ada", Role.ADMIN)
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HORIZON_MIN = 400  # every boundary the strategies draw is before T0 + HORIZON_MIN minutes
AGES = st.integers(0, 8)  # a narrow range, so that bands cross often


def minute(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


@st.composite
def windows(draw: st.DrawFn, count: int = 6, first_id: int = 0) -> list[Window]:
    """Windows on the age flags (and one unrelated flag), overlapping at random.

    ``created_at`` is drawn from a few minutes so that ties (same instant,
    decided by id) happen; ids are ``w00``, ``w01`` … so their order is plain.
    """
    out = []
    for i in range(draw(st.integers(0, count))):
        name = draw(st.sampled_from([AGE_MIN, AGE_MAX, AGE_MIN, AGE_MAX, PROMO_AUDIO]))
        value: FlagValue = draw(st.booleans()) if name == PROMO_AUDIO else draw(AGES)
        start = draw(st.integers(-60, 200))
        end = start + draw(st.integers(1, 180))
        created = minute(draw(st.integers(-3, -1)))  # before now: a new window is the newest
        out.append(
            Window(
                f"w{first_id + i:02d}", name, value, minute(start), minute(end), "r", created, "ana"
            )
        )
    return out


def oracle_values(base: dict[str, FlagValue], wins: Sequence[Window], at: datetime) -> dict[str, FlagValue]:  # fmt: skip
    values = dict(base)
    for w in sorted(wins, key=_written):  # oldest first
        if w.cancelled_at is None and w.starts_at <= at < w.ends_at:
            values[w.name] = w.value  # a newer window written later wins
    return values


def _written(w: Window) -> tuple[datetime, int]:
    """When a window was written: its creation, then (same instant) the higher id first."""
    return (w.created_at, -int(w.id[1:]) if w.id[1:].isdigit() else 0)


def samples(now: datetime) -> Iterator[datetime]:
    """``now``, then every half minute after it up to the horizon."""
    yield now
    t = T0 - timedelta(minutes=120)
    while t <= minute(HORIZON_MIN):
        if t > now:
            yield t
        t += timedelta(seconds=30)


def oracle_first_break(
    base: dict[str, FlagValue], wins: Sequence[Window], now: datetime
) -> datetime | None:
    for at in samples(now):
        values = oracle_values(base, wins, at)
        lo, hi = values[AGE_MIN], values[AGE_MAX]
        assert isinstance(lo, int) and isinstance(hi, int)
        if lo > hi:
            return at
    return None


NOWS = st.integers(0, 59).map(lambda s: T0 + timedelta(seconds=s))  # not on a boundary


# --- the timeline, pure ---------------------------------------------------------------------
@FUZZ
@given(lo=AGES, hi=AGES, wins=windows(count=8), now=NOWS)
def test_the_first_violation_is_the_first_broken_instant(
    lo: int, hi: int, wins: list[Window], now: datetime
) -> None:
    base: dict[str, FlagValue] = {AGE_MIN: lo, AGE_MAX: hi, PROMO_AUDIO: True}
    found = first_violation((AGE_BAND,), base, wins, now)
    expected = oracle_first_break(base, wins, now)
    assert (found.at if found else None) == expected
    if found is not None:
        values = oracle_values(base, wins, found.at)
        assert found.problem == (
            f"{AGE_MIN} ({values[AGE_MIN]}) quedaría por encima de {AGE_MAX} ({values[AGE_MAX]})"
        )
        assert all(w.active_at(found.at) for w in found.windows)
        assert {w.name: w.value for w in found.windows}.items() <= values.items()


@FUZZ
@given(wins=windows(count=8), now=NOWS, offset_s=st.integers(0, HORIZON_MIN * 60))
def test_values_are_constant_between_the_instants_checked(
    wins: list[Window], now: datetime, offset_s: int
) -> None:
    # Step 2 of the proof in ivr/ops/timeline.py: any instant has the values of the
    # last instant checked before it.
    base: dict[str, FlagValue] = {AGE_MIN: 1, AGE_MAX: 2, PROMO_AUDIO: True}
    at = now + timedelta(seconds=offset_s)
    checked = max(t for t in check_instants(wins, now) if t <= at)
    assert effective_at(base, wins, at) == effective_at(base, wins, checked)
    assert effective_at(base, wins, at) == oracle_values(base, wins, at)


def test_the_observation_a_window_on_age_max_and_a_new_age_min() -> None:
    # Issue 9 §5: age_max = 30 for one hour; setting age_min to 40 made the band 40–30.
    window = Window("w00", AGE_MAX, 30, T0, T0 + timedelta(hours=1), "r", T0, "ana")
    found = first_violation((AGE_BAND,), {AGE_MIN: 40, AGE_MAX: 54}, [window], T0)
    assert found is not None and found.at == T0 and found.windows == (window,)
    assert (
        "eligibility.age_min (40) quedaría por encima de eligibility.age_max (30)" in found.message
    )
    assert first_violation((AGE_BAND,), {AGE_MIN: 40, AGE_MAX: 54}, [], T0) is None


# --- the service on a real database: set, reset, schedule, cancel -----------------------------
@dataclass
class Ops:
    runner: asyncio.Runner
    db: Database
    service: FlagService


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    tmp: Path = tmp_path_factory.mktemp("timeline")
    with asyncio.Runner() as runner:
        context = migrated_database("sqlite", tmp)
        db = runner.run(context.__aenter__())
        try:
            registry = flag_registry(load_reference())
            yield Ops(runner, db, FlagService(OpsStore(db), registry, clock=lambda: T0))
        finally:
            runner.run(context.__aexit__(None, None, None))


async def _prepare(ops: Ops, lo: int, hi: int, existing: list[Window]) -> None:
    """Any stored state, even one the rules would refuse (as data written before them)."""
    async with ops.db.engine.begin() as conn:
        for table in ("ops_flags", "ops_windows", "ops_audit"):
            await conn.execute(text(f"DELETE FROM {table}"))
    store = ops.service.store
    for name, value in ((AGE_MIN, lo), (AGE_MAX, hi)):
        await store.set_value(name, value, Change("test", "admin", "set", "r", name), T0)
    for w in existing:
        await store.add_window(
            w, Change("test", "admin", "schedule", "r", w.name, None, w.value, w.id)
        )


OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from([AGE_MIN, AGE_MAX]), AGES),
    st.tuples(st.just("reset"), st.sampled_from([AGE_MIN, AGE_MAX]), st.none()),
    st.tuples(
        st.just("schedule"),
        st.sampled_from([AGE_MIN, AGE_MAX]),
        AGES,
        st.integers(-30, 200),
        st.integers(1, 180),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("set"), st.just(PROMO_AUDIO), st.booleans()),
)


@settings(FUZZ, max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(lo=AGES, hi=AGES, existing=windows(count=5), op=OPS)
def test_a_change_is_accepted_iff_the_rules_hold_at_every_instant(
    ops: Ops, lo: int, hi: int, existing: list[Window], op: tuple[object, ...]
) -> None:
    ops.runner.run(_prepare(ops, lo, hi, existing))
    service = ops.service
    live = [w for w in existing if w.ends_at > T0]
    before = ops.runner.run(service.store.snapshot(T0))
    base = base_values(service.registry, before)
    after_base, after_windows, touched = dict(base), list(live), ""
    match op:
        case ("set", str(name), value):
            after_base[name], touched = value, name
            attempt = service.set_flag(ADMIN, name, value, "motivo")
        case ("reset", str(name), None):
            after_base[name], touched = service.registry.get(name).default, name
            attempt = service.reset_flag(ADMIN, name, "motivo")
        case ("schedule", str(name), int(value), int(start), int(length)):
            new = Window("new", name, value, max(minute(start), T0), minute(start + length),
                         "motivo", T0, ADMIN.name)  # fmt: skip
            after_windows.append(new)
            touched = name
            attempt = service.schedule(ADMIN, name, value, minute(start), new.ends_at, "motivo")
        case ("cancel", int(index)):
            if not live:
                return  # nothing to cancel: the "already cancelled or over" path is tested apart
            gone = live[index % len(live)]
            after_windows.remove(gone)
            touched = gone.name
            attempt = service.cancel_window(ADMIN, gone.id, "motivo")
        case _:
            raise AssertionError(op)
    expected_break = (
        oracle_first_break(after_base, after_windows, T0) if touched != PROMO_AUDIO else None
    )
    try:
        ops.runner.run(attempt)
    except RuleBroken as refused:
        assert expected_break is not None, refused.message
        assert refused.violation.at == expected_break
        assert refused.details[0]["at"] == expected_break.isoformat()
        assert refused.details[0]["rule"] == "eligibility.age_band"
        assert ops.runner.run(service.store.snapshot(T0)) == before  # nothing written
        return
    assert expected_break is None, f"accepted, but the band breaks at {expected_break}"
    after = ops.runner.run(service.store.snapshot(T0))
    assert after.revision == before.revision + 1
    if touched != PROMO_AUDIO:
        assert oracle_first_break(base_values(service.registry, after), after.windows, T0) is None


# --- the observation and each kind of change, by name ------------------------------------------
@pytest.fixture
def service(db: Database) -> FlagService:
    return FlagService(OpsStore(db), flag_registry(load_reference()), clock=lambda: T0)


async def test_the_observation_is_refused_with_the_instant_and_the_rule(
    service: FlagService,
) -> None:
    window = await service.schedule(ADMIN, AGE_MAX, 30, T0, T0 + timedelta(hours=1), "prueba")
    revision = await service.store.revision()
    with pytest.raises(RuleBroken) as caught:
        await service.set_flag(ADMIN, AGE_MIN, 40, "ampliar")
    assert caught.value.error_id == "invalid"
    assert caught.value.message == (
        "el cambio rompería la regla «la edad mínima no puede superar la edad máxima» "
        "(eligibility.age_band) desde 2025-03-10T13:00:00+00:00: eligibility.age_min (40) "
        f"quedaría por encima de eligibility.age_max (30); ventanas activas entonces: "
        f"eligibility.age_max=30 ({window.id})"
    )
    assert await service.store.revision() == revision
    assert (await service.flag(AGE_MIN)).value == 11


async def test_a_future_window_is_judged_at_its_start(service: FlagService) -> None:
    await service.set_flag(ADMIN, AGE_MIN, 40, "ampliar")
    later = T0 + timedelta(hours=3)
    with pytest.raises(RuleBroken) as caught:
        await service.schedule(ADMIN, AGE_MAX, 30, later, later + timedelta(hours=1), "prueba")
    assert caught.value.violation.at == later
    await service.schedule(ADMIN, AGE_MAX, 40, later, later + timedelta(hours=1), "prueba")


async def test_cancelling_a_window_can_break_a_rule(service: FlagService) -> None:
    # age_min 40 is fine only while a window raises age_max to 60; the window
    # cannot be cancelled while age_min stays at 40.
    window = await service.schedule(ADMIN, AGE_MAX, 60, T0, T0 + timedelta(hours=2), "campaña")
    await service.schedule(ADMIN, AGE_MIN, 58, T0, T0 + timedelta(hours=1), "campaña")
    with pytest.raises(RuleBroken) as caught:
        await service.cancel_window(ADMIN, window.id, "fin")
    assert caught.value.violation.at == T0
    assert caught.value.details[0]["field"] == "window_id"
    assert (await service.flag(AGE_MAX)).value == 60


async def test_resetting_can_break_a_rule(service: FlagService) -> None:
    await service.set_flag(ADMIN, AGE_MAX, 90, "ampliar")
    await service.set_flag(ADMIN, AGE_MIN, 60, "ampliar")
    with pytest.raises(RuleBroken, match=r"eligibility.age_max \(54\)"):
        await service.reset_flag(ADMIN, AGE_MAX, "volver")
    await service.reset_flag(ADMIN, AGE_MIN, "volver")
    await service.reset_flag(ADMIN, AGE_MAX, "volver")


async def test_unrelated_changes_are_never_held_up_by_a_rule(service: FlagService) -> None:
    # A band broken by data written before the rules existed must not block the
    # incident switch or a window on another flag.
    await service.store.set_value(AGE_MIN, 60, Change("old", "admin", "set", "r", AGE_MIN), T0)
    await service.set_incident(ADMIN, True, "caída")
    await service.schedule(ADMIN, PROMO_AUDIO, False, T0, T0 + timedelta(hours=1), "campaña")
    with pytest.raises(InvalidChange):
        await service.set_flag(ADMIN, AGE_MAX, 50, "no arregla")
    await service.set_flag(ADMIN, AGE_MAX, 60, "arregla")


async def test_concurrent_changes_cannot_both_pass(service: FlagService) -> None:
    # Each change alone keeps the band; together they invert it. The check runs in
    # the change's transaction after its write lock, so one of the two is refused.
    results = await asyncio.gather(
        service.set_flag(ADMIN, AGE_MIN, 40, "uno"),
        service.set_flag(ADMIN, AGE_MAX, 30, "dos"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["FlagView", "RuleBroken"]
    lo, hi = (await service.flag(AGE_MIN)).value, (await service.flag(AGE_MAX)).value
    assert isinstance(lo, int) and isinstance(hi, int) and lo <= hi


# --- defaults come with the deployment: a rule they break is an alert ---------------------------
async def _start_with_defaults(db: Database, age_min: int, age_max: int) -> list[str]:
    """Start the ops runtime with a reference whose age band is ``age_min``-``age_max``;
    the open ``flag_rule_broken`` alerts' details."""
    reference = load_reference()
    eligibility = replace(reference.eligibility, age_min=age_min, age_max=age_max)
    registry = flag_registry(replace(reference, eligibility=eligibility))
    runtime = OpsRuntime(replace(Settings(), instance="rules"), db, registry, Metrics())
    await runtime.start()
    await runtime.stop()
    alerts = await runtime.store.alerts(open_only=True)
    return [a.detail for a in alerts if a.kind == RULE_ALERT]


@pytest.mark.parametrize("held_by", ["stored value", "window"])
async def test_new_defaults_that_break_a_rule_raise_an_alert(db: Database, held_by: str) -> None:
    # Observed: age_max = 30 set (or windowed) while the default age_min was 11; a
    # deployment then raised the band in eligibility.yaml to 40-60, and the
    # effective band became 40-30 with no change to refuse and nothing said.
    store, now = OpsStore(db), utcnow()
    if held_by == "stored value":
        await store.set_value(AGE_MAX, 30, Change("ana", "admin", "set", "r", AGE_MAX), now)
        starts = now
    else:
        starts = now + timedelta(hours=2)
        window = Window("w1", AGE_MAX, 30, starts, starts + timedelta(hours=1), "r", now, "ana")
        await store.add_window(window, Change("ana", "admin", "schedule", "r", AGE_MAX))
    assert await _start_with_defaults(db, 11, 54) == []
    (detail,) = await _start_with_defaults(db, 40, 60)
    assert "(eligibility.age_band)" in detail
    assert "eligibility.age_min (40) quedaría por encima de eligibility.age_max (30)" in detail
    assert datetime.fromisoformat(detail.split(" desde ")[1].split(": ")[0]) >= starts.replace(
        microsecond=0
    )
    assert len(await _start_with_defaults(db, 40, 60)) == 1  # one open alert, not one per start
    # A start whose defaults hold the band resolves it.
    assert await _start_with_defaults(db, 11, 54) == []
