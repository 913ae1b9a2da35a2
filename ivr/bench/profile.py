"""A flame graph of the controller around one benchmark step (``ivr bench --profile``).

STAND-IN written by the bench part against the contract in CAP.md
(``with profiling(pid, out, seconds): ...``); the profile part owns this module
and its version replaces this one on merge. This one runs
``py-spy record --pid <pid> --subprocesses --format flamegraph -o <out>
--duration <seconds>`` (py-spy samples the controller and its voice workers
from outside; the controller needs no change) and waits for it to write the
SVG when the step ends.

Raises ``ProfilingUnavailable`` when py-spy is not installed, and
``RuntimeError`` when it exits with an error (e.g. no ptrace permission).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRITE_GRACE_S = 30.0  # py-spy writes the SVG after --duration: how long we wait for it


class ProfilingUnavailable(RuntimeError):
    """py-spy is not installed (it is in the ``bench`` extra)."""


def py_spy() -> str:
    """The py-spy executable: next to this Python first (the venv), then on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    if local.is_file():
        return str(local)
    found = shutil.which("py-spy")
    if not found:
        raise ProfilingUnavailable("py-spy not found (pip install -e '.[bench]')")
    return found


def record_command(exe: str, pid: int, out: Path, seconds: float) -> list[str]:
    return [
        exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
        "--format", "flamegraph", "--output", str(out),
        "--duration", str(max(1, round(seconds))),
    ]  # fmt: skip


@contextmanager
def profiling(pid: int, out: Path, seconds: float) -> Iterator[None]:
    """Record ``pid`` (and its children) for ``seconds`` while the body runs; the SVG
    is at ``out`` afterwards. The body's own exceptions pass through."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            record_command(py_spy(), pid, out, seconds),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            try:
                proc.wait(timeout=WRITE_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.terminate()  # our own child, by its pid
                proc.wait(timeout=10)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(
            f"py-spy exited with {proc.returncode} and no {out.name}: "
            f"{log.read_text(errors='replace').strip()[-300:]}"
        )
