"""Supervise one sandbox Asterisk: run it in the foreground, restart it if it dies.

Started detached by ``ivr sandbox up`` as ``python -m ivr.sandbox.supervisor
STATE_FILE``. Asterisk runs with ``-f -n`` (foreground, no colour) and without
``-c``: with no terminal, the console floods the log. On SIGTERM the
supervisor stops Asterisk, waits for it, and unmounts the chroot's ``/proc``
and ``/dev`` unless another instance still uses the same root.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ivr.sandbox.instance import InstancePaths, InstanceState, other_instances_alive
from ivr.sandbox.mounts import RootUse, processes_in_root
from ivr.settings import Settings

logger = logging.getLogger("ivr.sandbox.supervisor")

MAX_RESTARTS = 5
# Asterisk holds about 4 descriptors per call (the SIP dialog's timers, 2 RTP sockets,
# the channel's alert pipe): 5082 open at 1280 plain-dialplan calls (docs/perf/bench.md).
# A login shell's soft limit of 1024 would stop it near 250 calls, so it gets the hard
# limit, raised to this when we may (root).
WANTED_NOFILE = 65536


def nofile_limits(
    soft: int, hard: int, *, can_raise_hard: bool, wanted: int = WANTED_NOFILE
) -> tuple[int, int]:
    """The (soft, hard) open-files limit to give Asterisk: the soft limit up to the hard
    one, the hard one up to ``wanted`` when allowed; never lowered (pure).

    >>> nofile_limits(1024, 4096, can_raise_hard=False)
    (4096, 4096)
    >>> nofile_limits(1024, 4096, can_raise_hard=True)
    (65536, 65536)
    """
    if hard == resource.RLIM_INFINITY:  # no hard cap: a finite soft one that suffices
        return max(soft, wanted) if soft != resource.RLIM_INFINITY else soft, hard
    new_hard = hard if hard >= wanted or not can_raise_hard else wanted
    return new_hard, new_hard


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-files limit (Asterisk inherits it); returns it.

    When the hard limit may not be raised (a container without CAP_SYS_RESOURCE,
    measured here: "not allowed to raise maximum limit"), the soft one still goes
    up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new in (
        nofile_limits(soft, hard, can_raise_hard=os.geteuid() == 0),
        nofile_limits(soft, hard, can_raise_hard=False),
    ):
        if new == (soft, hard):
            return new
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, new)
            return new
        except (ValueError, OSError) as exc:
            logger.warning("cannot set the open-files limit to %s: %s", new, exc)
    return soft, hard


RESTART_WINDOW_S = 60.0
STOP_GRACE_S = 15.0


class Supervisor:
    def __init__(self, paths: InstancePaths, state: InstanceState) -> None:
        self.paths = paths
        self.state = state
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def asterisk_cmd(self) -> list[str]:
        conf = f"{self.state.inst_in_root}/etc/asterisk.conf"
        return ["chroot", self.state.root, "asterisk", "-f", "-n", "-C", conf]

    def on_term(self, signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("signal %s: stopping asterisk", signum)
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        self.state.supervisor_pid = os.getpid()
        self.paths.save(self.state)
        root = Path(self.state.root)
        use = RootUse(
            root,
            others_running=lambda: (
                bool(processes_in_root(root))
                or other_instances_alive(
                    self.paths.dir.parent, self.state.root, self.state.instance
                )
            ),
        )
        use.acquire()
        restarts: list[float] = []
        try:
            while not self.stopping:
                code = self._run_once()
                if self.stopping:
                    break
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
                logger.warning("asterisk exited with %s; restart %d", code, len(restarts))
                if len(restarts) > MAX_RESTARTS:
                    logger.error(
                        "asterisk keeps dying; giving up (see %s)", self.paths.asterisk_log
                    )
                    return 1
                # A short pause so a crash loop does not spin the CPU.
                time.sleep(1.0)
            return 0
        finally:
            self._stop_child()
            self.state.asterisk_pid = None
            self.state.supervisor_pid = None
            self.paths.save(self.state)
            use.release()  # unmounts unless another instance still uses the root

    def _run_once(self) -> int:
        soft, _ = raise_nofile()
        logger.info("asterisk open-files limit %s", soft)
        with self.paths.asterisk_log.open("ab") as log:
            self.child = subprocess.Popen(
                self.asterisk_cmd(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.state.asterisk_pid = self.child.pid
        self.paths.save(self.state)
        return self.child.wait()

    def _stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            logger.warning("asterisk ignored SIGTERM for %ss; killing it", STOP_GRACE_S)
            child.kill()
            child.wait(timeout=STOP_GRACE_S)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state_file = Path(argv[0])
    settings = Settings.from_env()
    paths = InstancePaths(settings)
    paths.state_file = state_file
    paths.dir = state_file.parent
    paths.asterisk_log = state_file.parent / "asterisk.log"
    state = paths.load()
    if state is None:
        logger.error("no sandbox state at %s", state_file)
        return 2
    return Supervisor(paths, state).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
