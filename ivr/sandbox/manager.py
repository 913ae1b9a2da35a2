"""``ivr sandbox up | down | status``: a real Asterisk 22 in a chroot, one command away."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.hosttools import ensure_host_tools
from ivr.sandbox.instance import InstancePaths, InstanceState, pid_alive
from ivr.sandbox.mailpeer import mail_peer_line, start_mail_peer, stop_mail_peer
from ivr.sandbox.render import render_all, template_values
from ivr.sandbox.rootfs import RootFs, ensure_rootfs
from ivr.sandbox.whatsapp import start_simulator, stop_simulator
from ivr.settings import Settings

logger = logging.getLogger(__name__)

SUPERVISOR_MARKER = "ivr.sandbox.supervisor"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SandboxStatus:
    instance: str
    running: bool
    ari_ready: bool
    asterisk_version: str
    root: str
    ports: dict[str, int]
    supervisor_pid: int | None
    asterisk_pid: int | None
    smtp_peer: str = ""  # the SMTP peer's line (ivr.sandbox.mailpeer)

    def lines(self) -> list[str]:
        state = "running" if self.running else "stopped"
        ari = "ARI answers" if self.ari_ready else "ARI not answering"
        out = [f"sandbox {self.instance}: {state}, {ari}"]
        if self.asterisk_version:
            out.append(f"  asterisk: {self.asterisk_version}")
        if self.root:
            out.append(f"  root: {self.root}")
        if self.ports:
            out.append("  ports: " + ", ".join(f"{k}={v}" for k, v in self.ports.items()))
        if self.running:
            out.append(f"  pids: supervisor={self.supervisor_pid} asterisk={self.asterisk_pid}")
        if self.smtp_peer:
            out.append(self.smtp_peer)
        return out


def ari_ping(settings: Settings, host: str, http_port: int, timeout: float = 2.0) -> bool:
    url = f"http://{host}:{http_port}/ari/asterisk/ping"
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def status(settings: Settings) -> SandboxStatus:
    paths = InstancePaths(settings)
    state = paths.load()
    if state is None:
        return SandboxStatus(settings.instance, False, False, "", "", {}, None, None)
    running = pid_alive(state.supervisor_pid, SUPERVISOR_MARKER)
    ready = running and ari_ping(settings, state.host, state.ports["http"])
    return SandboxStatus(
        instance=state.instance,
        running=running,
        ari_ready=ready,
        asterisk_version=state.asterisk_version,
        root=state.root,
        ports=state.ports,
        supervisor_pid=state.supervisor_pid if running else None,
        asterisk_pid=state.asterisk_pid if running else None,
        smtp_peer=mail_peer_line(settings),
    )


def prepare(settings: Settings) -> RootFs:
    """Install the host tools and build (or find) the cached root; starts nothing."""
    ensure_host_tools()
    return ensure_rootfs(settings.cache_dir, os.environ.get("CITAS_DEBIAN_MIRROR") or None)


def up(settings: Settings) -> SandboxStatus:
    current = status(settings)
    if current.running and current.ari_ready:
        logger.info("sandbox %s already running", settings.instance)
        start_simulator(settings)
        start_mail_peer(settings)
        return status(settings)
    if current.running:
        down(settings)
    root = prepare(settings)
    paths = InstancePaths(settings)
    state = InstanceState(
        instance=settings.instance,
        root=str(root.path),
        host=settings.host,
        ports=asdict(settings.ports),
        asterisk_version=root.asterisk_version,
        started_at=time.time(),
    )
    _prepare_instance_dirs(state)
    render_all(state.inst_on_host / "etc", template_values(settings, state.inst_in_root))
    install_prompts(root, settings)
    paths.save(state)
    paths.asterisk_log.parent.mkdir(parents=True, exist_ok=True)
    paths.asterisk_log.write_bytes(b"")
    with paths.supervisor_log.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR_MARKER, str(paths.state_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "CITAS_INSTANCE": settings.instance},
        )
    # The supervisor outlives this command; a daemon thread reaps it if it ends
    # while we are still running (a test session), so it never lingers as a zombie.
    threading.Thread(target=proc.wait, name="reap-supervisor", daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(
                f"the sandbox supervisor exited with {proc.returncode}\n" + _tails(paths)
            )
        if ari_ping(settings, settings.host, settings.ports.http, timeout=1.0):
            start_simulator(settings)  # the WhatsApp Cloud API simulator beside Asterisk
            start_mail_peer(settings)  # the SMTP peer (ivr.mail.testserver)
            return status(settings)
        time.sleep(0.25)
    down(settings)
    raise SandboxError(
        f"Asterisk did not answer ARI within {READY_TIMEOUT_S:.0f}s\n" + _tails(paths)
    )


def down(settings: Settings) -> SandboxStatus:
    stop_simulator(settings)
    stop_mail_peer(settings)
    paths = InstancePaths(settings)
    state = paths.load()
    if state is None:
        return status(settings)
    pid = state.supervisor_pid
    if pid_alive(pid, SUPERVISOR_MARKER):
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while pid_alive(pid, SUPERVISOR_MARKER) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid, SUPERVISOR_MARKER):
            raise SandboxError(
                f"the sandbox supervisor (pid {pid}) did not stop in {STOP_TIMEOUT_S}s"
            )
    return status(settings)


def restart_asterisk(settings: Settings) -> None:
    """Kill the sandbox's Asterisk; the supervisor starts it again (fault tests)."""
    state = InstancePaths(settings).load()
    if state is None or not pid_alive(state.asterisk_pid, "asterisk"):
        raise SandboxError(f"sandbox {settings.instance} has no running Asterisk")
    assert state.asterisk_pid is not None
    os.kill(state.asterisk_pid, signal.SIGKILL)


def _prepare_instance_dirs(state: InstanceState) -> None:
    base = state.inst_on_host
    for sub in ("etc", "lib", "spool", "run", "log", "cache"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    # Stale control socket or pid file from a killed run would stop Asterisk starting.
    for stale in ("run/asterisk.ctl", "run/asterisk.pid"):
        (base / stale).unlink(missing_ok=True)


def install_prompts(root: RootFs, settings: Settings) -> Path:
    """Build the prompts of ``settings.prompts_dir`` and copy them where
    ``sound:citas/<id>`` finds them.

    The sounds directory belongs to the cached root, which every instance
    shares: instances running different prompt sets hear the last one installed.
    """
    from ivr.prompts import build_prompts, load_prompt_texts

    build_dir = settings.prompts_build_dir
    texts = load_prompt_texts(settings.prompts_file)
    build_prompts(texts, build_dir, recorded_dir=settings.recorded_dir)
    target = root.inside("/usr/share/asterisk/sounds/es") / "citas"
    target.mkdir(parents=True, exist_ok=True)
    for f in build_dir.iterdir():
        if f.suffix in (".ulaw", ".alaw", ".sln"):
            shutil.copy2(f, target / f.name)
    return target


def _tails(paths: InstancePaths, lines: int = 25) -> str:
    out = []
    for f in (paths.supervisor_log, paths.asterisk_log):
        if f.is_file():
            tail = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {f} ---\n" + "\n".join(tail))
    return "\n".join(out)


def status_json(settings: Settings) -> str:
    return json.dumps(asdict(status(settings)), indent=2)
