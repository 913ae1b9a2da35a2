"""A throwaway PostgreSQL: the benchmark's (in its results directory) and a
sandbox cluster's (``ivr sandbox up --nodes N``, ivr/sandbox/cluster.py).

What ``scripts/test-postgres.sh`` does for the test run, done here because a
module must not find files through the checkout (tests/unit/test_config_location.py):
the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), ``initdb``
with trust authentication, ``pg_ctl start`` on a free loopback port with the
socket in the cluster directory, ``createdb``; run as the ``postgres`` user
when we are root (PostgreSQL refuses to run as root). Unlike the test script it
keeps ``fsync`` on: the benchmark compares it with SQLite, which syncs each
commit too. The server's process tree (the postmaster and one backend per
connection) is what the benchmark measures as PostgreSQL's CPU per call.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

START_TIMEOUT_S = 120.0
USER = "citas"
DATABASE = "citas_bench"


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


def server_bin() -> Path:
    """The newest PostgreSQL server's bin directory (``/usr/lib/postgresql/15/bin``).

    Raises PostgresError when none is installed (apt-get install postgresql)."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(x) for x in name.split(".") if x.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    if not found or not (Path(found[-1]) / "initdb").is_file():
        raise PostgresError("PostgreSQL server binaries not found (apt-get install postgresql)")
    return Path(found[-1])


def as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` run as ``postgres`` when we are root (PostgreSQL will not run as root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class ThrowawayPostgres:
    """``start()`` → the URL; ``pid()`` → the postmaster; ``stop()`` removes it all."""

    def __init__(self, directory: Path, port: int | None = None, database: str = DATABASE) -> None:
        self.directory = directory
        self.database = database
        self.port = port or free_tcp_port()
        self.url = ""
        self.data = directory / "data"

    def _run(self, cmd: list[str], log: str) -> None:
        with (self.directory / log).open("ab") as out:
            done = subprocess.run(
                as_server_user(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            tail = (self.directory / log).read_text(errors="replace").strip()[-500:]
            raise PostgresError(f"{Path(cmd[0]).name} failed ({done.returncode}): {tail}")

    def start(self) -> str:
        bin_dir = server_bin()
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        try:
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    USER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                "initdb.log",
            )
            self.start_again()
            self._run(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    USER,
                    self.database,
                ],
                "createdb.log",
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"PostgreSQL did not start in {START_TIMEOUT_S:.0f}s") from exc
        self.url = f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{self.database}"
        return self.url

    def _options(self) -> str:
        return (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory}"
        )

    def pid(self) -> int | None:
        return postmaster_pid(self.data)

    def _pg_ctl(self, *args: str, what: str) -> None:
        """``pg_ctl`` on this data directory, logging to ``server.log``; raises
        PostgresError when it fails or does not ``what`` in ``START_TIMEOUT_S``."""
        try:
            self._run(
                [str(server_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"),
                 *args],
                "pg_ctl.log",
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"PostgreSQL did not {what} in {START_TIMEOUT_S:.0f}s") from exc

    def start_again(self) -> None:
        """Start the server of an existing data directory (``start``'s second step;
        stopped, or gone with a reboot) on ``self.port``. Raises PostgresError."""
        self._pg_ctl("-w", "-t", "60", "-o", self._options(), "start", what="start")

    def restart(self) -> None:
        """Restart the server (fast shutdown: its sessions are cut, as in a crash
        of the database host's service) with the options it was started with
        (``pg_ctl restart`` reads them from ``postmaster.opts``). Raises
        PostgresError when it does not come back."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "restart", what="restart")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster; never raises."""
        try:
            if self.data.is_dir():
                bin_dir = server_bin()
                subprocess.run(
                    as_server_user(
                        [str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
                    ),
                    capture_output=True,
                    timeout=START_TIMEOUT_S,
                    check=False,
                )
        except (PostgresError, OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.directory, ignore_errors=True)
