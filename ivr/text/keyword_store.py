"""The keyword lists in the database, every change audited (``keyword_audit``).

Audited like the flags: each change writes its audit entry (actor, role,
action, old and new value, reason) in the same transaction, and needs a reason.
Only admins change keywords (``Role.ADMIN``); anyone with a token reads them.
Errors are the ops API's (``ivr.ops.service``), so the HTTP layer answers
them like the flags' routes::

    Forbidden       403  not an admin
    NotFound        404  no such list or keyword
    InvalidChange   422  no reason, a bad keyword, a duplicate name or phrase

Audit actions: ``list_created``, ``list_changed``, ``list_deleted`` (its
keywords in ``old_value``), ``keyword_added``, ``keyword_changed``,
``keyword_removed``.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.ops.flags import Role
from ivr.ops.service import MAX_REASON, Actor, Forbidden, InvalidChange, NotFound
from ivr.ops.store import utcnow
from ivr.store.db import Database
from ivr.text.keywords import InvalidKeyword, Keyword, match_key
from ivr.text.tables import KeywordAuditRow, KeywordListRow, KeywordRow

MAX_NAME = 80
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class KeywordList:
    id: str
    name: str
    description: str
    keywords: tuple[Keyword, ...]
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "keywords": [k.as_json() for k in self.keywords],
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class KeywordAuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    list_id: str | None
    keyword_id: str | None
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def _keyword(row: KeywordRow, list_name: str) -> Keyword:
    return Keyword(row.id, row.list_id, list_name, row.phrase, row.raises_priority)


def _list_json(row: KeywordListRow) -> dict[str, Any]:
    return {"name": row.name, "description": row.description}


def _keyword_json(row: KeywordRow) -> dict[str, Any]:
    return {"phrase": row.phrase, "raises_priority": row.raises_priority}


class KeywordStore:
    """Reads and changes the keyword lists (``db`` migrated; ``clock`` gives aware UTC)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # --- reading -------------------------------------------------------------------
    async def lists(self) -> builtins.list[KeywordList]:
        """Every list by name, each with its keywords by phrase."""

        async def op(session: AsyncSession) -> builtins.list[KeywordList]:
            lists = (await session.execute(select(KeywordListRow).order_by(KeywordListRow.name))).scalars().all()  # fmt: skip
            rows = (await session.execute(select(KeywordRow).order_by(KeywordRow.phrase))).scalars().all()  # fmt: skip
            return [
                KeywordList(
                    l.id,
                    l.name,
                    l.description,
                    tuple(_keyword(k, l.name) for k in rows if k.list_id == l.id),
                    l.updated_at,
                )
                for l in lists  # noqa: E741
            ]

        return await self.db.run("read the keyword lists", op)

    async def keywords(self) -> builtins.list[Keyword]:
        """Every keyword of every list (what the analysis worker matches)."""
        return [k for lst in await self.lists() for k in lst.keywords]

    async def history(self, *, limit: int = 200) -> builtins.list[KeywordAuditEntry]:
        """The audit trail, newest first."""

        async def op(session: AsyncSession) -> builtins.list[KeywordAuditEntry]:
            query = select(KeywordAuditRow).order_by(KeywordAuditRow.id.desc()).limit(limit)
            return [
                KeywordAuditEntry(
                    r.id,
                    r.at,
                    r.actor,
                    r.role,
                    r.action,
                    r.list_id,
                    r.keyword_id,
                    r.old_value,
                    r.new_value,
                    r.reason,
                )
                for r in (await session.execute(query)).scalars()
            ]

        return await self.db.run("read the keyword audit", op)

    # --- changing --------------------------------------------------------------------
    async def create_list(self, actor: Actor, name: str, description: str, reason: str) -> KeywordList:  # fmt: skip
        reason, name, description = _reason(actor, reason), _name(name), _description(description)
        now = self.clock()

        async def op(session: AsyncSession) -> str:
            await self._unique_name(session, name, None)
            row = KeywordListRow(id=str(uuid.uuid4()), name=name, description=description,
                                 created_at=now, created_by=actor.name, updated_at=now)  # fmt: skip
            session.add(row)
            self._audit(session, actor, "list_created", reason, row.id, None, None, _list_json(row))
            return row.id

        return await self._list(await self.db.run("create a keyword list", op))

    async def update_list(
        self, actor: Actor, list_id: str, *, name: str, description: str, reason: str
    ) -> KeywordList:
        reason, name, description = _reason(actor, reason), _name(name), _description(description)

        async def op(session: AsyncSession) -> None:
            row = await _get_list(session, list_id)
            await self._unique_name(session, name, list_id)
            old = _list_json(row)
            row.name, row.description, row.updated_at = name, description, self.clock()
            self._audit(session, actor, "list_changed", reason, list_id, None, old, _list_json(row))

        await self.db.run("change a keyword list", op)
        return await self._list(list_id)

    async def delete_list(self, actor: Actor, list_id: str, reason: str) -> None:
        """Delete a list and its keywords (kept in the audit entry's ``old_value``)."""
        reason = _reason(actor, reason)

        async def op(session: AsyncSession) -> None:
            row = await _get_list(session, list_id)
            words = (await session.execute(select(KeywordRow).where(KeywordRow.list_id == list_id))).scalars().all()  # fmt: skip
            old = {**_list_json(row), "keywords": [_keyword_json(k) for k in words]}
            await session.execute(delete(KeywordRow).where(KeywordRow.list_id == list_id))
            await session.delete(row)
            self._audit(session, actor, "list_deleted", reason, list_id, None, old, None)

        await self.db.run("delete a keyword list", op)

    async def add_keyword(
        self, actor: Actor, list_id: str, phrase: str, *, raises_priority: bool, reason: str
    ) -> Keyword:
        reason = _reason(actor, reason)
        phrase = " ".join(phrase.split())
        key = _match_key(phrase)
        now = self.clock()

        async def op(session: AsyncSession) -> Keyword:
            parent = await _get_list(session, list_id)
            same = await session.execute(
                select(KeywordRow.phrase).where(KeywordRow.list_id == list_id, KeywordRow.match_key == key)
            )  # fmt: skip
            if (existing := same.scalar()) is not None:
                raise InvalidChange(
                    f"la lista «{parent.name}» ya tiene «{existing}», que coincide con lo mismo",
                    [{"field": "phrase", "message": "repetida"}],
                )
            row = KeywordRow(id=str(uuid.uuid4()), list_id=list_id, phrase=phrase, match_key=key,
                             raises_priority=raises_priority, created_at=now,
                             created_by=actor.name, updated_at=now)  # fmt: skip
            session.add(row)
            parent.updated_at = now
            self._audit(session, actor, "keyword_added", reason, list_id, row.id, None, _keyword_json(row))  # fmt: skip
            return _keyword(row, parent.name)

        return await self.db.run("add a keyword", op)

    async def update_keyword(
        self, actor: Actor, keyword_id: str, *, raises_priority: bool, reason: str
    ) -> Keyword:
        reason = _reason(actor, reason)

        async def op(session: AsyncSession) -> Keyword:
            row = await _get_keyword(session, keyword_id)
            parent = await _get_list(session, row.list_id)
            old = _keyword_json(row)
            row.raises_priority, row.updated_at = raises_priority, self.clock()
            self._audit(session, actor, "keyword_changed", reason, row.list_id, row.id, old, _keyword_json(row))  # fmt: skip
            return _keyword(row, parent.name)

        return await self.db.run("change a keyword", op)

    async def remove_keyword(self, actor: Actor, keyword_id: str, reason: str) -> None:
        reason = _reason(actor, reason)

        async def op(session: AsyncSession) -> None:
            row = await _get_keyword(session, keyword_id)
            old = _keyword_json(row)
            await session.delete(row)
            self._audit(session, actor, "keyword_removed", reason, row.list_id, row.id, old, None)

        await self.db.run("remove a keyword", op)

    # --- helpers -----------------------------------------------------------------------
    async def _list(self, list_id: str) -> KeywordList:
        for found in await self.lists():
            if found.id == list_id:
                return found
        raise NotFound(f"no existe la lista de palabras clave {list_id!r}")

    @staticmethod
    async def _unique_name(session: AsyncSession, name: str, list_id: str | None) -> None:
        query = select(KeywordListRow.id).where(KeywordListRow.name == name)
        other = (await session.execute(query)).scalar()
        if other is not None and other != list_id:
            raise InvalidChange(f"ya existe una lista llamada «{name}»",
                                [{"field": "name", "message": "repetido"}])  # fmt: skip

    def _audit(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        reason: str,
        list_id: str | None,
        keyword_id: str | None,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        session.add(KeywordAuditRow(
            at=self.clock(), actor=actor.name, role=actor.role.label, action=action,
            list_id=list_id, keyword_id=keyword_id, old_value=old, new_value=new, reason=reason,
        ))  # fmt: skip


async def _get_list(session: AsyncSession, list_id: str) -> KeywordListRow:
    row = await session.get(KeywordListRow, list_id)
    if row is None:
        raise NotFound(f"no existe la lista de palabras clave {list_id!r}")
    return row


async def _get_keyword(session: AsyncSession, keyword_id: str) -> KeywordRow:
    row = await session.get(KeywordRow, keyword_id)
    if row is None:
        raise NotFound(f"no existe la palabra clave {keyword_id!r}")
    return row


def _reason(actor: Actor, reason: str) -> str:
    if actor.role < Role.ADMIN:
        raise Forbidden(f"{actor.role.label} no puede cambiar las palabras clave (solo admin)")
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise InvalidChange(f"todo cambio necesita un motivo (1 a {MAX_REASON} caracteres)",
                            [{"field": "reason", "message": "requerido"}])  # fmt: skip
    return text


def _name(name: str) -> str:
    text = " ".join(name.split())
    if not text or len(text) > MAX_NAME:
        raise InvalidChange(f"el nombre de la lista debe tener de 1 a {MAX_NAME} caracteres",
                            [{"field": "name", "message": "requerido"}])  # fmt: skip
    return text


def _description(description: str) -> str:
    text = description.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidChange(f"la descripción tiene más de {MAX_DESCRIPTION} caracteres",
                            [{"field": "description", "message": "demasiado larga"}])  # fmt: skip
    return text


def _match_key(phrase: str) -> str:
    try:
        return match_key(phrase)
    except InvalidKeyword as exc:
        raise InvalidChange(str(exc), [{"field": "phrase", "message": str(exc)}]) from None
