"""The sandbox's support extensions (escalation calls ring them) and the sipp phone.

The kind of fault: an extension the ladder dials that the sandbox does not
have, or whose port collides with another sandbox's (offsets), and a sipp
support phone that would not answer the way Asterisk offers (RFC 4733 payload
101). Every extension is checked at several offsets.
"""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.render import SUPPORT_EXTENSIONS, render_all, support_port, template_values
from ivr.scenarios.sippxml import support_xml
from ivr.settings import Ports, Settings


def used(p: Ports) -> set[int]:
    return {p.sip, p.http, p.ami, p.agi, p.agent_sip, p.ops_http, p.whatsapp_sim, p.smtp} | set(
        range(p.rtp_start, p.rtp_end + 1)
    )


@pytest.mark.parametrize("offset", [0, 1000, 2000, 12500])
def test_support_ports_follow_the_offset_and_collide_with_nothing(offset: int) -> None:
    settings = Settings.from_env({"CITAS_PORT_OFFSET": str(offset)})
    ports = [support_port(settings, ext) for ext in SUPPORT_EXTENSIONS]
    other = Settings.from_env({"CITAS_PORT_OFFSET": str(offset + 1000)})

    assert ports == [5081 + offset, 5082 + offset, 5083 + offset, 5084 + offset]
    assert not set(ports) & used(settings.ports)
    assert not set(ports) & (used(other.ports) | {support_port(other, e) for e in SUPPORT_EXTENSIONS})


def test_an_unknown_extension_is_an_error() -> None:
    with pytest.raises(SandboxError, match="6009 is not a sandbox support extension"):
        support_port(Settings(), "6009")


@pytest.mark.parametrize("offset", [0, 12500])
def test_rendered_pjsip_has_an_endpoint_and_contact_per_support_extension(offset: int, tmp_path: Path) -> None:
    settings = Settings.from_env({"CITAS_PORT_OFFSET": str(offset)})
    render_all(tmp_path, template_values(settings, "/srv/x"))
    # pjsip.conf repeats section names (endpoint and aor share one): read it section by section.
    sections: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for line in (tmp_path / "pjsip.conf").read_text().splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("["):
            current = {}
            sections.setdefault(line.strip("[]"), []).append(current)
        elif "=" in line and current is not None:
            key, value = (part.strip() for part in line.split("=", 1))
            current[key] = value

    for ext in SUPPORT_EXTENSIONS:
        kinds = {s["type"]: s for s in sections[ext]}
        assert kinds["endpoint"]["aors"] == ext
        assert kinds["endpoint"]["context"] == "citas-support-side"
        assert kinds["aor"]["contact"] == f"sip:{ext}@127.0.0.1:{support_port(settings, ext)}"
    dialplan = configparser.ConfigParser(strict=False, interpolation=None)
    dialplan.read_string((tmp_path / "extensions.conf").read_text().replace("=>", "="))
    assert "citas-support-side" in dialplan


@pytest.mark.parametrize("answer", [True, False])
def test_the_support_phone_scenario(answer: bool, tmp_path: Path) -> None:
    root = ET.fromstring(support_xml(tmp_path, answer=answer).split("\n", 2)[2])
    sends = [el.text or "" for el in root.iter("send")]

    assert root.find("recv").get("request") == "INVITE"  # type: ignore[union-attr]
    if answer:
        ok = next(s for s in sends if "SIP/2.0 200 OK" in s and "m=audio" in s)
        assert "RTP/AVP 0 101" in ok and "a=rtpmap:101 telephone-event/8000" in ok
        pcap = tmp_path / "support-dtmf.pcap"
        assert pcap.stat().st_size > 24  # a capture with the key in it
        assert root.findall("recv")[-1].get("request") == "BYE"
    else:
        assert any(s.lstrip().startswith("SIP/2.0 480") for s in sends)
        assert not any("200 OK" in s for s in sends)
