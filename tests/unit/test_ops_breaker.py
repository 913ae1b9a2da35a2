"""The booking-service circuit breaker: opens on failures, probes, closes on recovery."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ivr.booking.model import (
    AppointmentNotFound,
    Booking,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.ops.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, BreakerSlotSource, CircuitBreaker
from tests.unit.eventually import eventually

SLOT = Slot("s1", "norte", "dr_gomez", "890201", datetime(2026, 12, 1, 13, tzinfo=UTC), "morning")
HELD = Booking("bk-0", SLOT, "1010101010", "call-0", datetime(2026, 11, 30, tzinfo=UTC))


class FlakySource:
    def __init__(self) -> None:
        self.failing = False
        self.healthy = True
        self.calls = 0

    async def find(self, *, site_id: str, cups: str, after: datetime | None = None,
                   time_band: str | None = None, doctor_id: str | None = None,
                   exclude_doctor_id: str | None = None, exclude_ids: Collection[str] = (),
                   limit: int = 1) -> list[Slot]:  # fmt: skip
        self.calls += 1
        if self.failing:
            raise BookingUnavailable("GET /slots: no answer in 2s") from TimeoutError()
        return [SLOT]

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        self.calls += 1
        if affiliate_id == HELD.affiliate_id:
            raise PatientHasAppointment(HELD, "overlap")
        raise SlotTaken(slot_id)

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        self.calls += 1
        if self.failing:
            raise BookingUnavailable("GET /bookings: no answer in 2s") from TimeoutError()
        return [HELD] if affiliate_id == HELD.affiliate_id else []

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        self.calls += 1
        if self.failing:
            raise BookingUnavailable("POST /bookings/x/cancel: HTTP 503")
        if booking_id != HELD.id:
            raise AppointmentNotFound(booking_id)
        return replace(HELD, cancelled_at=HELD.created_at)

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        self.calls += 1
        if self.failing:
            raise BookingUnavailable("POST /bookings/x/reschedule: HTTP 503")
        if booking_id != HELD.id:
            raise AppointmentNotFound(booking_id)
        raise SlotTaken(slot_id)

    async def health(self) -> bool:
        return self.healthy


class Harness:
    def __init__(self, threshold: int = 3) -> None:
        self.source = FlakySource()
        self.transitions: list[tuple[str, str]] = []
        self.failures: list[str] = []
        self.breaker = CircuitBreaker(
            threshold=lambda: threshold,
            open_seconds=lambda: 0.01,
            probe=self.source.health,
            on_transition=self.moved,
            on_failure=self.failures.append,
        )
        self.slots = BreakerSlotSource(self.source, self.breaker)

    async def moved(self, old: str, new: str, detail: str) -> None:
        self.transitions.append((old, new))

    async def find(self) -> list[Slot]:
        return await self.slots.find(site_id="norte", cups="890201")

    async def wait_for(self, state: str) -> None:
        await eventually(lambda: self.breaker.state == state)


async def test_consecutive_failures_open_it_and_then_callers_do_not_wait_on_the_service() -> None:
    h = Harness(threshold=3)
    h.source.failing, h.source.healthy = True, False
    for _ in range(3):
        with pytest.raises(BookingUnavailable):
            await h.find()
    assert h.breaker.state in (OPEN, HALF_OPEN)
    calls = h.source.calls

    with pytest.raises(BreakerOpen):
        await h.find()
    assert h.source.calls == calls  # the dead service was not called
    assert h.failures[:3] == ["timeout"] * 3 and "rejected" in h.failures
    await h.breaker.close()


async def test_a_success_resets_the_count_and_business_outcomes_are_not_failures() -> None:
    h = Harness(threshold=2)
    h.source.failing = True
    with pytest.raises(BookingUnavailable):
        await h.find()
    h.source.failing = False
    assert await h.find() == [SLOT]
    h.source.failing = True
    with pytest.raises(BookingUnavailable):
        await h.find()
    with pytest.raises(SlotTaken):  # someone took the slot: the service works
        await h.slots.book("s1", affiliate_id="A", call_id=None)
    assert h.breaker.state == CLOSED


async def test_pending_bookings_go_through_the_breaker_and_a_held_appointment_is_no_failure() -> (
    None
):
    h = Harness(threshold=2)
    assert await h.slots.pending_for(HELD.affiliate_id) == [HELD]
    with pytest.raises(PatientHasAppointment):  # the patient's own appointment: the service works
        await h.slots.book("s1", affiliate_id=HELD.affiliate_id, call_id=None)
    h.source.failing = True
    with pytest.raises(BookingUnavailable):
        await h.slots.pending_for("2002")
    assert (h.breaker.state, h.breaker.failures) == (CLOSED, 1)
    with pytest.raises(BookingUnavailable):
        await h.slots.pending_for("2002")
    assert h.breaker.state == OPEN
    calls = h.source.calls
    with pytest.raises(BreakerOpen):
        await h.slots.pending_for(HELD.affiliate_id)
    assert h.source.calls == calls  # open: not even asked
    await h.breaker.close()


async def test_it_probes_while_open_and_closes_when_the_service_recovers() -> None:
    h = Harness(threshold=1)
    h.source.failing, h.source.healthy = True, False
    with pytest.raises(BookingUnavailable):
        await h.find()
    await eventually(lambda: (HALF_OPEN, OPEN) in h.transitions)  # at least one failed probe

    h.source.failing, h.source.healthy = False, True
    await h.wait_for(CLOSED)
    assert await h.find() == [SLOT]
    assert h.transitions[0] == (CLOSED, OPEN) and h.transitions[-1] == (HALF_OPEN, CLOSED)
    assert h.breaker.describe()["consecutive_failures"] == 0
    await h.breaker.close()


CANCEL_AND_RESCHEDULE: list[Callable[[BreakerSlotSource, str], Awaitable[Booking]]] = [
    lambda slots, booking_id: slots.cancel(booking_id, affiliate_id="1010101010", call_id=None),
    lambda slots, booking_id: slots.reschedule(
        booking_id, "s2", affiliate_id="1010101010", call_id=None
    ),
]


@pytest.mark.parametrize("operation", CANCEL_AND_RESCHEDULE, ids=["cancel", "reschedule"])
async def test_cancel_and_reschedule_go_through_the_breaker_and_answers_are_no_failures(
    operation: Callable[[BreakerSlotSource, str], Awaitable[Booking]],
) -> None:
    """Issue 10 §2: not found, taken and cancelled are the service answering."""
    h = Harness(threshold=2)
    with pytest.raises(AppointmentNotFound):
        await operation(h.slots, "bk-unknown")
    with contextlib.suppress(SlotTaken):
        assert (await operation(h.slots, HELD.id)).cancelled
    assert (h.breaker.state, h.breaker.failures) == (CLOSED, 0)
    h.source.failing, h.source.healthy = True, False
    for _ in range(2):
        with pytest.raises(BookingUnavailable):
            await operation(h.slots, HELD.id)
    assert h.breaker.state in (OPEN, HALF_OPEN)
    calls = h.source.calls
    with pytest.raises(BreakerOpen):
        await operation(h.slots, HELD.id)
    assert h.source.calls == calls
    await h.breaker.close()
