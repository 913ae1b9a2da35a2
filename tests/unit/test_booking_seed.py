"""Sites and demo slots from config/citas (pure logic, no database)."""

from __future__ import annotations

from collections import Counter
from datetime import date, time
from pathlib import Path

import pytest

from ivr.booking.seed import BOGOTA, CUPS_BY_SPECIALTY, demo_slots, weekdays_after
from ivr.citas.reference import load_cups_by_specialty, load_sites
from ivr.yamlsrc import ConfigError

CONFIG = Path(__file__).resolve().parents[2] / "config" / "citas"
FRIDAY = date(2025, 3, 7)


def test_sites_load_from_the_config() -> None:
    sites = load_sites(CONFIG / "sites.yaml")

    assert set(sites) == {"norte", "sur", "centro", "oriente"}
    assert sites["centro"].phone_booking_closed_from == date(2026, 1, 1)
    assert sites["norte"].phone_booking_closed_from is None
    assert {d.id: d.specialty for d in sites["norte"].doctors.values()} == {
        "dr_gomez": "general",
        "dr_rojas": "general",
        "dr_mejia": "pediatrics",
    }


def test_demo_cups_are_the_services_menu() -> None:
    assert load_cups_by_specialty(CONFIG / "services.yaml") == {
        k: tuple(v) for k, v in CUPS_BY_SPECIALTY.items()
    }


def test_weekdays_after_skips_the_weekend_and_today() -> None:
    days = weekdays_after(FRIDAY, 10)
    assert days[0] == date(2025, 3, 10)
    assert days[-1] == date(2025, 3, 21)
    assert all(d.weekday() < 5 for d in days)


def test_demo_slots_cover_norte_only_without_double_booking_a_doctor() -> None:
    slots = demo_slots(FRIDAY, load_sites(CONFIG / "sites.yaml"))

    assert len(slots) == 3 * 10 * 5
    assert {s.site_id for s in slots} == {"norte"}
    assert len({s.id for s in slots}) == len(slots)
    assert Counter((s.doctor_id, s.starts_at) for s in slots).most_common(1)[0][1] == 1
    assert slots == sorted(slots, key=lambda s: (s.starts_at, s.id))
    assert {s.starts_at.astimezone(BOGOTA).time() for s in slots} == {
        time(8, 0),
        time(8, 30),
        time(10, 0),
        time(14, 0),
        time(15, 30),
    }
    assert slots[0].id == "demo-norte-dr_gomez-202503100800"
    assert all(s.starts_at.tzinfo is not None for s in slots)


def test_every_demo_code_has_morning_and_afternoon_slots_with_the_right_doctors() -> None:
    slots = demo_slots(FRIDAY, load_sites(CONFIG / "sites.yaml"))

    bands = {(s.cups, s.time_band) for s in slots}
    for code in ("890201", "890301", "89020110", "890283", "890383"):
        assert {(code, "morning"), (code, "afternoon")} <= bands
    assert {s.doctor_id for s in slots if s.cups in ("890283", "890383")} == {"dr_mejia"}
    assert {s.doctor_id for s in slots if s.cups == "890201"} == {"dr_gomez", "dr_rojas"}
    for s in slots:
        hour = s.starts_at.astimezone(BOGOTA).hour
        assert s.time_band == ("morning" if hour < 12 else "afternoon")


def test_demo_slots_are_deterministic() -> None:
    sites = load_sites(CONFIG / "sites.yaml")
    assert demo_slots(FRIDAY, sites) == demo_slots(FRIDAY, sites)


def test_a_bad_sites_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_text(
        "sites:\n"
        "  norte:\n"
        "    name: Sede Norte\n"
        "    phone_booking_closed_from: someday\n"
        "    doctors: {}\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as error:
        load_sites(bad)

    assert (error.value.line, error.value.field) == (4, "sites.norte.phone_booking_closed_from")
    assert str(bad) in str(error.value)
