"""The two mounts Asterisk needs inside the chroot: ``/proc`` and ``/dev``.

Several instances can share one root, so a mount is made only when absent and
removed only when no instance of that root is running any more. ``/dev`` is
bound without ``--rbind``: a recursive bind would drag the host's ``/dev/pts``
and ``/dev/shm`` along, and a recursive unmount could then reach the host's.

Instances start and stop at the same moment when the e2e suite runs on two
workers: ``RootUse`` makes "mount if absent" and "unmount if nobody else uses
the root" decisions one at a time (file locks beside the root), so two
starters never mount twice and a stopper never unmounts under a starter.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO

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
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=30, check=False)
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


class RootUse:
    """One instance's use of a shared root's mounts, from ``acquire`` (before its
    Asterisk starts) to ``release`` (after it stopped).

    Two lock files beside the root (in the cache directory): every user holds a
    shared ``flock`` on ``.<root>.users.lock`` for as long as it uses the root, and
    mounting or unmounting happens under an exclusive ``flock`` on
    ``.<root>.mounts.lock``. ``release`` unmounts only when it can take the users
    lock exclusively (nobody else holds it) and ``others_running()`` is false (an
    instance of an older checkout, which takes no lock, may still run in the root).
    The kernel drops a dead process's locks, so a killed supervisor blocks nobody.
    ``mount``/``unmount``/``others_running`` are parameters for the unit tests;
    ``mount_all``/``unmount_all`` raise ``SandboxError``.
    """

    def __init__(
        self,
        root: Path,
        *,
        mount: Callable[[Path], None] = mount_all,
        unmount: Callable[[Path], None] = unmount_all,
        others_running: Callable[[], bool] | None = None,
    ) -> None:
        self.root = root
        self._mount, self._unmount = mount, unmount
        self._others_running = others_running or (lambda: bool(processes_in_root(root)))
        self._users: IO[str] | None = None

    def _lock_file(self, kind: str) -> Path:
        return self.root.parent / f".{self.root.name}.{kind}.lock"

    def acquire(self) -> None:
        """Register as a user (waits while another instance is unmounting), then
        mount what is absent."""
        users = self._lock_file("users").open("a")
        fcntl.flock(users, fcntl.LOCK_SH)
        self._users = users
        try:
            with self._lock_file("mounts").open("a") as mounts:
                fcntl.flock(mounts, fcntl.LOCK_EX)
                self._mount(self.root)
        except BaseException:
            self._users = None
            users.close()
            raise

    def release(self) -> bool:
        """Stop being a user; unmount if nobody else uses the root. True if unmounted."""
        users, self._users = self._users, None
        if users is None:
            return False
        with users, self._lock_file("mounts").open("a") as mounts:
            fcntl.flock(mounts, fcntl.LOCK_EX)
            try:
                # Not atomic (flock(2)): our shared lock may be dropped first, which
                # is harmless: we are leaving.
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another instance holds the root: keep the mounts
            if self._others_running():
                return False
            self._unmount(self.root)
            return True
