"""A Docker engine of our own: Debian's ``dockerd``, started and stopped by us.

These machines reach no image registry and give containers no network bridge,
so the engine runs with ``--bridge=none --iptables=false`` (every container of
the stack uses the host's network, ``network_mode: host``), its images in
``<cache>/docker`` (kept on purpose: the base images and the build cache make a
second build fast), and its run-time state, socket, pid file and log in
``<cache>/dockerd/``. It never touches a system Docker the machine may run:
it has its own socket, and every ``docker`` command here names it
(``DOCKER_HOST``).

One engine serves every stack on the machine (they differ by compose project):
``start`` reuses a running one, and ``stop`` ends it only when no container is
left in it. A stack lives as long as the engine that runs it: a fresh engine
removes the containers it finds (a killed run's, a rebooted machine's), and
``ivr compose up`` makes them anew. Errors are ``DockerError``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.instance import pid_alive

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 120.0


class DockerError(SandboxError):
    """The engine cannot be started, asked or stopped, or a ``docker`` command failed
    (the message has its output)."""


class DockerDaemon:
    """The engine whose files live under ``cache_dir``.

    >>> d = DockerDaemon(Path("/var/cache/citas-ivr"))
    >>> (str(d.socket), d.host)
    ('/var/cache/citas-ivr/dockerd/docker.sock', 'unix:///var/cache/citas-ivr/dockerd/docker.sock')
    """

    def __init__(self, cache_dir: Path) -> None:
        self.data_root = cache_dir / "docker"
        self.run_dir = cache_dir / "dockerd"
        self.socket = self.run_dir / "docker.sock"
        self.pid_file = self.run_dir / "dockerd.pid"
        self.log_file = self.run_dir / "dockerd.log"

    @property
    def marker(self) -> str:
        """What our engine's command line holds and no other's: its data root."""
        return f"--data-root {self.data_root}"

    @property
    def host(self) -> str:
        """``DOCKER_HOST`` for this engine."""
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        """The environment of a ``docker`` or ``docker-compose`` command on this
        engine: the caller's, less any other engine's settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        return {**env, "DOCKER_HOST": self.host}

    def pid(self) -> int | None:
        """The running engine's pid (None when it does not run)."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, self.marker) else None

    def answers(self) -> bool:
        try:
            done = subprocess.run(
                ["docker", "version", "--format", "{{.Server.Version}}"], env=self.env(),
                capture_output=True, text=True, errors="replace", timeout=10, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def start(self) -> int:
        """Start the engine unless it runs; its pid once it answers.

        Raises DockerError when ``dockerd`` is missing or does not answer within
        ``START_TIMEOUT_S`` (its log's tail says why), a running one included: its
        socket and data are never taken from under it."""
        running = self.pid()
        if running is not None:  # a live engine: never a second beside it on its data
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self.answers():
                if self.pid() is None:
                    break  # it died meanwhile: start a new one below
                if time.monotonic() > deadline:
                    raise DockerError(
                        f"dockerd (pid {running}) runs but does not answer in "
                        f"{START_TIMEOUT_S:.0f} s: stop it first\n{self.log_tail()}"
                    )
                time.sleep(0.5)
            else:
                return running
        if shutil.which("dockerd") is None or shutil.which("docker") is None:
            raise DockerError("dockerd is not installed: apt-get install docker.io docker-compose")
        if os.geteuid() != 0:
            raise DockerError("the stack's Docker engine runs as root: run this as root")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self._unmount_netns()  # left by an engine killed without its stop
        command = [
            "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--data-root", str(self.data_root), "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.pid_file), "-H", self.host,
        ]  # fmt: skip
        with self.log_file.open("wb") as log:  # this run's only: it never grows past one
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DockerError(f"dockerd exited with {proc.returncode}\n{self.log_tail()}")
            if self.socket.exists() and self.answers():
                logger.info("Docker engine %s running (pid %s)", self.host, proc.pid)
                self._remove_leftovers()
                return proc.pid
            time.sleep(0.25)
        os.kill(proc.pid, signal.SIGTERM)
        raise DockerError(f"dockerd did not answer in {START_TIMEOUT_S:.0f} s\n{self.log_tail()}")

    def containers(self) -> list[str]:
        """Every container's name in the engine, running or not."""
        out = self.run(["ps", "-a", "--format", "{{.Names}}"]).stdout
        return [line for line in out.splitlines() if line]

    def stop(self) -> bool:
        """Stop the engine when no container is left in it; True when it is stopped
        (or never ran). Raises DockerError when it does not answer (whether
        containers remain is unknown) or does not stop within ``STOP_TIMEOUT_S``."""
        pid = self.pid()
        if pid is None:
            return True
        if not self.answers():  # maybe busy, with others' containers: not ours to stop
            raise DockerError(f"dockerd (pid {pid}) does not answer: not stopped")
        if self.containers():
            logger.info("Docker engine %s kept: containers remain", self.host)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid, self.marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid, self.marker):
            raise DockerError(f"dockerd (pid {pid}) did not stop in {STOP_TIMEOUT_S:.0f} s")
        self._unmount_netns()
        return True

    def _unmount_netns(self) -> None:
        """Its network namespace's mount outlives it (``<exec-root>/netns/default``)."""
        netns = self.run_dir / "exec" / "netns" / "default"
        if netns.exists():
            subprocess.run(["umount", str(netns)], capture_output=True, timeout=10, check=False)

    def _remove_leftovers(self) -> None:
        """Remove the containers a fresh engine finds: a stack lives as long as the
        engine that ran it, so these are a killed run's or a rebooted machine's
        (``restart: unless-stopped`` has just started them again, on ports a new
        stack may need). Their volumes stay until their stack's ``down``."""
        leftovers = self.containers()
        if leftovers:
            logger.warning("removing containers left by a previous engine: %s", " ".join(leftovers))
            self.run(["rm", "-f", *leftovers])

    def has_image(self, tag: str) -> bool:
        done = subprocess.run(
            ["docker", "image", "inspect", tag], env=self.env(),
            capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
        return done.returncode == 0

    def run(
        self, args: list[str], *, stdin: IO[bytes] | None = None, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` on this engine; raises DockerError when it fails."""
        return run_tool(["docker", *args], self.env(), stdin=stdin, timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.is_file():
            return ""
        tail = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return f"--- {self.log_file} ---\n" + "\n".join(tail)


def run_tool(
    command: list[str],
    env: dict[str, str],
    *,
    stdin: IO[bytes] | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``docker`` or ``docker-compose``; raises DockerError with the end of its
    output when it fails or takes over ``timeout`` seconds."""
    try:
        done = subprocess.run(
            command, env=env, stdin=stdin, capture_output=True, text=True, errors="replace",
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise DockerError(f"{' '.join(command[:3])} took over {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stdout[-1500:] + "\n" + done.stderr[-2500:]).strip()
        raise DockerError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{said}")
    return done
