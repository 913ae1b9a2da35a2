"""Phone numbers at the boundaries: one parser, one canonical form (E.164).

Numbers reach the platform in whatever form a carrier, a SIP trunk or a person
wrote them: ``3001234567``, ``573001234567``, ``+57 300 123 4567``,
``00573001234567``, ``tel:+573001234567``, ``sip:+573001234567@host;user=phone``,
``anonymous``… Every number that crosses a boundary (the caller ID from ARI,
directory and configuration files, an SMS destination) goes through
``parse_e164`` once and is E.164 (``+573001234567``) from then on, so
comparisons are exact and an SMS provider gets an international number.

Parsing is done by ``phonenumbers`` (the maintained port of Google's
libphonenumber, whose metadata follows each country's numbering plan), with
three rules of our own, each because of a quirk of the input:

- withheld caller IDs (``anonymous``, ``restricted``, ``unknown``, ``private``,
  ``unavailable``, ``withheld``, in any case, bare or as a SIP URI's user part)
  and empty values are no number;
- a SIP URI gives its user part (``sip:USER@host;params``), a tel URI its
  number (RFC 3966, with a global ``phone-context``); phonenumbers reads neither
  the same way (``tel:`` partly, ``sip:`` not at all);
- a leading ``00`` is the ITU international prefix. phonenumbers applies the
  Colombian carrier-selection prefixes (``005``, ``007``, ``009``) instead and
  reads ``0057 300…`` as carrier 005 and country 7 (Russia); caller IDs never
  carry a carrier-selection code, people writing config files neither.

Letters (vanity numbers such as ``300-CITAS-12``, which phonenumbers would
convert) and extensions are refused: neither a caller ID nor an SMS
destination has them.

>>> parse_e164("300 123 4567")
'+573001234567'
>>> parse_e164("sip:00573001234567@carrier.example;user=phone")
'+573001234567'
>>> parse_e164("Anonymous") is None
True
>>> sms_destination("+576015551234") is None   # a Bogotá fixed line
True
>>> whatsapp_digits("+573001112233")
'573001112233'
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

DEFAULT_REGION = "CO"
"""ISO 3166 region for numbers written without a country code (the deployment's country)."""

WITHHELD = frozenset(
    {"anonymous", "restricted", "unknown", "private", "unavailable", "withheld", "anonimo"}
)
"""Caller-ID values that mean "no number" (RFC 3323 ``anonymous``; carriers' others)."""

SMS_TYPES = frozenset({PhoneNumberType.MOBILE})
"""Number types an SMS is sent to. Only MOBILE: Colombia's plan (the deployment's)
tells mobiles (3xx) from fixed lines (60x) and has no FIXED_LINE_OR_MOBILE; where a plan
cannot tell (FIXED_LINE_OR_MOBILE, e.g. North America) we refuse rather than
promise a caller an SMS a landline never receives — the caller is read the
number instead."""

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ITU-T E.164: at most 15 digits
_SIP_URI = re.compile(r"(?i)^sips?:([^@;]*)")
_LETTER = re.compile(r"[^\W\d_]")


class InvalidPhoneNumber(ValueError):
    """A number that must be E.164 (and, for an SMS, a mobile) is not."""


def _number_part(raw: str) -> str | None:
    """The part of ``raw`` that holds the number; None when a URI adds an extension.

    ``sip:USER@host;p`` and ``<sips:USER@host>`` give ``USER``. ``tel:NUMBER;p``
    gives ``NUMBER``, prefixed with a global ``phone-context`` (RFC 3966 §5.1.5,
    ``tel:3001234567;phone-context=+57``); ``ext``/``isub`` parameters refuse it.
    Anything else is itself.
    """
    text = raw.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    sip = _SIP_URI.match(text)
    if sip:
        return sip.group(1)
    if text[:4].casefold() != "tel:":
        return text
    number, *params = text[4:].split(";")
    names = {
        name.strip().casefold(): value for name, _, value in (p.partition("=") for p in params)
    }
    if "ext" in names or "isub" in names:
        return None
    context = names.get("phone-context", "").strip()
    if context.startswith("+") and not number.strip().startswith("+"):
        number = context + number
    return number


def parse_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``raw`` (``'+573001234567'``), or None when it is no valid number.

    ``raw`` is any text a carrier, a SIP header or a file may hold; ``region``
    is the ISO 3166 country for numbers written without a country code.
    None for: None, empty, withheld values (``WITHHELD``), text with letters or
    an extension, and numbers phonenumbers does not find valid (wrong length or
    prefix for the country's plan). Never raises for any ``str``.
    """
    part = _number_part(raw) if raw is not None else None
    text = part.strip() if part else ""
    if not text or text.casefold() in WITHHELD or _LETTER.search(text):
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_e164(number: str) -> bool:
    """True when ``number`` is already canonical E.164 (what ``parse_e164`` returns)."""
    return bool(_E164.fullmatch(number)) and parse_e164(number) == number


def sms_destination(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The E.164 form of ``raw`` when an SMS can be sent to it (a mobile, ``SMS_TYPES``), else None.

    None for everything ``parse_e164`` refuses and for valid numbers of any other
    type (fixed lines, toll-free, premium, VoIP, ambiguous fixed-or-mobile…).
    """
    e164 = parse_e164(raw, region)
    if e164 is None:
        return None
    return e164 if phonenumbers.number_type(phonenumbers.parse(e164)) in SMS_TYPES else None


def require_sms_destination(number: str) -> str:
    """``number`` itself when it is E.164 and a mobile; else raises ``InvalidPhoneNumber``.

    For code that stores or sends to a number someone else normalised (the SMS
    outbox): a national or formatted number there is a bug upstream.
    """
    if not is_e164(number) or sms_destination(number) != number:
        raise InvalidPhoneNumber(
            f"not an E.164 mobile number: {number[:3]!r}… ({len(number)} characters)"
        )
    return number


def whatsapp_digits(e164: str) -> str:
    """The number as ``wa.me`` links want it: country code and number, digits only.

    Raises ``InvalidPhoneNumber`` when ``e164`` is not canonical E.164
    (WhatsApp's "click to chat" help: the full international number without
    ``+``, leading zeros, brackets or dashes).
    """
    if not is_e164(e164):
        raise InvalidPhoneNumber("a wa.me link needs an E.164 number")
    return e164[1:]


def spoken_groups(e164: str, region: str = DEFAULT_REGION) -> list[str]:
    """The digit groups a person dials, to be read one digit at a time.

    A number of ``region`` is read as dialled there (national format, without the
    trunk prefix or punctuation); any other with its country code first. Raises
    ``InvalidPhoneNumber`` when ``e164`` is not canonical E.164.

    >>> spoken_groups("+573001112233")
    ['300', '111', '2233']
    >>> spoken_groups("+12125550100")
    ['1', '212', '555', '0100']
    """
    if not is_e164(e164):
        raise InvalidPhoneNumber("only an E.164 number can be read out")
    number = phonenumbers.parse(e164)
    if phonenumbers.region_code_for_number(number) == region:
        national = phonenumbers.national_significant_number(number)
        if phonenumbers.number_type(number) == PhoneNumberType.MOBILE and len(national) == 10:
            # A 10-digit mobile is said 3-3-4 ("300 111 2233"); Colombia's own
            # national format groups it 3-7, too long a run to hold in the ear.
            return [national[:3], national[3:6], national[6:]]
        formatted = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    else:
        formatted = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    return [g for g in re.split(r"\D+", formatted) if g]
