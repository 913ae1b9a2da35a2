"""The benchmark's own PostgreSQL: a throwaway cluster in the results directory.

``scripts/test-postgres.sh`` (the one the test run uses) creates it on a free
loopback port and prints its SQLAlchemy URL; ``stop`` removes it. The server's
process tree (the postmaster and one backend per connection) is what the
benchmark measures as PostgreSQL's CPU per call. The script starts the server
with ``fsync=off`` (a throwaway cluster): commits do not wait for the disk, so
the figures are PostgreSQL's CPU, not a disk's latency (docs/perf/bench.md).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test-postgres.sh"
START_TIMEOUT_S = 120.0


class PostgresError(RuntimeError):
    """The throwaway server did not start (the message has the script's output)."""


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postmaster_pid(data_dir: Path) -> int | None:
    """The server's pid: the first line of ``<data>/postmaster.pid`` (None if absent)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


class ThrowawayPostgres:
    """``start()`` → the URL; ``pid()`` → the postmaster; ``stop()`` removes it all."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_tcp_port()
        self.url = ""

    def start(self) -> str:
        if not SCRIPT.is_file():
            raise PostgresError(f"{SCRIPT} not found")
        try:
            done = subprocess.run(
                ["bash", str(SCRIPT), "start", str(self.directory), str(self.port)],
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"PostgreSQL did not start in {START_TIMEOUT_S:.0f}s") from exc
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines or not lines[-1].startswith("postgresql"):
            raise PostgresError(
                f"scripts/test-postgres.sh start failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        self.url = lines[-1].strip()
        return self.url

    def pid(self) -> int | None:
        return postmaster_pid(self.directory / "data")

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(self.directory)],
            capture_output=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
