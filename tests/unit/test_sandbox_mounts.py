"""Which mount points exist, read from a mountinfo file."""

from __future__ import annotations

from pathlib import Path

from ivr.sandbox.mounts import mounted_points

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
