"""The sandbox root file system: Debian unstable with Asterisk 22 and its Spanish sounds.

Debian 12 ships no ``asterisk`` package; sid does. ``debootstrap`` builds a
minimal sid root once; it is cached outside the repository and reused. The
mirror is read from the machine's own apt sources, so no registry host name is
ever written in this repository.

A root is built into a temporary directory and renamed into place only when
Asterisk runs in it, so an interrupted build is never mistaken for a good one.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.sandbox.errors import SandboxError

logger = logging.getLogger(__name__)

SUITE = "sid"
PACKAGES = ("asterisk", "asterisk-core-sounds-es")
BUILD_TIMEOUT_S = 1800
STAMP = ".citas-rootfs-ok"


@dataclass(frozen=True)
class RootFs:
    path: Path

    def inside(self, path: str) -> Path:
        """Resolve ``path`` (absolute, as seen inside the chroot) to a host path.

        Symlinks in the root are absolute *inside* the chroot (Debian's
        alternatives point at ``/etc/alternatives/...``), so every link is
        followed relative to the root, never through the host's file system,
        and ``..`` never climbs above the root.
        """
        todo = list(Path(path).parts[1:])
        resolved: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.path.joinpath(*resolved, part)
            if candidate.is_symlink():
                hops += 1
                if hops > 40:
                    raise SandboxError(f"symlink loop at {candidate}")
                target = Path(candidate.readlink())
                if target.is_absolute():
                    resolved = []
                    todo = list(target.parts[1:]) + todo
                else:
                    todo = list(target.parts) + todo
                continue
            resolved.append(part)
        return self.path.joinpath(*resolved)

    @property
    def asterisk_version(self) -> str:
        out = subprocess.run(
            ["chroot", str(self.path), "asterisk", "-V"],
            capture_output=True,
            text=True, errors="replace",
            timeout=30,
            check=False,
        )
        return out.stdout.strip()


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The first Debian archive URI in this machine's apt configuration."""
    for uri in _uris_in(sources_dir):
        if "security" in uri or "updates" in uri:
            continue
        if uri.startswith(("http://", "https://", "file:")):
            return uri.rstrip("/")
    raise SandboxError(
        "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources; "
        "set CITAS_DEBIAN_MIRROR to the archive URL"
    )


def _uris_in(sources_dir: Path) -> list[str]:
    uris: list[str] = []
    deb822 = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for f in deb822:
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^URIs:\s*(.+)$", line.strip())
            if m:
                uris.extend(m.group(1).split())
    one_line = [
        sources_dir / "sources.list",
        *sorted((sources_dir / "sources.list.d").glob("*.list")),
    ]
    for f in one_line:
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line.strip())
            if m:
                uris.append(m.group(1))
    return uris


def rootfs_key() -> str:
    digest = hashlib.sha256(" ".join((SUITE, *PACKAGES)).encode()).hexdigest()
    return f"{SUITE}-{digest[:10]}"


def ensure_rootfs(cache_dir: Path, mirror: str | None = None) -> RootFs:
    """Return the cached root, building it first if needed."""
    target = cache_dir / f"rootfs-{rootfs_key()}"
    if (target / STAMP).is_file():
        return RootFs(target)
    if target.exists():
        logger.warning("discarding incomplete sandbox root %s", target)
        shutil.rmtree(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror or apt_mirror()
    building = cache_dir / f"building-{rootfs_key()}"
    if building.exists():
        shutil.rmtree(building)
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(building),
        mirror,
    ]
    logger.info("building sandbox root (debootstrap %s, once; cached in %s)", SUITE, cache_dir)
    log_file = cache_dir / "debootstrap.log"
    with log_file.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(
                f"debootstrap took over {BUILD_TIMEOUT_S}s; see {log_file}"
            ) from None
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise SandboxError(f"debootstrap failed (exit {proc.returncode}); see {log_file}\n{tail}")
    root = RootFs(building)
    version = root.asterisk_version
    if not version.startswith("Asterisk "):
        raise SandboxError(f"the built root has no working asterisk binary (got {version!r})")
    (building / STAMP).write_text(version + "\n", encoding="utf-8")
    building.rename(target)
    logger.info("sandbox root ready: %s (%s)", target, version)
    return RootFs(target)
