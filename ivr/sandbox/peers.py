"""A sandbox's peer processes (the WhatsApp simulator, the SMTP peer; a cluster's
Kamailio and controllers, ivr/sandbox/cluster.py): started once
by ``ivr sandbox up`` as their own process (so they outlive restarts of ``ivr serve``),
found again by a pid file checked against their command line, stopped by ``ivr
sandbox down``. One mechanism for every peer, so they start, wait and stop alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.sandbox.instance import pid_alive
from ivr.settings import Settings

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Peer:
    """``name`` in messages ("the SMTP peer"); ``module``, what its command line
    must contain before any signal is sent (the Python module it runs, or for
    Kamailio its configuration's path); ``stem`` of its pid and log files under
    ``<state>/<instance>/``."""

    name: str
    module: str
    stem: str
    stop_within: float = STOP_TIMEOUT_S  # after SIGTERM, before SIGKILL to its process group

    def pid_file(self, settings: Settings) -> Path:
        return settings.state_dir / settings.instance / f"{self.stem}.pid"

    def log_file(self, settings: Settings) -> Path:
        return settings.state_dir / settings.instance / f"{self.stem}.log"

    def running_pid(self, settings: Settings) -> int | None:
        """Its pid when it runs (ours: the pid file's process runs ``module``)."""
        try:
            pid = int(self.pid_file(settings).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, self.module) else None

    def start(
        self,
        settings: Settings,
        command: Sequence[str],
        ready: Callable[[], bool],
        *,
        env: Mapping[str, str] | None = None,
        within: float = START_TIMEOUT_S,
    ) -> int:
        """Run ``command`` (in ``env``, else ours) unless the peer runs; returns its
        pid once ``ready()``.

        Raises ``RuntimeError`` when it exits, or is not ready within ``within``
        seconds (it is stopped then)."""
        pid = self.running_pid(settings)
        if pid is not None:
            return pid
        self.pid_file(settings).parent.mkdir(parents=True, exist_ok=True)
        with self.log_file(settings).open("ab") as log:
            proc = subprocess.Popen(
                list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=dict(env) if env is not None else None,
            )  # fmt: skip
        self.pid_file(settings).write_text(str(proc.pid))
        # It outlives this command; a daemon thread reaps it if it ends while we still
        # run (a test session), so it never lingers as a zombie (as the supervisor).
        threading.Thread(target=proc.wait, name=f"reap-{self.stem}", daemon=True).start()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {proc.returncode}")
            if ready():
                return proc.pid
            time.sleep(0.1)
        self.stop(settings)
        raise RuntimeError(f"{self.name} did not answer within {within:g} s")

    def stop(self, settings: Settings) -> None:
        """Stop it (SIGTERM, then SIGKILL to its process group after ``stop_within``
        seconds: it was started in a session of its own, so its children go too),
        if it runs."""
        pid = self.running_pid(settings)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_within
            while pid_alive(pid, self.module) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid, self.module):
                os.killpg(pid, signal.SIGKILL)
        self.pid_file(settings).unlink(missing_ok=True)
