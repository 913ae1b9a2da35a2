"""RFC 4733 telephone-event captures for sipp's ``play_pcap_audio``.

The captures shipped with sipp carry one fixed RTP timestamp per digit, so a
repeated digit ("11") looks like a retransmission to Asterisk and is dropped.
We write our own capture per step instead: each digit gets a fresh timestamp
and sequence numbers keep growing across steps, as a real phone's would.
"""

from __future__ import annotations

import struct
from pathlib import Path

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PAYLOAD_TYPE = 101
SSRC = 0x43495441  # "CITA"
PACKET_MS = 20
SAMPLES_PER_MS = 8
TONE_MS = 120
GAP_MS = 120


def _frame(payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", 40000, 40002, udp_len, 0) + payload
    total = 20 + udp_len
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        0,
        0,
        64,
        17,
        0,
        bytes([127, 0, 0, 1]),
        bytes([127, 0, 0, 1]),
    )
    eth = b"\x00" * 12 + b"\x08\x00"
    return eth + ip + udp


def rtp_event_packets(digits: str, *, seq: int, timestamp: int) -> list[tuple[float, bytes]]:
    """(time offset in seconds, RTP packet) for ``digits``, one event after another."""
    packets: list[tuple[float, bytes]] = []
    t_ms = 0
    for digit in digits:
        code = EVENT_CODES[digit]
        duration = 0
        first = True
        while duration < TONE_MS * SAMPLES_PER_MS:
            duration += PACKET_MS * SAMPLES_PER_MS
            marker = 0x80 if first else 0
            header = struct.pack(
                "!BBHII", 0x80, marker | PAYLOAD_TYPE, seq & 0xFFFF, timestamp, SSRC
            )
            packets.append((t_ms / 1000, header + struct.pack("!BBH", code, 10, duration)))
            seq += 1
            t_ms += PACKET_MS
            first = False
        for _ in range(3):  # the end packet is sent three times (RFC 4733 §2.5.1.4)
            header = struct.pack("!BBHII", 0x80, PAYLOAD_TYPE, seq & 0xFFFF, timestamp, SSRC)
            packets.append((t_ms / 1000, header + struct.pack("!BBH", code, 0x80 | 10, duration)))
            seq += 1
        t_ms += GAP_MS
        timestamp += (TONE_MS + GAP_MS + PACKET_MS) * SAMPLES_PER_MS
    return packets


def write_pcap(path: Path, digits: str, *, seq: int, timestamp: int) -> float:
    """Write the capture; returns how long it plays, in seconds."""
    unknown = set(digits) - set(EVENT_CODES)
    if unknown:
        raise ValueError(f"cannot send keys {sorted(unknown)} as RFC 4733 events")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    packets = rtp_event_packets(digits, seq=seq, timestamp=timestamp)
    base = 1_700_000_000
    for offset, rtp in packets:
        frame = _frame(rtp)
        seconds = base + int(offset)
        micros = round((offset - int(offset)) * 1_000_000)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return packets[-1][0] if packets else 0.0
