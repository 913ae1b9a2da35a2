"""Where free slots come from and where bookings go: the ``SlotSource`` protocol.

Two implementations: ``DbSlotSource`` (our own database, the embedded default)
and ``HttpSlotSource`` (the insurer's scheduling web service).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from ivr.booking.model import Booking, Slot


class SlotSource(Protocol):
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
        """Free slots starting after now (and after ``after``), earliest first.

        Raises ``BookingUnavailable``.
        """
        ...

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        """Book the slot atomically.

        Refuses a slot that overlaps an appointment the patient holds, or (when
        the source's per-service rule is on) any slot of a CUPS code for which
        they hold a pending appointment: ``PatientHasAppointment`` carries it.
        Raises ``SlotTaken``, ``PatientHasAppointment``, ``BookingRejected`` or
        ``BookingUnavailable``.
        """
        ...

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        """The patient's live (not cancelled) appointments that have not started
        yet, earliest first.

        Raises ``BookingUnavailable``.
        """
        ...

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        """Cancel the patient's appointment; its slot is free again. Returns it
        with ``cancelled_at`` set.

        Idempotent: cancelling a cancelled appointment returns it unchanged.
        Only the patient who holds it may cancel it. Raises
        ``AppointmentNotFound`` (none such, or another patient's),
        ``BookingRejected`` (it has already started) or ``BookingUnavailable``.
        """
        ...

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        """Book ``slot_id`` and cancel the appointment ``booking_id`` atomically:
        both or neither (a taken slot leaves the old appointment standing).
        Returns the new booking.

        Raises ``AppointmentNotFound`` (none such of this patient, or already
        cancelled), ``SlotTaken``, ``PatientHasAppointment``, ``BookingRejected``
        or ``BookingUnavailable``.
        """
        ...

    async def health(self) -> bool:
        """True when the source answers; never raises."""
        ...
