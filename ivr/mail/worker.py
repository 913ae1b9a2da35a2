"""``MailWorker``: claims due messages from the mail outbox, sends them, records the outcome.

The same loop as the SMS worker (``ivr.sms.worker``): a temporary failure is
retried with exponential backoff (``backoff_initial`` doubling up to
``backoff_max``) until ``max_attempts`` sends have started; a permanent one is
final at once. Between rounds it waits on the outbox's ``wakeup`` event with a
deadline at the next message due, claiming at most every ``claim_interval``
seconds under load (``ivr.store.claimpace``).

``on_final`` (optional) is awaited with each message once it is marked sent or
failed — the cases' answer tracker records ``answer_sent`` / ``answer_failed``
from it. It is a nudge, not the record: whoever needs the outcome reads the
outbox (a crash between the mark and the callback loses only the nudge).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ivr.mail import mask_address
from ivr.mail.outbox import FAILED, SENT, MailMessage, MailOutbox
from ivr.mail.smtp import MailError, MailPermanentError
from ivr.store.claimpace import CLAIM_INTERVAL_S, ClaimPace
from ivr.store.db import StoreUnavailable

logger = logging.getLogger(__name__)

Sender = Callable[[MailMessage], Awaitable[str]]
OnFinal = Callable[[MailMessage], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MailWorker:
    """``send`` hands one message to SMTP and returns the server's reply
    (``lambda m: SmtpMailer(server).send(m.email())``), raising the ``MailError`` tree."""

    def __init__(
        self,
        outbox: MailOutbox,
        send: Sender,
        *,
        max_attempts: int = 6,
        backoff_initial: float = 5.0,
        backoff_max: float = 900.0,
        lease_s: float = 120.0,
        idle_wait: float = 5.0,
        batch: int = 10,
        on_final: OnFinal | None = None,
        claim_interval: float = CLAIM_INTERVAL_S,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.outbox = outbox
        self.send = send
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease_s = lease_s
        self.idle_wait = idle_wait
        self.batch = batch
        self.on_final = on_final
        self._clock = clock
        self._stopping = False
        self.pace = ClaimPace(
            "mail worker",
            outbox.wakeup,
            outbox.next_due,
            clock,
            idle_wait=idle_wait,
            claim_interval=claim_interval,
        )

    async def run(self) -> None:
        """Send until ``stop()``; a database outage is logged and waited out."""
        logger.info("mail worker started")
        while not self._stopping:
            self.outbox.wakeup.clear()  # before claiming: a message queued meanwhile wakes us
            try:
                claimed = await self.run_once()
            except StoreUnavailable as exc:
                logger.warning("mail worker: outbox unavailable: %s", exc)
                self.pace.forget_due()
                claimed = 0
            if claimed >= self.batch or self._stopping:
                continue  # a full batch: more may be due now
            await self.pace.wait()  # every message due at the claim was in it
        logger.info("mail worker stopped")

    def stop(self) -> None:
        self._stopping = True
        self.pace.stop()

    async def run_once(self) -> int:
        """Claim the messages due now and deal with each; returns how many."""
        self.pace.claimed()
        messages = await self.outbox.claim_due(self._clock(), self.lease_s, self.batch)
        async with asyncio.TaskGroup() as group:
            for msg in messages:
                group.create_task(self._deliver(msg))
        return len(messages)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed send."""
        return float(min(self.backoff_max, self.backoff_initial * 2 ** max(attempts - 1, 0)))

    async def _deliver(self, msg: MailMessage) -> None:
        to = mask_address(msg.to_address)
        if msg.attempts > self.max_attempts:
            # Its sends kept dying with their workers (lease expired each time).
            error = "gave up: lease lost too often"
            logger.error("mail %s to %s failed: lease lost %d times", msg.id, to, msg.attempts)
            await self._final(msg, self.outbox.mark_failed(msg.id, error), FAILED, error)
            return
        try:
            reply = await self.send(msg)
        except MailPermanentError as exc:
            logger.error("mail %s to %s refused for good: %s", msg.id, to, exc)
            await self._final(msg, self.outbox.mark_failed(msg.id, str(exc)), FAILED, str(exc))
        except MailError as exc:
            if msg.attempts >= self.max_attempts:
                logger.error("mail %s to %s failed after %d attempts: %s", msg.id, to, msg.attempts, exc)  # fmt: skip
                await self._final(msg, self.outbox.mark_failed(msg.id, str(exc)), FAILED, str(exc))
                return
            delay = self.backoff(msg.attempts)
            logger.warning("mail %s to %s: attempt %d failed (%s); retry in %.0fs",
                           msg.id, to, msg.attempts, exc, delay)  # fmt: skip
            retry_at = self._clock() + timedelta(seconds=delay)
            try:
                await self.outbox.mark_retry(msg.id, str(exc), retry_at)
                self.pace.due(retry_at)
            except StoreUnavailable as store_exc:
                logger.error("mail %s: retry not saved, claimed again after its lease: %s", msg.id, store_exc)  # fmt: skip
        else:
            logger.info("mail %s to %s sent (%s, attempt %d)", msg.id, to, reply, msg.attempts)
            await self._final(msg, self.outbox.mark_sent(msg.id, reply), SENT, reply)

    async def _final(self, msg: MailMessage, marking: Awaitable[None], status: str, note: str) -> None:  # fmt: skip
        try:
            await marking
        except StoreUnavailable as exc:
            # The message stays leased: it is claimed again when the lease expires.
            logger.error("mail %s: outcome not saved, retried after its lease: %s", msg.id, exc)
            return
        if self.on_final is None:
            return
        if status == SENT:
            outcome = replace(msg, status=status, server_reply=note, lease_until=None)
        else:
            outcome = replace(msg, status=status, last_error=note, lease_until=None)
        try:
            await self.on_final(outcome)
        except StoreUnavailable as exc:
            logger.warning("mail %s: outcome callback failed (read again later): %s", msg.id, exc)
