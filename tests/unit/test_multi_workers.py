"""``ivr serve``'s voice worker supervisor (ivr.multi.workers), with real processes.

The kind: a voice worker that dies (any signal, any exit code) is started again,
and stopping the supervisor ends every worker: by SIGTERM, and by SIGKILL when
one ignores it beyond the wait.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from ivr.multi.workers import VoiceWorkers
from tests.unit.eventually import eventually

# Exits 0 on SIGTERM (as a worker does after its grace), else sleeps.
POLITE = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(600)"
# Ignores SIGTERM; touches the file named by its argument once it does.
DEAF = (
    "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
async def test_a_dead_worker_is_started_again_and_stop_ends_them_all(how: signal.Signals) -> None:
    workers = VoiceWorkers(2, command=(sys.executable, "-c", POLITE), restart_delay=0.01)
    workers.start()
    try:
        await eventually(lambda: len(workers.pids) == 2, within=20)
        first, other = workers.pids
        os.kill(first, how)
        await eventually(lambda: len(workers.pids) == 2 and first not in workers.pids, within=20)
        assert other in workers.pids and workers.restarts == 1
        pids = workers.pids
    finally:
        await workers.stop(10.0)
    assert not any(alive(p) for p in pids)
    assert workers.pids == []


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_wait(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    workers = VoiceWorkers(1, command=(sys.executable, "-c", DEAF, str(ready)), restart_delay=0.01)
    workers.start()
    await eventually(ready.exists, within=20)  # its SIGTERM handler is set
    (pid,) = workers.pids
    loop = asyncio.get_running_loop()
    started = loop.time()
    await workers.stop(0.5)
    assert not alive(pid)
    assert loop.time() - started < 5.0
