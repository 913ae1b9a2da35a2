"""``ivr serve``'s voice workers: N-1 child processes it starts, restarts and stops.

Each worker is ``ivr serve --voice-worker`` (``ivr.controller.serve_voice_worker``) with the
parent's environment: it claims a free slot (2..N), drives that slot's Stasis
application, and ends when its parent does. The supervisor restarts a worker
that dies (after ``restart_delay`` seconds, doubling up to ``max_delay`` while
it keeps dying within ``STABLE_S`` of its start) and, on ``stop``, sends each
SIGTERM (the worker gives its calls the grace, then hands them to the agents,
as the main process does) and SIGKILL after ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

VOICE_WORKER_COMMAND = (sys.executable, "-m", "ivr.cli", "serve", "--voice-worker")
STABLE_S = 10.0  # a worker that ran this long restarts after the initial delay again


class VoiceWorkers:
    """Keeps ``count`` voice worker processes running until ``stop()``."""

    def __init__(
        self,
        count: int,
        *,
        command: Sequence[str] = VOICE_WORKER_COMMAND,
        env: Mapping[str, str] | None = None,
        restart_delay: float = 0.2,
        max_delay: float = 30.0,
    ) -> None:
        self.count = count
        self.command = tuple(command)
        self.env = dict(env) if env is not None else None
        self.restart_delay = restart_delay
        self.max_delay = max_delay
        self.restarts = 0
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        """The running workers' pids."""
        return [p.pid for p in self._procs.values() if p.returncode is None]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep(i), name=f"voice-worker-{i}") for i in range(self.count)
        ]

    async def _keep(self, index: int) -> None:
        delay = self.restart_delay
        while not self._stopping:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *self.command, env=self.env, stdin=asyncio.subprocess.DEVNULL
            )
            self._procs[index] = proc
            if self._stopping:  # stop() began while it was starting: it had no pid to signal
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
                return
            logger.info("voice worker %d started: pid %d", index + 1, proc.pid)
            code = await proc.wait()
            if self._stopping:
                return
            ran = time.monotonic() - started
            delay = self.restart_delay if ran >= STABLE_S else min(self.max_delay, delay * 2)
            self.restarts += 1
            logger.error("voice worker %d (pid %d) died with %s after %.1fs; restarting in %.1fs",
                         index + 1, proc.pid, code, ran, delay)  # fmt: skip
            await asyncio.sleep(delay)

    async def stop(self, wait_s: float) -> None:
        """SIGTERM every worker, wait up to ``wait_s`` seconds, SIGKILL the rest."""
        self._stopping = True
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if running:
            waits = [asyncio.ensure_future(p.wait()) for p in running]
            _, late = await asyncio.wait(waits, timeout=wait_s)
            for proc in running:
                if proc.returncode is None:
                    logger.error("voice worker pid %d ignored SIGTERM for %.0fs: killing it",
                                 proc.pid, wait_s)  # fmt: skip
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if late:
                await asyncio.wait(late)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
