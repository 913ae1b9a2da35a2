"""Flag values, windows, audit, alerts and tokens in the database.

Every change is one transaction that writes the change, its audit entry and
a new ``ops_state.revision``: a change without its audit entry cannot exist,
and a controller that sees the revision move sees the change.

Windows are never "applied" by a job: the effective value of a flag is
computed from the windows at the moment it is read (:class:`FlagSnapshot`).
A window therefore reverts exactly at its end even if no process runs at that
moment.

A change may carry a *guard*: a check of the flags as they will be, run inside
the change's transaction after it has taken the write lock (it bumps the
revision first: a row lock on PostgreSQL, the database's write lock on
SQLite). Two concurrent changes are therefore judged one after the other,
each against what the other wrote; a guard that raises rolls the change back.

The audit entries "window_started"/"window_ended" are written by
whichever process claims them first (a conditional UPDATE), so several
controllers write each entry once.

Storage failures raise ``ivr.store.StoreUnavailable``.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.ops.flags import FlagValue
from ivr.ops.tables import (
    AlertRow,
    AuditRow,
    FlagValueRow,
    FlagWindowRow,
    OpsStateRow,
    TokenRow,
)
from ivr.store.changes import FLAGS, touch
from ivr.store.db import Database


def _wrap(value: FlagValue) -> dict[str, Any]:
    return {"v": value}


def _unwrap(stored: dict[str, Any] | None) -> FlagValue:
    return None if stored is None else stored.get("v")


@dataclass(frozen=True)
class Window:
    id: str
    name: str
    value: FlagValue
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_at: datetime
    created_by: str
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None

    def active_at(self, now: datetime) -> bool:
        return self.cancelled_at is None and self.starts_at <= now < self.ends_at

    def state_at(self, now: datetime) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.starts_at:
            return "scheduled"
        return "active" if now < self.ends_at else "ended"

    @classmethod
    def from_row(cls, row: FlagWindowRow) -> Window:
        return cls(
            row.id, row.name, _unwrap(row.value), row.starts_at, row.ends_at, row.reason,
            row.created_at, row.created_by, row.cancelled_at, row.cancelled_by,
        )  # fmt: skip

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "value": self.value,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "cancelled_by": self.cancelled_by,
            "state": self.state_at(now),
        }


def winning_window(windows: Iterable[Window], name: str, at: datetime) -> Window | None:
    """The window that gives ``name`` its value at ``at``: among the active ones
    (not cancelled, ``starts_at <= at < ends_at``), the newest ``created_at``,
    then the smallest id (the order :meth:`OpsStore.snapshot` lists them in)."""
    active = [w for w in windows if w.name == name and w.active_at(at)]
    if not active:
        return None
    newest = max(w.created_at for w in active)
    return min((w for w in active if w.created_at == newest), key=lambda w: w.id)


@dataclass(frozen=True)
class SetValue:
    """A flag's value as operations set it (no window)."""

    value: FlagValue
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class FlagSnapshot:
    """Everything needed to compute every flag's effective value at any instant."""

    revision: int
    values: dict[str, SetValue]
    windows: tuple[Window, ...]  # not cancelled, not ended when loaded; newest first

    def window_for(self, name: str, now: datetime) -> Window | None:
        return winning_window(self.windows, name, now)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    name: str | None
    old_value: FlagValue
    new_value: FlagValue
    reason: str
    window_id: str | None

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        return cls(
            row.id, row.at, row.actor, row.role, row.action, row.name,
            _unwrap(row.old_value), _unwrap(row.new_value), row.reason, row.window_id,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "name": self.name,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "reason": self.reason,
            "window_id": self.window_id,
        }


@dataclass(frozen=True)
class Alert:
    id: int
    at: datetime
    kind: str
    source: str
    detail: str
    resolved_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "source": self.source,
            "detail": self.detail,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class Change:
    """One audited change, as the store writes it."""

    actor: str
    role: str
    action: str
    reason: str
    name: str | None = None
    old_value: FlagValue = None
    new_value: FlagValue = None
    window_id: str | None = None


def _audit_row(change: Change, at: datetime) -> AuditRow:
    return AuditRow(
        at=at, actor=change.actor, role=change.role, action=change.action, name=change.name,
        old_value=_wrap(change.old_value), new_value=_wrap(change.new_value),
        reason=change.reason, window_id=change.window_id,
    )  # fmt: skip


Guard = Callable[["FlagSnapshot"], None]  # raises to refuse a change


async def _bump(session: AsyncSession) -> None:
    await session.execute(
        update(OpsStateRow).where(OpsStateRow.id == 1).values(revision=OpsStateRow.revision + 1)
    )
    await touch(session, FLAGS)  # every controller's LiveFlags reloads (ivr.store.changes)


async def _read_snapshot(session: AsyncSession, now: datetime) -> FlagSnapshot:
    revision = (
        await session.execute(select(OpsStateRow.revision).where(OpsStateRow.id == 1))
    ).scalar_one()
    values = {
        r.name: SetValue(_unwrap(r.value), r.updated_at, r.updated_by)
        for r in (await session.execute(select(FlagValueRow))).scalars()
    }
    windows = (
        await session.execute(
            select(FlagWindowRow)
            .where(FlagWindowRow.cancelled_at.is_(None), FlagWindowRow.ends_at > now)
            .order_by(FlagWindowRow.created_at.desc(), FlagWindowRow.id)
        )
    ).scalars()
    return FlagSnapshot(int(revision), values, tuple(Window.from_row(w) for w in windows))


async def _lock_and_check(session: AsyncSession, now: datetime, guard: Guard | None) -> None:
    """Take the write lock (by bumping the revision), then run the guard on what is stored."""
    await _bump(session)
    if guard is not None:
        guard(await _read_snapshot(session, now))


class OpsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reading ------------------------------------------------------------
    async def revision(self) -> int:
        async def op(session: AsyncSession) -> int:
            return int(
                (await session.execute(select(OpsStateRow.revision).where(OpsStateRow.id == 1)))
                .scalar_one()
            )  # fmt: skip

        return await self.db.run("read the flags revision", op)

    async def snapshot(self, now: datetime) -> FlagSnapshot:
        async def op(session: AsyncSession) -> FlagSnapshot:
            return await _read_snapshot(session, now)

        return await self.db.run("read the flags", op)

    async def windows(self, *, since: datetime | None = None) -> builtins.list[Window]:
        async def op(session: AsyncSession) -> builtins.list[Window]:
            query = select(FlagWindowRow).order_by(FlagWindowRow.starts_at.desc())
            if since is not None:
                query = query.where(FlagWindowRow.ends_at > since)
            return [Window.from_row(r) for r in (await session.execute(query)).scalars()]

        return await self.db.run("list windows", op)

    async def window(self, window_id: str) -> Window | None:
        async def op(session: AsyncSession) -> Window | None:
            row = await session.get(FlagWindowRow, window_id)
            return Window.from_row(row) if row else None

        return await self.db.run("read a window", op)

    async def audit(
        self,
        *,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> builtins.list[AuditEntry]:
        async def op(session: AsyncSession) -> builtins.list[AuditEntry]:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if name is not None:
                query = query.where(AuditRow.name == name)
            if since is not None:
                query = query.where(AuditRow.at >= since)
            if until is not None:
                query = query.where(AuditRow.at < until)
            return [AuditEntry.from_row(r) for r in (await session.execute(query)).scalars()]

        return await self.db.run("read the audit log", op)

    # --- changing (each with its audit entry, in one transaction) -------------
    async def set_value(
        self, name: str, value: FlagValue, change: Change, now: datetime, guard: Guard | None = None
    ) -> None:
        async def op(session: AsyncSession) -> None:
            await _lock_and_check(session, now, guard)
            row = await session.get(FlagValueRow, name)
            if row is None:
                session.add(FlagValueRow(name=name, value=_wrap(value), updated_at=now,
                                         updated_by=change.actor))  # fmt: skip
            else:
                row.value, row.updated_at, row.updated_by = _wrap(value), now, change.actor
            session.add(_audit_row(change, now))

        await self.db.run(f"set flag {name}", op)

    async def reset_value(
        self, name: str, change: Change, now: datetime, guard: Guard | None = None
    ) -> None:
        async def op(session: AsyncSession) -> None:
            await _lock_and_check(session, now, guard)
            row = await session.get(FlagValueRow, name)
            if row is not None:
                await session.delete(row)
            session.add(_audit_row(change, now))

        await self.db.run(f"reset flag {name}", op)

    async def add_window(self, window: Window, change: Change, guard: Guard | None = None) -> None:
        async def op(session: AsyncSession) -> None:
            await _lock_and_check(session, window.created_at, guard)
            session.add(
                FlagWindowRow(
                    id=window.id, name=window.name, value=_wrap(window.value),
                    starts_at=window.starts_at, ends_at=window.ends_at, reason=window.reason,
                    created_at=window.created_at, created_by=window.created_by,
                    started_logged=False, ended_logged=False,
                )
            )  # fmt: skip
            session.add(_audit_row(change, window.created_at))

        await self.db.run(f"schedule a window for {window.name}", op)

    async def cancel_window(
        self, window_id: str, change: Change, now: datetime, guard: Guard | None = None
    ) -> bool:
        """False when the window does not exist or was already cancelled or over."""

        async def op(session: AsyncSession) -> bool:
            await _lock_and_check(session, now, guard)
            result = await session.execute(
                update(FlagWindowRow)
                .where(
                    FlagWindowRow.id == window_id,
                    FlagWindowRow.cancelled_at.is_(None),
                    FlagWindowRow.ends_at > now,
                )
                .values(cancelled_at=now, cancelled_by=change.actor)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise _NothingToCancel
            session.add(_audit_row(change, now))
            return True

        try:
            return await self.db.run(f"cancel window {window_id}", op)
        except _NothingToCancel:
            return False  # rolled back: the revision did not move

    async def log_window_transitions(
        self, now: datetime, current: dict[str, FlagValue]
    ) -> builtins.list[Change]:
        """Write "window_started"/"window_ended" once per window; returns what this call wrote.

        ``current`` maps a flag to its value without windows (what a window
        replaced, and what it reverts to).
        """

        async def op(session: AsyncSession) -> builtins.list[Change]:
            written: list[Change] = []
            due = (
                await session.execute(
                    select(FlagWindowRow).where(
                        FlagWindowRow.cancelled_at.is_(None),
                        FlagWindowRow.starts_at <= now,
                        (FlagWindowRow.started_logged.is_(False))
                        | ((FlagWindowRow.ends_at <= now) & FlagWindowRow.ended_logged.is_(False)),
                    )
                )
            ).scalars().all()  # fmt: skip
            for row in due:
                for column, action, ended in (
                    (FlagWindowRow.started_logged, "window_started", False),
                    (FlagWindowRow.ended_logged, "window_ended", True),
                ):
                    if ended and row.ends_at > now:
                        continue
                    claimed = await session.execute(
                        update(FlagWindowRow)
                        .where(FlagWindowRow.id == row.id, column.is_(False))
                        .values({column: True})
                    )
                    if claimed.rowcount != 1:  # type: ignore[attr-defined]
                        continue  # another process wrote it
                    base = current.get(row.name)
                    old, new = (_unwrap(row.value), base) if ended else (base, _unwrap(row.value))
                    change = Change(
                        actor="system:window", role="system", action=action, name=row.name,
                        old_value=old, new_value=new, reason=row.reason, window_id=row.id,
                    )  # fmt: skip
                    at = row.ends_at if ended else row.starts_at
                    session.add(_audit_row(change, at))
                    written.append(change)
            return written

        return await self.db.run("log window transitions", op)

    async def record_event(self, change: Change, now: datetime) -> None:
        """An audit entry that changes no flag (breaker opened, token created …)."""

        async def op(session: AsyncSession) -> None:
            session.add(_audit_row(change, now))

        await self.db.run(f"audit {change.action}", op)

    # --- alerts ----------------------------------------------------------------
    async def raise_alert(self, kind: str, source: str, detail: str, now: datetime) -> int:
        async def op(session: AsyncSession) -> int:
            row = AlertRow(at=now, kind=kind, source=source, detail=detail)
            session.add(row)
            await session.flush()
            return int(row.id)

        return await self.db.run(f"raise alert {kind}", op)

    async def resolve_alerts(self, kind: str, source: str, now: datetime) -> int:
        async def op(session: AsyncSession) -> int:
            result = await session.execute(
                update(AlertRow)
                .where(AlertRow.kind == kind, AlertRow.source == source,
                       AlertRow.resolved_at.is_(None))
                .values(resolved_at=now)
            )  # fmt: skip
            return int(result.rowcount)  # type: ignore[attr-defined]

        return await self.db.run(f"resolve alerts {kind}", op)

    async def alerts(self, *, open_only: bool = False, limit: int = 200) -> builtins.list[Alert]:
        async def op(session: AsyncSession) -> builtins.list[Alert]:
            query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
            if open_only:
                query = query.where(AlertRow.resolved_at.is_(None))
            rows: Sequence[AlertRow] = (await session.execute(query)).scalars().all()
            return [Alert(r.id, r.at, r.kind, r.source, r.detail, r.resolved_at) for r in rows]

        return await self.db.run("list alerts", op)

    # --- API tokens ---------------------------------------------------------------
    async def add_token(
        self, name: str, role: str, token_hash: str, change: Change, now: datetime
    ) -> str | None:
        """The new token's id, or None when the name is taken."""
        token_id = str(uuid.uuid4())

        async def op(session: AsyncSession) -> None:
            session.add(TokenRow(id=token_id, name=name, role=role, token_hash=token_hash,
                                 created_at=now, created_by=change.actor))  # fmt: skip
            session.add(_audit_row(change, now))

        try:
            await self.db.run(f"create token {name}", op)
        except IntegrityError:
            return None
        return token_id

    async def token_by_hash(self, token_hash: str) -> Token | None:
        async def op(session: AsyncSession) -> Token | None:
            row = (
                await session.execute(
                    select(TokenRow).where(
                        TokenRow.token_hash == token_hash, TokenRow.revoked_at.is_(None)
                    )
                )
            ).scalar_one_or_none()
            return _token(row) if row else None

        return await self.db.run("check a token", op)

    async def tokens(self) -> builtins.list[Token]:
        async def op(session: AsyncSession) -> builtins.list[Token]:
            rows = (await session.execute(select(TokenRow).order_by(TokenRow.name))).scalars()
            return [_token(r) for r in rows]

        return await self.db.run("list tokens", op)

    async def revoke_token(self, name: str, change: Change, now: datetime) -> bool:
        async def op(session: AsyncSession) -> bool:
            result = await session.execute(
                update(TokenRow)
                .where(TokenRow.name == name, TokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            session.add(_audit_row(change, now))
            return True

        return await self.db.run(f"revoke token {name}", op)


class _NothingToCancel(Exception):
    """Rolls back a cancel that found nothing to cancel."""


def _token(row: TokenRow) -> Token:
    return Token(row.id, row.name, row.role, row.created_at, row.created_by, row.revoked_at)


def utcnow() -> datetime:
    return datetime.now(UTC)
