"""ConversationStore on SQLite and PostgreSQL (``db`` runs each test on both):
dedupe, order, turns, outbox, statuses, the service window, idle expiry, hand-off."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select

from ivr.chat.store import (
    AGENT,
    BOT,
    MAX_SEND_ATTEMPTS,
    SERVICE_WINDOW,
    ContactBusy,
    Conversation,
    ConversationChanged,
    ConversationNotFound,
    ConversationStore,
    HandoffClosed,
    HandoffNotFound,
    HandoffTaken,
    InboundMessage,
    NotWithAgent,
    in_service_window,
    lock_key,
    next_retry,
)
from ivr.chat.tables import ChatInboundRow, ChatOutboundRow
from ivr.masking import mask_number
from ivr.store.db import Database, alembic_config
from ivr.store.models import Base

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
WA = "573001234567"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def message(mid: str, at: datetime, wa_id: str = WA, text: str = "hola") -> InboundMessage:
    return InboundMessage(mid, wa_id, "text", at, text=text)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> ConversationStore:
    return ConversationStore(db, flow="citas", clock=clock, lock_timeout=0.3)


async def count(db: Database, table: type[ChatInboundRow] | type[ChatOutboundRow]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def converse(store: ConversationStore, wa_id: str = WA) -> Conversation:
    async with store.turn(wa_id) as turn:
        turn.conversation.node = "menu"
    return turn.conversation


# --- inbound: dedupe and order -----------------------------------------------------------
@pytest.mark.parametrize(
    "again",
    [
        message("wamid.1", T0),  # Meta's retry: the very same message
        message("wamid.1", T0 + timedelta(seconds=5), text="otra cosa"),  # same id, other body
        message("wamid.1", T0, wa_id="573009999999"),  # same id, another contact
    ],
)
async def test_a_message_id_seen_before_is_dropped(
    store: ConversationStore, db: Database, again: InboundMessage
) -> None:
    first = await store.receive(message("wamid.1", T0))
    assert first is not None and first.message_id == "wamid.1"
    assert await store.receive(again) is None
    assert await count(db, ChatInboundRow) == 1
    async with store.turn(WA) as turn:
        assert [(m.message_id, m.text) for m in turn.inbound] == [("wamid.1", "hola")]


async def test_every_arrival_order_is_handled_in_meta_timestamp_order(
    store: ConversationStore,
) -> None:
    # Four messages, two with the same Meta second (then arrival order decides):
    # every one of the 24 arrival orders, each as its own contact.
    stamps = {"a": T0, "b": T0 + timedelta(seconds=1), "c": T0 + timedelta(seconds=3),
              "d": T0 + timedelta(seconds=3)}  # fmt: skip
    for n, order in enumerate(itertools.permutations("abcd")):
        wa_id = f"5730000{n:05d}"
        for name in order:
            await store.receive(message(f"wamid.{n}.{name}", stamps[name], wa_id=wa_id))
        ties = [x for x in order if x in "cd"]  # c and d: the one that arrived first
        async with store.turn(wa_id) as turn:
            got = [m.message_id.rsplit(".", 1)[1] for m in turn.inbound]
        assert got == ["a", "b", *ties], order


async def test_a_turn_takes_at_most_limit_and_the_next_turn_the_rest(
    store: ConversationStore,
) -> None:
    for i in range(5):
        await store.receive(message(f"wamid.{i}", T0 + timedelta(seconds=i)))
    seen = []
    while True:
        async with store.turn(WA, limit=2) as turn:
            seen.append([m.message_id for m in turn.inbound])
        if not turn.inbound:
            break
    assert seen == [["wamid.0", "wamid.1"], ["wamid.2", "wamid.3"], ["wamid.4"], []]


# --- turns --------------------------------------------------------------------------------
async def test_a_turn_writes_its_changes_and_marks_its_messages(
    store: ConversationStore, clock: Clock
) -> None:
    await store.receive(message("wamid.1", T0))
    clock.now = T0 + timedelta(seconds=2)
    async with store.turn(WA) as turn:
        assert turn.conversation.node is None and turn.conversation.state == BOT
        turn.conversation.node, turn.conversation.attempt = "ask_document", 1
        turn.conversation.variables["documento"] = {"tipo": "CC", "partes": [1, 2]}
        turn.conversation.journey_id = "j-1"
        turn.queue_outbound("c:1:0", {"type": "text", "text": {"body": "Hola"}})
    after = await store.conversation(WA)
    assert after is not None
    assert (after.node, after.attempt, after.journey_id) == ("ask_document", 1, "j-1")
    assert after.variables == {"documento": {"tipo": "CC", "partes": [1, 2]}}
    assert after.last_inbound_at == T0 and after.last_activity_at == clock.now
    assert after.version == turn.conversation.version == 1
    [sent] = await store.outbound_of(after.id)
    assert sent.payload == {"type": "text", "text": {"body": "Hola"}}
    async with store.turn(WA) as turn:
        assert turn.inbound == []  # processed
        turn.conversation.variables["documento"]["partes"].append(3)  # a nested change
    after = await store.conversation(WA)
    assert after is not None and after.variables["documento"]["partes"] == [1, 2, 3]


async def test_a_turn_that_raises_writes_nothing(store: ConversationStore, db: Database) -> None:
    await store.receive(message("wamid.1", T0))
    with pytest.raises(RuntimeError, match="engine"):
        async with store.turn(WA) as turn:
            turn.conversation.node = "elsewhere"
            turn.queue_outbound("c:1:0", {"text": "no"})
            turn.hand_to_agent("error", {})
            raise RuntimeError("engine failed")
    conversation = await store.conversation(WA)
    assert conversation is not None and conversation.node is None
    assert conversation.state == BOT and conversation.version == 0
    assert await count(db, ChatOutboundRow) == 0
    assert await store.open_handoffs() == []
    async with store.turn(WA) as turn:  # the message is still there to handle
        assert [m.message_id for m in turn.inbound] == ["wamid.1"]


async def test_a_turn_changed_under_it_writes_nothing(
    store: ConversationStore, clock: Clock, db: Database
) -> None:
    await converse(store)  # in the middle of the flow
    await store.receive(message("wamid.1", T0))
    clock.now = T0 + timedelta(hours=1)
    with pytest.raises(ConversationChanged):
        async with store.turn(WA) as turn:
            turn.conversation.node = "next"
            turn.queue_outbound("c:2:0", {"text": "x"})
            assert await store.expire_idle(clock.now, timedelta(minutes=30))  # meanwhile
    conversation = await store.conversation(WA)
    assert conversation is not None and conversation.node is None  # expiry won
    assert await count(db, ChatOutboundRow) == 0
    async with store.turn(WA) as turn:
        assert [m.message_id for m in turn.inbound] == ["wamid.1"]


async def test_a_second_turn_on_a_contact_waits_then_gives_up_others_do_not_wait(
    store: ConversationStore,
) -> None:
    async with store.turn(WA):
        with pytest.raises(ContactBusy):
            async with store.turn(WA):
                pass
        async with store.turn("573009999999") as other:  # another contact: not blocked
            other.conversation.node = "menu"
    async with store.turn(WA) as turn:  # released
        assert turn.conversation.wa_id == WA


async def test_a_turn_does_not_hold_the_database_while_its_flow_works(
    db: Database, clock: Clock
) -> None:
    # The flow's actions write to the same database through other connections (a
    # booking); and the webhook keeps storing the contact's messages meanwhile.
    store = ConversationStore(db, flow="citas", clock=clock, lock_timeout=0.3)
    quick = ConversationStore(Database(db.url, timeout=1.0), flow="citas", clock=clock)
    other = await converse(store, "573009999999")
    try:
        await store.receive(message("wamid.1", T0))
        async with store.turn(WA) as turn:
            assert [m.message_id for m in turn.inbound] == ["wamid.1"]
            assert await quick.receive(message("wamid.2", T0 + timedelta(seconds=1)))
            await quick.queue_outbound(other, "other:0", {"text": "a"})
            turn.conversation.node = "menu"
        async with store.turn(WA) as turn:  # what came meanwhile: the next turn's
            assert [m.message_id for m in turn.inbound] == ["wamid.2"]
    finally:
        await quick.db.close()


def test_lock_keys_are_stable_signed_64_bit_and_differ() -> None:
    keys = {lock_key(f"57300{n:07d}") for n in range(2000)}
    assert len(keys) == 2000
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_key(WA) == lock_key(WA)


# --- outbox ---------------------------------------------------------------------------------
async def test_the_same_key_queues_one_row(store: ConversationStore, db: Database) -> None:
    conversation = await converse(store)
    first = await store.queue_outbound(conversation, "c:1:0", {"text": "uno"})
    again = await store.queue_outbound(conversation, "c:1:0", {"text": "otro"})
    async with store.turn(WA) as turn:  # a replayed turn queues the same key
        turn.queue_outbound("c:1:0", {"text": "tres"})
        turn.queue_outbound("c:1:1", {"text": "dos"})
    assert first == again
    rows = await store.outbound_of(conversation.id)
    assert [(r.key, r.payload["text"]) for r in rows] == [("c:1:0", "uno"), ("c:1:1", "dos")]


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, timedelta(seconds=2)), (2, timedelta(seconds=4)), (3, timedelta(seconds=8)),
     (7, timedelta(seconds=128)), (MAX_SEND_ATTEMPTS, None), (MAX_SEND_ATTEMPTS + 3, None)],
)  # fmt: skip
def test_retries_back_off_doubling_then_give_up(attempts: int, delay: timedelta | None) -> None:
    assert next_retry(attempts, T0) == (T0 + delay if delay is not None else None)


def test_retries_are_never_more_than_five_minutes_apart() -> None:
    gaps = [next_retry(n, T0) for n in range(1, MAX_SEND_ATTEMPTS)]
    assert all(g is not None and T0 < g <= T0 + timedelta(minutes=5) for g in gaps)
    assert gaps == sorted(gaps)


async def test_a_failed_send_is_due_again_at_its_retry_time_and_sent_is_final(
    store: ConversationStore, clock: Clock
) -> None:
    conversation = await converse(store)
    row_id = await store.queue_outbound(conversation, "c:1:0", {"text": "uno"})
    [leased] = await store.due_outbound(now=T0)
    assert (leased.id, leased.attempts, leased.state) == (row_id, 1, "sending")
    assert await store.due_outbound(now=T0) == []  # leased: nobody else gets it
    retry_at = next_retry(leased.attempts, T0)
    assert retry_at is not None
    await store.mark_failed(row_id, "timeout", retry_at)
    assert await store.due_outbound(now=retry_at - timedelta(microseconds=1)) == []
    [again] = await store.due_outbound(now=retry_at)
    assert (again.attempts, again.last_error) == (2, "timeout")
    await store.mark_sent(row_id, "wamid.out1")
    await store.mark_failed(row_id, "late failure", None)  # a confused sender
    sent = await store.outbound(row_id)
    assert sent is not None and (sent.state, sent.wamid) == ("sent", "wamid.out1")
    assert await store.due_outbound(now=T0 + timedelta(days=1)) == []


async def test_a_sender_that_died_leaves_a_lease_that_expires(store: ConversationStore) -> None:
    conversation = await converse(store)
    await store.queue_outbound(conversation, "c:1:0", {"text": "uno"})
    [leased] = await store.due_outbound(now=T0, lease_s=30)
    assert await store.due_outbound(now=T0 + timedelta(seconds=30)) == []
    [again] = await store.due_outbound(now=T0 + timedelta(seconds=31))
    assert again.id == leased.id and again.attempts == 2


async def test_a_contacts_replies_go_out_in_order_others_do_not_wait(
    store: ConversationStore,
) -> None:
    one = await converse(store)
    other = await converse(store, "573009999999")
    first = await store.queue_outbound(one, "one:0", {"text": "1"})
    second = await store.queue_outbound(one, "one:1", {"text": "2"})
    theirs = await store.queue_outbound(other, "other:0", {"text": "a"})
    leased = await store.due_outbound(now=T0)
    assert [m.id for m in leased] == [first, theirs]  # "one:1" waits for "one:0"
    await store.mark_failed(first, "503", T0 + timedelta(seconds=2))
    assert await store.due_outbound(now=T0 + timedelta(seconds=1)) == []  # still blocked
    [retried] = await store.due_outbound(now=T0 + timedelta(seconds=2))
    assert retried.id == first
    await store.mark_sent(first, "wamid.a")
    [nxt] = await store.due_outbound(now=T0 + timedelta(seconds=2))
    assert nxt.id == second
    await store.mark_failed(second, "rejected", None)  # given up: does not block later ones
    third = await store.queue_outbound(one, "one:2", {"text": "3"})
    assert [m.id for m in await store.due_outbound(now=T0 + timedelta(seconds=3))] == [third]


async def test_two_senders_never_lease_the_same_reply(db: Database, clock: Clock) -> None:
    stores = [ConversationStore(db, flow="citas", clock=clock) for _ in range(2)]
    for n in range(12):
        conversation = await converse(stores[0], f"5730000000{n:02d}")
        await stores[0].queue_outbound(conversation, f"k{n}", {"text": str(n)})
    ids: list[int] = []
    for _ in range(6):  # rounds of four concurrent leases until every reply is leased
        got = await asyncio.gather(*(s.due_outbound(now=T0, limit=5) for s in stores * 2))
        ids += [m.id for batch in got for m in batch]
        if len(ids) >= 12:
            break
    assert len(ids) == len(set(ids)) == 12


# --- statuses -------------------------------------------------------------------------------
STATUS_ORDER = {"sent": 1, "delivered": 2, "read": 3}


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
async def test_status_never_goes_back_whatever_order_meta_reports_in(
    store: ConversationStore, order: tuple[str, ...]
) -> None:
    conversation = await converse(store)
    row_id = await store.queue_outbound(conversation, "c:1:0", {"text": "x"})
    await store.mark_sent(row_id, "wamid.s")
    best = 0
    for n, status in enumerate(order):
        changed = await store.record_status("wamid.s", status, T0 + timedelta(seconds=n))
        assert changed == (STATUS_ORDER[status] > best)
        best = max(best, STATUS_ORDER[status])
        row = await store.outbound(row_id)
        assert row is not None and row.status is not None
        assert STATUS_ORDER[row.status] == best
    row = await store.outbound(row_id)
    assert row is not None and row.status == "read"
    times = {s: T0 + timedelta(seconds=n) for n, s in enumerate(order)}
    assert (row.sent_at, row.delivered_at, row.read_at) == (
        times["sent"], times["delivered"], times["read"],
    )  # fmt: skip
    assert not await store.record_status("wamid.s", "failed", T0, "131026")  # after read


@pytest.mark.parametrize(
    ("before", "failed_counts"), [((), True), (("sent",), True), (("delivered",), False)]
)
async def test_failed_replaces_only_nothing_or_sent_and_then_stays(
    store: ConversationStore, before: tuple[str, ...], failed_counts: bool
) -> None:
    conversation = await converse(store)
    row_id = await store.queue_outbound(conversation, "c:1:0", {"text": "x"})
    await store.mark_sent(row_id, "wamid.f")
    for status in before:
        await store.record_status("wamid.f", status, T0)
    assert await store.record_status("wamid.f", "failed", T0, "131047") == failed_counts
    assert not await store.record_status("wamid.f", "read", T0) or not failed_counts
    row = await store.outbound(row_id)
    assert row is not None and row.failed_at == T0
    assert (row.status == "failed") == failed_counts
    assert (row.status_error == "131047") == failed_counts


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["sent", "delivered", "read", "failed"]))
)
async def test_every_order_of_the_four_statuses_ends_where_meta_means(
    store: ConversationStore, order: tuple[str, ...]
) -> None:
    # Failed counts only before the message is known delivered (then it is
    # final); otherwise the furthest of sent/delivered/read wins.
    conversation = await converse(store)
    row_id = await store.queue_outbound(conversation, "c:1:0", {"text": "x"})
    await store.mark_sent(row_id, "wamid.p")
    for status in order:
        await store.record_status("wamid.p", status, T0, "131026" if status == "failed" else None)
    before_failed = order[: order.index("failed")]
    if "delivered" in before_failed or "read" in before_failed:
        expected = max((s for s in order if s != "failed"), key=STATUS_ORDER.__getitem__)
    else:
        expected = "failed"
    row = await store.outbound(row_id)
    assert row is not None and row.status == expected
    assert None not in (row.sent_at, row.delivered_at, row.read_at, row.failed_at)


async def test_a_status_for_an_unknown_message_or_an_unknown_status(
    store: ConversationStore,
) -> None:
    assert await store.record_status("wamid.nobody", "read", T0) is False
    conversation = await converse(store)
    row_id = await store.queue_outbound(conversation, "c:1:0", {"text": "x"})
    await store.mark_sent(row_id, "wamid.s")
    assert await store.record_status("wamid.s", "deleted", T0) is False  # one Meta may add
    row = await store.outbound(row_id)
    assert row is not None and row.status is None


# --- the service window and idle expiry ------------------------------------------------------
@pytest.mark.parametrize(
    ("elapsed", "open_"),
    [(timedelta(0), True), (timedelta(hours=23, minutes=59, seconds=59), True),
     (SERVICE_WINDOW - timedelta(microseconds=1), True), (SERVICE_WINDOW, False),
     (timedelta(hours=24, seconds=1), False), (timedelta(days=3), False)],
)  # fmt: skip
async def test_the_service_window_is_24_hours_from_the_contacts_last_message(
    store: ConversationStore, elapsed: timedelta, open_: bool
) -> None:
    await store.receive(message("wamid.1", T0))
    async with store.turn(WA):
        pass
    conversation = await store.conversation(WA)
    assert conversation is not None and conversation.last_inbound_at == T0
    assert in_service_window(conversation, T0 + elapsed) is open_
    assert store.in_service_window(conversation, T0 + elapsed) is open_


async def test_a_contact_who_never_wrote_has_no_window(store: ConversationStore) -> None:
    conversation = await converse(store)
    assert conversation.last_inbound_at is None
    assert not in_service_window(conversation, T0)


IDLE = timedelta(minutes=30)


def notice(conversation: Conversation) -> dict[str, object]:
    return {"type": "text", "text": {"body": "Su sesión expiró. Escríbanos para empezar de nuevo."}}


@pytest.mark.parametrize(
    ("elapsed", "expires"),
    [(IDLE - timedelta(seconds=1), False), (IDLE, True), (IDLE + timedelta(seconds=1), True)],
)
async def test_idle_expiry_over_the_boundary(
    store: ConversationStore, clock: Clock, elapsed: timedelta, expires: bool
) -> None:
    await store.receive(message("wamid.1", T0))
    async with store.turn(WA) as turn:
        turn.conversation.node, turn.conversation.attempt = "ask_document", 2
        turn.conversation.variables = {"documento": "123"}
    reset = await store.expire_idle(T0 + elapsed, IDLE, notice=notice)
    conversation = await store.conversation(WA)
    assert conversation is not None
    if expires:
        assert [c.node for c in reset] == ["ask_document"]  # as it was
        assert (conversation.node, conversation.attempt, conversation.variables) == (None, 0, {})
        assert conversation.outcome == "expired" and conversation.state == BOT
        [told] = await store.outbound_of(conversation.id)
        assert "expiró" in told.payload["text"]["body"]
        assert await store.expire_idle(T0 + elapsed, IDLE, notice=notice) == []  # once
        assert len(await store.outbound_of(conversation.id)) == 1
    else:
        assert reset == [] and conversation.node == "ask_document"
        assert await store.outbound_of(conversation.id) == []


async def test_idle_expiry_leaves_agents_and_finished_chats_and_tells_only_in_the_window(
    store: ConversationStore, clock: Clock
) -> None:
    async with store.turn("573000000001") as turn:  # with an agent
        turn.conversation.node = "x"
        turn.hand_to_agent("asesor", {})
    async with store.turn("573000000002"):  # not in a flow (node None)
        pass
    async with store.turn("573000000003") as turn:  # wrote 2 days ago: window closed
        turn.conversation.node = "x"
    later = T0 + timedelta(days=2)
    reset = await store.expire_idle(later, IDLE, notice=notice)
    assert [c.wa_id for c in reset] == ["573000000003"]
    assert await store.outbound_of(reset[0].id) == []  # no free-form message outside it
    agent = await store.conversation("573000000001")
    assert agent is not None and (agent.state, agent.node) == (AGENT, "x")


# --- hand-off ---------------------------------------------------------------------------------
async def test_hand_off_take_and_release(store: ConversationStore) -> None:
    await store.receive(message("wamid.1", T0))
    async with store.turn(WA) as turn:
        turn.conversation.node = "agent_transfer"
        turn.hand_to_agent("solicitud", {"motivo": "cita", "documento": "CC ***789"})
    [queued] = await store.open_handoffs()
    assert (queued.wa_id, queued.reason, queued.taken_by) == (WA, "solicitud", None)
    assert queued.context == {"motivo": "cita", "documento": "CC ***789"}
    conversation = await store.conversation(WA)
    assert conversation is not None and conversation.state == AGENT
    again = await store.hand_to_agent(conversation, "otra", {})  # already queued: the same
    assert again.id == queued.id

    taken = await store.take(queued.id, "ana")
    assert taken.taken_by == "ana" and taken.taken_at == T0
    assert (await store.take(queued.id, "ana")).id == queued.id  # one's own again
    with pytest.raises(HandoffTaken) as lost:
        await store.take(queued.id, "beto")
    assert lost.value.taken_by == "ana"
    with pytest.raises(HandoffNotFound):
        await store.take(queued.id + 1000, "ana")
    conversation = await store.conversation(WA)
    assert conversation is not None and conversation.assigned_agent == "ana"

    released = await store.release(WA)
    assert (released.state, released.assigned_agent, released.node) == (BOT, None, None)
    assert await store.open_handoffs() == []
    with pytest.raises(NotWithAgent):
        await store.release(WA)
    with pytest.raises(HandoffClosed):
        await store.take(queued.id, "beto")
    with pytest.raises(ConversationNotFound):
        await store.release("573009999999")


async def test_conversations_for_the_console(store: ConversationStore, clock: Clock) -> None:
    for n, (node, outcome) in enumerate([("menu", None), (None, "completed"), ("x", None)]):
        clock.now = T0 + timedelta(minutes=n)
        async with store.turn(f"57300000000{n}") as turn:
            turn.conversation.node, turn.conversation.outcome = node, outcome
            if n == 2:
                turn.hand_to_agent("asesor", {})
    everyone = await store.conversations()
    assert [c.wa_id for c in everyone] == ["573000000002", "573000000001", "573000000000"]
    assert [c.wa_id for c in await store.conversations(state=AGENT)] == ["573000000002"]
    assert [c.wa_id for c in await store.conversations(outcome="completed")] == ["573000000001"]
    active = await store.conversations(active=True)
    assert [c.wa_id for c in active] == ["573000000002", "573000000000"]
    with pytest.raises(ValueError, match="unknown conversation state"):
        await store.conversations(state="open")


async def test_numbers_are_masked_in_the_logs(
    store: ConversationStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr.chat")
    await store.receive(message("wamid.1", T0))
    await store.receive(message("wamid.1", T0))
    async with store.turn(WA) as turn:
        turn.conversation.node = "x"
        turn.hand_to_agent("asesor", {})
    [handoff] = await store.open_handoffs()
    await store.take(handoff.id, "ana")
    await store.release(WA)
    await converse(store)
    await store.expire_idle(T0 + timedelta(hours=1), IDLE)
    assert caplog.records
    assert WA not in caplog.text
    assert mask_number(WA) in caplog.text


# --- migration 0006 ------------------------------------------------------------------------
CHAT_TABLES = {"conversations", "chat_inbound", "chat_outbound", "chat_handoffs"}


def _chat_diffs(connection: Connection) -> list[object]:
    """What differs between the database and the ORM tables of ``ivr.chat.tables``."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        items = diff if isinstance(diff, list) else [diff]
        for item in items:
            if any(getattr(x, "name", None) in CHAT_TABLES or
                   getattr(getattr(x, "table", None), "name", None) in CHAT_TABLES
                   or x in CHAT_TABLES for x in item[1:]):  # fmt: skip
                found.append(item)
    return found


async def test_migration_0006_matches_the_tables_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        assert await conn.run_sync(_chat_diffs) == []
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert names & CHAT_TABLES == set() and "slots" in names
    await db.migrate()
    store = ConversationStore(db, flow="citas")
    assert await store.receive(message("wamid.1", T0)) is not None


async def test_an_in_memory_database_serialises_turns_in_its_one_process() -> None:
    db = Database("sqlite+aiosqlite:///:memory:", timeout=5.0)
    try:
        await db.migrate()
        store = ConversationStore(db, flow="citas", lock_timeout=0.2)
        await store.receive(message("wamid.1", T0))
        async with store.turn(WA) as turn:
            assert [m.message_id for m in turn.inbound] == ["wamid.1"]
            with pytest.raises(ContactBusy):
                async with store.turn(WA):
                    pass
        async with store.turn(WA) as turn:
            assert turn.inbound == []
    finally:
        await db.close()
