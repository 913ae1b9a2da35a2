"""FlagService on a real database: roles, reasons, values, windows, tokens, audit."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from ivr.citas.flags import AGE_MAX, AGE_MIN, PROMO_AUDIO, SELF_SERVICE, flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.flags import INCIDENT_MODE, Role
from ivr.ops.live import LiveFlags
from ivr.ops.service import (
    AUDIT_CSV_FIELDS,
    MAX_REASON,
    Actor,
    FlagService,
    Forbidden,
    InvalidChange,
    NotFound,
    audit_csv,
)
from ivr.ops.store import OpsStore
from ivr.store.db import Database

T0 = datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
VIEWER = Actor("token:vera", Role.VIEWER)
OPERATOR = Actor("token:omar", Role.OPERATOR)
ADMIN = Actor("token:ada", Role.ADMIN)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Database, clock: Clock) -> FlagService:
    return FlagService(OpsStore(db), flag_registry(load_reference()), clock=clock)


async def unchanged(service: FlagService) -> tuple[object, ...]:
    """Everything a refused change must leave as it was."""
    return (
        await service.store.revision(),
        [f.as_json() for f in await service.flags()],
        await service.history(),
        await service.windows(include_past=True),
        await service.store.tokens(),
    )


# --- roles and rules --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("actor", "name", "value"),
    [
        (VIEWER, SELF_SERVICE, False),
        (OPERATOR, AGE_MIN, 12),
        (OPERATOR, "booking_breaker.failure_threshold", 3),
    ],
)
async def test_a_role_too_low_is_forbidden_and_changes_nothing(
    service: FlagService, actor: Actor, name: str, value: object
) -> None:
    before = await unchanged(service)
    with pytest.raises(Forbidden, match=f"hace falta el rol .*\\({service.registry.get(name).min_role.label}\\)"):
        await service.set_flag(actor, name, value, "motivo")
    with pytest.raises(Forbidden):
        await service.reset_flag(actor, name, "motivo")
    with pytest.raises(Forbidden):
        await service.schedule(actor, name, value, T0, T0 + timedelta(hours=1), "motivo")
    assert await unchanged(service) == before


async def test_an_operator_sets_an_operator_flag_with_its_audit_entry(
    service: FlagService, clock: Clock
) -> None:
    revision = await service.store.revision()
    view = await service.set_flag(OPERATOR, SELF_SERVICE, False, "  caída del agendador  ")
    assert (view.value, view.set_value, view.source) == (False, False, "set")
    assert (view.updated_by, view.updated_at) == (OPERATOR.name, T0)
    assert await service.store.revision() == revision + 1
    [entry] = await service.history()
    assert (entry.actor, entry.role, entry.action, entry.name) == (
        "token:omar", "operator", "set", SELF_SERVICE,
    )  # fmt: skip
    assert (entry.old_value, entry.new_value, entry.reason) == (True, False, "caída del agendador")


async def test_an_admin_changes_admin_flags(service: FlagService) -> None:
    view = await service.set_flag(ADMIN, AGE_MIN, 12, "nueva población")
    assert view.value == 12
    view = await service.set_flag(ADMIN, "eligibility.cups_in_scope", ["890301", "890201"], "x")
    assert view.value == ["890201", "890301"]


@pytest.mark.parametrize("reason", ["", "   ", None, 7, "x" * (MAX_REASON + 1)])
async def test_every_change_needs_a_reason(service: FlagService, reason: object) -> None:
    before = await unchanged(service)
    with pytest.raises(InvalidChange) as caught:
        await service.set_flag(OPERATOR, SELF_SERVICE, False, reason)  # type: ignore[arg-type]
    assert caught.value.details[0]["field"] == "reason"
    with pytest.raises(InvalidChange):
        await service.set_incident(OPERATOR, True, reason)  # type: ignore[arg-type]
    with pytest.raises(InvalidChange):
        await service.schedule(OPERATOR, PROMO_AUDIO, False, T0, T0 + timedelta(hours=1), reason)  # type: ignore[arg-type]
    assert await unchanged(service) == before


async def test_values_are_checked_and_unknown_flags_are_not_found(service: FlagService) -> None:
    before = await unchanged(service)
    with pytest.raises(InvalidChange, match="expected true or false") as caught:
        await service.set_flag(OPERATOR, SELF_SERVICE, "off", "motivo")
    assert caught.value.details == [
        {"field": "value", "message": "self_service_booking: expected true or false, got 'off'"}
    ]
    with pytest.raises(InvalidChange, match="above the maximum"):
        await service.set_flag(ADMIN, AGE_MIN, 500, "motivo")
    with pytest.raises(NotFound, match="unknown flag 'nope'"):
        await service.set_flag(ADMIN, "nope", True, "motivo")
    with pytest.raises(NotFound):
        await service.flag("nope")
    with pytest.raises(NotFound):
        await service.history(name="nope")
    assert await unchanged(service) == before


async def test_changes_keep_the_flags_consistent(service: FlagService) -> None:
    await service.set_flag(ADMIN, AGE_MAX, 30, "motivo")
    before = await unchanged(service)
    with pytest.raises(InvalidChange, match="quedaría por encima de"):
        await service.set_flag(ADMIN, AGE_MIN, 31, "motivo")
    with pytest.raises(InvalidChange, match="quedaría por encima de"):
        await service.schedule(ADMIN, AGE_MIN, 31, T0, T0 + timedelta(hours=1), "motivo")
    assert await unchanged(service) == before
    await service.set_flag(ADMIN, AGE_MIN, 30, "motivo")


async def test_reset_goes_back_to_the_default(service: FlagService, clock: Clock) -> None:
    await service.set_flag(OPERATOR, PROMO_AUDIO, False, "campaña terminada")
    clock.advance(minutes=1)
    view = await service.reset_flag(OPERATOR, PROMO_AUDIO, "campaña nueva")
    assert (view.value, view.source, view.updated_by) == (True, "default", None)
    entry = (await service.history(name=PROMO_AUDIO))[0]
    assert (entry.action, entry.old_value, entry.new_value) == ("reset", False, True)


async def test_the_incident_switch_is_audited_as_such(service: FlagService) -> None:
    with pytest.raises(Forbidden):
        await service.set_incident(VIEWER, True, "motivo")
    view = await service.set_incident(OPERATOR, True, "caída del operador")
    assert view.value is True
    await service.set_incident(OPERATOR, False, "resuelto")
    assert [e.action for e in await service.history(name=INCIDENT_MODE)] == [
        "incident_off", "incident_on",
    ]  # fmt: skip
    assert (await service.flag(INCIDENT_MODE)).value is False


# --- windows -------------------------------------------------------------------------------
async def test_a_window_applies_then_reverts_with_its_audit(
    service: FlagService, db: Database, clock: Clock
) -> None:
    await service.set_flag(OPERATOR, SELF_SERVICE, False, "agendador caído")
    window = await service.schedule(
        OPERATOR, SELF_SERVICE, True, T0 + timedelta(minutes=10), T0 + timedelta(minutes=40),
        "prueba del agendador",
    )  # fmt: skip
    # Two controllers watch the same database: each transition is written once.
    lives = [LiveFlags(OpsStore(db), service.registry, clock=clock) for _ in range(2)]
    assert (await service.flag(SELF_SERVICE)).source == "set"

    clock.advance(minutes=15)
    for live in lives:
        await live.refresh()
        await live.log_windows()
        assert live.value(SELF_SERVICE) is True
    view = await service.flag(SELF_SERVICE)
    assert (view.value, view.set_value, view.source, view.window) == (True, False, "window", window)
    assert [w.state_at(clock()) for w in await service.windows()] == ["active"]

    clock.advance(minutes=30)
    for live in lives:
        await live.log_windows()
        assert live.value(SELF_SERVICE) is False
    assert (await service.flag(SELF_SERVICE)).source == "set"
    assert await service.windows() == []
    assert [w.id for w in await service.windows(include_past=True)] == [window.id]

    entries = await service.history(name=SELF_SERVICE)
    assert [(e.action, e.actor, e.old_value, e.new_value) for e in entries] == [
        ("window_ended", "system:window", True, False),
        ("window_started", "system:window", False, True),
        ("schedule", OPERATOR.name, False, True),
        ("set", OPERATOR.name, True, False),
    ]
    assert entries[0].at == window.ends_at and entries[1].at == window.starts_at
    assert {e.window_id for e in entries[:3]} == {window.id}


async def test_cancelling_a_window_reverts_now(service: FlagService, clock: Clock) -> None:
    window = await service.schedule(
        OPERATOR, PROMO_AUDIO, False, T0, T0 + timedelta(hours=2), "campaña pausada"
    )
    assert (await service.flag(PROMO_AUDIO)).value is False
    clock.advance(minutes=5)
    with pytest.raises(InvalidChange):
        await service.cancel_window(OPERATOR, window.id, " ")
    with pytest.raises(Forbidden):
        await service.cancel_window(VIEWER, window.id, "motivo")
    cancelled = await service.cancel_window(OPERATOR, window.id, "campaña retomada")
    assert (cancelled.cancelled_at, cancelled.cancelled_by) == (clock(), OPERATOR.name)
    assert (await service.flag(PROMO_AUDIO)).value is True
    assert await service.windows() == []
    assert [w.id for w in await service.windows(include_past=True)] == [window.id]
    entry = (await service.history())[0]
    assert (entry.action, entry.window_id, entry.reason) == (
        "cancel_window", window.id, "campaña retomada",
    )  # fmt: skip
    before = await unchanged(service)
    with pytest.raises(InvalidChange, match="already cancelled or over"):
        await service.cancel_window(OPERATOR, window.id, "otra vez")
    with pytest.raises(NotFound):
        await service.cancel_window(OPERATOR, "no-such-window", "motivo")
    assert await unchanged(service) == before


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "says"),
    [
        (T0, T0 - timedelta(minutes=1), "ends before it starts"),
        (T0 - timedelta(hours=2), T0 - timedelta(hours=1), "already over"),
        (T0, T0 + timedelta(days=32), "at most 31 days"),
        (T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(hours=1), "UTC offset"),
    ],
)
async def test_windows_must_make_sense(
    service: FlagService, starts_at: datetime, ends_at: datetime, says: str
) -> None:
    before = await unchanged(service)
    with pytest.raises(InvalidChange) as caught:
        await service.schedule(OPERATOR, PROMO_AUDIO, False, starts_at, ends_at, "motivo")
    assert says in caught.value.details[0]["message"]
    assert await unchanged(service) == before


async def test_a_window_that_started_in_the_past_starts_now(service: FlagService) -> None:
    window = await service.schedule(
        OPERATOR, PROMO_AUDIO, False, T0 - timedelta(hours=1), T0 + timedelta(hours=1), "motivo"
    )
    assert window.starts_at == T0


# --- tokens --------------------------------------------------------------------------------
async def test_tokens_authenticate_until_revoked_and_only_their_hash_is_kept(
    service: FlagService, db: Database
) -> None:
    token = await service.create_token(ADMIN, "omar", Role.OPERATOR, "turno de noche")
    assert len(token) >= 40
    assert await service.authenticate(token) == Actor("token:omar", Role.OPERATOR)
    assert await service.authenticate(token + "x") is None
    assert await service.authenticate("") is None
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM ops_tokens"))).scalar_one()
    assert token not in stored
    entry = (await service.history())[0]
    assert (entry.action, entry.new_value) == ("token_created", "omar:operator")
    assert token not in audit_csv(await service.history())

    await service.revoke_token(ADMIN, "omar", "se fue de la empresa")
    assert await service.authenticate(token) is None
    [listed] = await service.store.tokens()
    assert listed.revoked_at is not None


async def test_token_rules(service: FlagService) -> None:
    await service.create_token(ADMIN, "omar", Role.OPERATOR, "alta")
    before = await unchanged(service)
    with pytest.raises(Forbidden):
        await service.create_token(OPERATOR, "otro", Role.ADMIN, "alta")
    with pytest.raises(InvalidChange, match="exists"):
        await service.create_token(ADMIN, "omar", Role.VIEWER, "alta")
    with pytest.raises(InvalidChange, match="1 to 64"):
        await service.create_token(ADMIN, "  ", Role.VIEWER, "alta")
    with pytest.raises(InvalidChange, match="reason"):
        await service.create_token(ADMIN, "vera", Role.VIEWER, "")
    with pytest.raises(Forbidden):
        await service.revoke_token(OPERATOR, "omar", "baja")
    with pytest.raises(NotFound):
        await service.revoke_token(ADMIN, "nadie", "baja")
    assert await unchanged(service) == before


# --- history and CSV ------------------------------------------------------------------------
async def test_history_filters_and_csv(service: FlagService, clock: Clock) -> None:
    await service.set_flag(OPERATOR, SELF_SERVICE, False, "uno")
    clock.advance(hours=1)
    await service.set_flag(OPERATOR, PROMO_AUDIO, False, 'dos, con "comillas"')
    clock.advance(hours=1)
    await service.set_flag(ADMIN, "eligibility.cups_in_scope", ["890201"], "tres")

    assert [e.reason for e in await service.history(name=SELF_SERVICE)] == ["uno"]
    since = T0 + timedelta(minutes=30)
    assert [e.reason for e in await service.history(since=since)] == ["tres", 'dos, con "comillas"']
    assert [e.reason for e in await service.history(until=since)] == ["uno"]
    assert len(await service.history(limit=2)) == 2

    rows = list(csv.DictReader(io.StringIO(audit_csv(await service.history()))))
    assert tuple(rows[0]) == AUDIT_CSV_FIELDS
    assert [r["reason"] for r in rows] == ["tres", 'dos, con "comillas"', "uno"]
    assert rows[0]["new_value"] == '["890201"]'
    assert (rows[2]["old_value"], rows[2]["new_value"], rows[2]["window_id"]) == (
        "true",
        "false",
        "",
    )
    assert rows[2]["at"] == T0.isoformat()
