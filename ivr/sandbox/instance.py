"""One sandbox instance: where its files live and what state it is in.

The host side keeps ``sandbox.json`` (ports, root, process ids) under the
state directory; Asterisk's own directories live inside the chroot under
``/srv/citas/<instance>`` so two instances sharing one root never share a
config, a spool or a control socket.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ivr.sandbox.errors import SandboxError
from ivr.settings import Ports, Settings


@dataclass
class InstanceState:
    instance: str
    root: str
    host: str
    ports: dict[str, int]
    supervisor_pid: int | None = None
    asterisk_pid: int | None = None
    asterisk_version: str = ""
    started_at: float | None = None

    @property
    def inst_in_root(self) -> str:
        return f"/srv/citas/{self.instance}"

    @property
    def inst_on_host(self) -> Path:
        return Path(self.root) / self.inst_in_root.lstrip("/")

    def settings_ports(self) -> Ports:
        return Ports(**self.ports)


class InstancePaths:
    def __init__(self, settings: Settings) -> None:
        self.dir = settings.state_dir / settings.instance
        self.state_file = self.dir / "sandbox.json"
        self.supervisor_log = self.dir / "supervisor.log"
        self.asterisk_log = self.dir / "asterisk.log"

    def load(self) -> InstanceState | None:
        if not self.state_file.is_file():
            return None
        data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        return InstanceState(**data)

    def save(self, state: InstanceState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
        tmp.replace(self.state_file)


def pid_alive(pid: int | None, marker: str) -> bool:
    """True when ``pid`` runs and its command line contains ``marker``.

    The marker guards against pid reuse: we only ever signal a process we
    started, identified by its id and its command line.
    """
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return marker in cmdline


def other_instances_alive(state_dir: Path, root: str, except_instance: str) -> bool:
    """Whether another running instance uses the same root (keep the mounts then)."""
    for state_file in state_dir.glob("*/sandbox.json"):
        try:
            data = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("instance") == except_instance or data.get("root") != root:
            continue
        if pid_alive(data.get("supervisor_pid"), "ivr.sandbox.supervisor"):
            return True
    return False


def stack_file(settings: Settings) -> Path:
    """Where a compose stack of ``settings.instance`` keeps its state
    (ivr/sandbox/compose.py): its being there means the instance is a stack's."""
    return settings.state_dir / settings.instance / "compose" / "stack.json"


def refuse_a_stack(settings: Settings) -> None:
    """Raise SandboxError when ``settings.instance`` is a compose stack's: its ports
    are the stack's containers' (``ivr compose down`` first)."""
    if stack_file(settings).is_file():
        raise SandboxError(
            f"instance {settings.instance} runs a compose stack; "
            f"`ivr compose down --instance {settings.instance}` first"
        )


def udp_port_taken(host: str, port: int) -> bool:
    """Something holds UDP ``host:port`` already (a bind there would fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def current_pid() -> int:
    return os.getpid()
