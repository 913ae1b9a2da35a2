"""Slots, bookings and the booking boundary's exception tree.

BookingError
 ├── SlotTaken               someone else booked the slot first
 ├── PatientHasAppointment   the patient's own appointment stands in the way
 ├── AppointmentNotFound     no such appointment of this patient (cancel, reschedule)
 ├── BookingUnavailable      the booking service timed out, failed or is unreachable
 └── BookingRejected         the service refused the booking for a business reason

The call flow answers each one differently: ``SlotTaken`` offers the next slot,
``PatientHasAppointment`` reads the caller the appointment they already have
and ends the call, ``BookingUnavailable`` transfers to an agent,
``BookingRejected`` tells the caller why (its ``message`` is meant for them),
``AppointmentNotFound`` says the appointment is not there to cancel or move.

A cancelled appointment keeps its row (``cancelled_at`` set, issue 10 §2): its
slot is free again and it counts for none of the rules below. Rescheduling
books the new slot and cancels the old appointment in one transaction
(``ivr.booking.db``): never both, never neither.

An appointment occupies the half-open interval ``[starts_at, ends_at)`` of its
slot. Two appointments of one patient may not overlap (``overlaps``); with the
line's ``booking.one_pending_per_service`` (config/citas/line.yaml, on by
default) a patient also holds at most one *pending* appointment (one that has
not started yet) per service, a service being one CUPS code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MORNING = "morning"
AFTERNOON = "afternoon"
TIME_BANDS = (MORNING, AFTERNOON)
# A slot that does not say how long it lasts lasts this long: the minimum length
# of a general-medicine consultation in Colombia (Resolución 5261 de 1994, art. 97).
# The demo agenda's slots start 30 minutes or more apart, so they never overlap.
DEFAULT_LENGTH = timedelta(minutes=20)

# Why a booking is refused because of the patient's own appointment.
OVERLAP = "overlap"  # the new slot's time intersects an appointment they hold
SAME_SERVICE = "same_service"  # they already hold a pending appointment for this CUPS
CONFLICTS = (OVERLAP, SAME_SERVICE)


@dataclass(frozen=True)
class Slot:
    """A doctor's free time for one procedure (CUPS code) at one site."""

    id: str
    site_id: str
    doctor_id: str
    cups: str
    starts_at: datetime  # timezone-aware
    time_band: str  # "morning" (before 12:00 local time) | "afternoon"
    length: timedelta = DEFAULT_LENGTH  # the appointment ends at starts_at + length

    @property
    def ends_at(self) -> datetime:
        """The end of the appointment, exclusive: the next one may start right then."""
        return self.starts_at + self.length


@dataclass(frozen=True)
class Booking:
    """A patient's appointment in ``slot``; ``cancelled_at`` is set once it is
    cancelled (by the patient, or replaced by a rescheduled one)."""

    id: str
    slot: Slot
    affiliate_id: str
    call_id: str | None
    created_at: datetime
    cancelled_at: datetime | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Whether the half-open intervals ``[a_start, a_end)`` and ``[b_start, b_end)`` intersect.

    Touching intervals do not overlap (an appointment may start when the last
    one ends); an empty interval overlaps nothing. The database checks the same
    predicate in SQL (``ivr.booking.db``).

    >>> from datetime import datetime as dt
    >>> overlaps(dt(2025, 3, 10, 8), dt(2025, 3, 10, 8, 20), dt(2025, 3, 10, 8, 10), dt(2025, 3, 10, 9))
    True
    >>> overlaps(dt(2025, 3, 10, 8), dt(2025, 3, 10, 8, 30), dt(2025, 3, 10, 8, 30), dt(2025, 3, 10, 9))
    False
    """
    return a_start < b_end and b_start < a_end and a_start < a_end and b_start < b_end


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


class PatientHasAppointment(BookingError):
    """The patient already holds ``existing``, which rules the new booking out.

    ``reason`` is ``OVERLAP`` (``existing`` intersects the new slot's time) or
    ``SAME_SERVICE`` (``existing`` is a pending appointment for the same CUPS).
    """

    def __init__(self, existing: Booking, reason: str) -> None:
        super().__init__(f"the patient already has booking {existing.id} ({reason})")
        self.existing = existing
        self.reason = reason


class AppointmentNotFound(BookingError):
    """The patient holds no appointment ``booking_id``: it does not exist or
    belongs to someone else (never told apart, so an id reveals nothing); when
    rescheduling, also one already cancelled (or replaced by a reschedule)."""

    def __init__(self, booking_id: str) -> None:
        super().__init__(f"no appointment {booking_id} of this patient")
        self.booking_id = booking_id


class BookingUnavailable(BookingError):
    """The booking service timed out, failed, or cannot be reached."""


class BookingRejected(BookingError):
    """The booking service refused for a business reason; ``message`` says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
