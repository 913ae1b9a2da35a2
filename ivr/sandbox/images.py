"""The compose stack's images, built on this machine with no registry (issue 14).

No image is pulled: every base image is a ``debootstrap`` root made here, from
the machine's own apt mirror (ivr/sandbox/rootfs.py), loaded with
``docker import``. Two roots, each cached under the cache directory and keyed by
its recipe:

- the sandbox's own root (Debian unstable with Asterisk 22 and its Spanish
  sounds, ``SANDBOX_RECIPE``): the Asterisk image runs exactly what the sandbox
  runs;
- a Debian 12 root with Python 3.11, Kamailio and PostgreSQL
  (``SERVICES_RECIPE``): the base of the controller, Kamailio and PostgreSQL
  images, the same packages the host's cluster uses (``scripts/setup.sh``).

``docker build`` then runs with no network (``--network none``): the
Dockerfiles in the checkout's ``docker/`` only copy files and configure. The
controller's Python packages are wheels made beforehand on the host with the
host's own pip configuration (``pip wheel``), installed in the image from them
alone (``--no-index``).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ivr.sandbox.dockerd import DockerDaemon, DockerError
from ivr.sandbox.errors import SandboxError
from ivr.sandbox.rootfs import SANDBOX_RECIPE, RootFs, RootRecipe, ensure_root

logger = logging.getLogger(__name__)

SERVICES_RECIPE = RootRecipe(
    "bookworm",
    ("python3", "python3-venv", "kamailio", "postgresql"),
    ("python3", "-V"),
    "Python 3.11",
)
REPOSITORY = "citas-ivr"
IMPORT_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 900
WHEEL_TIMEOUT_S = 900
# What a base image leaves out of its root: the sandbox instances' own files
# (their configuration, spool and prompts, under /srv/citas) and anything
# mounted into the root while a sandbox runs (/proc, the /dev bind).
IMPORT_EXCLUDES = ("./srv/citas", "./proc/*", "./dev/*", "./sys/*", "./run/*", "./tmp/*")


@dataclass(frozen=True)
class StackImages:
    """The four images' names, as ``docker run`` and compose.yaml name them."""

    asterisk: str
    controller: str
    kamailio: str
    postgres: str


def base_tag(role: str, recipe: RootRecipe) -> str:
    """``citas-ivr/<role>-base:<recipe key>``, e.g. ``citas-ivr/asterisk-base:sid-4dea5457dc``."""
    return f"{REPOSITORY}/{role}-base:{recipe.key()}"


def ensure_base_image(
    daemon: DockerDaemon, cache_dir: Path, role: str, recipe: RootRecipe, mirror: str | None
) -> str:
    """The base image of ``recipe`` in ``daemon``: imported from the cached root
    (built first when missing) unless the daemon has it; its tag.

    Raises SandboxError (the root) or DockerError (the import)."""
    tag = base_tag(role, recipe)
    if daemon.has_image(tag):
        return tag
    root = ensure_root(cache_dir, recipe, mirror)
    logger.info("importing %s as %s", root.path, tag)
    import_root(daemon, root, tag)
    return tag


def import_root(daemon: DockerDaemon, root: RootFs, tag: str) -> None:
    """``tar`` the root (one file system, less ``IMPORT_EXCLUDES``) into ``docker import``.

    Raises DockerError when either fails."""
    excludes = [f"--exclude={pattern}" for pattern in IMPORT_EXCLUDES]
    tar = subprocess.Popen(
        ["tar", "--one-file-system", "--numeric-owner", *excludes, "-C", str(root.path), "-c", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert tar.stdout is not None
    try:
        daemon.run(["import", "-", tag], stdin=tar.stdout, timeout=IMPORT_TIMEOUT_S)
    finally:
        tar.stdout.close()
        _, tar_err = tar.communicate(timeout=60)
    if tar.returncode not in (0, 1):  # 1: a file changed while read (a sandbox's log)
        raise DockerError(
            f"tar of {root.path} failed ({tar.returncode}): "
            f"{tar_err.decode('utf-8', errors='replace')[-1000:]}"
        )


def dependency_wheels(checkout: Path, cache_dir: Path) -> Path:
    """Wheels of every dependency of the project (not the project's own), made on
    the host by ``pip wheel`` with the host's pip configuration (its index or
    mirror); cached as ``<cache>/wheels-<digest of pyproject.toml>``. Raises
    SandboxError when pip fails."""
    pyproject = (checkout / "pyproject.toml").read_bytes()
    house = cache_dir / f"wheels-{hashlib.sha256(pyproject).hexdigest()[:10]}"
    if not (house / ".complete").is_file():
        _pip_wheel(["--wheel-dir", str(house), str(checkout)])
        for own in house.glob("citas_ivr-*.whl"):
            own.unlink()
        (house / ".complete").write_text("ok\n", encoding="utf-8")
    return house


def project_wheel(checkout: Path, cache_dir: Path) -> Path:
    """The directory holding the project's own wheel, made by ``pip wheel --no-deps``
    unless the checkout's sources are unchanged since the last one (cached as
    ``<cache>/project-<digest>``, the newest only). Raises SandboxError."""
    target = cache_dir / f"project-{source_digest(checkout)}"
    if (target / ".complete").is_file():
        return target
    for old in cache_dir.glob("project-*"):
        shutil.rmtree(old, ignore_errors=True)
    _pip_wheel(["--no-deps", "--wheel-dir", str(target), str(checkout)])
    (target / ".complete").write_text("ok\n", encoding="utf-8")
    return target


# What the project's wheel is made of (the package, and what ivr/defaults links
# to); not built audio, byte code or the tests.
SOURCE_PARTS = (
    "pyproject.toml",
    "ivr",
    "config",
    "dialplans",
    "prompts/prompts.yaml",
    "prompts/recorded",
)


def source_digest(checkout: Path) -> str:
    """A digest of the files the project's wheel is made of: their paths and contents."""
    digest = hashlib.sha256()
    for part in SOURCE_PARTS:
        top = checkout / part
        files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                digest.update(str(f.relative_to(checkout)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:12]


def _pip_wheel(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *args],
        capture_output=True, text=True, errors="replace", timeout=WHEEL_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SandboxError(f"pip wheel {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def build_image(
    daemon: DockerDaemon, dockerfile: Path, tag: str, base: str, files: dict[str, Path]
) -> None:
    """``docker build --network none`` of ``dockerfile`` with ``--build-arg BASE=base``,
    in a context holding only ``files`` (name in the context → host file or
    directory, copied). Raises DockerError."""
    with tempfile.TemporaryDirectory(prefix="citas-image-") as tmp:
        context = Path(tmp)
        shutil.copy2(dockerfile, context / "Dockerfile")
        for name, source in files.items():
            target = context / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
        daemon.run(
            ["build", "--network", "none", "--build-arg", f"BASE={base}", "-t", tag, str(context)],
            timeout=BUILD_TIMEOUT_S,
        )


def build_images(
    daemon: DockerDaemon, checkout: Path, cache_dir: Path, mirror: str | None = None
) -> StackImages:
    """Every base image and the four images of the stack, from the checkout's
    ``docker/`` Dockerfiles; their names. Raises SandboxError or DockerError."""
    docker_dir = checkout / "docker"
    if not (docker_dir / "compose.yaml").is_file():
        raise SandboxError(f"{checkout} is not a Citas IVR checkout (no docker/compose.yaml)")
    asterisk_base = ensure_base_image(daemon, cache_dir, "asterisk", SANDBOX_RECIPE, mirror)
    services_base = ensure_base_image(daemon, cache_dir, "services", SERVICES_RECIPE, mirror)
    images = StackImages(
        asterisk=f"{REPOSITORY}/asterisk:local",
        controller=f"{REPOSITORY}/controller:local",
        kamailio=f"{REPOSITORY}/kamailio:local",
        postgres=f"{REPOSITORY}/postgres:local",
    )
    build_image(daemon, docker_dir / "Dockerfile.asterisk", images.asterisk, asterisk_base, {})
    build_image(
        daemon, docker_dir / "Dockerfile.controller", images.controller, services_base,
        {
            "wheels": dependency_wheels(checkout, cache_dir),
            "project": project_wheel(checkout, cache_dir),
        },
    )  # fmt: skip
    build_image(daemon, docker_dir / "Dockerfile.kamailio", images.kamailio, services_base, {})
    build_image(
        daemon, docker_dir / "Dockerfile.postgres", images.postgres, services_base,
        {"postgres-start.sh": docker_dir / "postgres-start.sh"},
    )  # fmt: skip
    return images
