"""A separate process holding one controller slot's flock (tests of ivr.multi)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HOLDER = """
import sys, time
from pathlib import Path
from ivr.multi.slots import Slots
lock = Slots(Path(sys.argv[1]), int(sys.argv[2])).lock(int(sys.argv[3]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(600)
"""


class Holder:
    """A separate Python process holding one slot's lock until killed."""

    def __init__(self, directory: Path, count: int, slot: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory), str(count), str(slot)],
            stdout=subprocess.PIPE, text=True, errors="replace",
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "held"

    def kill(self) -> float:
        """SIGKILL it; the monotonic time it was reaped."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        return time.monotonic()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def holding() -> Iterator[list[Holder]]:
    """A list to put ``Holder``s in; every one still alive is killed at the end."""
    made: list[Holder] = []
    try:
        yield made
    finally:
        for h in made:
            h.close()
