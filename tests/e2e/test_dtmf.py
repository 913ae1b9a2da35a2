"""Keys meant for one prompt never answer the next one (issue 9 §1), through the real Asterisk.

Both observations of the issue, placed by sipp: a key typed ahead never accepts a slot
offer, and a terminator right after a full-length document belongs to the document.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import ControllerProcess, Sandbox, ok
from tests.e2e.test_citas import bookings_for_call, path_kinds

pytestmark = pytest.mark.e2e


def answers(record: dict[str, Any], node: str) -> list[tuple[str, str]]:
    return [(s["digits"], s["ended_by"]) for s in path_kinds(record, "digits") if s["node"] == node]


def test_a_key_typed_ahead_never_accepts_the_slot_offer(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("typeahead-offer-not-booked"))["records"]
    assert answers(record, "main_menu") == [("1", "complete")]
    assert answers(record, "ask_service") == [("1", "complete")]
    # The second 1 was discarded: the offer's only answer is the 0 pressed after hearing it.
    assert answers(record, "offer_slot") == [("0", "complete")]
    assert "book" not in [s["node"] for s in path_kinds(record, "node")]
    assert "booking_id" not in record["variables"]
    assert bookings_for_call(sandbox, record["id"]) == 0
    offer = next(
        s for s in path_kinds(record, "prompt") if "sound:citas/slot_offer_intro" in s["media"]
    )
    assert offer["media"][-1] == "sound:citas/slot_options"


def test_a_terminator_after_a_full_length_document_belongs_to_it(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    (record,) = ok(sandbox.call("document-max-length-terminator"))["records"]
    assert answers(record, "ask_document") == [("*********400", "complete")]
    assert answers(record, "main_menu") == [("1", "complete")]
    assert answers(record, "ask_service") == [("1", "complete")]
    heard = [m for s in path_kinds(record, "prompt") for m in s["media"]]
    assert "sound:citas/invalid_option" not in heard
    assert record["variables"]["identified_by"] == "document"
