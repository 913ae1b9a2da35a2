"""The sipp desk agent: its REGISTER, its answering scenario, its headers log, its port.

The kind of fault: a phone Asterisk cannot reach or that misbehaves in a
dialog — a Contact that is not the answering port, a 487 after CANCEL that
answers the CANCEL's CSeq instead of the INVITE's, a phone that registers a
port another process holds (found while building it: a stale sipp answered
for the new one). Checked over the scenario's variants (answer at once or
after ringing, talk times) and over several INVITEs in one log.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.scenarios.deskagent import DeskAgentPhone, RegistrationFailed
from ivr.scenarios.runner import agent_invite_headers, invite_headers
from ivr.scenarios.sippxml import desk_agent_xml, register_xml
from ivr.settings import Settings


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.split("\n", 2)[2])


def first_line(message: str) -> str:
    return message.strip().splitlines()[0]


@pytest.mark.parametrize(("extension", "port", "expires"), [("7001", 5091, 3600), ("7006", 6196, 0)])
def test_register_names_the_answering_port_and_the_expiry(extension: str, port: int, expires: int) -> None:
    root = parse(register_xml(extension, port, expires))
    (send,) = [el.text or "" for el in root.iter("send")]

    assert first_line(send) == "REGISTER sip:[remote_ip]:[remote_port] SIP/2.0"
    assert f"From: <sip:{extension}@[remote_ip]>;tag=" in send  # endpoint by its From user
    assert f"Contact: <sip:{extension}@[local_ip]:{port}>" in send
    assert f"Expires: {expires}\n" in send
    assert [el.get("response") for el in root.iter("recv")] == ["100", "200"]


@pytest.mark.parametrize("answer_after_ms", [0, 2500])
@pytest.mark.parametrize("talk_ms", [0, 5000])
def test_the_agent_answers_talks_and_hangs_up_or_takes_the_bye(answer_after_ms: int, talk_ms: int) -> None:
    root = parse(desk_agent_xml(answer_after_ms=answer_after_ms, talk_ms=talk_ms))
    recvs = [(el.get("request") or el.get("response"), el.get("timeout")) for el in root.iter("recv")]
    sends = [first_line(el.text or "") for el in root.iter("send")]
    invite = next(root.iter("recv"))
    eregs = {e.get("assign_to"): e.get("regexp") for e in invite.iter("ereg")}

    assert eregs == {"caller_from": ".*", "invite_cseq": "[0-9]+ INVITE"}
    assert recvs[0] == ("INVITE", None)
    assert ("BYE", str(max(talk_ms, 1))) in recvs  # the caller hangs up first, or ...
    assert "BYE [next_url] SIP/2.0" in sends  # ... the agent does after talk_ms
    ok = next(el.text or "" for el in root.iter("send") if "m=audio" in (el.text or ""))
    assert "CSeq: [$invite_cseq]" in ok and "RTP/AVP 0" in ok
    labels = [el.get("id") for el in root.iter("label")]
    if answer_after_ms:
        assert ("CANCEL", str(answer_after_ms)) in recvs
        cancelled = next(el.text or "" for el in root.iter("send") if "487" in (el.text or ""))
        assert "CSeq: [$invite_cseq]" in cancelled  # the INVITE's, not the CANCEL's
        assert labels == ["answer", "hangup", "end"]
    else:
        assert not any(r == "CANCEL" for r, _ in recvs)
        assert labels == ["hangup", "end"]


LOG = """----------------------------------------------- 2026-11-30 10:00:00.0
UDP message received [900] bytes :

INVITE sip:7001@127.0.0.1:5091 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060
X-Citas-Reason: non-target
X-Citas-Vdn: 5550001
Content-Length: 0

----------------------------------------------- 2026-11-30 10:00:01.0
UDP message sent [300] bytes :

SIP/2.0 200 OK
X-Citas-Reason: not an invite

----------------------------------------------- 2026-11-30 10:00:09.0
UDP message received [900] bytes :

INVITE sip:7001@127.0.0.1:5091 SIP/2.0
X-Citas-Reason: incident
X-Citas-Vdn: 5550002
Content-Length: 0

"""


def test_the_headers_of_every_invite_in_order(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text(LOG, encoding="utf-8")

    assert invite_headers(log) == [
        {"X-Citas-Reason": "non-target", "X-Citas-Vdn": "5550001"},
        {"X-Citas-Reason": "incident", "X-Citas-Vdn": "5550002"},
    ]
    assert agent_invite_headers(log) == invite_headers(log)[0]
    assert invite_headers(tmp_path / "none.log") == []
    assert agent_invite_headers(tmp_path / "none.log") == {}


def test_a_phone_whose_port_is_taken_is_refused_before_it_registers(tmp_path: Path) -> None:
    settings = Settings.from_env({"CITAS_PORT_OFFSET": "3300"})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", settings.ports.desk_sip + 1))  # 7001's port

        with pytest.raises(RegistrationFailed, match=r"port 127\.0\.0\.1:8391 is taken"):
            DeskAgentPhone(settings, "7001", tmp_path)
    assert not (tmp_path / "register-7001-3600.xml").exists()
