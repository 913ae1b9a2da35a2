"""A circuit breaker in front of the booking service.

When the service fails (errors, timeouts) ``threshold`` times in a row, the
breaker opens: callers stop waiting on a dead service and take the flow's
``on_failure`` route at once (the WhatsApp redirect or the agents, as the
``booking_down_route`` flag says). While open, the breaker itself probes the
service's ``health()`` every ``open_seconds``; callers are never the probe.
One good probe closes it. Every transition is reported to ``on_transition``
(the composition root records an alert and an audit entry)::

    closed ──threshold failures──▶ open ──open_seconds──▶ half_open (probing)
      ▲                              ▲                        │
      └──────── probe succeeds ──────┼────────────────────────┘
                                     └──── probe fails ───────┘

Why our own: the Python breakers on the package index are either synchronous
(pybreaker) or unmaintained since 2021 (aiobreaker), and none reads its
thresholds live from operations flags or probes a health call instead of
sacrificing a caller's request. This is about 100 lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import TypeVar

from ivr.booking.model import Booking, BookingUnavailable, Slot
from ivr.booking.source import SlotSource

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

Transition = Callable[[str, str, str], Awaitable[None]]  # old, new, detail


class BreakerOpen(BookingUnavailable):
    """The breaker is open: the booking service was not called."""


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: Callable[[], int],
        open_seconds: Callable[[], float],
        probe: Callable[[], Awaitable[bool]],
        on_transition: Transition | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.probe = probe
        self.on_transition = on_transition
        self.on_failure = on_failure
        self.state = CLOSED
        self.failures = 0
        self.last_error = ""
        self.opened_at: float | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._closed = False  # close() was called: no probe starts after it

    def describe(self) -> dict[str, object]:
        return {
            "state": self.state,
            "consecutive_failures": self.failures,
            "threshold": self.threshold(),
            "open_seconds": self.open_seconds(),
            "last_error": self.last_error,
        }

    async def call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        if self.state != CLOSED:
            if self.on_failure is not None:
                self.on_failure("rejected")
            raise BreakerOpen(f"booking service circuit {self.state}; {what} not attempted")
        try:
            result = await operation()
        except BookingUnavailable as exc:
            kind = "timeout" if isinstance(exc.__cause__, TimeoutError) else "error"
            await self._failed(kind, f"{what}: {exc}")
            raise
        self.failures = 0
        return result

    async def _failed(self, kind: str, error: str) -> None:
        if self.on_failure is not None:
            self.on_failure(kind)
        self.failures += 1
        self.last_error = error
        if self.state == CLOSED and self.failures >= self.threshold():
            await self._move(OPEN, f"{self.failures} consecutive failures; last: {error}")
            if not self._closed:  # close() may have run while the transition was recorded
                self._probe_task = asyncio.create_task(
                    self._probe_until_closed(), name="breaker-probe"
                )

    async def _probe_until_closed(self) -> None:
        while self.state != CLOSED:
            await asyncio.sleep(self.open_seconds())
            await self._move(HALF_OPEN, "probing the booking service")
            healthy = False
            with contextlib.suppress(Exception):  # a probe that raises is a failed probe
                healthy = await self.probe()
            if healthy:
                self.failures = 0
                await self._move(CLOSED, "probe succeeded")
            else:
                await self._move(OPEN, "probe failed")

    async def _move(self, new: str, detail: str) -> None:
        old, self.state = self.state, new
        log = logger.warning if new == OPEN else logger.info
        log("booking breaker %s → %s: %s", old, new, detail)
        if self.on_transition is not None:
            try:
                await self.on_transition(old, new, detail)
            except Exception:
                logger.exception("booking breaker: transition %s → %s not recorded", old, new)

    async def close(self) -> None:
        """End the probe, if one runs, and start none after: the breaker still opens
        on callers' failures, and then stays open (its owner is stopping)."""
        self._closed = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task


class BreakerSlotSource:
    """A ``SlotSource`` whose calls go through a ``CircuitBreaker``."""

    def __init__(self, inner: SlotSource, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    async def find(
        self,
        *,
        site_id: str,
        cups: str,
        after: datetime | None = None,
        time_band: str | None = None,
        doctor_id: str | None = None,
        exclude_doctor_id: str | None = None,
        exclude_ids: Collection[str] = (),
        limit: int = 1,
    ) -> list[Slot]:
        return await self.breaker.call(
            "slot search",
            lambda: self.inner.find(
                site_id=site_id, cups=cups, after=after, time_band=time_band,
                doctor_id=doctor_id, exclude_doctor_id=exclude_doctor_id,
                exclude_ids=exclude_ids, limit=limit,
            ),
        )  # fmt: skip

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        return await self.breaker.call(
            "booking",
            lambda: self.inner.book(slot_id, affiliate_id=affiliate_id, call_id=call_id),
        )

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        # A patient's own appointment (PatientHasAppointment from book) is the
        # service answering, not failing: only BookingUnavailable counts.
        return await self.breaker.call(
            "pending bookings", lambda: self.inner.pending_for(affiliate_id)
        )

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        # AppointmentNotFound and BookingRejected are answers, not failures.
        return await self.breaker.call(
            "cancellation",
            lambda: self.inner.cancel(booking_id, affiliate_id=affiliate_id, call_id=call_id),
        )

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        return await self.breaker.call(
            "reschedule",
            lambda: self.inner.reschedule(
                booking_id, slot_id, affiliate_id=affiliate_id, call_id=call_id
            ),
        )

    async def health(self) -> bool:
        return await self.inner.health()
