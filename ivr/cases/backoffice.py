"""The back office in a serving process: the case routes, the mail worker and the
answer tracker, built from the settings by :meth:`Backoffice.build` (called by
the composition root, ``ivr.controller``), started and stopped with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from ivr.cases.answers import AnswerDelivery
from ivr.cases.config import CasesConfig
from ivr.cases.http import cases_extension
from ivr.cases.store import CaseStore
from ivr.chat.store import ConversationStore
from ivr.mail.outbox import MailMessage, MailOutbox
from ivr.mail.smtp import SmtpMailer, server_for
from ivr.mail.worker import MailWorker
from ivr.ops.api import ApiExtension
from ivr.settings import Settings
from ivr.store.db import Database

logger = logging.getLogger(__name__)


@dataclass
class Backoffice:
    extension: ApiExtension
    answers: AnswerDelivery
    worker: MailWorker
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls, settings: Settings, db: Database, config: CasesConfig, chats: ConversationStore | None
    ) -> Backoffice:
        """Over ``db``: the case store of ``config``, the mail outbox sent to
        ``settings.mail``'s relay (else the sandbox's SMTP peer), and WhatsApp
        answers through ``chats`` (None: e-mail only)."""
        cases = CaseStore(db, config.calendar_for, config)
        outbox = MailOutbox(db, timeout=settings.request_timeout)
        answers = AnswerDelivery(
            cases, outbox, chats, sender=settings.mail.sender, tz=ZoneInfo(config.timezone)
        )
        mailer = SmtpMailer(server_for(settings))

        async def send(message: MailMessage) -> str:
            return await mailer.send(message.email())

        worker = MailWorker(outbox, send, on_final=answers.on_mail_final)
        return cls(cases_extension(cases, answers), answers, worker)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.worker.run(), name="mail-worker"),
            asyncio.create_task(self.answers.run(), name="case-answers"),
        ]
        logger.info("back office started: mail worker and case answer tracker")

    async def stop(self) -> None:
        self.worker.stop()
        self.answers.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
