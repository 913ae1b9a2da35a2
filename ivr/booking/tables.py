"""The ``slots``, ``bookings`` and ``booking_guards`` tables (migrations 0002, 0004, 0005).

A slot is free while ``booked_by`` is NULL. Booking flips it with a conditional
UPDATE and inserts the booking in the same transaction; the unique index on
``bookings.slot_id`` among live (not cancelled) bookings is the second safety
net against a double booking. A slot's appointment lasts ``[starts_at, ends_at)``
(``ends_at`` since 0004). A cancelled booking keeps its row with ``cancelled_at``
set (since 0005) and its slot is free again; ``replaced_by`` is the booking a
reschedule moved it to.

``booking_guards`` has one row per patient who ever booked: every booking
transaction writes the patient's row first, so two bookings for one patient
run one after the other (``ivr.booking.db`` says why).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ivr.store.models import Base, UtcDateTime


class SlotRow(Base):
    __tablename__ = "slots"
    __table_args__ = (Index("ix_slots_site_cups_starts", "site_id", "cups", "starts_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    doctor_id: Mapped[str] = mapped_column(String(64))
    cups: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    time_band: Mapped[str] = mapped_column(String(16))
    booked_by: Mapped[str | None] = mapped_column(String(64))
    booked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BookingRow(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_live_slot_id",
            "slot_id",
            unique=True,
            sqlite_where=text("cancelled_at IS NULL"),
            postgresql_where=text("cancelled_at IS NULL"),
        ),
        Index("ix_bookings_affiliate_id", "affiliate_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slot_id: Mapped[str] = mapped_column(String(128), ForeignKey("slots.id"))
    affiliate_id: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    replaced_by: Mapped[str | None] = mapped_column(String(36))


class BookingGuardRow(Base):
    __tablename__ = "booking_guards"

    affiliate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bookings: Mapped[int] = mapped_column(Integer)  # booking attempts so far
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
