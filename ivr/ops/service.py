"""The rules of operations changes, shared by the HTTP API, the console and the CLI.

Who may change what (roles), what a valid value is (the flag's type), that a
change carries a reason, that windows make sense; then the store writes the
change with its audit entry. Errors form one tree, which the API maps to
HTTP statuses::

    OpsError
     ├── Forbidden        the actor's role is too low            → 403
     ├── NotFound         no such flag / window / token          → 404
     └── InvalidChange    bad value, reason, window or name      → 422
          └── RuleBroken      a rule across flags would break at some instant

Rules across flags (:attr:`FlagRegistry.rules`) are judged on the whole
timeline a change produces: the stored values and every window, existing and
proposed (or minus the one cancelled), at every instant from now on
(:mod:`ivr.ops.timeline` proves that a finite set of instants covers them all).
The check runs inside the change's transaction, after it took the write lock,
so two concurrent changes cannot each pass against the other's old state.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ivr.csv_export import csv_text
from ivr.ops.flags import (
    INCIDENT_MODE,
    ROLE_WORDS,
    FlagDef,
    FlagRegistry,
    FlagValue,
    FlagValueError,
    Role,
    UnknownFlag,
)
from ivr.ops.store import AuditEntry, Change, FlagSnapshot, Guard, OpsStore, Window, utcnow
from ivr.ops.timeline import RuleViolation, first_violation

MAX_REASON = 500
MAX_WINDOW = timedelta(days=31)
AUDIT_CSV_FIELDS = (
    "id", "at", "actor", "role", "action", "name", "old_value", "new_value", "reason", "window_id",
)  # fmt: skip


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role

    @property
    def label(self) -> str:
        return self.name


class OpsError(Exception):
    error_id = "ops_error"

    def __init__(self, message: str, details: Iterable[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class Forbidden(OpsError):
    error_id = "forbidden"


class NotFound(OpsError):
    error_id = "not_found"


class InvalidChange(OpsError):
    error_id = "invalid"


class RuleBroken(InvalidChange):
    """A change that would break a rule across flags at some instant.

    The error id stays ``invalid`` (stable for API clients); ``details`` carry
    ``rule`` (the rule's stable id) and ``at`` (the first instant it breaks,
    ISO 8601), and the message says both in Spanish.
    """

    def __init__(self, violation: RuleViolation, field: str) -> None:
        detail = {
            "field": field,
            "message": violation.message,
            "rule": violation.rule.rule_id,
            "at": violation.at.isoformat(),
        }
        super().__init__(violation.message, [detail])
        self.violation = violation


@dataclass(frozen=True)
class FlagView:
    """A flag as an operator sees it: definition, value set, effective value now."""

    definition: FlagDef
    value: FlagValue  # effective now
    set_value: FlagValue  # without windows (the default when never set)
    source: str  # default | set | window
    window: Window | None
    updated_at: datetime | None
    updated_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.definition.describe(),
            "value": self.value,
            "set_value": self.set_value,
            "source": self.source,
            "window_id": self.window.id if self.window else None,
            "window_ends_at": self.window.ends_at.isoformat() if self.window else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


def effective(registry: FlagRegistry, snapshot: FlagSnapshot, name: str, now: datetime) -> FlagView:
    """A flag's value at ``now``: an active window, else the value set, else the default."""
    definition = registry.get(name)
    stored = snapshot.values.get(name)
    base = stored.value if stored else definition.default
    window = snapshot.window_for(name, now)
    return FlagView(
        definition,
        window.value if window else base,
        base,
        "window" if window else ("set" if stored else "default"),
        window,
        stored.updated_at if stored else None,
        stored.updated_by if stored else None,
    )


def base_values(registry: FlagRegistry, snapshot: FlagSnapshot) -> dict[str, FlagValue]:
    """Every flag's value without windows."""
    return {
        d.name: (snapshot.values[d.name].value if d.name in snapshot.values else d.default)
        for d in registry
    }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The audit as CSV (``ivr flags history --csv``, ``/api/audit?format=csv``).

    Columns :data:`AUDIT_CSV_FIELDS`; ``old_value``/``new_value`` as JSON text;
    every cell safe to open in a spreadsheet (:mod:`ivr.csv_export`).
    """
    rows = []
    for e in entries:
        row = e.as_json()
        for key in ("old_value", "new_value"):
            row[key] = json.dumps(row[key], ensure_ascii=False)
        rows.append([row[f] for f in AUDIT_CSV_FIELDS])
    return csv_text(AUDIT_CSV_FIELDS, rows)


class FlagService:
    def __init__(
        self,
        store: OpsStore,
        registry: FlagRegistry,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock

    # --- reading ------------------------------------------------------------
    async def flags(self) -> list[FlagView]:
        now = self.clock()
        snapshot = await self.store.snapshot(now)
        return [effective(self.registry, snapshot, d.name, now) for d in self.registry]

    async def flag(self, name: str) -> FlagView:
        self._definition(name)
        now = self.clock()
        return effective(self.registry, await self.store.snapshot(now), name, now)

    async def broken_rule(self) -> RuleViolation | None:
        """The first instant from now on at which what is stored already breaks a rule.

        Changes made through this service never get there (each is refused if it
        would), but the defaults are the line's reference tables
        (``config/citas/eligibility.yaml``): a deployment that raises the default
        ``age_min`` above a stored or windowed ``age_max`` inverts the band with no
        change to refuse. ``ivr.ops.runtime`` asks this at start and raises an alert.
        Raises StoreUnavailable.
        """
        now = self.clock()
        snapshot = await self.store.snapshot(now)
        base = base_values(self.registry, snapshot)
        return first_violation(self.registry.rules, base, snapshot.windows, now)

    async def windows(self, *, include_past: bool = False) -> list[Window]:
        """Windows scheduled or active (with ``include_past``: also ended and cancelled)."""
        now = self.clock()
        found = await self.store.windows(since=None if include_past else now)
        return found if include_past else [w for w in found if w.cancelled_at is None]

    async def history(
        self,
        *,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        if name is not None:
            self._definition(name)
        return await self.store.audit(name=name, since=since, until=until, limit=limit)

    # --- changing -------------------------------------------------------------
    async def set_flag(self, actor: Actor, name: str, raw: object, reason: str) -> FlagView:
        definition = self._may_change(actor, name)
        reason = self._reason(reason)
        value = self._parse(definition, raw)
        now = self.clock()
        snapshot = await self.store.snapshot(now)
        old = effective(self.registry, snapshot, name, now).set_value
        change = Change(actor.name, actor.role.label, "set", reason, name, old, value)
        await self.store.set_value(name, value, change, now, self._rules(now, values={name: value}))
        return await self.flag(name)

    async def reset_flag(self, actor: Actor, name: str, reason: str) -> FlagView:
        definition = self._may_change(actor, name)
        reason = self._reason(reason)
        now = self.clock()
        snapshot = await self.store.snapshot(now)
        old = effective(self.registry, snapshot, name, now).set_value
        change = Change(
            actor.name, actor.role.label, "reset", reason, name, old, definition.default
        )
        await self.store.reset_value(
            name, change, now, self._rules(now, values={name: definition.default})
        )
        return await self.flag(name)

    async def set_incident(self, actor: Actor, active: bool, reason: str) -> FlagView:
        """The incident switch: one action on, one action off, audited as such."""
        if actor.role < Role.OPERATOR:
            raise Forbidden(f"{actor.role.label} cannot switch incident mode (operator or admin)")
        reason = self._reason(reason)
        now = self.clock()
        snapshot = await self.store.snapshot(now)
        old = effective(self.registry, snapshot, INCIDENT_MODE, now).set_value
        action = "incident_on" if active else "incident_off"
        change = Change(actor.name, actor.role.label, action, reason, INCIDENT_MODE, old, active)
        guard = self._rules(now, values={INCIDENT_MODE: active})
        await self.store.set_value(INCIDENT_MODE, active, change, now, guard)
        return await self.flag(INCIDENT_MODE)

    async def schedule(
        self,
        actor: Actor,
        name: str,
        raw: object,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> Window:
        """A value for a window; it reverts by itself at ``ends_at``."""
        definition = self._may_change(actor, name)
        reason = self._reason(reason)
        value = self._parse(definition, raw)
        now = self.clock()
        problems = []
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            problems.append({"field": "starts_at", "message": "times need a UTC offset"})
        elif ends_at <= starts_at:
            problems.append({"field": "ends_at", "message": "the window ends before it starts"})
        elif ends_at <= now:
            problems.append({"field": "ends_at", "message": "the window is already over"})
        elif ends_at - max(starts_at, now) > MAX_WINDOW:
            problems.append({"field": "ends_at", "message": "a window lasts at most 31 days"})
        if problems:
            raise InvalidChange("the window is not valid", problems)
        snapshot = await self.store.snapshot(now)
        window = Window(
            str(uuid.uuid4()), name, value, max(starts_at, now), ends_at, reason, now, actor.name
        )
        change = Change(
            actor.name, actor.role.label, "schedule", reason, name,
            effective(self.registry, snapshot, name, now).set_value, value, window.id,
        )  # fmt: skip
        await self.store.add_window(window, change, self._rules(now, add=window))
        return window

    async def cancel_window(self, actor: Actor, window_id: str, reason: str) -> Window:
        window = await self.store.window(window_id)
        if window is None:
            raise NotFound(f"no window {window_id}")
        self._may_change(actor, window.name)
        reason = self._reason(reason)
        now = self.clock()
        change = Change(
            actor.name, actor.role.label, "cancel_window", reason, window.name,
            window.value, None, window.id,
        )  # fmt: skip
        guard = self._rules(now, cancel=window, field="window_id")
        if not await self.store.cancel_window(window_id, change, now, guard):
            raise InvalidChange(f"window {window_id} is already cancelled or over")
        cancelled = await self.store.window(window_id)
        assert cancelled is not None
        return cancelled

    # --- tokens ------------------------------------------------------------------
    async def create_token(self, actor: Actor, name: str, role: Role, reason: str) -> str:
        """A new API token; only its hash is kept, so it is shown once."""
        if actor.role < Role.ADMIN:
            raise Forbidden("only an admin can create tokens")
        name = name.strip()
        if not name or len(name) > 64:
            raise InvalidChange("a token needs a name of 1 to 64 characters",
                                [{"field": "name", "message": "1 to 64 characters"}])  # fmt: skip
        token = secrets.token_urlsafe(32)
        change = Change(actor.name, actor.role.label, "token_created", self._reason(reason),
                        None, None, f"{name}:{role.label}")  # fmt: skip
        if (
            await self.store.add_token(name, role.label, hash_token(token), change, self.clock())
            is None
        ):
            raise InvalidChange(f"a token named {name!r} exists",
                                [{"field": "name", "message": "already taken"}])  # fmt: skip
        return token

    async def revoke_token(self, actor: Actor, name: str, reason: str) -> None:
        if actor.role < Role.ADMIN:
            raise Forbidden("only an admin can revoke tokens")
        change = Change(actor.name, actor.role.label, "token_revoked", self._reason(reason),
                        None, name, None)  # fmt: skip
        if not await self.store.revoke_token(name, change, self.clock()):
            raise NotFound(f"no active token named {name!r}")

    async def authenticate(self, token: str) -> Actor | None:
        if not token:
            return None
        found = await self.store.token_by_hash(hash_token(token))
        if found is None:
            return None
        return Actor(f"token:{found.name}", Role.parse(found.role))

    # --- rules ----------------------------------------------------------------------
    def _definition(self, name: str) -> FlagDef:
        try:
            return self.registry.get(name)
        except UnknownFlag as exc:
            raise NotFound(str(exc)) from None

    def _may_change(self, actor: Actor, name: str) -> FlagDef:
        definition = self._definition(name)
        if actor.role < definition.min_role:
            raise Forbidden(
                f"su rol ({ROLE_WORDS[actor.role]}) no permite cambiar {name}: hace falta el rol {ROLE_WORDS[definition.min_role]}"
            )
        return definition

    @staticmethod
    def _reason(reason: object) -> str:
        text = reason.strip() if isinstance(reason, str) else ""
        if not text:
            raise InvalidChange("every change needs a reason",
                                [{"field": "reason", "message": "required"}])  # fmt: skip
        if len(text) > MAX_REASON:
            raise InvalidChange("the reason is too long",
                                [{"field": "reason", "message": f"at most {MAX_REASON} characters"}])  # fmt: skip
        return text

    @staticmethod
    def _parse(definition: FlagDef, raw: object) -> FlagValue:
        try:
            return definition.parse(raw)
        except FlagValueError as exc:
            raise InvalidChange(str(exc), [{"field": "value", "message": str(exc)}]) from None

    def _rules(
        self,
        now: datetime,
        *,
        values: dict[str, FlagValue] | None = None,
        add: Window | None = None,
        cancel: Window | None = None,
        field: str = "value",
    ) -> Guard:
        """The check of a change against the rules at every instant (run by the store
        inside the change's transaction): stored values with ``values`` set, the
        windows plus ``add`` and minus ``cancel``. Only the rules that read a
        changed flag judge it. Raises RuleBroken."""
        changed = set(values or {}) | {w.name for w in (add, cancel) if w is not None}
        rules = [r for name in sorted(changed) for r in self.registry.rules_reading(name)]
        rules = list(dict.fromkeys(rules))  # a rule reading two changed flags: once

        def check(snapshot: FlagSnapshot) -> None:
            base = {**base_values(self.registry, snapshot), **(values or {})}
            windows = [w for w in snapshot.windows if cancel is None or w.id != cancel.id]
            if add is not None:
                windows.append(add)
            violation = first_violation(rules, base, windows, now)
            if violation is not None:
                raise RuleBroken(violation, field)

        return check
