"""Conversations in the database: inbound messages once, one contact's turns one at a time.

The life of a contact's message::

    webhook ──receive()──▶ chat_inbound (unique Meta id: a retried delivery is dropped)
                               │
    runner ──turn(wa_id)───────┘ the contact's lock, then its unprocessed messages in
                                 Meta-timestamp order; the turn's changes (conversation,
                                 messages marked processed, replies queued, hand-off)
                                 are written together when the turn ends, or not at all
    sender ──due_outbound()──▶ Meta ──mark_sent()/mark_failed()
    webhook ──record_status()    sent → delivered → read (never backwards)

**One contact at a time, across processes.** ``turn`` holds the contact's
lock for its whole duration:

* PostgreSQL: a transaction-scoped advisory lock
  (``pg_try_advisory_xact_lock(key)``, key = the first 8 bytes of
  SHA-256("chat:" + wa_id)), held by a transaction that stays open for the
  turn and commits the turn's writes; a process that dies releases it with
  its connection.
* SQLite: an exclusive ``flock`` on a per-contact file next to the database
  (``<database>.chat-locks/<sha256 of wa_id>.lock``; the file name never shows
  the number); the OS releases it when the process dies. Not the database's
  write lock: a turn runs the flow, whose actions write to the same database
  (a booking) through other connections, and would wait for the turn's own
  write lock until they time out.

Writers other than turns (``expire_idle``, hand-off, release) do not take
the lock: every conversation has a ``version``; a turn writes only if the
version it read is still there, else it raises :class:`ConversationChanged`
and nothing of the turn is written (its messages stay unprocessed for the next
turn, which starts from what the other writer left).

**Outbound.** A reply is a ``chat_outbound`` row before anything sends it; the
idempotency key makes queuing it twice one row. ``due_outbound`` leases rows to
one sender (``sending``) and only the oldest unfinished row of each
conversation, so a contact's replies go out in order even across retries. A
row marked ``sent`` is never sent again nor changed by a late failure.

A runner's loop for one contact (after ``receive`` stored the message)::

    while True:
        async with store.turn(wa_id, limit=10) as turn:
            for message in turn.inbound:
                ...  # the engine, on turn.conversation (node, attempt, variables)
                turn.queue_outbound(f"{turn.conversation.id}:{message.id}:{n}", payload)
        if not turn.inbound:
            break

The key names a reply by what caused it (conversation, inbound message, index),
so queuing the same reply again, from a replay, is still one row.

Storage failures raise ``ivr.store.StoreUnavailable``; a turn that cannot get
its contact's lock in time raises :class:`ContactBusy`. Numbers (``wa_id``)
appear in logs masked (``ivr.masking.mask_number``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import fcntl
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ivr.chat.tables import ChatHandoffRow, ChatInboundRow, ChatOutboundRow, ConversationRow
from ivr.failures import failure_text
from ivr.masking import mask_number
from ivr.store.db import Database, DialectInsert, StoreError, StoreUnavailable, dialect_insert

logger = logging.getLogger(__name__)

T = TypeVar("T")

BOT, AGENT, CLOSED = "bot", "agent", "closed"
STATES = (BOT, AGENT, CLOSED)
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
# Meta's delivery statuses, in the order a message goes through them.
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}
STATUS_FAILED = "failed"
STATUSES = (*STATUS_RANK, STATUS_FAILED)
# Meta's customer-service window: free-form messages may be sent until 24 hours
# after the contact's last message (developers.facebook.com/docs/whatsapp/
# cloud-api/guides/send-messages#customer-service-windows).
SERVICE_WINDOW = timedelta(hours=24)
EXPIRED = "expired"  # the outcome of a conversation reset for being idle
RETRY_BASE = timedelta(seconds=2)
RETRY_CAP = timedelta(minutes=5)
MAX_SEND_ATTEMPTS = 8


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- errors ----------------------------------------------------------------------------
class ContactBusy(StoreError):
    """Another turn held the contact's lock for longer than the lock timeout.

    The message that brought the caller here is stored: the holder's runner,
    which loops until its contact has nothing unprocessed, handles it.
    """


class ConversationChanged(StoreError):
    """Someone (idle expiry, an operator) changed the conversation during the turn;
    nothing of the turn was written."""


class ChatDeskError(Exception):
    """A hand-off request that cannot be done as asked (the operator's mistake or a race)."""


class ConversationNotFound(ChatDeskError):
    pass


class HandoffNotFound(ChatDeskError):
    pass


class HandoffTaken(ChatDeskError):
    """Another agent took the hand-off first."""

    def __init__(self, message: str, taken_by: str) -> None:
        super().__init__(message)
        self.taken_by = taken_by


class HandoffClosed(ChatDeskError):
    """The hand-off was released already (the bot has the conversation again)."""


class NotWithAgent(ChatDeskError):
    """The conversation is not with an agent: there is nothing to release."""


# --- what the store gives and takes --------------------------------------------------------
@dataclass(frozen=True)
class InboundMessage:
    """A contact's message as the webhook parsed it.

    ``message_id``: Meta's message id (``wamid.…``), the dedupe key.
    ``wa_id``: the contact, E.164 digits without ``+``. ``kind``: Meta's type
    (``text``, ``button``, ``interactive``…). ``meta_timestamp``: when the
    contact sent it (Meta's ``timestamp``, whole seconds), aware.
    ``reply_id``: the id of the button or list row chosen, if any.
    """

    message_id: str
    wa_id: str
    kind: str
    meta_timestamp: datetime
    text: str | None = None
    reply_id: str | None = None


@dataclass(frozen=True)
class Inbound:
    """A stored inbound message (``id`` breaks ties of equal Meta timestamps: arrival order)."""

    id: int
    message_id: str
    conversation_id: str
    kind: str
    text: str | None
    reply_id: str | None
    meta_timestamp: datetime
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def from_row(cls, row: ChatInboundRow) -> Inbound:
        return cls(
            row.id, row.message_id, row.conversation_id, row.kind, row.text, row.reply_id,
            row.meta_timestamp, row.received_at, row.processed_at,
        )  # fmt: skip


@dataclass
class Conversation:
    """One contact's conversation. In a turn, the caller changes ``node``,
    ``attempt``, ``variables`` (JSON-serialisable), ``state``, ``outcome`` and
    ``journey_id``; the rest is the store's."""

    id: str
    wa_id: str
    flow: str
    node: str | None
    attempt: int
    variables: dict[str, Any]
    state: str
    outcome: str | None
    assigned_agent: str | None
    journey_id: str | None
    last_inbound_at: datetime | None
    last_activity_at: datetime
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ConversationRow) -> Conversation:
        return cls(
            row.id, row.wa_id, row.flow, row.node, row.attempt, dict(row.variables or {}),
            row.state, row.outcome, row.assigned_agent, row.journey_id, row.last_inbound_at,
            row.last_activity_at, row.version, row.created_at, row.updated_at,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """For the console: no variables (they may hold personal data)."""
        ends = self.last_inbound_at + SERVICE_WINDOW if self.last_inbound_at else None
        return {
            "id": self.id,
            "wa_id": self.wa_id,
            "wa_id_masked": mask_number(self.wa_id),
            "flow": self.flow,
            "node": self.node,
            "state": self.state,
            "outcome": self.outcome,
            "assigned_agent": self.assigned_agent,
            "journey_id": self.journey_id,
            "last_inbound_at": _iso(self.last_inbound_at),
            "service_window_ends_at": _iso(ends),
            "last_activity_at": self.last_activity_at.isoformat(),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Outbound:
    """A queued reply. ``state``: queued | sending | sent | failed (ours);
    ``status``: Meta's (sent | delivered | read | failed), None until Meta reports."""

    id: int
    key: str
    conversation_id: str
    wa_id: str
    payload: dict[str, Any]
    state: str
    attempts: int  # sends started, counted when leased
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    wamid: str | None
    status: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    status_error: str | None

    @classmethod
    def from_row(cls, row: ChatOutboundRow) -> Outbound:
        return cls(
            row.id, row.key, row.conversation_id, row.wa_id, dict(row.payload), row.state,
            row.attempts, row.next_attempt_at, row.lease_until, row.last_error, row.created_at,
            row.wamid, row.status, row.sent_at, row.delivered_at, row.read_at, row.failed_at,
            row.status_error,
        )  # fmt: skip


@dataclass(frozen=True)
class Handoff:
    """A conversation handed to a person: queued, then taken by an agent, then released."""

    id: int
    conversation_id: str
    wa_id: str
    reason: str
    context: dict[str, Any]
    queued_at: datetime
    taken_by: str | None
    taken_at: datetime | None
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: ChatHandoffRow, wa_id: str) -> Handoff:
        return cls(
            row.id, row.conversation_id, wa_id, row.reason, dict(row.context or {}),
            row.queued_at, row.taken_by, row.taken_at, row.released_at,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "wa_id": self.wa_id,
            "wa_id_masked": mask_number(self.wa_id),
            "reason": self.reason,
            "context": self.context,
            "queued_at": self.queued_at.isoformat(),
            "taken_by": self.taken_by,
            "taken_at": _iso(self.taken_at),
            "released_at": _iso(self.released_at),
        }


@dataclass(frozen=True)
class ChatSummary:
    """Counts of conversations (:meth:`ConversationStore.summary`)."""

    active: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"active": self.active, "by_state": dict(self.by_state),
                "by_outcome": dict(self.by_outcome)}  # fmt: skip


@dataclass
class Turn:
    """What a turn yields: the conversation to read and change, and the contact's
    unprocessed messages, oldest first (Meta timestamp, then arrival).

    When the ``async with`` block ends without an exception, every message in
    ``inbound`` is marked processed, the conversation's changes are written, and
    the replies queued with :meth:`queue_outbound` and the hand-off asked with
    :meth:`hand_to_agent` are stored, all in one transaction. An exception
    writes nothing.
    """

    conversation: Conversation
    inbound: builtins.list[Inbound]
    _read: Conversation
    _outbound: builtins.list[tuple[str, dict[str, Any]]] = field(default_factory=builtins.list)
    _handoff: tuple[str, dict[str, Any]] | None = None

    def queue_outbound(self, key: str, payload: Mapping[str, Any]) -> None:
        """Queue a reply when the turn commits (``key`` twice: one row, the first)."""
        self._outbound.append((key, dict(payload)))

    def hand_to_agent(self, reason: str, context: Mapping[str, Any]) -> None:
        """Queue the conversation for a person when the turn commits (state ``agent``)."""
        self._handoff = (reason, dict(context))
        self.conversation.state = AGENT

    @property
    def changed(self) -> bool:
        return bool(
            self.inbound or self._outbound or self._handoff or self.conversation != self._read
        )


def in_service_window(conversation: Conversation, now: datetime) -> bool:
    """True while a free-form message may be sent: less than 24 hours since the
    contact's last message (Meta's customer-service window; at exactly 24 h it is
    closed). A contact who never wrote has no window."""
    last = conversation.last_inbound_at
    return last is not None and now - last < SERVICE_WINDOW


def next_retry(attempts: int, now: datetime) -> datetime | None:
    """When to try a failed send again after ``attempts`` sends (1, 2, …):
    2 s, 4 s, 8 s … doubling, at most 5 minutes apart; None once
    :data:`MAX_SEND_ATTEMPTS` sends failed (give up: ``mark_failed(..., None)``)."""
    if attempts >= MAX_SEND_ATTEMPTS:
        return None
    delay = RETRY_BASE * int(2 ** max(attempts - 1, 0))
    return now + min(delay, RETRY_CAP)


def lock_key(wa_id: str) -> int:
    """The contact's advisory-lock key: a signed 64-bit integer from SHA-256
    (the same in every process, unlike Python's ``hash``)."""
    return int.from_bytes(hashlib.sha256(b"chat:" + wa_id.encode()).digest()[:8], signed=True)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class ConversationStore:
    """Conversations, their messages, the outbox and the hand-off queue.

    ``flow``: the flow a new conversation starts in. ``lock_timeout``: how long
    a turn waits for its contact's lock (seconds; default the database timeout)
    before :class:`ContactBusy`. ``clock``: aware UTC now.
    """

    def __init__(
        self,
        db: Database,
        *,
        flow: str,
        lock_timeout: float | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.db = db
        self.flow = flow
        self.lock_timeout = db.timeout if lock_timeout is None else lock_timeout
        self._clock = clock
        self._postgres = db.engine.dialect.name == "postgresql"
        self._lock_dir: Path | None = None
        if not self._postgres:
            database = db.engine.url.database
            if database and database != ":memory:":
                path = Path(database)
                self._lock_dir = path.with_name(path.name + ".chat-locks")
        self._memory_lock = asyncio.Lock()

    # --- inbound ------------------------------------------------------------------------
    async def receive(self, message: InboundMessage) -> Inbound | None:
        """Store a contact's message once; None when its Meta id is stored already
        (Meta delivers a webhook again until it gets a 200). Creates the contact's
        conversation if it has none."""
        now = self._clock()

        async def op(session: AsyncSession) -> Inbound | None:
            conversation_id = await self._ensure_conversation(session, message.wa_id, now)
            row_id = await session.scalar(
                self._insert(ChatInboundRow)
                .values(
                    message_id=message.message_id, conversation_id=conversation_id,
                    kind=message.kind, text=message.text, reply_id=message.reply_id,
                    meta_timestamp=message.meta_timestamp, received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["message_id"])
                .returning(ChatInboundRow.id)
            )  # fmt: skip
            if row_id is None:
                return None
            row = await session.get(ChatInboundRow, row_id)
            assert row is not None
            return Inbound.from_row(row)

        stored = await self._run(f"store chat message {message.message_id}", op)
        if stored is None:
            logger.info("chat message %s from %s again: dropped",
                        message.message_id, mask_number(message.wa_id))  # fmt: skip
        else:
            logger.info("chat message %s from %s stored",
                        message.message_id, mask_number(message.wa_id))  # fmt: skip
        return stored

    # --- turns --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def turn(self, wa_id: str, *, limit: int | None = None) -> AsyncIterator[Turn]:
        """Hold ``wa_id``'s lock and yield its :class:`Turn` (at most ``limit``
        unprocessed messages). See the module docstring for the lock; the
        conversation is created if missing.

        Raises ContactBusy (lock not got within ``lock_timeout``),
        ConversationChanged (written meanwhile by another writer: nothing of
        the turn written) and StoreUnavailable. A caller loops over turns until
        ``inbound`` comes back empty, so a message stored while another
        process held the lock is handled too.
        """
        if self._postgres:
            async with self._pg_turn(wa_id, limit) as turn:
                yield turn
        else:
            async with self._file_lock(wa_id):
                turn = await self._run(
                    f"open a turn for {mask_number(wa_id)}",
                    lambda s: self._open_turn(s, wa_id, limit),
                )
                yield turn
                if turn.changed:
                    await self._run(
                        f"write a turn for {mask_number(wa_id)}",
                        lambda s: self._close_turn(s, turn),
                    )

    @contextlib.asynccontextmanager
    async def _pg_turn(self, wa_id: str, limit: int | None) -> AsyncIterator[Turn]:
        what = f"run a turn for {mask_number(wa_id)}"
        session = self.db.sessions()
        try:
            await self._guard(what, self._pg_lock(session, wa_id), self.lock_timeout)
            turn = await self._guard(what, self._open_turn(session, wa_id, limit))
            yield turn
            if turn.changed:
                await self._guard(what, self._close_turn(session, turn))
            await self._guard(what, session.commit())
        finally:
            await session.close()  # rolls back what was not committed; the lock goes with it

    async def _pg_lock(self, session: AsyncSession, wa_id: str) -> None:
        await session.begin()
        key = lock_key(wa_id)
        deadline = asyncio.get_running_loop().time() + self.lock_timeout
        pause = 0.002
        while not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}):
            if asyncio.get_running_loop().time() >= deadline:
                raise ContactBusy(f"{mask_number(wa_id)}: another turn holds the contact")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @contextlib.asynccontextmanager
    async def _file_lock(self, wa_id: str) -> AsyncIterator[None]:
        if self._lock_dir is None:  # in-memory database: one process, one turn at a time
            lock = self._memory_lock
            try:
                async with asyncio.timeout(self.lock_timeout):
                    await lock.acquire()
            except TimeoutError:
                raise ContactBusy(f"{mask_number(wa_id)}: another turn holds the contact") from None
            try:
                yield
            finally:
                lock.release()
            return
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(wa_id.encode()).hexdigest()[:32] + ".lock"
        fd = os.open(self._lock_dir / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = asyncio.get_running_loop().time() + self.lock_timeout
            pause = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if asyncio.get_running_loop().time() >= deadline:
                        raise ContactBusy(
                            f"{mask_number(wa_id)}: another turn holds the contact"
                        ) from None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.05)
            yield
        finally:
            os.close(fd)  # releases the flock

    async def _open_turn(self, session: AsyncSession, wa_id: str, limit: int | None) -> Turn:
        now = self._clock()
        row = await session.scalar(select(ConversationRow).where(ConversationRow.wa_id == wa_id))
        if row is None:
            await self._ensure_conversation(session, wa_id, now)
            row = await session.scalar(
                select(ConversationRow).where(ConversationRow.wa_id == wa_id)
            )
            assert row is not None
        conversation = Conversation.from_row(row)
        query = (
            select(ChatInboundRow)
            .where(
                ChatInboundRow.conversation_id == conversation.id,
                ChatInboundRow.processed_at.is_(None),
            )
            .order_by(ChatInboundRow.meta_timestamp, ChatInboundRow.id)
        )
        if limit is not None:
            query = query.limit(limit)
        inbound = [Inbound.from_row(r) for r in await session.scalars(query)]
        return Turn(copy.deepcopy(conversation), inbound, conversation)

    async def _close_turn(self, session: AsyncSession, turn: Turn) -> None:
        now = self._clock()
        conv, read = turn.conversation, turn._read
        if conv.state not in STATES:
            raise ValueError(f"conversation state {conv.state!r}: expected one of {STATES}")
        last_inbound = read.last_inbound_at
        for message in turn.inbound:
            if last_inbound is None or message.meta_timestamp > last_inbound:
                last_inbound = message.meta_timestamp
        result = await session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conv.id, ConversationRow.version == read.version)
            .values(
                node=conv.node, attempt=conv.attempt, variables=conv.variables, state=conv.state,
                outcome=conv.outcome, journey_id=conv.journey_id, last_inbound_at=last_inbound,
                last_activity_at=now, updated_at=now, version=read.version + 1,
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConversationChanged(f"conversation {conv.id} changed during the turn")
        if turn.inbound:
            ids = [m.id for m in turn.inbound]
            marked = await session.execute(
                update(ChatInboundRow)
                .where(ChatInboundRow.id.in_(ids), ChatInboundRow.processed_at.is_(None))
                .values(processed_at=now)
                .execution_options(synchronize_session=False)
            )
            if marked.rowcount != len(ids):  # type: ignore[attr-defined]
                raise ConversationChanged(f"conversation {conv.id}: messages processed meanwhile")
        for key, payload in turn._outbound:
            await self._queue(session, conv.id, conv.wa_id, key, payload, now)
        if turn._handoff is not None:
            reason, context = turn._handoff
            await self._open_handoff(session, conv.id, reason, context, now)
        conv.last_inbound_at, conv.last_activity_at = last_inbound, now
        conv.updated_at, conv.version = now, read.version + 1

    # --- outbound -----------------------------------------------------------------------
    async def queue_outbound(
        self, conversation: Conversation, key: str, payload: Mapping[str, Any]
    ) -> int:
        """Store a reply to send (outside a turn; in a turn use :meth:`Turn.queue_outbound`).
        Returns the row's id; the same ``key`` again returns the first row's id and
        changes nothing."""
        now = self._clock()

        async def op(session: AsyncSession) -> int:
            return await self._queue(
                session, conversation.id, conversation.wa_id, key, dict(payload), now
            )

        return await self._run(f"queue chat message {key}", op)

    async def due_outbound(
        self, *, limit: int = 10, lease_s: float = 30.0, now: datetime | None = None
    ) -> builtins.list[Outbound]:
        """Lease up to ``limit`` replies to the calling sender, oldest first.

        Due: queued and its time has come, or sending with an expired lease
        (its sender died), and no older reply of the same conversation is still
        queued or sending (a contact's replies go out in order). Two senders
        never get the same row (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite:
        writers take turns and the UPDATE checks again that the row is due).
        Each lease counts one attempt.
        """
        at = now or self._clock()
        earlier = aliased(ChatOutboundRow)
        blocked = (
            select(earlier.id)
            .where(
                earlier.conversation_id == ChatOutboundRow.conversation_id,
                earlier.id < ChatOutboundRow.id,
                earlier.state.in_((QUEUED, SENDING)),
            )
            .exists()
        )
        due = and_(
            or_(
                and_(ChatOutboundRow.state == QUEUED, ChatOutboundRow.next_attempt_at <= at),
                and_(ChatOutboundRow.state == SENDING, ChatOutboundRow.lease_until < at),
            ),
            ~blocked,
        )
        pick = (
            select(ChatOutboundRow.id)
            .where(due)
            .order_by(ChatOutboundRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=ChatOutboundRow)
        )

        async def op(session: AsyncSession) -> builtins.list[Outbound]:
            ids = builtins.list(await session.scalars(pick))
            if not ids:
                return []
            claim = (
                update(ChatOutboundRow)
                .where(ChatOutboundRow.id.in_(ids), due)
                .values(
                    state=SENDING,
                    lease_until=at + timedelta(seconds=lease_s),
                    attempts=ChatOutboundRow.attempts + 1,
                )
                .returning(ChatOutboundRow)
                .execution_options(synchronize_session=False)
            )
            return [Outbound.from_row(row) for row in await session.scalars(claim)]

        leased = await self._run("lease chat messages to send", op)
        return sorted(leased, key=lambda m: m.id)

    async def mark_sent(self, id: int, wamid: str) -> None:
        """Meta accepted reply ``id`` and named it ``wamid``. A reply already sent stays as it was."""
        await self._set_outbound(id, "mark sent", state=SENT, wamid=wamid, last_error=None)

    async def mark_failed(self, id: int, error: str, retry_at: datetime | None) -> None:
        """A send failed: try again at ``retry_at`` (see :func:`next_retry`), or give
        up when None. Does nothing to a reply already sent."""
        if retry_at is None:
            await self._set_outbound(id, "mark failed", state=FAILED, last_error=error)
        else:
            await self._set_outbound(id, "mark for retry", state=QUEUED, last_error=error,
                                     next_attempt_at=retry_at)  # fmt: skip

    async def outbound(self, id: int) -> Outbound | None:
        async def op(session: AsyncSession) -> Outbound | None:
            row = await session.get(ChatOutboundRow, id)
            return Outbound.from_row(row) if row is not None else None

        return await self._run(f"read chat message {id}", op)

    async def outbound_of(self, conversation_id: str) -> builtins.list[Outbound]:
        """A conversation's replies, in the order they were queued."""
        query = (
            select(ChatOutboundRow)
            .where(ChatOutboundRow.conversation_id == conversation_id)
            .order_by(ChatOutboundRow.id)
        )

        async def op(session: AsyncSession) -> builtins.list[Outbound]:
            return [Outbound.from_row(r) for r in await session.scalars(query)]

        return await self._run("list a conversation's chat messages", op)

    async def record_status(
        self, wamid: str, status: str, at: datetime, error: str | None = None
    ) -> bool:
        """Record Meta's status for the reply Meta named ``wamid``.

        ``status``: sent | delivered | read | failed; ``at``: Meta's timestamp.
        Webhooks arrive out of order: the time of every status is kept, but the
        status only moves forward (sent → delivered → read; failed only over
        nothing or sent): a late "delivered" never replaces "read". Returns
        True when the status changed; False when it did not, when no reply
        has that wamid (yet: Meta may report before ``mark_sent`` is stored), or
        for a status this code does not know (one Meta may add later: logged,
        never an error, so the webhook still answers 200).
        """
        if status not in STATUSES:
            logger.warning("chat status %r of %s not known: ignored", status, wamid)
            return False
        time_column = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at",
                       "failed": "failed_at"}[status]  # fmt: skip

        async def op(session: AsyncSession) -> bool | None:
            row = await session.scalar(
                select(ChatOutboundRow).where(ChatOutboundRow.wamid == wamid).with_for_update()
            )
            if row is None:
                return None
            values: dict[str, object] = {}
            if getattr(row, time_column) is None:
                values[time_column] = at
            forward = _moves_forward(row.status, status)
            if forward:
                values["status"] = status
                if status == STATUS_FAILED:
                    values["status_error"] = error
            if values:
                # Compare-and-set on the status read: on SQLite the SELECT took no lock.
                result = await session.execute(
                    update(ChatOutboundRow)
                    .where(ChatOutboundRow.id == row.id, _same(ChatOutboundRow.status, row.status))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    raise _Retry
            return forward

        for _ in range(5):
            try:
                changed = await self._run(f"record status {status} of {wamid}", op)
            except _Retry:
                continue
            if changed is None:
                logger.info("chat status %s for unknown message %s", status, wamid)
                return False
            return changed
        raise StoreUnavailable(f"status {status} of {wamid}: changed under us five times")

    # --- windows and idle expiry --------------------------------------------------------------
    in_service_window = staticmethod(in_service_window)

    async def expire_idle(
        self,
        now: datetime,
        idle_for: timedelta,
        *,
        notice: Callable[[Conversation], Mapping[str, Any]] | None = None,
    ) -> builtins.list[Conversation]:
        """Reset to the start every bot conversation in the middle of a flow with no
        activity for ``idle_for`` or longer (``last_activity_at <= now - idle_for``):
        node None, attempt 0, variables emptied, outcome ``expired``.

        ``notice(conversation)`` builds the "su sesión expiró" reply, queued in
        the same transaction as the reset (key ``<id>:expired:<version>``) when the
        contact's service window is still open. Returns the conversations reset,
        as they were before. A conversation changed meanwhile is left alone.
        """
        cutoff = now - idle_for
        query = select(ConversationRow).where(
            ConversationRow.state == BOT,
            ConversationRow.node.is_not(None),
            ConversationRow.last_activity_at <= cutoff,
        )

        async def op(session: AsyncSession) -> builtins.list[Conversation]:
            reset: list[Conversation] = []
            for row in builtins.list(await session.scalars(query)):
                before = Conversation.from_row(row)
                result = await session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.id == before.id,
                           ConversationRow.version == before.version)
                    .values(node=None, attempt=0, variables={}, outcome=EXPIRED,
                            updated_at=now, version=before.version + 1)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                if notice is not None and in_service_window(before, now):
                    key = f"{before.id}:expired:{before.version}"
                    await self._queue(session, before.id, before.wa_id, key,
                                      dict(notice(before)), now)  # fmt: skip
                reset.append(before)
            return reset

        reset = await self._run("expire idle conversations", op)
        for conversation in reset:
            logger.info("chat with %s idle since %s: back to the start",
                        mask_number(conversation.wa_id), conversation.last_activity_at)  # fmt: skip
        return reset

    # --- hand-off ----------------------------------------------------------------------------
    async def hand_to_agent(
        self, conversation: Conversation, reason: str, context: Mapping[str, Any]
    ) -> Handoff:
        """Queue the conversation for a person (state ``agent``); a conversation
        already queued keeps its hand-off, which is returned."""
        now = self._clock()

        async def op(session: AsyncSession) -> Handoff:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation.id)
                .values(state=AGENT, updated_at=now, last_activity_at=now,
                        version=ConversationRow.version + 1)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            row = await self._open_handoff(session, conversation.id, reason, dict(context), now)
            return Handoff.from_row(row, conversation.wa_id)

        handoff = await self._run("hand a conversation to an agent", op)
        logger.info("chat with %s handed to an agent (%s)", mask_number(conversation.wa_id), reason)
        return handoff

    async def take(self, handoff_id: int, agent: str) -> Handoff:
        """``agent`` takes a queued hand-off. Taking one's own again returns it.

        Raises HandoffNotFound, HandoffTaken (by another agent, named in the
        error), HandoffClosed (released already).
        """
        now = self._clock()

        async def op(session: AsyncSession) -> Handoff:
            result = await session.execute(
                update(ChatHandoffRow)
                .where(ChatHandoffRow.id == handoff_id, ChatHandoffRow.taken_by.is_(None),
                       ChatHandoffRow.released_at.is_(None))
                .values(taken_by=agent, taken_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            row = await session.get(ChatHandoffRow, handoff_id, populate_existing=True)
            if row is None:
                raise HandoffNotFound(f"no hay una transferencia {handoff_id}")
            if result.rowcount != 1:  # type: ignore[attr-defined]
                if row.released_at is not None:
                    raise HandoffClosed(f"la transferencia {handoff_id} ya fue liberada")
                if row.taken_by != agent:
                    assert row.taken_by is not None
                    raise HandoffTaken(f"la transferencia {handoff_id} ya la tomó {row.taken_by}",
                                       row.taken_by)  # fmt: skip
            else:
                await session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.id == row.conversation_id)
                    .values(assigned_agent=agent, updated_at=now,
                            version=ConversationRow.version + 1)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
            wa_id = await session.scalar(
                select(ConversationRow.wa_id).where(ConversationRow.id == row.conversation_id)
            )
            assert wa_id is not None
            return Handoff.from_row(row, wa_id)

        handoff = await self._run(f"take hand-off {handoff_id}", op)
        logger.info("chat with %s taken by %s", mask_number(handoff.wa_id), agent)
        return handoff

    async def release(self, wa_id: str) -> Conversation:
        """Give the conversation back to the bot: its open hand-off is closed, state
        ``bot``, no agent, and the next message starts the flow again (node None;
        the variables are kept). Raises ConversationNotFound, NotWithAgent."""
        now = self._clock()

        async def op(session: AsyncSession) -> Conversation:
            row = await session.scalar(
                select(ConversationRow).where(ConversationRow.wa_id == wa_id).with_for_update()
            )
            if row is None:
                raise ConversationNotFound(f"no hay una conversación con {mask_number(wa_id)}")
            if row.state != AGENT:
                raise NotWithAgent(
                    f"la conversación con {mask_number(wa_id)} no está con un agente"
                )
            await session.execute(
                update(ChatHandoffRow)
                .where(ChatHandoffRow.conversation_id == row.id,
                       ChatHandoffRow.released_at.is_(None))
                .values(released_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            result = await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == row.id, ConversationRow.version == row.version)
                .values(state=BOT, assigned_agent=None, node=None, attempt=0,
                        updated_at=now, last_activity_at=now, version=row.version + 1)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise _Retry
            await session.refresh(row)
            return Conversation.from_row(row)

        for _ in range(5):
            try:
                conversation = await self._run(f"release the chat with {mask_number(wa_id)}", op)
            except _Retry:
                continue
            logger.info("chat with %s back to the bot", mask_number(wa_id))
            return conversation
        raise StoreUnavailable(f"chat with {mask_number(wa_id)}: changed under us five times")

    async def open_handoffs(self) -> builtins.list[Handoff]:
        """Hand-offs not released yet (queued or taken), oldest first."""
        query = (
            select(ChatHandoffRow, ConversationRow.wa_id)
            .join(ConversationRow, ConversationRow.id == ChatHandoffRow.conversation_id)
            .where(ChatHandoffRow.released_at.is_(None))
            .order_by(ChatHandoffRow.queued_at, ChatHandoffRow.id)
        )

        async def op(session: AsyncSession) -> builtins.list[Handoff]:
            rows = (await session.execute(query)).all()
            return [Handoff.from_row(row, wa_id) for row, wa_id in rows]

        return await self._run("list open hand-offs", op)

    # --- reading -----------------------------------------------------------------------------
    async def conversation(self, wa_id: str) -> Conversation | None:
        async def op(session: AsyncSession) -> Conversation | None:
            row = await session.scalar(
                select(ConversationRow).where(ConversationRow.wa_id == wa_id)
            )
            return Conversation.from_row(row) if row is not None else None

        return await self._run(f"read the chat with {mask_number(wa_id)}", op)

    async def conversations(
        self,
        *,
        state: str | None = None,
        outcome: str | None = None,
        active: bool = False,
        limit: int = 100,
    ) -> builtins.list[Conversation]:
        """Conversations for the console, most recently active first, optionally only
        one ``state`` (bot | agent | closed), one ``outcome``, or only the active
        ones (with an agent, or with the bot in the middle of a flow). Raises
        ValueError for an unknown state."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown conversation state {state!r}: expected one of {STATES}")
        query: Select[ConversationRow] = (
            select(ConversationRow)
            .order_by(ConversationRow.last_activity_at.desc(), ConversationRow.id)
            .limit(limit)
        )
        if state is not None:
            query = query.where(ConversationRow.state == state)
        if outcome is not None:
            query = query.where(ConversationRow.outcome == outcome)
        if active:
            query = query.where(
                or_(
                    ConversationRow.state == AGENT,
                    and_(ConversationRow.state == BOT, ConversationRow.node.is_not(None)),
                )
            )

        async def op(session: AsyncSession) -> builtins.list[Conversation]:
            return [Conversation.from_row(r) for r in await session.scalars(query)]

        return await self._run("list conversations", op)

    async def summary(self) -> ChatSummary:
        """The console's and the metrics' counts over every conversation (one per
        contact): ``active`` (with an agent, or with the bot in the middle of a
        flow), ``by_state`` and ``by_outcome`` (the outcome each conversation holds
        now: a contact who writes again after an ending starts over, outcome None,
        and is not counted under the old one)."""
        active = or_(
            ConversationRow.state == AGENT,
            and_(ConversationRow.state == BOT, ConversationRow.node.is_not(None)),
        )

        async def op(session: AsyncSession) -> ChatSummary:
            states = await session.execute(
                select(ConversationRow.state, func.count()).group_by(ConversationRow.state)
            )
            outcomes = await session.execute(
                select(ConversationRow.outcome, func.count())
                .where(ConversationRow.outcome.is_not(None))
                .group_by(ConversationRow.outcome)
            )
            count = await session.scalar(
                select(func.count()).select_from(ConversationRow).where(active)
            )
            return ChatSummary(
                active=int(count or 0),
                by_state={str(s): int(n) for s, n in states.all()},
                by_outcome={str(o): int(n) for o, n in outcomes.all()},
            )

        return await self._run("count conversations", op)

    async def inbound_of(self, conversation_id: str) -> builtins.list[Inbound]:
        """A conversation's messages, oldest first (Meta timestamp, then arrival)."""
        query = (
            select(ChatInboundRow)
            .where(ChatInboundRow.conversation_id == conversation_id)
            .order_by(ChatInboundRow.meta_timestamp, ChatInboundRow.id)
        )

        async def op(session: AsyncSession) -> builtins.list[Inbound]:
            return [Inbound.from_row(r) for r in await session.scalars(query)]

        return await self._run("list a conversation's messages", op)

    # --- helpers -----------------------------------------------------------------------------
    def _insert(
        self, table: type[ConversationRow] | type[ChatInboundRow] | type[ChatOutboundRow]
    ) -> DialectInsert:
        return dialect_insert(self.db.engine.dialect.name, table)

    async def _ensure_conversation(self, session: AsyncSession, wa_id: str, now: datetime) -> str:
        await session.execute(
            self._insert(ConversationRow)
            .values(
                id=str(uuid.uuid4()), wa_id=wa_id, flow=self.flow, node=None, attempt=0,
                variables={}, state=BOT, last_activity_at=now, version=0,
                created_at=now, updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["wa_id"])
        )  # fmt: skip
        conversation_id = await session.scalar(
            select(ConversationRow.id).where(ConversationRow.wa_id == wa_id)
        )
        assert conversation_id is not None
        return conversation_id

    async def _queue(
        self,
        session: AsyncSession,
        conversation_id: str,
        wa_id: str,
        key: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> int:
        row_id = await session.scalar(
            self._insert(ChatOutboundRow)
            .values(
                key=key, conversation_id=conversation_id, wa_id=wa_id, payload=payload,
                state=QUEUED, attempts=0, next_attempt_at=now, created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(ChatOutboundRow.id)
        )  # fmt: skip
        if row_id is None:
            row_id = await session.scalar(
                select(ChatOutboundRow.id).where(ChatOutboundRow.key == key)
            )
            assert row_id is not None
        return int(row_id)

    async def _open_handoff(
        self,
        session: AsyncSession,
        conversation_id: str,
        reason: str,
        context: dict[str, Any],
        now: datetime,
    ) -> ChatHandoffRow:
        existing = await session.scalar(
            select(ChatHandoffRow).where(
                ChatHandoffRow.conversation_id == conversation_id,
                ChatHandoffRow.released_at.is_(None),
            )
        )
        if existing is not None:
            return existing
        row = ChatHandoffRow(conversation_id=conversation_id, reason=reason, context=context,
                             queued_at=now)  # fmt: skip
        session.add(row)
        await session.flush()
        return row

    async def _set_outbound(self, id: int, what: str, **values: object) -> None:
        change = (
            update(ChatOutboundRow)
            .where(ChatOutboundRow.id == id, ChatOutboundRow.state != SENT)
            .values(lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )

        async def op(session: AsyncSession) -> None:
            await session.execute(change)

        await self._run(f"{what} chat message {id}", op)

    async def _run(self, what: str, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.db.run(what, op)

    async def _guard(self, what: str, step: Awaitable[T], extra_s: float = 0.0) -> T:
        try:
            async with asyncio.timeout(self.db.timeout + extra_s):
                return await step
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            reason = failure_text(exc, deadline_s=self.db.timeout + extra_s)
            raise StoreUnavailable(f"cannot {what}: {reason}") from exc


class _Retry(Exception):
    """A compare-and-set lost a race: read again and retry."""


def _moves_forward(old: str | None, new: str) -> bool:
    if new == STATUS_FAILED:
        return old is None or old == "sent"
    if old == STATUS_FAILED:
        return False
    return STATUS_RANK[new] > (STATUS_RANK[old] if old else 0)


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value
