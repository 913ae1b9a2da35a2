"""Phone numbers as carriers, SIP trunks and people write them (issue 9 §2).

``FORMS`` is the kind: every form a number arrives in, with the E.164 it must
become (or None: refused) and whether an SMS may go to it. The same table is
used at every boundary (tests/unit/test_phone_boundaries.py); the properties
below cover what the table cannot list.
"""

from __future__ import annotations

import doctest
import re

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import ivr.phone
from ivr.phone import (
    WITHHELD,
    InvalidPhoneNumber,
    is_e164,
    parse_e164,
    require_sms_destination,
    sms_destination,
    spoken_groups,
    whatsapp_digits,
)

# name: (raw, E.164 or None, an SMS may go to it)
FORMS: dict[str, tuple[str, str | None, bool]] = {
    "national mobile": ("3001234567", "+573001234567", True),
    "country code without +": ("573001234567", "+573001234567", True),
    "E.164": ("+573001234567", "+573001234567", True),
    "00 prefix, spaced": ("0057 300 123 4567", "+573001234567", True),
    "00 prefix": ("00573001234567", "+573001234567", True),
    "international, spaced": ("+57 300 123 4567", "+573001234567", True),
    "international, bracketed": ("(+57) 300-123-4567", "+573001234567", True),
    "national, punctuated": ("(300) 123-4567", "+573001234567", True),
    "national, dotted": ("300.123.4567", "+573001234567", True),
    "trunk prefix and carrier": ("03 300 123 4567", "+573001234567", True),
    "blanks around": ("  3001234567\t", "+573001234567", True),
    "tel URI": ("tel:+573001234567", "+573001234567", True),
    "tel URI, context": ("tel:+57-300-123-4567;phone-context=example.com", "+573001234567", True),
    "tel URI, global context": ("tel:3001234567;phone-context=+57", "+573001234567", True),
    "tel URI in brackets": ("<TEL:+573001234567>", "+573001234567", True),
    "sip URI, user=phone": ("sip:+573001234567@carrier.example;user=phone", "+573001234567", True),
    "sip URI, national user": ("sip:3001234567@10.0.0.1:5060", "+573001234567", True),
    "sips URI in brackets": ("<sips:00573001234567@carrier.example>", "+573001234567", True),
    "foreign mobile": ("+58 412 1234567", "+584121234567", True),
    "fixed line, national": ("6015551234", "+576015551234", False),
    "fixed line, E.164": ("+576015551234", "+576015551234", False),
    "fixed line, old area code": ("+5716015551234", None, False),
    "toll-free": ("01 8000 123456", "+5718000123456", False),
    "fixed or mobile (NANP)": ("+1 212 555 0100", "+12125550100", False),
    "anonymous": ("anonymous", None, False),
    "Anonymous": ("Anonymous", None, False),
    "anonymous sip URI": ("sip:anonymous@anonymous.invalid", None, False),
    "anonymous tel URI": ("tel:Anonymous", None, False),
    "unknown": ("UNKNOWN", None, False),
    "restricted": ("Restricted", None, False),
    "private": ("private", None, False),
    "unavailable": ("unavailable", None, False),
    "empty": ("", None, False),
    "blank": ("   ", None, False),
    "too short": ("3001234", None, False),
    "too long": ("30012345678", None, False),
    "far too long": ("+57" + "3" * 300, None, False),
    "country code alone": ("+57", None, False),
    "plus alone": ("+", None, False),
    "no such country": ("+999 123 4567", None, False),
    "letters (vanity)": ("300ABCDEFG", None, False),
    "letters among digits": ("+57 300 CITA 567", None, False),
    "extension": ("3001234567 ext. 12", None, False),
    "tel URI, extension": ("tel:+573001234567;ext=12", None, False),
    "sip URI without user": ("sip:carrier.example", None, False),
}


@pytest.mark.parametrize(("raw", "e164", "sms"), FORMS.values(), ids=FORMS.keys())
def test_every_form_becomes_e164_or_is_refused(raw: str, e164: str | None, sms: bool) -> None:
    assert parse_e164(raw) == e164
    assert sms_destination(raw) == (e164 if sms else None)


@pytest.mark.parametrize(("raw", "e164", "sms"), FORMS.values(), ids=FORMS.keys())
def test_only_a_canonical_mobile_passes_as_an_sms_destination(
    raw: str, e164: str | None, sms: bool
) -> None:
    if sms and raw == e164:
        assert require_sms_destination(raw) == raw
    else:
        with pytest.raises(InvalidPhoneNumber):
            require_sms_destination(raw)
    if e164 is not None:
        assert is_e164(e164)
        assert (require_sms_destination(e164) == e164) if sms else not sms_destination(e164)


def test_none_is_no_number() -> None:
    assert parse_e164(None) is None and sms_destination(None) is None


def test_a_wa_me_link_takes_the_digits_of_an_e164_number_only() -> None:
    assert whatsapp_digits("+573001112233") == "573001112233"
    for written in ("573001112233", "+57 300 111 2233", "3001112233", ""):
        with pytest.raises(InvalidPhoneNumber):
            whatsapp_digits(written)


@pytest.mark.parametrize(
    ("e164", "groups"),
    [
        ("+573001112233", ["300", "111", "2233"]),  # a Colombian mobile: as dialled there
        ("+576015551234", ["601", "5551234"]),  # a Bogotá fixed line
        ("+584121234567", ["58", "412", "1234567"]),  # foreign: country code first
    ],
)
def test_a_number_is_read_in_the_groups_it_is_dialled_in(e164: str, groups: list[str]) -> None:
    assert spoken_groups(e164) == groups


def test_only_an_e164_number_is_read_out() -> None:
    with pytest.raises(InvalidPhoneNumber):
        spoken_groups("3001112233")


def test_the_module_examples_run() -> None:
    result = doctest.testmod(ivr.phone)
    assert result.attempted >= 5 and result.failed == 0


# --- properties -----------------------------------------------------------------------------
# Colombian mobile ranges (phonenumbers' metadata for CO decides validity; ``assume`` skips
# the few sub-ranges it does not allocate).
CO_MOBILE = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["300", "301", "302", "304", "305", "310", "311", "312", "313", "314",
                     "315", "316", "317", "318", "319", "320", "321", "322", "323", "350", "351"]),
    st.text("0123456789", min_size=7, max_size=7),
)  # fmt: skip
COUNTRY = st.sampled_from(["", "57", "+57", "0057", "+57 ", "00 57 ", "(+57) ", "+57-"])
SEPARATOR = st.sampled_from(["", " ", "-", ".", "  "])
WRAPPER = st.sampled_from(
    ["{}", " {} ", "tel:{}", "sip:{}@carrier.example;user=phone", "<sip:{}@10.0.0.1:5060>"]
)


@st.composite
def written_mobile(draw: st.DrawFn) -> tuple[str, str]:
    """(a valid CO mobile as E.164, the same number written some way)."""
    national = draw(CO_MOBILE)
    assume(phonenumbers.is_valid_number(phonenumbers.parse(national, "CO")))
    cuts = sorted(draw(st.sets(st.integers(1, 9), max_size=4)))
    groups = [national[a:b] for a, b in zip([0, *cuts], [*cuts, 10], strict=True)]
    if draw(st.booleans()) and cuts and cuts[0] == 3:
        groups[0] = f"({groups[0]})"
    body = groups[0] + "".join(draw(SEPARATOR) + g for g in groups[1:])
    written = draw(WRAPPER).format(draw(COUNTRY) + body)
    return "+57" + national, written


@given(written_mobile())
def test_any_writing_of_a_co_mobile_normalises_to_one_e164(case: tuple[str, str]) -> None:
    e164, written = case
    assert parse_e164(written) == e164
    assert sms_destination(written) == e164


@given(st.text(max_size=60))
def test_any_text_is_a_canonical_number_or_refused_without_raising(raw: str) -> None:
    e164 = parse_e164(raw)
    if e164 is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", e164)
        assert parse_e164(e164) == e164 and is_e164(e164)
    sms = sms_destination(raw)
    assert sms is None or sms == e164


@given(
    st.sampled_from(sorted(WITHHELD)).flatmap(
        lambda word: st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
            lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
        )
    ),
    st.sampled_from(["{}", " {} ", "sip:{}@anonymous.invalid", "<sip:{}@carrier.example>"]),
)
def test_a_withheld_caller_id_in_any_case_is_no_number(word: str, wrapper: str) -> None:
    raw = wrapper.format(word)
    assert parse_e164(raw) is None and sms_destination(raw) is None


@given(st.text(st.characters(blacklist_categories=("Nd", "No", "Nl")), max_size=40))
def test_text_without_digits_is_no_number(raw: str) -> None:
    assert parse_e164(raw) is None
