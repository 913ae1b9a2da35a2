"""A cluster's Kamailio (Debian's package): its rendered configuration, its
process, and its dispatcher's view of the nodes through ``kamcmd``.

Kamailio is the SIP dispatcher in front of the cluster's Asterisk nodes
(ivr/sandbox/cluster.py, docs/cluster.md). Its configuration is
``ivr/sandbox/kamailio.cfg``, rendered like the Asterisk templates. Its files
live under ``<state>/<cluster>/kamailio/``: ``kamailio.cfg``, ``dispatcher.list``,
``run/`` (control socket, pid file) and the log.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.peers import Peer
from ivr.sandbox.render import render_text
from ivr.settings import Settings

PROBE_INTERVAL_S = 2  # Kamailio's OPTIONS to each node (dispatcher ds_ping_interval)
TEMPLATE = Path(__file__).with_name("kamailio.cfg")
DISPATCHER_SET = 1
# The list file's flags column (Kamailio 5.6 dispatcher README, 6.1): 1 is
# "inactive". Nodes start so, and the first OPTIONS a node answers makes it
# active: "active" then means a probe was answered, not merely listed.
INACTIVE = 1
# A Unix socket's path is at most 107 bytes (sun_path, less its NUL).
MAX_SOCKET_PATH = 107


class KamailioError(SandboxError):
    """Kamailio cannot be configured, started or asked (the message says which)."""


def kamailio_dir(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "kamailio"


def control_socket(settings: Settings) -> Path:
    return kamailio_dir(settings) / "run" / "kamailio_ctl"


def kamailio_peer(settings: Settings) -> Peer:
    """Kamailio as a sandbox peer (pid file, log, stop), told from any other
    Kamailio on the machine by its configuration's path on its command line."""
    cfg = kamailio_dir(settings) / "kamailio.cfg"
    return Peer("Kamailio", f"-f {cfg} ", "kamailio/kamailio")


def module_path() -> str:
    """Kamailio's modules directory (Debian: ``/usr/lib/<triplet>/kamailio/modules/``).

    Raises KamailioError when the dispatcher module is not there."""
    found = sorted(Path("/usr/lib").glob("*/kamailio/modules/dispatcher.so"))
    if not found:
        raise KamailioError("Kamailio's dispatcher module not found (apt-get install kamailio)")
    return f"{found[0].parent}/"


def dispatcher_list(host: str, node_ports: list[int]) -> str:
    """The dispatcher module's list file: ``<set> <uri> <flags>`` per node, every
    node inactive until it answers a probe.

    >>> print(dispatcher_list("127.0.0.1", [5560, 6060]), end="")
    1 sip:127.0.0.1:5560 1
    1 sip:127.0.0.1:6060 1
    """
    return "".join(f"{DISPATCHER_SET} {node_uri(host, port)} {INACTIVE}\n" for port in node_ports)


def node_uri(host: str, port: int) -> str:
    return f"sip:{host}:{port}"


def render_kamailio(settings: Settings, node_ports: list[int]) -> Path:
    """Write ``kamailio.cfg`` and ``dispatcher.list`` under ``kamailio_dir``; the
    configuration's path. Kamailio listens on ``settings``' SIP port.

    Raises KamailioError when Kamailio refuses the file (``kamailio -c``) or its
    control socket's path would be too long for a Unix socket."""
    base = kamailio_dir(settings)
    run_dir = base / "run"
    if len(str(control_socket(settings)).encode()) > MAX_SOCKET_PATH:
        raise KamailioError(
            f"Kamailio's control socket {control_socket(settings)} is longer than a Unix "
            f"socket allows ({MAX_SOCKET_PATH} bytes): use a shorter CITAS_STATE_DIR or instance"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    listing = base / "dispatcher.list"
    listing.write_text(dispatcher_list(settings.host, node_ports), encoding="utf-8")
    values = {
        "host": settings.host,
        "front_port": str(settings.ports.sip),
        "run_dir": str(run_dir),
        "dispatcher_list": str(listing),
        "module_path": module_path(),
        "probe_interval": str(PROBE_INTERVAL_S),
    }
    cfg = base / "kamailio.cfg"
    text = render_text(TEMPLATE.read_text(encoding="utf-8"), values, str(TEMPLATE))
    cfg.write_text(text, encoding="utf-8")
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(cfg), "-Y", str(run_dir)],
        capture_output=True, text=True, errors="replace", timeout=30, check=False,
    )  # fmt: skip
    if check.returncode != 0:
        raise KamailioError(f"kamailio -c refused {cfg}:\n{check.stderr[-2000:]}")
    return cfg


def kamcmd(settings: Settings, *command: str, timeout: float = 5.0) -> str:
    """``kamcmd`` on the cluster's Kamailio control socket; its output.

    Raises KamailioError when Kamailio does not answer."""
    try:
        done = subprocess.run(
            ["kamcmd", "-s", f"unix:{control_socket(settings)}", *command],
            capture_output=True, text=True, errors="replace", timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise KamailioError(f"kamcmd {' '.join(command)}: no answer in {timeout:g} s") from exc
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise KamailioError(f"kamcmd {' '.join(command)}: {said}")
    return done.stdout


_DEST = re.compile(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)")


def parse_dispatcher_list(text: str) -> dict[str, str]:
    """``kamcmd dispatcher.list``'s output → {node URI: flags}. Flags (Kamailio 5.6
    dispatcher README): ``A`` active, ``I`` inactive, ``D`` disabled, ``P`` probing.

    >>> parse_dispatcher_list("DEST: {\\n URI: sip:127.0.0.1:5560\\n FLAGS: AP\\n PRIORITY: 0\\n}")
    {'sip:127.0.0.1:5560': 'AP'}
    """
    return dict(_DEST.findall(text))


def dispatcher_states(settings: Settings) -> dict[str, str]:
    """Every node's flags in the running Kamailio's dispatcher (KamailioError if it
    does not answer)."""
    return parse_dispatcher_list(kamcmd(settings, "dispatcher.list"))


def set_probing(settings: Settings, on: bool) -> None:
    """Start or stop Kamailio's OPTIONS probes to every node (RPC
    ``dispatcher.ping_active``); a test's way to hold the dispatcher's view
    still while a node dies, so that the INVITE failover is what finds it."""
    kamcmd(settings, "dispatcher.ping_active", "1" if on else "0")


def start_kamailio(settings: Settings, node_ports: list[int]) -> int:
    """Render and start Kamailio; its pid once it answers on its control socket.

    ``-DD``: it stays the process we started (its workers are its children), so
    its pid file is ours and a SIGTERM to it stops them all; ``-E``: its log on
    stderr, which is the peer's log file. Raises KamailioError."""
    cfg = render_kamailio(settings, node_ports)
    run_dir = kamailio_dir(settings) / "run"
    command = ["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(run_dir),
               "-P", str(run_dir / "kamailio.pid")]  # fmt: skip

    def answers() -> bool:
        try:
            kamcmd(settings, "core.version", timeout=1.0)
        except KamailioError:
            return False
        return True

    peer = kamailio_peer(settings)
    try:
        return peer.start(settings, command, answers)
    except RuntimeError as exc:
        raise KamailioError(f"{exc}; see {peer.log_file(settings)}") from exc


def wait_for_nodes_active(settings: Settings, uris: list[str], within: float) -> None:
    """Until Kamailio's probes have found every node in ``uris`` active
    (KamailioError after ``within`` seconds, naming each node's flags)."""
    deadline = time.monotonic() + within
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            states = dispatcher_states(settings)
        except KamailioError:  # a moment's refusal of the control socket: ask again
            states = {}
        if uris and all("A" in states.get(uri, "") for uri in uris):
            return
        time.sleep(0.2)
    raise KamailioError(
        f"Kamailio's dispatcher did not find every node active in {within:g} s: {states}"
    )
