"""The issue 9 §1 scenarios send their keys with the timing the observations name."""

from __future__ import annotations

import struct

from ivr.scenarios.rtpevents import rtp_event_packets
from ivr.scenarios.spec import SCENARIO_DIR, load_scenario


def onsets(digits: str) -> list[tuple[str, float]]:
    """(key, seconds from the step's start) of each RFC 4733 event's first packet."""
    codes = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
    keys = {v: k for k, v in codes.items()}
    packets = rtp_event_packets(digits, seq=0, timestamp=0)
    return [
        (keys[struct.unpack("!B", rtp[12:13])[0]], offset)
        for offset, rtp in packets
        if rtp[1] & 0x80  # the marker bit starts an event
    ]


def dtmf_steps(name: str) -> list[str]:
    scenario = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    return [s.digits for s in scenario.steps if s.kind == "dtmf" and s.mode == "rfc4733"]


def test_the_two_ones_start_240_ms_apart() -> None:
    # Three since issue 10 §2: the main menu's 1, then the observed two.
    first, *_ = dtmf_steps("typeahead-offer-not-booked")
    assert onsets(first) == [("1", 0.0), ("1", 0.24), ("1", 0.48)]


def test_the_terminator_follows_the_twelfth_digit_by_240_ms() -> None:
    document, *_ = dtmf_steps("document-max-length-terminator")
    keys = onsets(document)
    assert "".join(k for k, _ in keys) == "100200300400#"
    assert round(keys[-1][1] - keys[-2][1], 3) == 0.24
