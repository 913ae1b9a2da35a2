"""A sandbox phone's ``stop`` closes sipp's output pipe whether sipp still runs or
ended by itself (found by tests/e2e/test_desk_levels.py: an agent phone whose call
the escalation ended exited on its own, and its pipe leaked, a ResourceWarning that
pytest turns into an error)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ivr.scenarios.support import SippPhone


@pytest.mark.parametrize("ended_by_itself", [True, False], ids=["ended", "running"])
def test_stop_closes_the_pipe(ended_by_itself: bool) -> None:
    phone = object.__new__(SippPhone)  # only its process matters here
    code = "pass" if ended_by_itself else "import time; time.sleep(60)"
    phone.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    if ended_by_itself:
        phone.proc.wait(timeout=30)
    phone.stop()
    assert phone.proc.returncode is not None
    assert phone.proc.stdout is not None and phone.proc.stdout.closed
    phone.stop()  # twice is harmless
