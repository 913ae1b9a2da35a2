"""The assistant as a service: webhook events in, the flow on the chat channel, replies out.

::

    webhook ── on_events ──▶ ConversationStore.receive (Meta's id: once) ──▶ 200 to Meta
                 │ (statuses: record_status)
                 └── kick(wa_id) ─▶ turn(wa_id): the contact's lock, its messages in order,
                                    each one a run of the flow on a ChatChannel
                                    (FlowEngine.run / resume at the suspended question),
                                    replies rendered and queued in the outbox, all
                                    written together when the turn ends
    sender ── due_outbound ──▶ WhatsAppClient.send (retries, one send per key) ──▶ mark_sent
    expiry ── expire_idle ──▶ back to the start, with the ``chat_expired`` message

A conversation with a person (state ``agent``) gets no bot reply: its
messages are stored for the agent. Otherwise the ``takers`` (a survey waiting
for its rating, ``ivr.surveys.chat``) see each message first; one they take
is answered by them and never reaches the flow. A conversation whose flow ended (closed)
or was reset (idle) starts again at the flow's start with the next message;
that first message answers nothing, unless it carries a call's reference
(``ivr.chat.callref``): then it starts where the call ended (``resume_node``)
with the call's decisions, linked to the call by the journey id.

Outside Meta's 24-hour customer-service window only the approved template
(``template``) is sent instead of a reply (``payload_for``).

Why the sender and the expiry poll the database (with a wake-up event for
this process's own turns): rows queued by other processes and retries that
come due must be seen too, and the outbox lives in the database, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from ivr.channel import CallTransferred, HandOff, phrase_json
from ivr.chat.callref import CallReference, find_reference
from ivr.chat.channel import (
    CHANNEL_PROMPTS,
    UNSUPPORTED_PROMPT,
    AgentAsked,
    ChatChannel,
    Inbound,
)
from ivr.chat.render import Buttons, ListMenu, Message, Text
from ivr.chat.replies import Agent, read_choice
from ivr.chat.store import (
    AGENT,
    BOT,
    CLOSED,
    ContactBusy,
    Conversation,
    ConversationChanged,
    ConversationStore,
    InboundMessage,
    Turn,
    in_service_window,
    next_retry,
)
from ivr.chat.store import Inbound as StoredInbound
from ivr.chat.tables import ChatInboundRow, ConversationRow
from ivr.flow.engine import CallState, FlowEngine, Resume, Suspended
from ivr.flow.model import Flow
from ivr.masking import mask_number
from ivr.store.db import StoreUnavailable
from ivr.store.records import CallRecord
from ivr.whatsapp import messages as wa
from ivr.whatsapp.client import WhatsAppClient, WhatsAppPermanentError, WhatsAppTemporaryError
from ivr.whatsapp.events import (
    InteractiveReply,
    StatusUpdate,
    TemplateButtonReply,
    TextMessage,
    UnsupportedMessage,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

EXPIRED_PROMPT = "chat_expired"
RUNNER_PROMPTS = (EXPIRED_PROMPT, UNSUPPORTED_PROMPT)
PATH_VARIABLE = "chat_path"  # the nodes a conversation went through (last MAX_PATH)
MAX_PATH = 200
TURN_RETRIES = 5
SENDER_IDLE_S = 1.0
EXPIRY_EVERY_S = 5.0

References = Callable[[str, str], Awaitable[CallReference | None]]
"""(code, sender E.164) -> the call a chat continues, or None (``ivr.chat.callref``)."""


class MessageTaker(Protocol):
    """Something that may answer a contact's message before the flow sees it
    (a survey waiting for its rating: ``ivr.surveys.chat``)."""

    async def take(self, wa_id: str, message_id: str, text: str | None) -> list[str] | None:
        """The texts to reply if the message is taken (then the flow never sees
        it), else None. Called again with the same ``message_id`` after a turn
        that failed to commit: it must give the same replies."""
        ...


@dataclass(frozen=True)
class ChatLine:
    """What a line plugs into the assistant (built by the composition root).

    ``texts``: prompt id -> chat text; ``resume_node``: where a chat opened with
    a call's reference starts; ``agents_queue``: the hand-off queue's name;
    ``template``/``template_language``: the approved template sent outside the
    24-hour window."""

    flow: Flow
    texts: Mapping[str, str]
    resume_node: str
    agents_queue: str = "chat-agents"
    template: str = "citas_retomar"
    template_language: str = "es"
    idle: timedelta = timedelta(minutes=30)


def missing_prompts(texts: Mapping[str, str]) -> list[str]:
    """The prompts the chat channel and the runner send by themselves that have no
    text in ``texts`` (the composition root refuses to start without them)."""
    return [p for p in dict.fromkeys((*CHANNEL_PROMPTS, *RUNNER_PROMPTS)) if p not in texts]


def inbound_of(event: WebhookEvent) -> InboundMessage | None:
    """The store's form of a webhook message (None for statuses)."""
    text: str | None
    reply: str | None
    match event:
        case TextMessage():
            kind, text, reply = "text", event.body, None
        case InteractiveReply():
            kind, text, reply = "interactive", event.title, event.reply_id
        case TemplateButtonReply():
            kind, text, reply = "text", event.text, None
        case UnsupportedMessage():
            kind, text, reply = "unsupported", None, None
        case _:
            return None
    return InboundMessage(event.message_id, event.sender, kind, event.timestamp, text, reply)


def reply_of(message: StoredInbound) -> Inbound:
    if message.kind == "unsupported":
        return Inbound("", kind="unsupported")
    if message.kind == "interactive":
        return Inbound(message.text or "", reply_id=message.reply_id, kind="interactive")
    return Inbound(message.text or "")


def payload_for(wa_id: str, message: Message) -> dict[str, Any]:
    """Meta's JSON for a rendered message (``ivr.whatsapp.messages`` builders)."""
    match message:
        case Text():
            return wa.text_message(wa_id, message.body)
        case Buttons():
            buttons = [wa.ReplyButton(b.id, b.title) for b in message.buttons]
            return wa.buttons_message(
                wa_id, message.body, buttons, header=message.header or None,
                footer=message.footer or None,
            )  # fmt: skip
        case ListMenu():
            rows = [wa.ListRow(r.id, r.title, r.description or None) for r in message.rows]
            return wa.list_message(
                wa_id, message.body, message.button, [wa.ListSection(rows)],
                header=message.header or None, footer=message.footer or None,
            )  # fmt: skip


def persistable(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The variables a conversation keeps: JSON only (``Phrase``s as mappings),
    without the process-local caches (names starting with ``_``)."""
    return {k: phrase_json(v) for k, v in variables.items() if not k.startswith("_")}


class ChatRunner:
    """Runs one line's assistant. ``store``, ``engine``, ``client`` are built by
    the composition root; ``references`` resolves a call's reference."""

    def __init__(
        self,
        store: ConversationStore,
        engine: FlowEngine,
        line: ChatLine,
        client: WhatsAppClient,
        *,
        references: References | None = None,
        takers: Sequence[MessageTaker] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.engine = engine
        self.line = line
        self.client = client
        self.references = references
        self.takers = tuple(takers)
        self.clock = clock
        # Since start, for the ops metrics: contact messages stored (once), replies sent.
        self.counts: dict[str, int] = {"in": 0, "out": 0}
        self._kicked: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # --- the webhook ------------------------------------------------------------------
    async def on_events(self, events: Sequence[WebhookEvent]) -> None:
        """The webhook's handler: store every message once (then Meta gets its 200)
        and start its contact's turn; record statuses. Raises ``StoreUnavailable``
        (the webhook answers 500 and Meta delivers again)."""
        contacts: list[str] = []
        for event in events:
            if isinstance(event, StatusUpdate):
                error = event.errors[0].title if event.errors else None
                await self.store.record_status(
                    event.message_id, event.status, event.timestamp, error
                )
                continue
            message = inbound_of(event)
            if message is not None and await self.store.receive(message) is not None:
                self.counts["in"] += 1
                contacts.append(message.wa_id)
        for wa_id in dict.fromkeys(contacts):
            self.kick(wa_id)

    def kick(self, wa_id: str) -> None:
        """Run ``wa_id``'s turns soon (one worker per contact in this process)."""
        self._kicked.setdefault(wa_id, asyncio.Event()).set()
        worker = self._workers.get(wa_id)
        if worker is None or worker.done():
            self._workers[wa_id] = asyncio.create_task(self._work(wa_id), name=f"chat-{wa_id[-4:]}")

    async def _work(self, wa_id: str) -> None:
        kicked = self._kicked[wa_id]
        while kicked.is_set() and not self._stopping.is_set():
            kicked.clear()
            try:
                await self.turns(wa_id)
            except (StoreUnavailable, ContactBusy) as exc:
                # Stored, not lost: the next kick, or the next start, takes it up.
                logger.warning("chat with %s: turn postponed: %s", mask_number(wa_id), exc)
            except Exception:
                logger.exception("chat with %s: turn failed", mask_number(wa_id))
        self._workers.pop(wa_id, None)

    async def turns(self, wa_id: str) -> int:
        """Answer every unprocessed message of ``wa_id``, oldest first; returns how many.

        Raises ``StoreUnavailable``, ``ContactBusy``."""
        handled = 0
        for _ in range(TURN_RETRIES * 20):
            try:
                count = await self._turn(wa_id)
            except ConversationChanged:
                continue  # an agent or the expiry wrote meanwhile: read again, nothing sent
            if count == 0:
                break
            handled += count
            self._wake.set()
        return handled

    async def _turn(self, wa_id: str) -> int:
        async with self.store.turn(wa_id) as turn:
            for message in turn.inbound:
                if turn.conversation.state == AGENT:
                    logger.info("chat with %s: with an agent, bot silent", mask_number(wa_id))
                    continue
                if await self._taken(turn, message):
                    continue
                await self._answer(turn, message)
            return len(turn.inbound)

    # --- one message ------------------------------------------------------------------
    async def _taken(self, turn: Turn, message: StoredInbound) -> bool:
        """Whether a taker (a survey) answered the message: its replies queued, the
        flow left where it was."""
        conv = turn.conversation
        for taker in self.takers:
            replies = await taker.take(conv.wa_id, message.message_id, message.text)
            if replies is None:
                continue
            for index, text in enumerate(replies):
                turn.queue_outbound(
                    f"{conv.id}:{message.message_id}:{index}", wa.text_message(conv.wa_id, text)
                )
            return True
        return False

    async def _answer(self, turn: Turn, message: StoredInbound) -> None:
        conv = turn.conversation
        if message.kind == "unsupported" and conv.state == BOT and conv.node is not None:
            await self._unsupported(turn, message)
            return
        channel = ChatChannel(conv.id, conv.wa_id, self.line.texts, reply=reply_of(message))
        resume: Resume | None = None
        if conv.state == CLOSED or conv.node is None:
            conv.state, conv.outcome, conv.node, conv.attempt = BOT, None, None, 0
            conv.variables = {}
            if not _asks_for_a_person(message):
                channel.reply = None  # the opening message answers no question
            resume = await self._opening(conv, message)
        else:
            resume = Resume(conv.node, conv.attempt)
        variables: dict[str, Any] = {k: v for k, v in conv.variables.items() if k != PATH_VARIABLE}
        # The journey (shared with the call it continues) for what the flow files
        # (a case: ivr/citas/cases.py); "_": not kept with the variables.
        variables["_journey_id"] = conv.journey_id
        path: list[str] = list(conv.variables.get(PATH_VARIABLE, []))
        record = CallRecord(
            id=conv.id, channel_id=f"whatsapp:{conv.id}", flow=self.line.flow.name,
            sip_call_id=None, caller_number=channel.caller_number, started_at=self.clock(),
        )  # fmt: skip
        state = CallState(channel, record, self.line.flow, variables)
        try:
            await self._run(state, resume)
            conv.state, conv.node, conv.attempt = CLOSED, None, 0
            conv.outcome = record.outcome or "completed"
        except Suspended as pause:
            conv.node, conv.attempt = pause.node_id, pause.attempt
        except AgentAsked:
            with contextlib.suppress(CallTransferred):
                await channel.hand_off(self._handoff(state, "asked"))
        except CallTransferred:
            pass
        if channel.handed_off is not None:
            turn.hand_to_agent(channel.handed_off.reason, dict(channel.handed_off.context))
            conv.node, conv.attempt, conv.outcome = None, 0, "handed_off"
        path += [str(s.detail["node"]) for s in record.path if s.kind == "node"]
        conv.variables = persistable(state.variables) | {PATH_VARIABLE: path[-MAX_PATH:]}
        for index, out in enumerate(channel.outgoing):
            turn.queue_outbound(
                f"{conv.id}:{message.message_id}:{index}", payload_for(conv.wa_id, out)
            )
        logger.info(
            "chat with %s: %s → %s (%d message(s) queued)",
            mask_number(conv.wa_id), message.message_id, conv.node or conv.state, len(channel.outgoing),
        )  # fmt: skip

    async def _unsupported(self, turn: Turn, message: StoredInbound) -> None:
        """Media the bot cannot read, at a question: the polite text, then the
        question again as it was sent (the conversation's last reply), no attempt spent."""
        conv = turn.conversation
        sent = await self.store.outbound_of(conv.id)
        payloads = [wa.text_message(conv.wa_id, self.line.texts[UNSUPPORTED_PROMPT])]
        if sent:
            payloads.append(sent[-1].payload)
        for index, payload in enumerate(payloads):
            turn.queue_outbound(f"{conv.id}:{message.message_id}:{index}", payload)

    async def _opening(self, conv: Conversation, message: StoredInbound) -> Resume | None:
        """Where a new conversation starts: at the call's ``resume_node`` when its
        first message carries a valid reference (the call's decisions loaded, the
        journey linked), else at the flow's start (None)."""
        code = find_reference(message.text or "")
        found = None
        if code is not None and self.references is not None:
            found = await self.references(code, f"+{conv.wa_id}")
        if found is None:
            if code is not None:
                logger.info("chat with %s: reference %s unknown, expired or another number",
                            mask_number(conv.wa_id), code)  # fmt: skip
            conv.journey_id = conv.journey_id or str(uuid.uuid4())
            return None
        logger.info("chat with %s continues call %s (ref. %s)", mask_number(conv.wa_id),
                    found.journey_id, code)  # fmt: skip
        conv.journey_id = found.journey_id
        conv.variables = dict(found.variables) | {"chat_ref": code}
        return Resume(self.line.resume_node, 0)

    async def _run(self, state: CallState, resume: Resume | None) -> None:
        if resume is not None and not state.flow.node(resume.node_id).asks:
            # A fresh start at a node that asks nothing (a call's resume node, an action):
            # run the flow from there, as if the previous node had led to it.
            state.flow = replace(state.flow, start=resume.node_id)
            await self.engine.run(state)
            return
        await self.engine.run(state, resume=resume)

    def _handoff(self, state: CallState, reason: str) -> HandOff:
        context = {
            name: str(state.variables[name])
            for name in ("segment", "affiliate_id", "cups", "service", "journey_ref")
            if state.variables.get(name) not in (None, "")
        }
        return HandOff(self.line.agents_queue, reason, context)

    # --- the outbox -------------------------------------------------------------------
    async def send_due(self) -> int:
        """Send the replies that are due; returns how many were sent."""
        sent = 0
        for row in await self.store.due_outbound(limit=20):
            conv = await self.store.conversation(row.wa_id)
            payload = row.payload if conv is None else self.window_payload(conv, row.payload)
            try:
                wamid = await self.client.send(payload, idempotency_key=row.key)
            except WhatsAppPermanentError as exc:
                logger.error("chat reply %s refused by Meta: %s", row.key, exc)
                await self.store.mark_failed(row.id, str(exc), None)
                continue
            except WhatsAppTemporaryError as exc:
                retry = next_retry(row.attempts, self.clock())
                logger.warning(
                    "chat reply %s not sent (attempt %d): %s", row.key, row.attempts, exc
                )
                await self.store.mark_failed(row.id, str(exc), retry)
                continue
            await self.store.mark_sent(row.id, wamid)
            self.counts["out"] += 1
            sent += 1
        return sent

    async def expire(self) -> int:
        """Reset conversations idle for ``line.idle``, telling the contact."""

        def notice(conv: Conversation) -> Mapping[str, Any]:
            return wa.text_message(conv.wa_id, self.line.texts[EXPIRED_PROMPT])

        reset = await self.store.expire_idle(self.clock(), self.line.idle, notice=notice)
        if reset:
            self._wake.set()
        return len(reset)

    def window_payload(self, conv: Conversation, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload``, or the approved template when the 24-hour window is closed."""
        if in_service_window(conv, self.clock()):
            return payload
        return wa.template_message(conv.wa_id, self.line.template, self.line.template_language)

    async def pending_contacts(self) -> list[str]:
        """Contacts with stored messages not answered yet (a restart mid-turn)."""

        async def op(session: Any) -> list[str]:
            rows = await session.execute(
                select(ConversationRow.wa_id)
                .join(ChatInboundRow, ChatInboundRow.conversation_id == ConversationRow.id)
                .where(ChatInboundRow.processed_at.is_(None))
                .distinct()
            )
            return [str(r[0]) for r in rows]

        return await self.store.db.run("list chats with unanswered messages", op)

    # --- the service ------------------------------------------------------------------
    async def run(self) -> None:
        """Answer what was left unanswered, then send and expire until ``stop()``."""
        with contextlib.suppress(StoreUnavailable):
            for wa_id in await self.pending_contacts():
                self.kick(wa_id)
        last_expiry = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if await self.send_due():
                    # A contact's next reply is due once the one before it is sent.
                    self._wake.set()
                if loop.time() - last_expiry >= EXPIRY_EVERY_S:
                    last_expiry = loop.time()
                    await self.expire()
            except StoreUnavailable as exc:
                logger.warning("chat outbox: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SENDER_IDLE_S):
                    await self._wake.wait()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _asks_for_a_person(message: StoredInbound) -> bool:
    """Whether an opening message is the hand-off command ("asesor", "quiero hablar
    con un asesor"): then it is kept as the reply to the flow's first question,
    which reads it as the command (a person who comes back after the idle timeout
    and writes "asesor" gets a person, not the main menu)."""
    return message.text is not None and isinstance(read_choice(message.text, ()), Agent)

