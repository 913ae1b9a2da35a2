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
            text=True,
            errors="replace",
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


@dataclass(frozen=True)
class RootRecipe:
    """What ``debootstrap`` puts in a cached root: a Debian ``suite`` (minbase) with
    ``packages``, and a command run in the built root (``chroot``) whose output
    must start with ``expect``, or the root is refused. The sandbox's is
    ``SANDBOX_RECIPE``; the compose stack's service images have their own
    (ivr/sandbox/images.py).

    >>> RootRecipe("bookworm", ("python3",), ("python3", "-V"), "Python 3").key().startswith("bookworm-")
    True
    """

    suite: str
    packages: tuple[str, ...]
    check: tuple[str, ...]
    expect: str

    def key(self) -> str:
        """The cache key: the suite and a digest of the suite and packages, so a
        changed recipe builds a new root and never reuses an old one."""
        digest = hashlib.sha256(" ".join((self.suite, *self.packages)).encode()).hexdigest()
        return f"{self.suite}-{digest[:10]}"


SANDBOX_RECIPE = RootRecipe(SUITE, PACKAGES, ("asterisk", "-V"), "Asterisk ")


def rootfs_key() -> str:
    return SANDBOX_RECIPE.key()


def ensure_rootfs(cache_dir: Path, mirror: str | None = None) -> RootFs:
    """Return the cached sandbox root (Asterisk 22), building it first if needed."""
    return ensure_root(cache_dir, SANDBOX_RECIPE, mirror)


def ensure_root(cache_dir: Path, recipe: RootRecipe, mirror: str | None = None) -> RootFs:
    """Return the cached root of ``recipe`` (``<cache>/rootfs-<key>``), building it
    first with ``debootstrap`` from ``mirror`` (default: the machine's apt mirror).
    Raises SandboxError when debootstrap fails or takes over ``BUILD_TIMEOUT_S``, or
    when the recipe's check does not pass in the built root."""
    target = cache_dir / f"rootfs-{recipe.key()}"
    if (target / STAMP).is_file():
        return RootFs(target)
    if target.exists():
        logger.warning("discarding incomplete root %s", target)
        shutil.rmtree(target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror or apt_mirror()
    building = cache_dir / f"building-{recipe.key()}"
    if building.exists():
        shutil.rmtree(building)
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(building),
        mirror,
    ]
    logger.info("building root %s (debootstrap, once; cached in %s)", recipe.key(), cache_dir)
    log_file = cache_dir / f"debootstrap-{recipe.key()}.log"
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
    checked = subprocess.run(
        ["chroot", str(building), *recipe.check],
        capture_output=True, text=True, errors="replace", timeout=30, check=False,
    )  # fmt: skip
    said = (checked.stdout + checked.stderr).strip()
    if not said.startswith(recipe.expect):
        raise SandboxError(
            f"the built root {building} fails its check {' '.join(recipe.check)!r} (got {said!r})"
        )
    (building / STAMP).write_text(said.splitlines()[0] + "\n", encoding="utf-8")
    building.rename(target)
    logger.info("root ready: %s (%s)", target, said.splitlines()[0])
    return RootFs(target)
