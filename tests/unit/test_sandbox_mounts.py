"""Which mount points exist, read from a mountinfo file; who mounts and unmounts a
shared root (``RootUse``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.mounts import RootUse, mounted_points

# The format of /proc/self/mountinfo (proc(5)): field 5 is the mount point,
# with spaces written as \040.
MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=4014504k,mode=755
25 24 0:22 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620
310 22 0:21 / /var/cache/citas-ivr/rootfs-sid-0123456789/proc rw,relatime shared:150 - proc proc rw
311 22 0:5 / /var/cache/citas\\040ivr/rootfs/dev rw,nosuid,relatime shared:2 - devtmpfs udev rw
"""


def test_mounted_points_reads_the_mount_point_field(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO + "short line\n\n", encoding="utf-8")

    points = mounted_points(mountinfo)

    assert points == {
        Path("/"),
        Path("/proc"),
        Path("/dev"),
        Path("/dev/pts"),
        Path("/var/cache/citas-ivr/rootfs-sid-0123456789/proc"),
        Path("/var/cache/citas ivr/rootfs/dev"),
    }


def test_a_root_whose_proc_is_mounted_is_recognised(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO, encoding="utf-8")
    root = Path("/var/cache/citas-ivr/rootfs-sid-0123456789")

    points = mounted_points(mountinfo)

    assert root / "proc" in points
    assert root / "dev" not in points


# --- RootUse: instances of one root start and stop at the same moment (e2e workers) ---


class Recorder:
    def __init__(self) -> None:
        self.mounted = 0
        self.calls: list[str] = []

    def mount(self, root: Path) -> None:
        self.calls.append("mount")
        self.mounted = 1  # mount_all mounts only what is absent

    def unmount(self, root: Path) -> None:
        self.calls.append("unmount")
        self.mounted = 0


def use(root: Path, rec: Recorder, others: bool = False) -> RootUse:
    return RootUse(root, mount=rec.mount, unmount=rec.unmount, others_running=lambda: others)


@pytest.mark.parametrize("users", [1, 2, 3])
@pytest.mark.parametrize("order", ["first-in-first-out", "last-in-first-out"])
def test_the_last_user_to_leave_unmounts_and_only_it(
    tmp_path: Path, users: int, order: str
) -> None:
    root, rec = tmp_path / "rootfs-sid-x", Recorder()
    instances = [use(root, rec) for _ in range(users)]
    for instance in instances:
        instance.acquire()
    assert rec.mounted == 1
    leaving = instances if order == "first-in-first-out" else instances[::-1]
    unmounted = [instance.release() for instance in leaving]
    assert unmounted == [False] * (users - 1) + [True]
    assert rec.calls == ["mount"] * users + ["unmount"]
    assert leaving[0].release() is False  # twice is harmless


def test_a_root_used_by_an_instance_that_takes_no_lock_stays_mounted(tmp_path: Path) -> None:
    """An older checkout's Asterisk in the same root takes no lock: it is seen running."""
    root, rec = tmp_path / "rootfs-sid-x", Recorder()
    instance = use(root, rec, others=True)
    instance.acquire()
    assert instance.release() is False
    assert rec.calls == ["mount"]


def test_a_starter_waits_while_a_stopper_unmounts(tmp_path: Path) -> None:
    """The stopper unmounts under the mounts lock; the starter, registered only once the
    stopper let go, mounts again afterwards: never an Asterisk in an unmounted root."""
    root, rec = tmp_path / "rootfs-sid-x", Recorder()
    stopper = use(root, rec)
    stopper.acquire()
    unmounting, resume = threading.Event(), threading.Event()

    def slow_unmount(path: Path) -> None:
        unmounting.set()
        assert resume.wait(timeout=10)
        rec.unmount(path)

    stopper._unmount = slow_unmount
    leaving = threading.Thread(target=stopper.release)
    leaving.start()
    assert unmounting.wait(timeout=10)
    starter = use(root, rec)
    starting = threading.Thread(target=starter.acquire)
    starting.start()
    starting.join(timeout=0.5)
    assert starting.is_alive()  # blocked: the stopper holds the root
    resume.set()
    leaving.join(timeout=10)
    starting.join(timeout=10)
    assert rec.calls == ["mount", "unmount", "mount"]
    assert rec.mounted == 1
    assert starter.release() is True


def test_a_failed_mount_leaves_no_user_behind(tmp_path: Path) -> None:
    root, rec = tmp_path / "rootfs-sid-x", Recorder()

    def broken(path: Path) -> None:
        raise SandboxError("mount -t proc failed: permission denied")

    failing = RootUse(root, mount=broken, unmount=rec.unmount, others_running=lambda: False)
    with pytest.raises(SandboxError, match="permission denied"):
        failing.acquire()
    other = use(root, rec)
    other.acquire()
    assert other.release() is True  # the failed one does not hold the root
