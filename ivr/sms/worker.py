"""``SmsWorker``: claims due messages from the outbox, sends them, records the outcome.

A temporary failure is retried with exponential backoff (``backoff_initial``
doubling up to ``backoff_max``) until ``max_attempts`` sends have started; a
permanent failure is final at once. Between rounds the worker waits on the
outbox's ``wakeup`` event, with a deadline at the next message due, so a new
message goes out within half a second and a retry on time.

Under load it claims at most every ``claim_interval`` seconds, so the messages
queued meanwhile share one claim, and the next due time is not read again
after every message (``ivr.store.claimpace``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ivr.masking import mask_number
from ivr.sms.gateways import SmsError, SmsGateway, SmsPermanentError
from ivr.sms.outbox import OutboxMessage, SmsOutbox
from ivr.store.claimpace import CLAIM_INTERVAL_S, ClaimPace
from ivr.store.db import StoreUnavailable

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmsWorker:
    def __init__(
        self,
        outbox: SmsOutbox,
        gateway: SmsGateway,
        *,
        max_attempts: int = 5,
        backoff_initial: float = 2.0,
        backoff_max: float = 300.0,
        lease_s: float = 60.0,
        idle_wait: float = 5.0,
        batch: int = 20,
        claim_interval: float = CLAIM_INTERVAL_S,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lease_s = lease_s
        self.idle_wait = idle_wait
        self.batch = batch
        self._clock = clock
        self._stopping = False
        self.pace = ClaimPace(
            "sms worker",
            outbox.wakeup,
            outbox.next_due,
            clock,
            idle_wait=idle_wait,
            claim_interval=claim_interval,
        )

    async def run(self) -> None:
        """Send until ``stop()``; a database outage is logged and waited out."""
        logger.info("sms worker started")
        while not self._stopping:
            self.outbox.wakeup.clear()  # before claiming: a message queued meanwhile wakes us
            try:
                self.pace.claimed()  # paced too when storing the held messages fails
                await self.outbox.store_held()
                claimed = await self.run_once()
            except StoreUnavailable as exc:
                logger.warning("sms worker: outbox unavailable: %s", exc)
                self.pace.forget_due()
                claimed = 0
            if claimed >= self.batch or self._stopping:
                continue  # a full batch: more may be due now
            # Every message due at the claim was in it. Held messages are retried
            # at least every idle_wait.
            await self.pace.wait()
        logger.info("sms worker stopped")

    def stop(self) -> None:
        self._stopping = True
        self.pace.stop()

    async def run_once(self) -> int:
        """Claim the messages due now and deal with each; returns how many."""
        self.pace.claimed()
        messages = await self.outbox.claim_due(self._clock(), self.lease_s, self.batch)
        # Concurrently, so the whole batch ends well inside its lease.
        async with asyncio.TaskGroup() as group:
            for msg in messages:
                group.create_task(self._deliver(msg))
        return len(messages)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed send."""
        return float(min(self.backoff_max, self.backoff_initial * 2 ** max(attempts - 1, 0)))

    async def _deliver(self, msg: OutboxMessage) -> None:
        to = mask_number(msg.to_number)
        if msg.attempts > self.max_attempts:
            # Its sends kept dying with their workers (lease expired each time).
            await self._record(
                msg, self.outbox.mark_failed(msg.id, "gave up: lease lost too often")
            )
            logger.error("sms %s to %s failed: lease lost %d times", msg.id, to, msg.attempts)
            return
        try:
            provider_id = await self.gateway.send(msg)
        except SmsPermanentError as exc:
            logger.error("sms %s to %s failed for good: %s", msg.id, to, exc)
            await self._record(msg, self.outbox.mark_failed(msg.id, str(exc)))
        except SmsError as exc:
            if msg.attempts >= self.max_attempts:
                logger.error(
                    "sms %s to %s failed after %d attempts: %s", msg.id, to, msg.attempts, exc
                )
                await self._record(msg, self.outbox.mark_failed(msg.id, str(exc)))
                return
            delay = self.backoff(msg.attempts)
            logger.warning(
                "sms %s to %s: attempt %d failed (%s); retry in %.0fs",
                msg.id,
                to,
                msg.attempts,
                exc,
                delay,
            )
            retry_at = self._clock() + timedelta(seconds=delay)
            await self._record(msg, self.outbox.mark_retry(msg.id, str(exc), retry_at))
            self.pace.due(retry_at)
        else:
            logger.info("sms %s to %s sent (%s, attempt %d)", msg.id, to, provider_id, msg.attempts)
            await self._record(msg, self.outbox.mark_sent(msg.id, provider_id))

    async def _record(self, msg: OutboxMessage, marking: Awaitable[None]) -> None:
        try:
            await marking
        except StoreUnavailable as exc:
            # The message stays leased: it is claimed again when the lease expires.
            logger.error("sms %s: outcome not saved, retried after its lease: %s", msg.id, exc)
