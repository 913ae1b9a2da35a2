"""The SLA monitor's movable clock, for testers and tests in the sandbox only.

A tester lets a case's clock run out without waiting days: ``ivr cases clock
advance 2d`` adds two days to an offset kept in ``<state>/<instance>/cases-clock.json``,
and the monitor of a running ``ivr serve`` reads it on every round (so several
controllers of one instance share it, and it survives their restarts).

It is active only where a sandbox runs: ``ivr serve`` turns it on when the
instance's state directory holds the sandbox's own ``sandbox.json`` (written by
``ivr sandbox up``), which a production controller never has; it says so in its
log at start. Only the monitor reads it: filing, answers and the case history
keep the real time.

>>> import tempfile
>>> clock = TestClock(Path(tempfile.mkdtemp()) / "cases-clock.json")
>>> clock.advance(parse_offset("2d")).days
2
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

CLOCK_FILE = "cases-clock.json"

_OFFSET = re.compile(r"^([0-9]{1,5})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_offset(text: str) -> timedelta:
    """``90s``, ``15m``, ``8h``, ``2d`` (wall-clock, not business time) as a
    timedelta; ``ValueError`` naming the text otherwise."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 8h or 2d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def utcnow() -> datetime:
    return datetime.now(UTC)


class TestClock:
    """The real time plus the offset in ``path`` (none while the file is absent)."""

    __test__ = False  # not a pytest class

    def __init__(self, path: Path, real: Callable[[], datetime] = utcnow) -> None:
        self.path = path
        self.real = real

    def offset(self) -> timedelta:
        """The offset now in the file; a missing or unreadable file is no offset."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return timedelta(seconds=float(data["offset_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            return timedelta(0)

    def now(self) -> datetime:
        return self.real() + self.offset()

    def advance(self, by: timedelta) -> timedelta:
        """Move the clock forward by ``by``; returns the new offset (written
        atomically: a running monitor never reads half a file)."""
        offset = self.offset() + by
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"offset_s": offset.total_seconds()}), encoding="utf-8")
        tmp.replace(self.path)
        return offset

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
