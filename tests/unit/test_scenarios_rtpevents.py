"""RFC 4733 captures, parsed back byte by byte with struct."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.scenarios.rtpevents import EVENT_CODES, PAYLOAD_TYPE, SSRC, write_pcap

PACKETS_PER_DIGIT = 9  # 6 while the tone lasts, then the end packet three times


@dataclass(frozen=True)
class RtpEvent:
    at: float
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload_type: int
    event: int
    end: bool
    volume: int
    duration: int


def read_pcap(path: Path) -> tuple[tuple[int, ...], list[RtpEvent]]:
    data = path.read_bytes()
    header = struct.unpack_from("<IHHiIII", data, 0)
    offset, events = 24, []
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, offset)
        assert incl == orig
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        assert frame[12:14] == b"\x08\x00"  # IPv4 over Ethernet
        ip_len, proto = struct.unpack_from("!H", frame, 16)[0], frame[23]
        assert (ip_len, proto) == (len(frame) - 14, 17)
        udp_len = struct.unpack_from("!H", frame, 38)[0]
        assert udp_len == len(frame) - 34
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", frame, 42)
        assert b0 == 0x80  # RTP version 2, no padding, no extension, no CSRC
        event, flags, duration = struct.unpack_from("!BBH", frame, 54)
        events.append(
            RtpEvent(sec + usec / 1e6, bool(b1 & 0x80), seq, ts, ssrc, b1 & 0x7F,
                     event, bool(flags & 0x80), flags & 0x3F, duration)
        )  # fmt: skip
    return header, events


def test_global_header_and_packet_count(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.pcap"

    write_pcap(path, "12#", seq=1000, timestamp=16000)

    header, events = read_pcap(path)
    magic, major, minor, _zone, _sigfigs, snaplen, linktype = header
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 65535, 1)
    assert len(events) == 3 * PACKETS_PER_DIGIT
    assert {e.payload_type for e in events} == {PAYLOAD_TYPE} == {101}
    assert {e.ssrc for e in events} == {SSRC}
    assert [e.event for e in events[::PACKETS_PER_DIGIT]] == [1, 2, EVENT_CODES["#"]]


def test_sequence_numbers_grow_from_seq(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.pcap"
    write_pcap(path, "0*9", seq=1000, timestamp=16000)

    _, events = read_pcap(path)

    assert [e.seq for e in events] == list(range(1000, 1000 + len(events)))


def test_a_repeated_digit_gets_a_fresh_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.pcap"
    write_pcap(path, "11", seq=1, timestamp=16000)

    _, events = read_pcap(path)
    first, second = events[:PACKETS_PER_DIGIT], events[PACKETS_PER_DIGIT:]

    assert {e.timestamp for e in first} == {16000}  # one event, one timestamp
    assert len({e.timestamp for e in second}) == 1
    assert second[0].timestamp > first[0].timestamp
    assert second[0].at > first[-1].at


def test_end_bit_on_the_last_three_packets_and_marker_on_the_first(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.pcap"
    write_pcap(path, "57", seq=1, timestamp=0)

    _, events = read_pcap(path)

    for start in (0, PACKETS_PER_DIGIT):
        digit = events[start : start + PACKETS_PER_DIGIT]
        assert [e.end for e in digit] == [False] * 6 + [True] * 3
        assert [e.marker for e in digit] == [True] + [False] * 8
        assert [e.duration for e in digit] == [160, 320, 480, 640, 800, 960, 960, 960, 960]
        assert {e.volume for e in digit} == {10}


def test_packet_times_never_go_back_and_the_length_is_returned(tmp_path: Path) -> None:
    path = tmp_path / "dtmf.pcap"

    length = write_pcap(path, "123", seq=1, timestamp=0)

    _, events = read_pcap(path)
    times = [e.at for e in events]
    assert times == sorted(times)
    assert length == pytest.approx(times[-1] - times[0], abs=1e-6)
    assert length > 0


@pytest.mark.parametrize("keys", ["1A", "12 ", "x"])
def test_keys_that_are_not_dtmf_are_refused(tmp_path: Path, keys: str) -> None:
    path = tmp_path / "dtmf.pcap"

    with pytest.raises(ValueError, match="cannot send keys"):
        write_pcap(path, keys, seq=1, timestamp=0)
    assert not path.exists()
