"""Sites from ``config/citas/sites.yaml`` and the demo slots built from them.

Only site ``norte`` gets demo slots. The others are fixtures too: ``sur`` has
none (the "no slots" path), ``oriente`` gets exactly one fresh slot per race
run (``race_slot``), and ``centro`` is closed to phone booking by the
migration schedule.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.booking.model import Slot, time_band_of
from ivr.citas.reference import Doctor, Site, load_services, load_sites

BOGOTA = ZoneInfo("America/Bogota")
DEMO_SITES = ("norte",)
DEMO_DAYS = 10
DEMO_TIMES = (time(8, 0), time(8, 30), time(10, 0), time(14, 0), time(15, 30))
# The CUPS codes of config/citas/services.yaml, by specialty.
CUPS_BY_SPECIALTY: Mapping[str, Sequence[str]] = {
    "general": ("890201", "890301", "89020110"),
    "pediatrics": ("890283", "890383"),
}
__all__ = ["Doctor", "Site", "demo_slots", "load_sites", "race_slot"]

RACE_SITE, RACE_DOCTOR, RACE_CUPS, RACE_TIME = "oriente", "dr_ortiz", "890201", time(9, 0)


def load_cups_by_specialty(path: Path) -> dict[str, tuple[str, ...]]:
    """CUPS codes by specialty, in menu order, from ``config/citas/services.yaml``."""
    found: dict[str, list[str]] = {}
    for service in load_services(path).values():
        found.setdefault(service.specialty, []).append(service.cups)
    return {specialty: tuple(codes) for specialty, codes in found.items()}


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
    sites: Mapping[str, Site],
    *,
    cups_by_specialty: Mapping[str, Sequence[str]] = CUPS_BY_SPECIALTY,
    site_ids: Sequence[str] = DEMO_SITES,
) -> list[Slot]:
    """The demo agenda: every doctor of each demo site on the next 10 weekdays.

    A doctor has one slot per time, each for one CUPS code; the codes rotate
    over times, days and doctors so that every code has morning and afternoon
    slots and a doctor is never offered twice for the same time.

    >>> gomez = Doctor("dr_gomez", "Doctora Ana Gómez", "general")
    >>> norte = Site("norte", "Sede Norte", None, {"dr_gomez": gomez})
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
