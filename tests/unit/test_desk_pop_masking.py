"""The screen pop's masking (ivr.desk.pop.masked_person, ivr.masking's policy): a document
or phone number shows only its last 3 digits, over the range of numbers a pop may carry
(documents of 1-12 digits, national and E.164 phones, separators, missing values)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.desk.pop import CallKeys, VariablesSource, masked_person
from ivr.masking import SHOWN_DIGITS

numbers = st.one_of(
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),  # documents (ask_document takes up to 12)
    st.from_regex(r"\+57 ?3[0-9]{2} ?[0-9]{3} ?[0-9]{4}", fullmatch=True),  # E.164 mobiles
    st.from_regex(r"60[0-9]{8}", fullmatch=True),  # fixed lines
)


def visible_digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


@given(numbers, numbers)
def test_only_the_last_digits_of_document_and_phone_are_shown(document: str, phone: str) -> None:
    person = masked_person(name="Ana Gómez", document=document, phone=phone)
    for raw, shown in ((document, person["document"]), (phone, person["phone"])):
        assert shown is not None and len(shown) == len(raw)  # separators kept, length kept
        digits = visible_digits(raw)
        assert visible_digits(shown) == digits[-SHOWN_DIGITS:]
        assert shown.endswith(digits[-SHOWN_DIGITS:])
    assert person["name"] == "Ana Gómez"  # the agent greets the caller by name


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_number_shows_a_dash(missing: str | None) -> None:
    person = masked_person(name=None, document=missing, phone=missing)
    assert person["document"] == "-" and person["phone"] == "-"


def test_the_observed_numbers_are_masked() -> None:
    person = masked_person(name="Bruno", document="2020202020", phone="+573002222222", plan="PBS")
    assert person == {"name": "Bruno", "document": "*******020", "phone": "+*********222", "plan": "PBS"}


@given(st.from_regex(r"[0-9]{4,12}", fullmatch=True), st.from_regex(r"3[0-9]{9}", fullmatch=True))
async def test_no_whole_number_reaches_the_platform_pop(document: str, phone: str) -> None:
    details = await VariablesSource().for_call(CallKeys(
        uniqueid="1.1", sip_call_id=None, caller_number=phone,
        variables={"CITAS_AFFILIATE": document, "CITAS_SEGMENT": "non_target"},
    ))  # fmt: skip
    stored = json.dumps(details.as_json())
    assert document not in stored and phone not in stored
