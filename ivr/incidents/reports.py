"""An incident report: the advisors' form of the insurer's contingency plan, checked.

The form asks for the date and time of the error, the channels affected, the
affiliate's data with their consent, a description, the exact error message
and any extra information; we add the case numbers it concerns. The rules
(:func:`check`), each refused with a Spanish message naming the field:

- ``occurred_at``: an instant with its UTC offset, not in the future (5 minutes
  of clock skew allowed) and at most :data:`MAX_AGE` old;
- ``channels``: one or more of :data:`CHANNELS`, each once;
- ``description`` and ``error_message``: required (the exact message, as the
  affiliate or the advisor saw it; "sin mensaje" when there was none), at most
  :data:`MAX_TEXT` characters; ``extra`` optional;
- the affiliate's data (document type and number, name, phone) is kept **only
  with consent** (Colombia's Ley 1581 de 2012, habeas data: personal data needs
  the owner's prior authorisation): data without ``consent`` is refused, not
  silently dropped, so the advisor knows to ask. A document needs its type;
  a phone is stored in E.164 (``ivr.phone.parse_e164``, Colombia by default);
- ``case_numbers``: case numbers as the cases part writes them (7 digits with a
  Damm check digit, :func:`ivr.cases.number.is_valid`), each once; the store
  checks that each case exists.

Lists and exports show the document and phone masked (``ivr.masking``) and
the name cut to the first name and initials; the full data is in the
report's detail, for operators who call the affiliate back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from ivr.cases.number import is_valid, normalise
from ivr.masking import mask_number
from ivr.ops.service import InvalidChange
from ivr.phone import parse_e164

CHANNELS = {
    "telefono": "Teléfono",
    "whatsapp": "WhatsApp",
    "web": "Página web",
    "app": "Aplicación móvil",
    "correo": "Correo electrónico",
    "presencial": "Presencial",
}
DOCUMENT_TYPES = {
    "CC": "Cédula de ciudadanía",
    "TI": "Tarjeta de identidad",
    "RC": "Registro civil",
    "CE": "Cédula de extranjería",
    "PA": "Pasaporte",
    "PPT": "Permiso por protección temporal",
}
MAX_TEXT = 4000
MAX_NAME = 160
MAX_AGE = timedelta(days=366)
SKEW = timedelta(minutes=5)
_DOCUMENT = re.compile(r"^[A-Za-z0-9]{3,20}$")


@dataclass(frozen=True)
class IncidentLink:
    """The incident switch (flag ``incident_mode``) at the time of the error.

    ``source``: ``default`` (never set, or reset), ``set`` (switched by an
    operator: ``audit_id`` is that audit entry) or ``window`` (a contingency
    window: ``window_id``, and ``audit_id`` its start or scheduling entry).
    """

    active: bool
    source: str
    audit_id: int | None = None
    window_id: str | None = None


@dataclass(frozen=True)
class NewIncidentReport:
    """What the advisor fills in (checked by :func:`check`)."""

    occurred_at: datetime
    channels: tuple[str, ...]
    description: str
    error_message: str
    extra: str = ""
    consent: bool = False
    document_type: str | None = None
    document: str | None = None
    affiliate_name: str | None = None
    affiliate_phone: str | None = None
    case_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentReport:
    """A stored report."""

    id: int
    new: NewIncidentReport
    consent_at: datetime | None
    incident: IncidentLink
    reported_by: str
    reported_at: datetime
    details: dict[str, Any] = field(default_factory=dict)  # the audit/window, in a detail view

    def as_json(self, *, masked: bool) -> dict[str, Any]:
        n = self.new
        return {
            "id": self.id,
            "occurred_at": n.occurred_at.isoformat(),
            "channels": list(n.channels),
            "description": n.description,
            "error_message": n.error_message,
            "extra": n.extra,
            "consent": n.consent,
            "consent_at": self.consent_at.isoformat() if self.consent_at else None,
            "document_type": n.document_type,
            "document": mask_number(n.document) if masked and n.document else n.document,
            "affiliate_name": mask_name(n.affiliate_name) if masked else n.affiliate_name,
            "affiliate_phone": (
                mask_number(n.affiliate_phone)
                if masked and n.affiliate_phone
                else n.affiliate_phone
            ),
            "masked": masked,
            "case_numbers": list(n.case_numbers),
            "incident": {
                "active": self.incident.active,
                "source": self.incident.source,
                "audit_id": self.incident.audit_id,
                "window_id": self.incident.window_id,
                **self.details,
            },
            "reported_by": self.reported_by,
            "reported_at": self.reported_at.isoformat(),
        }


def mask_name(name: str | None) -> str | None:
    """The first name and the initials of the rest.

    >>> mask_name("Ana María Rojas Peña")
    'Ana M. R. P.'
    >>> mask_name(None) is None
    True
    """
    if not name:
        return name
    first, *rest = name.split()
    return " ".join([first, *(w[0].upper() + "." for w in rest)])


def _problem(field_name: str, message: str) -> InvalidChange:
    return InvalidChange(f"{field_name}: {message}", [{"field": field_name, "message": message}])


def _text(value: str, field_name: str, *, required: bool, limit: int = MAX_TEXT) -> str:
    text = value.strip()
    if required and not text:
        _raise(field_name, "es obligatorio")
    if len(text) > limit:
        _raise(field_name, f"tiene más de {limit} caracteres")
    return text


def _raise(field_name: str, message: str) -> NoReturn:
    raise _problem(field_name, message)


def check(new: NewIncidentReport, now: datetime) -> NewIncidentReport:
    """``new`` with its text trimmed and its phone in E.164; raises InvalidChange (422)."""
    if new.occurred_at.tzinfo is None:
        _raise("occurred_at", "falta la zona horaria")
    if new.occurred_at > now + SKEW:
        _raise("occurred_at", "la fecha del error está en el futuro")
    if new.occurred_at < now - MAX_AGE:
        _raise("occurred_at", "la fecha del error tiene más de un año")
    channels = tuple(dict.fromkeys(new.channels))
    if not channels:
        _raise("channels", "indique al menos un canal afectado")
    if unknown := [c for c in channels if c not in CHANNELS]:
        _raise("channels", f"canal desconocido: {', '.join(unknown)}")
    document = (new.document or "").strip() or None
    name = " ".join((new.affiliate_name or "").split()) or None
    raw_phone = (new.affiliate_phone or "").strip() or None
    if (document or name or raw_phone) and not new.consent:
        _raise("consent", "sin la autorización del afiliado no se guardan sus datos")
    if document and not _DOCUMENT.match(document):
        _raise("document", "el documento tiene de 3 a 20 letras o números, sin espacios")
    if document and new.document_type not in DOCUMENT_TYPES:
        _raise("document_type", "indique el tipo de documento (" + ", ".join(DOCUMENT_TYPES) + ")")
    if name and len(name) > MAX_NAME:
        _raise("affiliate_name", f"tiene más de {MAX_NAME} caracteres")
    phone = parse_e164(raw_phone) if raw_phone else None
    if raw_phone and phone is None:
        _raise("affiliate_phone", "no es un número de teléfono válido")
    return NewIncidentReport(
        occurred_at=new.occurred_at,
        channels=channels,
        description=_text(new.description, "description", required=True),
        error_message=_text(new.error_message, "error_message", required=True),
        extra=_text(new.extra, "extra", required=False),
        consent=new.consent,
        document_type=new.document_type if document else None,
        document=document,
        affiliate_name=name,
        affiliate_phone=phone,
        case_numbers=check_case_numbers(new.case_numbers),
    )


def check_case_numbers(numbers: Sequence[str]) -> tuple[str, ...]:
    """Each number once (spaces, dots, dashes dropped: ``ivr.cases.number.normalise``),
    each with its Damm check digit right (``is_valid``); raises InvalidChange."""
    cleaned = tuple(dict.fromkeys(normalise(n) for n in numbers if normalise(n)))
    if bad := [n for n in cleaned if not is_valid(n)]:
        _raise("case_numbers", f"no es un número de caso válido: {', '.join(bad)}")
    return cleaned
