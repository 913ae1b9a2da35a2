"""Slots, bookings and the booking boundary's exception tree.

BookingError
 ├── SlotTaken            someone else booked the slot first
 ├── BookingUnavailable   the booking service timed out, failed or is unreachable
 └── BookingRejected      the service refused the booking for a business reason

The call flow answers each one differently: ``SlotTaken`` offers the next slot,
``BookingUnavailable`` transfers to an agent, ``BookingRejected`` tells the
caller why (its ``message`` is meant for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MORNING = "morning"
AFTERNOON = "afternoon"
TIME_BANDS = (MORNING, AFTERNOON)


@dataclass(frozen=True)
class Slot:
    """A doctor's free time for one procedure (CUPS code) at one site."""

    id: str
    site_id: str
    doctor_id: str
    cups: str
    starts_at: datetime  # timezone-aware
    time_band: str  # "morning" (before 12:00 local time) | "afternoon"


@dataclass(frozen=True)
class Booking:
    id: str
    slot: Slot
    affiliate_id: str
    call_id: str | None
    created_at: datetime


def time_band_of(local_start: datetime) -> str:
    """The band a slot belongs to, from its start in the site's local time."""
    return MORNING if local_start.hour < 12 else AFTERNOON


class BookingError(RuntimeError):
    """Booking a slot or searching for one failed."""


class SlotTaken(BookingError):
    """Someone else booked the slot first."""

    def __init__(self, slot_id: str) -> None:
        super().__init__(f"slot {slot_id} is already taken")
        self.slot_id = slot_id


class BookingUnavailable(BookingError):
    """The booking service timed out, failed, or cannot be reached."""


class BookingRejected(BookingError):
    """The booking service refused for a business reason; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
