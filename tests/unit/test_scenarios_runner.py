"""Reading the X-Citas-* headers of the agent's INVITE from a sipp message log."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from ivr.scenarios.runner import CallReport, agent_invite_headers

SEP = (
    "----------------------------------------------- 2024-05-02\t10:00:01.123456\t1714662001.123456"
)

OPTIONS = """\
OPTIONS sip:agent@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj1
Call-ID: qualify-1
CSeq: 1 OPTIONS
X-Citas-Reason: not-this-one
Content-Length:  0
"""

INVITE = """\
INVITE sip:agent@127.0.0.1:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKPj2
From: "Citas tester" <sip:3001234567@127.0.0.1>;tag=abc
To: <sip:agent@127.0.0.1>
Call-ID: 5d1c6a0e-agent-leg
CSeq: 100 INVITE
X-Citas-Reason: ivr-unavailable
X-Citas-Segment: unknown
x-citas-vdn:  5550001
X-Citas-Call-Id: citas-controller-down-agent-0123456789ab-1@127.0.0.1
Content-Type: application/sdp
Content-Length:   120

v=0
o=- 1 1 IN IP4 127.0.0.1
X-Citas-Reason: in-the-body
"""

SENT_200 = """\
SIP/2.0 200 OK
X-Citas-Reason: sent-by-us
Content-Length: 0
"""


def log(*entries: tuple[str, str]) -> str:
    return "".join(
        f"{SEP}\nUDP message {verb} [{len(text)}] bytes :\n\n{text}\n" for verb, text in entries
    )


def write(tmp_path: Path, text: str, newline: str = "\n") -> Path:
    path = tmp_path / "agent_messages.log"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_reads_the_x_citas_headers_of_the_invite(tmp_path: Path) -> None:
    path = write(tmp_path, log(("received", OPTIONS), ("received", INVITE), ("sent", SENT_200)))

    assert agent_invite_headers(path) == {
        "X-Citas-Reason": "ivr-unavailable",
        "X-Citas-Segment": "unknown",
        "x-citas-vdn": "5550001",
        "X-Citas-Call-Id": "citas-controller-down-agent-0123456789ab-1@127.0.0.1",
    }


def test_crlf_messages_are_read_the_same(tmp_path: Path) -> None:
    path = write(tmp_path, log(("received", INVITE)), newline="\r\n")

    headers = agent_invite_headers(path)

    assert headers["X-Citas-Reason"] == "ivr-unavailable"
    assert "in-the-body" not in headers.values()


def test_no_invite_or_no_file_gives_no_headers(tmp_path: Path) -> None:
    assert agent_invite_headers(tmp_path / "absent.log") == {}
    path = write(tmp_path, log(("received", OPTIONS), ("sent", SENT_200)))
    assert agent_invite_headers(path) == {}


def test_call_report_is_ok_only_without_failures() -> None:
    report = CallReport("smoke", "citas-smoke-0123", sipp_rc=0)
    assert report.ok
    report.failures.append("sipp caller failed (exit 1)")
    assert not report.ok


def test_media_port_is_an_even_pair_and_skips_one_whose_rtcp_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RTCP goes to the RTP port + 1 (RFC 3550 §11): a media port just below another
    process's socket (a sipp SIP port, in CI) is never handed out."""
    import socket

    from ivr.scenarios import runner

    with contextlib.ExitStack() as held:
        while True:  # a socket on an odd port (the kernel gives one half of the time)
            taken = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            taken.bind(("127.0.0.1", 0))
            busy = int(taken.getsockname()[1])
            if busy % 2 == 1:
                break
        offered = iter([busy - 1, busy])  # its even neighbour offered first, then itself
        real = runner.free_udp_port
        monkeypatch.setattr(runner, "free_udp_port", lambda: next(offered, None) or real())
        port = runner.free_media_port()
        assert port not in (busy - 1, busy)
        assert port % 2 == 0
        for p in range(port, port + 4):  # RTP, RTCP, sipp's video echo and its RTCP
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", p))
