"""A case's answer, sent by e-mail and by WhatsApp, and the delivery it had.

The life of an answer::

    console ─POST answer─▶ CaseStore.record_answer   state answered + event ``answered``
                                │                     (its text the event's detail,
                                │                      its channels the event's ``new``)
                                ├─▶ mail_outbox      key case-answer:<number>:<event id>
                                └─▶ chat_outbound    the same key (the chat's own sender)
    MailWorker / chat sender ── sent | failed ──▶ AnswerDelivery.track()
                                ──▶ event ``answer_sent`` | ``answer_failed``
                                    new = {"channel", "key", ...}

**Nothing lost, nothing twice.** The answer is stored (its ``answered`` event)
before anything is queued, and each outbox takes the answer's key once. A
crash between the two is mended by :meth:`AnswerDelivery.track`: it queues,
from the ``answered`` events of the last :data:`RECONCILE_DAYS` days, every
channel that has neither an outbox row nor an outcome event, and it writes
the outcome event of every finished row that has none. Everything it decides
on is in the database, so a restart loses nothing; the mail worker's callback
only wakes it.

**WhatsApp only inside the customer-service window.** A free-form message may
be sent only within 24 hours of the contact's last message (Meta: "Customer
service windows", developers.facebook.com/docs/whatsapp/cloud-api/guides/
send-messages#customer-service-windows; ``ivr.chat.store.in_service_window``).
The console is told before it offers the channel (:meth:`AnswerDelivery.window`),
and an answer asking for WhatsApp outside it is refused (:class:`AnswerRefused`)
with nothing written. The contact is the case's ``wa_id`` (a case filed in
the chat), else its ``contact_phone`` as a WhatsApp id.

Errors: :class:`AnswerRefused` (Spanish message, ``field``), the store's
``CaseNotFound`` / ``CaseConflict``, ``ivr.store.StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.model import ANSWERED_EVENT, SYSTEM, Actor, Case
from ivr.cases.store import CaseNotFound, CaseStore
from ivr.cases.tables import CaseEventRow, CaseRow
from ivr.chat.store import SERVICE_WINDOW, ConversationStore, in_service_window
from ivr.chat.tables import ChatOutboundRow
from ivr.mail import mask_address
from ivr.mail.message import InvalidAddress, require_address
from ivr.mail.outbox import FAILED, SENT, MailMessage, MailOutbox
from ivr.masking import mask_number
from ivr.store.db import StoreUnavailable
from ivr.whatsapp.limits import TEXT_BODY_MAX
from ivr.whatsapp.messages import text_message

logger = logging.getLogger(__name__)

EMAIL, WHATSAPP = "email", "whatsapp"
ANSWER_CHANNELS = (EMAIL, WHATSAPP)
ANSWER_SENT, ANSWER_FAILED = "answer_sent", "answer_failed"
KEY_PREFIX = "case-answer:"
RECONCILE_DAYS = 7  # answers older than this are not mended any more (a week of outage)
# An answer is queued by its request milliseconds after it is stored: only one
# still unqueued after this long was left by a crash (mending sooner races it).
MEND_AFTER = timedelta(seconds=30)
TRACK_EVERY_S = 2.0
MAX_ANSWER = 3000  # characters: the WhatsApp body (4096) with the frame around it
MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
          "septiembre", "octubre", "noviembre", "diciembre")  # fmt: skip


Answer = tuple[str, int, datetime, str, list[str]]  # number, event id, at, text, channels


def answer_key(number: str, event_id: int) -> str:
    """The idempotency key of one answer (the same in both outboxes).

    >>> answer_key("0000013", 42)
    'case-answer:0000013:42'
    """
    return f"{KEY_PREFIX}{number}:{event_id}"


def parse_key(key: str) -> tuple[str, int] | None:
    """``(number, event id)`` of an answer key; None for any other key.

    >>> parse_key("case-answer:0000013:42")
    ('0000013', 42)
    >>> parse_key("case:0000013") is None
    True
    """
    if not key.startswith(KEY_PREFIX):
        return None
    number, _, event = key[len(KEY_PREFIX) :].partition(":")
    if not number or not event.isdigit():
        return None
    return number, int(event)


class AnswerRefused(ValueError):
    """The answer cannot go as asked; nothing was written. ``message`` is Spanish
    (the console shows it), ``field`` names what to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class WhatsAppWindow:
    """Whether a case can be answered by WhatsApp now. ``reason``: Spanish, why not."""

    open: bool
    ends_at: datetime | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"open": self.open, "reason": self.reason,
                "ends_at": self.ends_at.isoformat() if self.ends_at else None}  # fmt: skip


def wa_id_of(case: Case) -> str | None:
    """The WhatsApp id to answer on: the chat's, else the contact phone without ``+``."""
    if case.wa_id:
        return case.wa_id.lstrip("+")
    if case.contact_phone:
        return case.contact_phone.lstrip("+")
    return None


def long_date(instant: datetime, tz: ZoneInfo) -> str:
    """``30 de noviembre de 2026`` in ``tz``.

    >>> long_date(datetime(2026, 12, 1, 3, 0, tzinfo=UTC), ZoneInfo("America/Bogota"))
    '30 de noviembre de 2026'
    """
    local = instant.astimezone(tz)
    return f"{local.day} de {MONTHS[local.month - 1]} de {local.year}"


def email_subject(case: Case) -> str:
    return f"Respuesta a su caso n.º {case.number}"


def email_text(case: Case, text: str, *, sender: str, tz: ZoneInfo) -> str:
    """The e-mail's plain text: the operator's answer in a Spanish frame ("usted")."""
    signature = parseaddr(sender)[0] or parseaddr(sender)[1]
    return (
        "Cordial saludo:\n\n"
        f"Le escribimos para responder su caso n.º {case.number}, radicado el "
        f"{long_date(case.filed_at, tz)}.\n\n"
        f"{text.strip()}\n\n"
        "Si necesita algo más, responda a este correo mencionando el número de su caso.\n\n"
        f"Atentamente,\n{signature}\n"
    )


def whatsapp_text(case: Case, text: str) -> str:
    return f"Respuesta a su caso n.º {case.number}:\n\n{text.strip()}"


class AnswerDelivery:
    """Answers a case on its channels and records how each delivery went.

    ``chats`` None: this process has no WhatsApp (the channel is refused).
    ``sender``: the From address (``settings.mail.sender``); ``tz``: dates in
    the e-mail (the cases config's time zone).
    """

    def __init__(
        self,
        cases: CaseStore,
        mail: MailOutbox,
        chats: ConversationStore | None,
        *,
        sender: str,
        tz: ZoneInfo,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cases = cases
        self.mail = mail
        self.chats = chats
        self.sender = sender
        self.tz = tz
        self.clock = clock or cases.clock
        self.wakeup = asyncio.Event()
        self._stopping = False

    # --- the window -----------------------------------------------------------------
    async def window(self, case: Case) -> WhatsAppWindow:
        """Whether a WhatsApp answer may be sent now, and why not."""
        if self.chats is None:
            return WhatsAppWindow(False, None, "Este proceso no atiende WhatsApp.")
        wa_id = wa_id_of(case)
        if wa_id is None:
            return WhatsAppWindow(False, None, "El caso no tiene un número de WhatsApp.")
        conversation = await self.chats.conversation(wa_id)
        if conversation is None or conversation.last_inbound_at is None:
            return WhatsAppWindow(False, None, "El afiliado no ha escrito por WhatsApp a este "
                                  "número: solo se puede responder por correo.")  # fmt: skip
        ends = conversation.last_inbound_at + SERVICE_WINDOW
        if not in_service_window(conversation, self.clock()):
            return WhatsAppWindow(False, ends, "La ventana de 24 horas de WhatsApp se cerró "
                                  "(24 horas desde el último mensaje del afiliado): "
                                  "responda por correo.")  # fmt: skip
        return WhatsAppWindow(True, ends, "")

    # --- answering ------------------------------------------------------------------
    async def answer(
        self, number: str, *, text: str, channels: Sequence[str], actor: Actor,
        expected_version: int | None = None,
    ) -> Case:  # fmt: skip
        """Record the answer and queue it on ``channels`` (``email``, ``whatsapp``).

        Refused with :class:`AnswerRefused` before anything is written: no channel or
        an unknown one, an empty or too long text, e-mail without a contact e-mail,
        WhatsApp outside the 24-hour window."""
        chosen = list(dict.fromkeys(channels))
        if not chosen or any(c not in ANSWER_CHANNELS for c in chosen):
            raise AnswerRefused("Elija el canal de la respuesta: correo y/o WhatsApp.", "channels")
        if not text.strip():
            raise AnswerRefused("Escriba la respuesta.", "text")
        if len(text) > MAX_ANSWER:
            raise AnswerRefused(f"La respuesta tiene más de {MAX_ANSWER} caracteres.", "text")
        case = await self.cases.get(number)
        if case is None:
            raise CaseNotFound(f"no existe el caso {number}")
        if EMAIL in chosen:
            if not case.contact_email:
                raise AnswerRefused("El caso no tiene correo de contacto: no se puede responder "
                                    "por correo.", "channels")  # fmt: skip
            try:
                require_address(case.contact_email)
            except InvalidAddress:
                raise AnswerRefused("El correo de contacto del caso no es una dirección válida: "
                                    "no se puede responder por correo.", "channels") from None  # fmt: skip
        if WHATSAPP in chosen:
            window = await self.window(case)
            if not window.open:
                raise AnswerRefused(window.reason, "channels")
        answered = await self.cases.record_answer(
            number, text=text, channels=chosen, actor=actor, expected_version=expected_version
        )
        event_id = await self._answer_event(answered)
        await self._dispatch(answered, event_id, text, chosen)
        return answered

    async def _answer_event(self, case: Case) -> int:
        """The id of the case's latest ``answered`` event (the one just written)."""

        async def op(session: AsyncSession) -> int | None:
            return await session.scalar(
                select(CaseEventRow.id)
                .where(CaseEventRow.case_id == case.id, CaseEventRow.action == ANSWERED_EVENT)
                .order_by(CaseEventRow.id.desc())
                .limit(1)
            )

        event_id = await self.cases.db.run("find the answer's event", op)
        assert event_id is not None, "record_answer writes its event"
        return event_id

    async def _dispatch(self, case: Case, event_id: int, text: str, channels: Sequence[str]) -> None:  # fmt: skip
        key = answer_key(case.number, event_id)
        if EMAIL in channels and case.contact_email:
            await self.mail.enqueue(
                dedupe_key=key, sender=self.sender, to=case.contact_email,
                subject=email_subject(case),
                text=email_text(case, text, sender=self.sender, tz=self.tz),
            )  # fmt: skip
        if WHATSAPP in channels:
            await self._queue_whatsapp(case, key, text)

    async def _queue_whatsapp(self, case: Case, key: str, text: str) -> bool:
        """Queue on the chat outbox; False (and an ``answer_failed``) when the
        window closed meanwhile (a mended answer) or there is no contact."""
        window = await self.window(case)
        wa_id = wa_id_of(case)
        if not window.open or self.chats is None or wa_id is None:
            await self.cases.add_event(
                case.number, ANSWER_FAILED, actor=SYSTEM, detail=window.reason,
                new={"channel": WHATSAPP, "key": key},
            )  # fmt: skip
            return False
        conversation = await self.chats.conversation(wa_id)
        assert conversation is not None
        body = whatsapp_text(case, text)[:TEXT_BODY_MAX]
        await self.chats.queue_outbound(conversation, key, text_message(wa_id, body))
        logger.info("case %s: answer queued to WhatsApp %s", case.number, mask_number(wa_id))
        return True

    # --- tracking ---------------------------------------------------------------------
    async def on_mail_final(self, message: MailMessage) -> None:
        """The mail worker's callback: a case answer finished; record it soon."""
        if parse_key(message.dedupe_key) is not None:
            self.wakeup.set()

    async def track(self) -> int:
        """Mend and record (see the module's docstring); returns the events written
        plus the channels queued."""
        now = self.clock()
        since = now - timedelta(days=RECONCILE_DAYS)
        answers, recorded = await self._answers_and_outcomes(since)
        mails = {m.dedupe_key: m for m in await self.mail.list(key_prefix=KEY_PREFIX, since=since)}
        chats = await self._chat_rows(since)
        done = 0
        for number, event_id, at, text, channels in answers:
            key = answer_key(number, event_id)
            for channel in channels:
                if (key, channel) in recorded:
                    continue
                try:
                    done += await self._settle(number, key, text, channel, mails, chats,
                                               mend=now - at >= MEND_AFTER)  # fmt: skip
                except CaseNotFound:
                    continue  # deleted under us (by hand): nothing to record
        return done

    async def _settle(
        self, number: str, key: str, text: str, channel: str,
        mails: dict[str, MailMessage], chats: dict[str, ChatOutboundRow], *, mend: bool,
    ) -> int:  # fmt: skip
        if channel == EMAIL:
            mail = mails.get(key)
            if mail is None:
                return await self._mend(number, key, text, channel) if mend else 0
            if mail.status == SENT:
                await self._outcome(number, ANSWER_SENT, key, EMAIL, mail.server_reply or "",
                                    to=mask_address(mail.to_address))  # fmt: skip
                return 1
            if mail.status == FAILED:
                await self._outcome(number, ANSWER_FAILED, key, EMAIL, mail.last_error or "",
                                    to=mask_address(mail.to_address))  # fmt: skip
                return 1
            return 0
        if channel == WHATSAPP:
            row = chats.get(key)
            if row is None:
                return await self._mend(number, key, text, channel) if mend else 0
            if row.state == "sent":
                await self._outcome(number, ANSWER_SENT, key, WHATSAPP, row.wamid or "",
                                    to=mask_number(row.wa_id))  # fmt: skip
                return 1
            if row.state == "failed":
                await self._outcome(number, ANSWER_FAILED, key, WHATSAPP, row.last_error or "",
                                    to=mask_number(row.wa_id))  # fmt: skip
                return 1
        return 0

    async def _mend(self, number: str, key: str, text: str, channel: str) -> int:
        """An answer stored but not queued (a crash between the two): queue it now."""
        case = await self.cases.get(number)
        if case is None:
            return 0
        logger.warning("case %s: answer %s was not queued on %s; queuing it now", number, key, channel)  # fmt: skip
        if channel == EMAIL:
            try:
                await self.mail.enqueue(
                    dedupe_key=key, sender=self.sender, to=case.contact_email or "",
                    subject=email_subject(case),
                    text=email_text(case, text, sender=self.sender, tz=self.tz),
                )  # fmt: skip
            except InvalidAddress as exc:
                await self._outcome(number, ANSWER_FAILED, key, EMAIL, str(exc), to="")
        elif channel == WHATSAPP:
            await self._queue_whatsapp(case, key, text)
        return 1

    async def _outcome(self, number: str, action: str, key: str, channel: str, note: str, *, to: str) -> None:  # fmt: skip
        new = {"channel": channel, "key": key, "to": to}
        await self.cases.add_event(number, action, actor=SYSTEM, detail=note, new=new)
        logger.info("case %s: %s by %s (%s)", number, action, channel, key)

    async def _answers_and_outcomes(
        self, since: datetime
    ) -> tuple[list[Answer], set[tuple[str, str]]]:
        """The answers since ``since`` (number, event id, when, text, channels) and
        the (key, channel) pairs that already have an outcome event."""

        async def op(session: AsyncSession) -> tuple[list[Answer], set[tuple[str, str]]]:
            rows = await session.execute(
                select(CaseRow.number, CaseEventRow.id, CaseEventRow.at, CaseEventRow.action,
                       CaseEventRow.detail, CaseEventRow.new)
                .join(CaseRow, CaseRow.id == CaseEventRow.case_id)
                .where(CaseEventRow.at >= since,
                       CaseEventRow.action.in_((ANSWERED_EVENT, ANSWER_SENT, ANSWER_FAILED)))
                .order_by(CaseEventRow.id)
            )  # fmt: skip
            answers: list[Answer] = []
            recorded: set[tuple[str, str]] = set()
            for number, event_id, at, action, detail, new in rows:
                new = new if isinstance(new, dict) else {}
                if action == ANSWERED_EVENT:
                    channels = [c for c in new.get("channels", []) if c in ANSWER_CHANNELS]
                    answers.append((number, event_id, at.astimezone(UTC), detail or "", channels))
                elif isinstance(new.get("key"), str):
                    recorded.add((new["key"], str(new.get("channel"))))
            return answers, recorded

        return await self.cases.db.run("read the case answers", op)

    async def _chat_rows(self, since: datetime) -> dict[str, ChatOutboundRow]:
        async def op(session: AsyncSession) -> dict[str, ChatOutboundRow]:
            rows = await session.scalars(
                select(ChatOutboundRow).where(
                    ChatOutboundRow.key.startswith(KEY_PREFIX, autoescape=True),
                    ChatOutboundRow.created_at >= since,
                )
            )
            return {row.key: row for row in rows}

        return await self.cases.db.run("read the case answers on WhatsApp", op)

    async def run(self) -> None:
        """Track until ``stop()``: every :data:`TRACK_EVERY_S` and when woken."""
        while not self._stopping:
            self.wakeup.clear()
            try:
                await self.track()
            except StoreUnavailable as exc:
                logger.warning("case answers not tracked: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRACK_EVERY_S):
                    await self.wakeup.wait()

    def stop(self) -> None:
        self._stopping = True
        self.wakeup.set()
