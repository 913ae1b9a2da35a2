"""The citas line's reference tables, loaded from ``config/citas/`` at start.

Operations change these files (or, later, the flags in the database) without
touching code. Every file is validated when loaded; a bad value fails the
start with file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.flow.yamlsrc import ConfigError, Located, load_yaml_file
from ivr.ops.flags import FlagRegistry, citas_flags
from ivr.settings import REPO_ROOT

CITAS_DIR = REPO_ROOT / "config" / "citas"


@dataclass(frozen=True)
class Service:
    key: str
    id: str
    name: str
    cups: str
    specialty: str


@dataclass(frozen=True)
class Doctor:
    id: str
    name: str
    specialty: str


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    phone_booking_closed_from: date | None
    doctors: dict[str, Doctor]

    def phone_booking_open(self, on: date) -> bool:
        return self.phone_booking_closed_from is None or on < self.phone_booking_closed_from


@dataclass(frozen=True)
class EligibilityTables:
    age_min: int
    age_max: int
    cups_in_scope: frozenset[str]
    plans_in_scope: frozenset[str]
    risk_markings_excluded: frozenset[str]


@dataclass(frozen=True)
class LineConfig:
    number: str
    timezone: str
    vdn_default: str
    vdn_non_target: str
    vdn_incident: str
    whatsapp_number: str
    whatsapp_prefilled: str
    sms_text: str
    max_offers: int
    search_days: int
    # A patient holds at most one pending appointment per service (CUPS code);
    # `booking.one_pending_per_service` in line.yaml, on when absent.
    one_pending_per_service: bool = True


@dataclass(frozen=True)
class Reference:
    line: LineConfig
    services: dict[str, Service]  # by menu key
    sites: dict[str, Site]
    eligibility: EligibilityTables

    def service_by_id(self, service_id: str) -> Service | None:
        return next((s for s in self.services.values() if s.id == service_id), None)


def _map(data: Any, file: Path, field: str, line: int = 1) -> Located:
    if not isinstance(data, Located):
        raise ConfigError(str(file), line, field, "must be a mapping")
    return data


def _req(d: Located, key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise ConfigError(d.file, d.line, f"{where}.{key}", "is required")
    value = d[key]
    if kind is str and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kind):
        raise ConfigError(d.file, d.line_of(key), f"{where}.{key}", f"must be {kind.__name__}")
    return value


def _date(value: Any, d: Located, key: str, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            d.file, d.line_of(key), f"{where}.{key}", "must be a date YYYY-MM-DD"
        ) from None


def load_line(path: Path) -> LineConfig:
    d = _map(load_yaml_file(path), path, "line")
    vdn = _req(d, "agent_vdn", Located, "line")
    wa = _req(d, "whatsapp", Located, "line")
    booking = _req(d, "booking", Located, "line")
    sms_text = _req(wa, "sms_text", str, "whatsapp")
    try:
        # Filled in mid-call: any other placeholder would fail there, not here.
        filled = sms_text.format(link="\0")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(
            d.file, wa.line_of("sms_text"), "whatsapp.sms_text",
            f"only {{link}} may be in braces ({{{{ }}}} for a brace): {exc!r}",
        ) from None  # fmt: skip
    if "\0" not in filled:
        raise ConfigError(
            d.file, wa.line_of("sms_text"), "whatsapp.sms_text", "must contain {link}"
        )
    timezone = _req(d, "timezone", str, "line")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            d.file, d.line_of("timezone"), "line.timezone", f"unknown time zone {timezone!r}"
        ) from None
    return LineConfig(
        number=_req(d, "number", str, "line"),
        timezone=timezone,
        vdn_default=_req(vdn, "default", str, "agent_vdn"),
        vdn_non_target=_req(vdn, "non_target", str, "agent_vdn"),
        vdn_incident=_req(vdn, "incident", str, "agent_vdn"),
        whatsapp_number=_req(wa, "number", str, "whatsapp"),
        whatsapp_prefilled=_req(wa, "prefilled_text", str, "whatsapp"),
        sms_text=sms_text,
        max_offers=_req(booking, "max_offers", int, "booking"),
        search_days=_req(booking, "search_days", int, "booking"),
        one_pending_per_service=(
            _req(booking, "one_pending_per_service", bool, "booking")
            if "one_pending_per_service" in booking
            else True
        ),
    )


def load_services(path: Path) -> dict[str, Service]:
    d = _map(load_yaml_file(path), path, "services")
    raw = _req(d, "services", Located, "services")
    services = {}
    for key, item in raw.items():
        if key not in "0123456789" or len(key) != 1:
            raise ConfigError(
                d.file, raw.line_of(key), f"services.{key}", "the key must be one digit"
            )
        item = _map(item, path, f"services.{key}", raw.line_of(key))
        where = f"services.{key}"
        services[key] = Service(
            key, _req(item, "id", str, where), _req(item, "name", str, where),
            _req(item, "cups", str, where), _req(item, "specialty", str, where),
        )  # fmt: skip
    return services


def load_sites(path: Path) -> dict[str, Site]:
    d = _map(load_yaml_file(path), path, "sites")
    raw = _req(d, "sites", Located, "sites")
    sites = {}
    for site_id, item in raw.items():
        where = f"sites.{site_id}"
        item = _map(item, path, where, raw.line_of(site_id))
        doctors_raw = _req(item, "doctors", Located, where)
        doctors = {}
        for doc_id, doc in doctors_raw.items():
            at = f"{where}.doctors.{doc_id}"
            doc = _map(doc, path, at, doctors_raw.line_of(doc_id))
            doctors[doc_id] = Doctor(
                doc_id, _req(doc, "name", str, at), _req(doc, "specialty", str, at)
            )
        closed = _date(
            item.get("phone_booking_closed_from"), item, "phone_booking_closed_from", where
        )
        sites[site_id] = Site(site_id, _req(item, "name", str, where), closed, doctors)
    return sites


def load_eligibility(path: Path) -> EligibilityTables:
    d = _map(load_yaml_file(path), path, "eligibility")
    band = _req(d, "age_band", Located, "eligibility")
    age_min, age_max = _req(band, "min", int, "age_band"), _req(band, "max", int, "age_band")
    if not 0 <= age_min <= age_max <= 130:
        raise ConfigError(
            d.file, d.line_of("age_band"), "eligibility.age_band", "needs 0 <= min <= max <= 130"
        )
    return EligibilityTables(
        age_min,
        age_max,
        frozenset(str(c) for c in _req(d, "cups_in_scope", list, "eligibility")),
        frozenset(str(p) for p in _req(d, "plans_in_scope", list, "eligibility")),
        frozenset(str(r) for r in _req(d, "risk_markings_excluded", list, "eligibility")),
    )


def load_reference(directory: Path = CITAS_DIR) -> Reference:
    return Reference(
        line=load_line(directory / "line.yaml"),
        services=load_services(directory / "services.yaml"),
        sites=load_sites(directory / "sites.yaml"),
        eligibility=load_eligibility(directory / "eligibility.yaml"),
    )


def flag_registry(reference: Reference) -> FlagRegistry:
    """The line's operations flags; their defaults are the reference tables."""
    tables = reference.eligibility
    return citas_flags(
        age_min=tables.age_min,
        age_max=tables.age_max,
        cups_in_scope=tables.cups_in_scope,
        sites={s.id: s.phone_booking_closed_from for s in reference.sites.values()},
    )
