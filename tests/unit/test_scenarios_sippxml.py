"""Generated sipp XML: well-formed, and the SIP dialogue each scenario step asks for."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.scenarios.sippxml import agent_xml, caller_xml
from ivr.scenarios.spec import Expect, Scenario, Step, list_scenarios


def scenario(
    *steps: Step, ends_by: str = "ivr", callers: tuple[str, ...] = ("3001234567",)
) -> Scenario:
    return Scenario(
        name="t", description="test", dial="4440001", caller_ids=callers,
        steps=steps, ends_by=ends_by, agent=False, controller=True, expect=Expect(),
        timeout=40.0,
    )  # fmt: skip


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def sends(root: ET.Element) -> list[str]:
    return [(el.text or "").strip() for el in root.iter("send")]


def first_line(message: str) -> str:
    return message.splitlines()[0]


@pytest.mark.parametrize("name", sorted(list_scenarios()))
def test_caller_xml_of_every_bundled_scenario_is_well_formed(name: str, tmp_path: Path) -> None:
    s = list_scenarios()[name]

    root = parse(caller_xml(s, tmp_path))

    assert root.tag == "scenario" and root.get("name") == name
    messages = sends(root)
    assert first_line(messages[0]).startswith("INVITE sip:[service]@")
    caller = s.caller_id if len(s.caller_ids) == 1 else "[field0]"
    assert f"<sip:{caller}@[local_ip]:[local_port]>" in messages[0]
    assert "a=rtpmap:101 telephone-event/8000" in messages[0]
    assert first_line(messages[1]) == "ACK [next_url] SIP/2.0"


def test_info_mode_sends_one_dtmf_relay_info_per_digit(tmp_path: Path) -> None:
    root = parse(caller_xml(scenario(Step("dtmf", digits="4#", mode="info")), tmp_path))

    infos = [m for m in sends(root) if m.startswith("INFO ")]
    assert len(infos) == 2
    for message, (cseq, digit) in zip(infos, [(2, "4"), (3, "#")], strict=True):
        assert "Content-Type: application/dtmf-relay" in message
        assert f"CSeq: {cseq} INFO" in message
        assert message.endswith(f"Signal={digit}\nDuration=160")
    # Each INFO is answered before the next key: the element after it waits for the 200.
    after_info = [root[i + 1] for i, el in enumerate(root) if "INFO [next_url]" in (el.text or "")]
    assert [(el.tag, el.get("response")) for el in after_info] == [("recv", "200")] * 2
    assert not list(tmp_path.glob("*.pcap"))


def test_rfc4733_mode_plays_a_capture_written_for_the_step(tmp_path: Path) -> None:
    steps = (Step("wait", seconds=1.5), Step("dtmf", digits="11"))
    root = parse(caller_xml(scenario(*steps), tmp_path))

    pcap = tmp_path / "step01.pcap"
    assert pcap.is_file()
    execs = [el.get("play_pcap_audio") for el in root.iter("exec")]
    assert execs == [str(pcap)]
    pauses = [int(el.get("milliseconds", "0")) for el in root.iter("pause")]
    assert pauses[0] == 1500
    assert pauses[1] > 200  # the capture's length, then some room
    assert not [m for m in sends(root) if m.startswith("INFO ")]


def test_two_rfc4733_steps_get_two_captures_with_later_timestamps(tmp_path: Path) -> None:
    steps = (Step("dtmf", digits="1"), Step("wait", seconds=1), Step("dtmf", digits="1"))

    caller_xml(scenario(*steps), tmp_path)

    first = first_rtp_header(tmp_path / "step00.pcap")
    second = first_rtp_header(tmp_path / "step02.pcap")
    assert second["timestamp"] > first["timestamp"]
    assert second["seq"] > first["seq"]


def first_rtp_header(path: Path) -> dict[str, int]:
    # pcap header (24) + record header (16) + Ethernet, IPv4 and UDP headers (42)
    rtp = path.read_bytes()[24 + 16 + 42 :]
    return {"seq": int.from_bytes(rtp[2:4], "big"), "timestamp": int.from_bytes(rtp[4:8], "big")}


def test_a_hangup_step_sends_bye_and_waits_for_no_bye(tmp_path: Path) -> None:
    steps = (Step("wait", seconds=1), Step("hangup"), Step("dtmf", digits="9", mode="info"))
    root = parse(caller_xml(scenario(*steps, ends_by="caller"), tmp_path))

    messages = sends(root)
    assert first_line(messages[-1]) == "BYE [next_url] SIP/2.0"
    assert "CSeq: 2 BYE" in messages[-1]
    assert not [el for el in root.iter("recv") if el.get("request") == "BYE"]
    assert not [m for m in messages if m.startswith("INFO ")]  # nothing after the hang-up


def test_without_hangup_the_caller_waits_for_the_ivr_bye_and_answers_it(tmp_path: Path) -> None:
    root = parse(caller_xml(scenario(Step("wait", seconds=1)), tmp_path))

    byes = [el for el in root.iter("recv") if el.get("request") == "BYE"]
    assert [el.get("timeout") for el in byes] == ["40000"]
    assert first_line(sends(root)[-1]) == "SIP/2.0 200 OK"


def test_several_callers_take_their_number_from_the_injection_file(tmp_path: Path) -> None:
    s = scenario(Step("dtmf", digits="1", mode="info"), callers=("3001111111", "3002222222"))

    messages = sends(parse(caller_xml(s, tmp_path)))

    invite, ack, info = messages[:3]
    for message in (invite, ack, info):
        assert "<sip:[field0]@[local_ip]:[local_port]>" in message
    assert "3001111111" not in "".join(messages)


def test_scenario_name_is_escaped_in_the_attribute(tmp_path: Path) -> None:
    s = replace(scenario(), name='a&b<"c">')

    assert parse(caller_xml(s, tmp_path)).get("name") == 'a&b<"c">'


def test_agent_xml_answers_holds_and_hangs_up() -> None:
    root = parse(agent_xml(hold_ms=2500))

    assert root.get("name") == "citas agent"
    assert [el.get("request") for el in root.iter("recv")] == ["INVITE", "ACK", None]
    replies = [first_line(m) for m in sends(root)]
    assert replies == ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 200 OK",
                       "BYE [next_url] SIP/2.0"]  # fmt: skip
    assert "m=audio [media_port] RTP/AVP 0" in sends(root)[2]
    assert [el.get("milliseconds") for el in root.iter("pause")] == ["2500"]
    ereg = next(root.iter("ereg"))
    assert (ereg.get("header"), ereg.get("assign_to")) == ("From:", "caller_from")
