"""Self-service booking: find a free slot, book it, never twice; list,
cancel and reschedule a patient's appointments.

``model`` (slots, bookings, the exception tree), ``source`` (the ``SlotSource``
protocol), ``db`` (our own tables), ``http`` (the insurer's scheduling
service), ``seed`` (sites and demo slots).
"""

from ivr.booking.model import (
    AFTERNOON,
    MORNING,
    AppointmentNotFound,
    Booking,
    BookingError,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.source import SlotSource

__all__ = [
    "AFTERNOON",
    "MORNING",
    "AppointmentNotFound",
    "Booking",
    "BookingError",
    "BookingRejected",
    "BookingUnavailable",
    "PatientHasAppointment",
    "Slot",
    "SlotSource",
    "SlotTaken",
]
