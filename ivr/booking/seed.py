"""The demo slots built from a line's sites and doctors (plain data).

The line loads its sites (the citas line: ``ivr.citas.reference.load_sites``
from ``config/citas/sites.yaml``) and hands them here; this module reads no
line's configuration. For the citas line's sites, only site ``norte`` gets demo slots. The others are fixtures too: ``sur`` has
none (the "no slots" path), ``oriente`` gets exactly one fresh slot per race
run (``race_slot``), and ``centro`` is closed to phone booking by the
migration schedule.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from ivr.booking.model import Slot, time_band_of

BOGOTA = ZoneInfo("America/Bogota")
DEMO_SITES = ("norte",)
DEMO_DAYS = 10
DEMO_TIMES = (time(8, 0), time(8, 30), time(10, 0), time(14, 0), time(15, 30))
# The CUPS codes of config/citas/services.yaml, by specialty.
CUPS_BY_SPECIALTY: Mapping[str, Sequence[str]] = {
    "general": ("890201", "890301", "89020110"),
    "pediatrics": ("890283", "890383"),
}

RACE_SITE, RACE_DOCTOR, RACE_CUPS, RACE_TIME = "oriente", "dr_ortiz", "890201", time(9, 0)


class SeedDoctor(Protocol):
    """What the demo agenda needs of a doctor (a line's doctor record fits)."""

    @property
    def id(self) -> str: ...

    @property
    def specialty(self) -> str: ...


class SeedSite(Protocol):
    """What the demo agenda needs of a site: its doctors by id, and whether it
    books by phone on a day (a line's site record fits)."""

    @property
    def doctors(self) -> Mapping[str, SeedDoctor]: ...

    def phone_booking_open(self, on: date) -> bool: ...


@dataclass(frozen=True)
class DemoDoctor:
    """A plain doctor for the demo agenda (tests, tools)."""

    id: str
    specialty: str


@dataclass(frozen=True)
class DemoSite:
    """A plain site for the demo agenda: ``closed_from`` is the first day it no
    longer books by phone (None: open)."""

    doctors: Mapping[str, SeedDoctor] = field(default_factory=dict)
    closed_from: date | None = None

    def phone_booking_open(self, on: date) -> bool:
        return self.closed_from is None or on < self.closed_from


def weekdays_after(today: date, count: int) -> list[date]:
    days: list[date] = []
    day = today
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def demo_slots(
    today: date,
    sites: Mapping[str, SeedSite],
    *,
    cups_by_specialty: Mapping[str, Sequence[str]] = CUPS_BY_SPECIALTY,
    site_ids: Sequence[str] = DEMO_SITES,
) -> list[Slot]:
    """The demo agenda: every doctor of each demo site on the next 10 weekdays.

    A doctor has one slot per time, each for one CUPS code; the codes rotate
    over times, days and doctors so that every code has morning and afternoon
    slots and a doctor is never offered twice for the same time.

    >>> norte = DemoSite({"dr_gomez": DemoDoctor("dr_gomez", "general")})
    >>> [(s.id, s.cups, s.time_band) for s in demo_slots(date(2025, 3, 7), {"norte": norte})][:2]
    [('demo-norte-dr_gomez-202503100800', '890201', 'morning'), ('demo-norte-dr_gomez-202503100830', '890301', 'morning')]
    """
    slots: list[Slot] = []
    days = weekdays_after(today, DEMO_DAYS)
    for site_id in site_ids:
        site = sites[site_id]
        for doctor_number, doctor in enumerate(site.doctors.values()):
            codes = cups_by_specialty.get(doctor.specialty, ())
            for day_number, day in enumerate(days):
                if not codes or not site.phone_booking_open(day):
                    continue
                for time_number, at in enumerate(DEMO_TIMES):
                    turn = day_number * len(DEMO_TIMES) + time_number + doctor_number
                    starts_at = datetime.combine(day, at, tzinfo=BOGOTA)
                    slot_id = f"demo-{site_id}-{doctor.id}-{starts_at:%Y%m%d%H%M}"
                    slots.append(
                        Slot(
                            id=slot_id,
                            site_id=site_id,
                            doctor_id=doctor.id,
                            cups=codes[turn % len(codes)],
                            starts_at=starts_at,
                            time_band=time_band_of(starts_at),
                        )
                    )
    slots.sort(key=lambda s: (s.starts_at, s.id))
    return slots


def race_slot(today: date) -> Slot:
    """One fresh slot at ``oriente`` for a race: two callers try to book it at once."""
    [day] = weekdays_after(today, 1)
    starts_at = datetime.combine(day, RACE_TIME, tzinfo=BOGOTA)
    return Slot(
        id=f"race-{RACE_SITE}-{RACE_DOCTOR}-{starts_at:%Y%m%d%H%M}-{uuid.uuid4().hex[:12]}",
        site_id=RACE_SITE,
        doctor_id=RACE_DOCTOR,
        cups=RACE_CUPS,
        starts_at=starts_at,
        time_band=time_band_of(starts_at),
    )
