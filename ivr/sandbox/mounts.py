"""The two mounts Asterisk needs inside the chroot: ``/proc`` and ``/dev``.

Several instances can share one root, so a mount is made only when absent and
removed only when no instance of that root is running any more. ``/dev`` is
bound without ``--rbind``: a recursive bind would drag the host's ``/dev/pts``
and ``/dev/shm`` along, and a recursive unmount could then reach the host's.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from ivr.sandbox.errors import SandboxError

logger = logging.getLogger(__name__)


def mounted_points(mountinfo: Path = Path("/proc/self/mountinfo")) -> set[Path]:
    points = set()
    for line in mountinfo.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.add(Path(fields[4].replace("\\040", " ")))
    return points


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise SandboxError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


def mount_all(root: Path) -> None:
    points = mounted_points()
    proc_dir, dev_dir = root / "proc", root / "dev"
    if proc_dir not in points:
        _run(["mount", "-t", "proc", "proc", str(proc_dir)])
    if dev_dir not in points:
        _run(["mount", "--bind", "/dev", str(dev_dir)])


def unmount_all(root: Path) -> None:
    points = mounted_points()
    for sub in ("dev", "proc"):
        target = root / sub
        if target in points:
            logger.info("unmounting %s", target)
            _run(["umount", str(target)])


def processes_in_root(root: Path, *, exclude: int | None = None) -> list[int]:
    """Processes whose file-system root is ``root`` (Asterisks of other instances).

    Instances may keep their state in different state directories yet share
    one cached root, so the mounts stay while any process still runs inside it.
    """
    found = []
    target = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            if os.readlink(entry / "root") == target:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
