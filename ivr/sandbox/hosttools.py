"""Host tools the sandbox and the tester scenarios need, installed when missing.

On a Debian-like machine as root, missing tools are installed with apt-get
(from the machine's own apt configuration). Anywhere else the error says
exactly which packages to install.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from ivr.sandbox.errors import HostToolsError

logger = logging.getLogger(__name__)

# command -> Debian package that provides it
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "sipp": "sip-tester",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
    "chroot": "coreutils",
    "mount": "mount",
}
# ... and what a cluster adds (``ivr sandbox up --nodes N``: ivr/sandbox/cluster.py)
CLUSTER_TOOLS = {"kamailio": "kamailio", "kamcmd": "kamailio"}


def missing_tools(tools: Mapping[str, str] = HOST_TOOLS) -> dict[str, str]:
    return {cmd: pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None}


# ... and what the compose stack adds (``ivr compose up``: ivr/sandbox/compose.py)
DOCKER_TOOLS = {"dockerd": "docker.io", "docker": "docker.io", "docker-compose": "docker-compose"}

# Packages whose Debian install enables and starts a system service we must not
# have running: the cluster starts its own Kamailio (docs/cluster.md), and the
# stock one would take SIP port 5060 on every interface; the compose stack starts
# its own Docker engine (ivr/sandbox/dockerd.py), and the system one would make a
# bridge and firewall rules, and lend its containerd to ours.
SERVICES_MASKED = {
    "kamailio": ("kamailio.service",),
    "docker.io": ("docker.service", "docker.socket", "containerd.service"),
}


def mask_service(package: str) -> None:
    """Under systemd, mask ``package``'s service before it is installed, so its
    postinst neither enables nor starts it (``systemctl mask``); without systemd
    ``services_held`` keeps them from starting. Raises HostToolsError when masking fails."""
    units = SERVICES_MASKED.get(package, ())
    if not units or not Path("/run/systemd/system").is_dir():
        return
    done = subprocess.run(
        ["systemctl", "mask", *units], capture_output=True, text=True, errors="replace", check=False
    )
    if done.returncode != 0:
        raise HostToolsError(f"systemctl mask {' '.join(units)} failed: {done.stderr.strip()}")


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


@contextlib.contextmanager
def services_held(policy: Path = POLICY_RC_D) -> Iterator[None]:
    """Without systemd, no package's service starts while this holds: the postinst
    scripts start SysV services through invoke-rc.d unless a ``policy-rc.d`` refuses
    (Debian's interface, /usr/share/doc/init-system-helpers/README.policy-rc.d), so
    one that refuses every action (exit 101) stands in, if the machine has none of
    its own, and goes after. Under systemd ``mask_service`` does it (scripts/setup.sh
    does both the same way)."""
    if Path("/run/systemd/system").is_dir() or policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\n# ivr: no service starts during its install\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def ensure_host_tools(tools: Mapping[str, str] = HOST_TOOLS) -> None:
    """Install the Debian packages of the missing ``tools`` (command -> package).

    Raises HostToolsError when that cannot be done here (not Debian, not root,
    apt-get failed) or the commands are still missing after it."""
    missing = missing_tools(tools)
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        raise HostToolsError(
            f"missing tools {sorted(missing)}; this is not a Debian-like machine: "
            f"install the equivalents of {packages} and try again"
        )
    if os.geteuid() != 0:
        raise HostToolsError(
            f"missing tools {sorted(missing)}; run as root or install them first: "
            f"apt-get install {' '.join(packages)}"
        )
    logger.info("installing host packages: %s", " ".join(packages))
    for package in packages:
        mask_service(package)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with services_held():
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, errors="replace", timeout=900,
                check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise HostToolsError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    still = missing_tools(tools)
    if still:
        raise HostToolsError(f"still missing after install: {sorted(still)}")
