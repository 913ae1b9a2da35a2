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
from ivr.sandbox.instance import InstancePaths, InstanceState, pid_alive, refuse_a_stack
from ivr.sandbox.mailpeer import mail_peer_line, start_mail_peer, stop_mail_peer
from ivr.sandbox.render import ASTERISK_DATA_DIR, render_all, template_values
from ivr.sandbox.rootfs import RootFs, ensure_rootfs
from ivr.sandbox.whatsapp import start_simulator, stop_simulator
from ivr.settings import Settings

logger = logging.getLogger(__name__)

SUPERVISOR_MARKER = "ivr.sandbox.supervisor"
# The language our prompts are played in (asterisk.conf's defaultlanguage, the
# dialplan's CHANNEL(language)): ``sound:citas/<id>`` is ``sounds/es/citas/<id>``.
PROMPT_LANGUAGE = "es"
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


def registered_apps(settings: Settings) -> set[str]:
    """The names of the Stasis applications the sandbox's Asterisk lists now (empty
    when ARI does not answer)."""
    url = f"http://{settings.host}:{settings.ports.http}/ari/applications"
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            apps = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return set()
    return {str(a["name"]) for a in apps if isinstance(a, dict) and "name" in a}


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
    refuse_a_stack(settings)
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
    data_dir = f"{state.inst_in_root}/data"
    render_all(state.inst_on_host / "etc", template_values(settings, state.inst_in_root, data_dir))
    install_prompts(settings, link_data_dir(root, data_dir))
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
    # A sandbox starts with no desk agent logged in and no phone registered: astdb
    # keeps both (queues.conf persistentmembers, PJSIP contacts) across Asterisk's
    # restarts within a run, but a previous run's agent (a test killed before its
    # logout) would take the next run's calls from the tester agent.
    (base / "lib" / "astdb.sqlite3").unlink(missing_ok=True)


def link_data_dir(root: RootFs, data_dir: str) -> Path:
    """Make ``data_dir`` (inside the root) this instance's ``astdatadir``; returns the
    host path of its ``sounds/es/citas/`` (empty), where the prompts go.

    The cached root is shared, read-only, by every instance on the machine (the e2e
    workers, a demo, other checkouts): an instance writing its prompts into the root's
    ``/usr/share/asterisk/sounds/es/citas`` would truncate files another instance is
    playing, and one checkout would hear another's prompts. So each instance has its
    own data directory: every entry of the root's ``/usr/share/asterisk`` linked, down
    to ``sounds/es/``, whose entries are linked too, beside its own ``citas/``. Links
    are relative and point at the resolved targets (the package's own links are
    absolute inside the chroot), so they read the same from the host and in the chroot.
    The directory is made anew at every ``up`` (the instance's Asterisk is stopped then).
    """
    host_data = root.path / data_dir.lstrip("/")
    if host_data.exists():
        shutil.rmtree(host_data)  # links and our own files only: rmtree follows no link
    sounds = f"{ASTERISK_DATA_DIR}/sounds"
    _link_entries(root, ASTERISK_DATA_DIR, host_data, own="sounds")
    _link_entries(root, sounds, host_data / "sounds", own=PROMPT_LANGUAGE)
    _link_entries(
        root, f"{sounds}/{PROMPT_LANGUAGE}", host_data / "sounds" / PROMPT_LANGUAGE, own="citas"
    )
    citas = host_data / "sounds" / PROMPT_LANGUAGE / "citas"
    citas.mkdir()
    return citas


def _link_entries(root: RootFs, source_in_root: str, target: Path, own: str) -> None:
    """Link every entry of ``source_in_root`` into the host directory ``target`` (made
    here), except ``own``, which the caller fills; dangling package links are left out."""
    target.mkdir(parents=True)
    source = root.inside(source_in_root)
    if not source.is_dir():
        raise SandboxError(f"the sandbox root has no {source_in_root} ({root.path})")
    for entry in sorted(source.iterdir()):
        if entry.name == own:
            continue
        real = root.inside(f"{source_in_root}/{entry.name}")
        if not real.exists():
            continue  # e.g. sounds/recordings -> /var/lib/asterisk/sounds/custom, never made
        (target / entry.name).symlink_to(os.path.relpath(real, target))


def install_prompts(settings: Settings, target: Path) -> Path:
    """Build the prompts of ``settings.prompts_dir`` and copy them into ``target``,
    the instance's own ``sounds/es/citas/`` (``link_data_dir``), where
    ``sound:citas/<id>`` finds them; returns ``target``.

    The build directory may be shared by instances started at once (two e2e workers
    of one checkout): ``build_prompts`` takes turns on it, and each file is copied
    under a temporary name and renamed, so no reader ever sees half a file.
    """
    from ivr.prompts import build_prompts, load_prompt_texts

    build_dir = settings.prompts_build_dir
    texts = load_prompt_texts(settings.prompts_file)
    build_prompts(texts, build_dir, recorded_dir=settings.recorded_dir)
    target.mkdir(parents=True, exist_ok=True)
    for f in build_dir.iterdir():
        if f.suffix in (".ulaw", ".alaw", ".sln"):
            partial = target / f".{f.name}.tmp"
            shutil.copy2(f, partial)
            partial.replace(target / f.name)
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
