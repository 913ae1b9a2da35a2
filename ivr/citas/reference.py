"""The citas line's reference tables, loaded from ``<CITAS_CONFIG_DIR>/citas/`` at start.

Operations change these files (or, later, the flags in the database) without
touching code. Every file is checked against its schema (``ivr/schemas/``)
when loaded, then for what a schema cannot say; a bad value fails the start
with file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.line import LineVoice
from ivr.phone import parse_e164
from ivr.schemas import load_checked
from ivr.settings import Settings
from ivr.yamlsrc import ConfigError, Located

# The shipped tables (the repository's config/citas in a checkout); a
# deployment's are Settings.citas_dir (CITAS_CONFIG_DIR/citas).
CITAS_DIR = Settings().citas_dir
# line.yaml's ``voice`` when absent: the sounds, agents' context and channel
# variables that dialplans/asterisk/extensions.conf uses.
DEFAULT_VOICE = LineVoice(sounds="citas", agent_context="citas-agents", variable_prefix="CITAS_")


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
    whatsapp_number: str  # E.164 (ivr.phone.parse_e164)
    whatsapp_prefilled: str
    sms_text: str
    max_offers: int
    search_days: int
    # A patient holds at most one pending appointment per service (CUPS code);
    # `booking.one_pending_per_service` in line.yaml, on when absent.
    one_pending_per_service: bool = True
    # The line on the phone (`voice` in line.yaml): sounds directory, agents'
    # dialplan context, channel-variable prefix; DEFAULT_VOICE when absent.
    voice: LineVoice = DEFAULT_VOICE


@dataclass(frozen=True)
class Reference:
    line: LineConfig
    services: dict[str, Service]  # by menu key
    sites: dict[str, Site]
    eligibility: EligibilityTables

    def service_by_id(self, service_id: str) -> Service | None:
        return next((s for s in self.services.values() if s.id == service_id), None)


def _date(value: str | None) -> date | None:
    # The schema checked the format (YYYY-MM-DD); the loader keeps dates as text.
    return None if value is None else date.fromisoformat(value)


def _whatsapp_number(wa: Located) -> str:
    """``whatsapp.number`` in any written form (``+57 300 111 2233``, ``573001112233``,
    ``300 111 2233``) as E.164; a value that is no valid number fails with its line.
    (The schema has checked the characters; phonenumbers checks the number.)"""
    raw = str(wa["number"])
    number = parse_e164(raw)
    if number is None:
        raise ConfigError(
            wa.file, wa.line_of("number"), "whatsapp.number",
            f"{raw!r} is not a valid phone number (region CO, or +country code)",
        )  # fmt: skip
    return number


def load_line(path: Path) -> LineConfig:
    """``line.yaml`` checked against ``ivr/schemas/line.json``, then its time zone and SMS text.

    Raises ``ConfigError`` naming file, line and field."""
    d = load_checked(path, "line")
    vdn, wa, booking = d["agent_vdn"], d["whatsapp"], d["booking"]
    sms_text = wa["sms_text"]
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
    timezone = d["timezone"]
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            d.file, d.line_of("timezone"), "timezone", f"unknown time zone {timezone!r}"
        ) from None
    return LineConfig(
        number=d["number"],
        timezone=timezone,
        vdn_default=vdn["default"],
        vdn_non_target=vdn["non_target"],
        vdn_incident=vdn["incident"],
        whatsapp_number=_whatsapp_number(wa),
        whatsapp_prefilled=wa["prefilled_text"],
        sms_text=sms_text,
        max_offers=booking["max_offers"],
        search_days=booking["search_days"],
        one_pending_per_service=booking.get("one_pending_per_service", True),
        voice=_voice(d),
    )


def _voice(d: Located) -> LineVoice:
    """``voice`` (each field defaults to ``DEFAULT_VOICE``'s); the schema checked the forms."""
    voice = d.get("voice") or {}
    return LineVoice(
        sounds=voice.get("sounds", DEFAULT_VOICE.sounds),
        agent_context=voice.get("agent_context", DEFAULT_VOICE.agent_context),
        variable_prefix=voice.get("variable_prefix", DEFAULT_VOICE.variable_prefix),
    )


def load_services(path: Path) -> dict[str, Service]:
    """``services.yaml`` (menu key -> service), checked against ``ivr/schemas/services.json``."""
    raw = load_checked(path, "services")["services"]
    return {
        key: Service(key, item["id"], item["name"], item["cups"], item["specialty"])
        for key, item in raw.items()
    }


def load_cups_by_specialty(path: Path) -> dict[str, tuple[str, ...]]:
    """CUPS codes by specialty, in menu order, from ``services.yaml`` (the demo
    agenda's codes, ``ivr.booking.seed.CUPS_BY_SPECIALTY``, must be these)."""
    found: dict[str, list[str]] = {}
    for service in load_services(path).values():
        found.setdefault(service.specialty, []).append(service.cups)
    return {specialty: tuple(codes) for specialty, codes in found.items()}


def load_sites(path: Path) -> dict[str, Site]:
    """``sites.yaml`` (site id -> site and its doctors), checked against ``ivr/schemas/sites.json``."""
    raw = load_checked(path, "sites")["sites"]
    return {
        site_id: Site(
            site_id,
            item["name"],
            _date(item.get("phone_booking_closed_from")),
            {
                doc_id: Doctor(doc_id, doc["name"], doc["specialty"])
                for doc_id, doc in item["doctors"].items()
            },
        )
        for site_id, item in raw.items()
    }


def load_eligibility(path: Path) -> EligibilityTables:
    """``eligibility.yaml`` checked against ``ivr/schemas/eligibility.json``, then min <= max."""
    d = load_checked(path, "eligibility")
    band = d["age_band"]
    age_min, age_max = band["min"], band["max"]
    if age_min > age_max:
        raise ConfigError(d.file, d.line_of("age_band"), "age_band", "needs min <= max")
    return EligibilityTables(
        age_min,
        age_max,
        frozenset(d["cups_in_scope"]),
        frozenset(d["plans_in_scope"]),
        frozenset(d["risk_markings_excluded"]),
    )


def load_reference(directory: Path = CITAS_DIR) -> Reference:
    return Reference(
        line=load_line(directory / "line.yaml"),
        services=load_services(directory / "services.yaml"),
        sites=load_sites(directory / "sites.yaml"),
        eligibility=load_eligibility(directory / "eligibility.yaml"),
    )
