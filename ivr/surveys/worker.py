"""The survey worker: finds closed cases without a survey and sends it, once.

Every ``every_s`` seconds (and at start, so nothing closed during a restart is
lost; the cases part's close writes no callback: the database is the queue)::

    cases (closed, no survey) ──ensure_for_closed_cases()──▶ surveys (pending)
    pending ──▶ WhatsApp: the contact's conversation has its 24-hour window open
                  ├▶ mid-dialogue (the flow waits for an answer, or a person has it):
                  │    stays pending, tried again next pass (the chat ends, goes idle
                  │    after 30 min, or the window closes and the SMS goes)
                  └▶ else the chat outbox (key "survey:<id>"), sent by the assistant's sender
            ──▶ else SMS to the case's mobile, with a wa.me link naming the case
                  └▶ the SMS outbox (dedupe key "survey:<id>")
            ──▶ else failed ("sin WhatsApp ni móvil")
    sent/answered too long ──expire_due()──▶ expired / done

**Why SMS and not a WhatsApp template outside the window.** Meta allows a
business-initiated message outside the 24-hour window only as an approved
template (error 131047 otherwise; ``ivr.whatsapp.client``). The client and
the simulator can send one (``template_message``), but a survey template must be
created and approved by Meta per deployment (category *marketing* or *utility*
is Meta's call, not ours), and the line's one approved template
(``citas_retomar``) says something else. The SMS outbox already reaches every
mobile, is durable and idempotent, and its link brings the reply to WhatsApp,
where the window is then open because the contact wrote first. A deployment
with an approved survey template can add it as a third channel here.

Idempotency: the survey row is unique per case (``ivr.surveys.store``); the
message is keyed by the survey's id in either outbox, so a worker that dies
after queuing and before ``mark_sent`` queues the same row again (one message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.chat.store import AGENT, BOT, ConversationStore, in_service_window
from ivr.masking import mask_number
from ivr.phone import parse_e164, sms_destination, whatsapp_digits
from ivr.sms.outbox import SmsOutbox
from ivr.store.db import StoreUnavailable
from ivr.surveys.store import CaseEvents, PendingSurvey, SurveyStore, tell_case
from ivr.surveys.tables import SMS, WHATSAPP
from ivr.whatsapp import messages as wa

logger = logging.getLogger(__name__)

ASK_WHATSAPP = "survey_case_whatsapp"
ASK_SMS = "survey_case_sms"
PREFILL = "survey_case_prefill"
PROMPTS = (ASK_WHATSAPP, ASK_SMS, PREFILL)
"""Chat/SMS texts the worker sends (``prompts.yaml``); ``{number}`` is the case
number, ``{link}`` (SMS) the wa.me link."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SurveyWorker:
    """Sends case surveys. ``chats``: the assistant's store (None: no WhatsApp,
    SMS only); ``whatsapp_number``: the assistant's number (E.164) for the SMS's
    link (None: an SMS survey cannot be answered, so none is sent)."""

    store: SurveyStore
    sms: SmsOutbox
    texts: Mapping[str, str]
    chats: ConversationStore | None = None
    whatsapp_number: str | None = None
    case_events: CaseEvents | None = None
    every_s: float = 5.0
    clock: Callable[[], datetime] = _utcnow

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """One pass: create the surveys of newly closed cases, send what is pending,
        expire what waited too long. Returns how many were sent. Raises ``StoreUnavailable``."""
        created = await self.store.ensure_for_closed_cases()
        if created:
            logger.info("surveys: %d closed case(s) to survey", created)
        sent = 0
        for pending in await self.store.pending():
            sent += await self.send(pending)
        await self.store.expire_due()
        return sent

    async def send(self, pending: PendingSurvey) -> int:
        """Queue one survey on WhatsApp, else SMS; 1 if this call marked it sent, 0 if
        it failed or another worker marked it (the keyed message is one either way)."""
        survey = pending.survey
        number = survey.case_number or ""
        key = f"survey:{survey.id}"
        e164 = parse_e164(pending.phone)
        wa_id = pending.wa_id or (whatsapp_digits(e164) if e164 else None)
        if wa_id and self.chats is not None:
            conv = await self.chats.conversation(wa_id)
            if conv is not None and in_service_window(conv, self.clock()):
                if conv.state == AGENT or (conv.state == BOT and conv.node is not None):
                    # Mid-dialogue: a "1" meant for the menu must not become a rating.
                    logger.info("survey of case %s: waits for the chat to end", number)
                    return 0
                text = self.texts[ASK_WHATSAPP].format(number=number)
                await self.chats.queue_outbound(conv, key, wa.text_message(wa_id, text))
                if not await self.store.mark_sent(survey.id, channel=WHATSAPP, contact=wa_id):
                    return 0  # another worker queued the same keyed message first
                await tell_case(self.case_events, number, "survey_sent", "encuesta por WhatsApp")
                logger.info("survey of case %s: WhatsApp to %s", number, mask_number(wa_id))
                return 1
        phone = sms_destination(pending.phone) or (
            sms_destination(f"+{pending.wa_id}") if pending.wa_id else None
        )
        if phone is None or not self.whatsapp_number:
            why = "sin WhatsApp abierto ni móvil" if phone is None else "sin número de WhatsApp"
            await self.store.mark_failed(survey.id, why)
            await tell_case(
                self.case_events, number, "survey_failed", f"encuesta no enviada: {why}"
            )
            logger.warning("survey of case %s: not sent (%s)", number, why)
            return 0
        prefill = self.texts[PREFILL].format(number=number)
        link = (
            f"https://wa.me/{whatsapp_digits(self.whatsapp_number)}"
            f"?text={urllib.parse.quote(prefill)}"
        )
        text = self.texts[ASK_SMS].format(number=number, link=link)
        await self.sms.enqueue(to_number=phone, text=text, dedupe_key=key)
        if not await self.store.mark_sent(survey.id, channel=SMS, contact=phone):
            return 0
        await tell_case(self.case_events, number, "survey_sent", "encuesta por SMS")
        logger.info("survey of case %s: SMS to %s", number, mask_number(phone))
        return 1

    async def run(self) -> None:
        """Pass every ``every_s`` seconds until ``stop()``; a database outage waits."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                logger.warning("surveys: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every_s):
                    await self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()
