"""``ivr sandbox up --nodes N``: a cluster on one machine (issue 14).

Kamailio (Debian's package) is the SIP dispatcher in front of N Asterisk sandbox
nodes. Each node has its controller (``ivr serve``), and one PostgreSQL serves
them all. This is the standard way a telephony team grows a line past one box:
callers reach one SIP address, and the dispatcher spreads INVITEs round robin
(Kamailio's dispatcher, algorithm 4) over the nodes that answer its OPTIONS
probes. A node that stops answering is skipped within ``PROBE_INTERVAL_S``, and
an INVITE it does not answer in 2 s (``fr_timer``) goes to the next node.
Kamailio's own part (its configuration, process and ``kamcmd``) is
ivr/sandbox/kamailio.py.

Layout, for a cluster named ``c`` at port offset ``o`` (``CITAS_PORT_OFFSET``):

- Kamailio listens on ``c``'s own SIP port (5060 + ``o``), the one a softphone or
  ``ivr call`` dials; its files live under ``<state>/c/kamailio/``;
- node ``i`` (1..N) is the sandbox instance ``c-n<i>`` at offset
  ``o + i * NODE_PORT_STEP``: every port it binds moves by 500 and the RTP range
  (1000 ports, moved by twice the offset) by 1000, so nodes never share a port,
  as the e2e suite's workers do (tests/e2e/conftest.py). The phones outside
  the nodes stay where the cluster's are (``SHARED_PHONES``): the agent VDN's
  and the support extensions' contacts are one set for the whole line, so a
  caller handed to the agents reaches the same phones whichever node answered;
- each node's controller is ``ivr serve --instance c-n<i>``, which finds the
  node's ports in its ``sandbox.json``;
- the database is ``CITAS_DB_URL`` when that names PostgreSQL. Otherwise the
  cluster starts a PostgreSQL of its own (``ivr.sandbox.postgres``, on a free
  loopback port, in a directory of the system's temporary one, see
  ``start_postgres``); ``up`` restarts it when it is down, ``down`` stops it and
  deletes it. Every ``ivr`` command run for the cluster or one of its nodes
  uses this database (``with_cluster_database``).

``<state>/c/cluster.json`` records what runs (``ClusterState``).
``ivr sandbox status`` and ``down`` find the cluster through it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.hosttools import CLUSTER_TOOLS, ensure_host_tools
from ivr.sandbox.instance import refuse_a_stack, udp_port_taken
from ivr.sandbox.kamailio import (
    KamailioError,
    dispatcher_states,
    kamailio_peer,
    node_uri,
    start_kamailio,
    wait_for_nodes_active,
)
from ivr.sandbox.peers import Peer
from ivr.settings import Ports, Settings

logger = logging.getLogger(__name__)

NODE_PORT_STEP = 500
# On one machine: at port offset 0, a tenth node's SIP port (UDP, 5060 + 5000)
# would land in the cluster's own RTP range (UDP, 10000-10999);
# tests/unit/test_sandbox_cluster.py checks every count up to this one, per
# protocol, at offsets 0, 2000 and 14000.
MAX_NODES = 8
# The phones every node calls at the same address (Ports fields): the agent VDN's
# destination (the IVR's transfers and the dialplan's controller-down fallback)
# and the support extensions (cases escalation). They are the contact centre's,
# not a node's: no node binds them. The desk agents' phones (``desk_sip``)
# REGISTER with one node, so theirs move with it.
SHARED_PHONES = ("agent_sip", "support_sip")
CONTROLLER_READY_S = 90.0  # its Stasis application registered on its node
DISPATCHER_READY_S = 20.0  # every node active in Kamailio's dispatcher
STATE_FILE = "cluster.json"
CONTROLLER_STOP_S = 15.0  # ivr serve's SHUTDOWN_GRACE_S (10 s) for its calls, and a margin


class ClusterError(SandboxError):
    """The cluster cannot be started, reached or stopped (the message says which part)."""


@dataclass
class ClusterState:
    """What ``up`` started, as ``<state>/<instance>/cluster.json`` keeps it."""

    instance: str
    host: str
    front_port: int  # Kamailio's SIP port: the line's address
    nodes: list[str]  # the nodes' sandbox instances, in dispatcher order
    node_sip_ports: list[int]
    database_url: str
    own_postgres: bool  # started by ``up`` (stopped and deleted by ``down``)
    postgres_dir: str = ""  # where that one lives
    ports: dict[str, int] = field(default_factory=dict)  # the cluster's own block (Ports)
    started_at: float = field(default_factory=time.time)


def as_started(settings: Settings, state: ClusterState) -> Settings:
    """``settings`` with the host and ports the cluster was started with, whatever
    ``CITAS_PORT_OFFSET`` says now (its nodes' ports derive from them)."""
    return replace(
        settings, host=state.host, ports=Ports(**state.ports) if state.ports else settings.ports
    )


def node_settings(settings: Settings, index: int) -> Settings:
    """Node ``index``'s (1-based) settings: instance ``<cluster>-n<index>``, the
    ports it binds moved by ``index * NODE_PORT_STEP`` from the cluster's, the
    phones it calls (``SHARED_PHONES``) the cluster's. Raises ``ClusterError``
    for an index outside 1..``MAX_NODES``.

    >>> from ivr.settings import Settings
    >>> c = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_PORT_OFFSET": "1000"})
    >>> s = node_settings(c, 2)
    >>> (s.instance, s.ports.sip, s.ports.http, s.ports.rtp_start, s.ports.agent_sip)
    ('c-n2', 7060, 10088, 14000, 6070)
    """
    if not 1 <= index <= MAX_NODES:
        raise ClusterError(f"node {index}: a cluster has 1 to {MAX_NODES} nodes")
    own = settings.ports.shifted(index * NODE_PORT_STEP)
    shared = {name: getattr(settings.ports, name) for name in SHARED_PHONES}
    return replace(settings, instance=f"{settings.instance}-n{index}", ports=replace(own, **shared))


def state_file(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / STATE_FILE


def load_state(settings: Settings) -> ClusterState | None:
    """The cluster's state, or None when ``settings.instance`` names no cluster."""
    path = state_file(settings)
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return ClusterState(**data)
    except (ValueError, TypeError) as exc:
        raise ClusterError(
            f"{path} is not a cluster's state ({exc}): remove it, or `ivr sandbox down`"
        ) from exc


def cluster_of(settings: Settings) -> ClusterState | None:
    """The cluster ``settings.instance`` is, or is a node of (``<cluster>-n<i>``); None
    for any other instance."""
    state = load_state(settings)
    if state is not None:
        return state
    parent, sep, index = settings.instance.rpartition("-n")
    if not (sep and parent and index.isdigit()):
        return None
    state = load_state(replace(settings, instance=parent))
    return state if state is not None and settings.instance in state.nodes else None


def with_cluster_database(settings: Settings) -> Settings:
    """``settings`` on its cluster's database when its instance is a cluster or one of
    its nodes (their controllers use no other: a ``CITAS_DB_URL`` naming another is
    overridden, with a warning); ``settings`` unchanged otherwise."""
    state = cluster_of(settings)
    if state is None:
        return settings
    if settings.db_url and settings.db_url != state.database_url:
        logger.warning(
            "instance %s is in cluster %s: its database, not CITAS_DB_URL's",
            settings.instance,
            state.instance,
        )
    return replace(settings, db_url=state.database_url)


def _save_state(settings: Settings, state: ClusterState) -> None:
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)  # a database URL may carry a password
    tmp.write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    tmp.replace(path)


# --- controllers and the database ---------------------------------------------------


def controller_peer(node: Settings) -> Peer:
    """A node's controller (``ivr serve --instance <node>``) as a sandbox peer."""
    return Peer(
        f"the controller of {node.instance}",
        f"ivr.cli serve --instance {node.instance} ",  # its last argument: not c-n10's
        "controller",
        stop_within=CONTROLLER_STOP_S,
    )


def controller_ready(node: Settings) -> bool:
    """The node's controller answers 200 on ``/health/ready`` (its ARI and database)."""
    try:
        with urllib.request.urlopen(
            f"http://{node.host}:{node.ports.ops_http}/health/ready", timeout=2.0
        ) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):  # not listening yet, or 503
        return False


def controller_serves(node: Settings) -> bool:
    """The node's controller serves: its Stasis application is registered on the
    node's Asterisk, and its own ARI and database checks pass (``controller_ready``)."""
    from ivr.sandbox import manager  # not at import: every ivr command reads this module

    return node.app_name in manager.registered_apps(node) and controller_ready(node)


def start_controller(node: Settings, database_url: str) -> int:
    """``ivr serve`` for ``node`` on ``database_url``; its pid once its Stasis
    application is registered on the node's Asterisk and it says it is ready
    (ClusterError otherwise)."""
    peer = controller_peer(node)
    command = [sys.executable, "-m", "ivr.cli", "serve", "--instance", node.instance]
    env = {**os.environ, "CITAS_INSTANCE": node.instance, "CITAS_DB_URL": database_url}

    try:
        return peer.start(
            node, command, partial(controller_serves, node), env=env, within=CONTROLLER_READY_S
        )
    except RuntimeError as exc:
        raise ClusterError(f"{exc}; see {peer.log_file(node)}") from exc


def start_postgres(instance: str) -> tuple[str, Path]:
    """The cluster's own PostgreSQL (``ivr.sandbox.postgres.ThrowawayPostgres``, fsync
    on) in a new directory under the system's temporary one; its URL and directory.

    Not under the state directory: as root the server runs as ``postgres``, which
    must reach its directory, and a state directory may sit in a private one
    (pytest's basetemp is 0700). Raises ClusterError when it does not start."""
    import tempfile

    from ivr.sandbox.postgres import PostgresError, ThrowawayPostgres

    directory = Path(tempfile.mkdtemp(prefix=f"citas-{instance}-pg-"))
    directory.chmod(0o711)  # mkdtemp's 0700: the server's user passes through to its own
    server = ThrowawayPostgres(directory / "pg", database="citas")
    try:
        return server.start(), directory
    except PostgresError as exc:
        stop_postgres(directory)
        raise ClusterError(f"the cluster's PostgreSQL did not start: {exc}") from exc


def ensure_postgres(state: ClusterState) -> None:
    """The cluster's own PostgreSQL running: restarted when its data directory is
    there and it does not answer (after a reboot, or its postmaster killed).
    Raises ClusterError when its directory is gone (``/tmp`` cleaned)."""
    from ivr.sandbox.postgres import PostgresError, ThrowawayPostgres

    if not state.own_postgres or database_answers(state.database_url):
        return
    from sqlalchemy.engine import make_url

    server = ThrowawayPostgres(
        Path(state.postgres_dir) / "pg", port=make_url(state.database_url).port
    )
    if not server.data.is_dir():
        raise ClusterError(
            f"cluster {state.instance}: its PostgreSQL in {state.postgres_dir} is gone; "
            f"`ivr sandbox down --instance {state.instance}`, then `up` again"
        )
    try:
        server.start_again()
    except PostgresError as exc:
        raise ClusterError(
            f"cluster {state.instance}: its PostgreSQL did not start again: {exc}"
        ) from exc


def stop_postgres(directory: Path) -> None:
    """Stop the cluster's own PostgreSQL and delete its directory (never raises)."""
    import shutil

    from ivr.sandbox.postgres import ThrowawayPostgres

    if (directory / "pg").is_dir():
        ThrowawayPostgres(directory / "pg").stop()
    shutil.rmtree(directory, ignore_errors=True)


# --- up, status, down ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeStatus:
    instance: str
    sip_port: int
    asterisk: bool  # its supervisor runs and ARI answers
    controller_pid: int | None
    registered: bool  # the controller's Stasis application is on the node
    dispatcher: str  # Kamailio's flags for it ("AP": active, probing), "" if unknown
    # From the controller's /metrics (None when it does not answer):
    flags_revision: int | None = None  # the flags revision it runs
    breaker: str = ""  # the booking service's breaker: closed, open, half_open
    active_calls: int | None = None


def breaker_name(value: float | None) -> str:
    """``citas_booking_breaker_state``'s value as the breaker's state's name
    (ivr.ops.metrics.BREAKER_STATES); "" for none or an unknown one."""
    from ivr.ops.metrics import BREAKER_STATES

    names = {number: name for name, number in BREAKER_STATES.items()}
    return names.get(int(value), "") if value is not None else ""


def controller_metrics(node: Settings) -> dict[str, float]:
    """The controller's ``citas_flags_revision``, ``citas_booking_breaker_state`` and
    ``citas_active_calls`` from its ``/metrics`` (prometheus_client's own parser);
    empty when it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = ("citas_flags_revision", "citas_booking_breaker_state", "citas_active_calls")
    try:
        with urllib.request.urlopen(
            f"http://{node.host}:{node.ports.ops_http}/metrics", timeout=2.0
        ) as r:
            text = r.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, TimeoutError):
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted and not sample.labels:
                found[sample.name] = sample.value
    return found


@dataclass(frozen=True)
class ClusterStatus:
    instance: str
    front: str  # the line's SIP address (Kamailio)
    kamailio_pid: int | None
    database: str  # the URL, password hidden
    database_up: bool
    nodes: list[NodeStatus]

    serving: bool  # Kamailio runs, the database answers, one node is active with its controller

    def lines(self) -> list[str]:
        kam = f"running (pid {self.kamailio_pid})" if self.kamailio_pid else "NOT running"
        out = [
            f"cluster {self.instance}: {'serving' if self.serving else 'NOT serving'}",
            f"  kamailio: {kam}, callers dial {self.front}",
            f"  database: {self.database} ({'answers' if self.database_up else 'NOT answering'})",
        ]
        for n in self.nodes:
            ast = "asterisk up" if n.asterisk else "asterisk DOWN"
            ctl = (
                f"controller pid {n.controller_pid}" + ("" if n.registered else " (not registered)")
                if n.controller_pid
                else "controller DOWN"
            )
            dispatch = {"": "unknown"}.get(n.dispatcher, n.dispatcher)
            line = f"  node {n.instance} (sip {n.sip_port}): {ast}, {ctl}, dispatcher {dispatch}"
            if n.flags_revision is not None:
                line += f"; flags revision {n.flags_revision}, breaker {n.breaker or '?'}, {n.active_calls} call(s)"
            out.append(line)
        return out


def database_answers(url: str) -> bool:
    """A PostgreSQL URL's server accepts a TCP connection (within 1 s); True for
    any other database (a file)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return True
    try:
        with socket.create_connection(
            (parsed.host or "127.0.0.1", parsed.port or 5432), timeout=1.0
        ):
            return True
    except OSError:
        return False


def status(settings: Settings) -> ClusterStatus | None:
    """The cluster's status, or None when ``settings.instance`` names no cluster."""
    from sqlalchemy.engine import make_url

    from ivr.sandbox import manager  # not at import: every ivr command reads this module

    state = load_state(settings)
    if state is None:
        return None
    settings = as_started(settings, state)
    kam_pid = kamailio_peer(settings).running_pid(settings)
    flags: dict[str, str] = {}
    if kam_pid is not None:
        try:
            flags = dispatcher_states(settings)
        except KamailioError as exc:
            logger.warning("cluster %s: %s", settings.instance, exc)
    nodes = []
    for index, name in enumerate(state.nodes, start=1):
        node = node_settings(settings, index)
        assert node.instance == name, (node.instance, name)
        sandbox = manager.status(node)
        pid = controller_peer(node).running_pid(node)
        metrics = controller_metrics(node) if pid is not None else {}
        revision, breaker = (
            metrics.get("citas_flags_revision"),
            metrics.get("citas_booking_breaker_state"),
        )
        calls = metrics.get("citas_active_calls")
        nodes.append(NodeStatus(
            instance=name, sip_port=node.ports.sip, asterisk=sandbox.running and sandbox.ari_ready,
            controller_pid=pid, registered=pid is not None and node.app_name in manager.registered_apps(node),
            dispatcher=flags.get(node_uri(state.host, node.ports.sip), ""),
            flags_revision=int(revision) if revision is not None else None,
            breaker=breaker_name(breaker),
            active_calls=int(calls) if calls is not None else None,
        ))  # fmt: skip
    database_up = database_answers(state.database_url)
    return ClusterStatus(
        instance=state.instance,
        front=f"sip:{line_number(settings)}@{state.host}:{state.front_port}",
        kamailio_pid=kam_pid,
        database=make_url(state.database_url).render_as_string(hide_password=True),
        database_up=database_up,
        nodes=nodes,
        serving=kam_pid is not None
        and database_up
        and any(n.asterisk and n.registered and "A" in n.dispatcher for n in nodes),
    )


def line_number(settings: Settings) -> str:
    """The number callers dial (line.yaml)."""
    from ivr.citas.reference import load_line

    return load_line(settings.citas_dir / "line.yaml").number


def up(
    settings: Settings, nodes: int, *, say: Callable[[str], None] = logger.info
) -> ClusterStatus:
    """Start the cluster (each part unless it runs): the PostgreSQL, the nodes, a
    controller per node (one after the other: the first migrates the schema),
    then Kamailio, and wait until its dispatcher finds every node active.

    Raises ClusterError (or SandboxError from a node) naming the part that failed;
    what started stays up for ``down`` and the logs."""
    from ivr.sandbox import manager  # not at import: every ivr command reads this module

    if not 1 <= nodes <= MAX_NODES:
        raise ClusterError(f"--nodes {nodes}: a cluster has 1 to {MAX_NODES} nodes")
    from sqlalchemy.engine import make_url

    refuse_a_stack(settings)
    if manager.status(settings).running:  # its SIP port is the cluster's front
        raise ClusterError(
            f"sandbox {settings.instance} runs as a single node; "
            f"`ivr sandbox down --instance {settings.instance}` first"
        )
    ensure_host_tools(CLUSTER_TOOLS)
    previous = load_state(settings)
    if previous is not None and len(previous.nodes) != nodes:
        raise ClusterError(
            f"cluster {settings.instance} runs {len(previous.nodes)} node(s); "
            f"`ivr sandbox down --instance {settings.instance}` first"
        )
    front = as_started(settings, previous) if previous is not None else settings
    if kamailio_peer(front).running_pid(front) is None and udp_port_taken(
        front.host, front.ports.sip
    ):
        raise ClusterError(
            f"UDP {front.host}:{front.ports.sip}, the cluster's front SIP port, is taken "
            "(another sandbox, a system Kamailio?): choose another CITAS_PORT_OFFSET"
        )
    given = (
        settings.db_url
        if settings.db_url and make_url(settings.db_url).get_backend_name() == "postgresql"
        else ""
    )
    pg_dir = ""
    if previous is not None:
        settings = as_started(settings, previous)
        ensure_postgres(previous)
        database_url, own, pg_dir = (
            previous.database_url,
            previous.own_postgres,
            previous.postgres_dir,
        )
    elif given:
        database_url, own = given, False
    else:
        database_url, directory = start_postgres(settings.instance)
        own, pg_dir = True, str(directory)
        say(f"cluster {settings.instance}: its own PostgreSQL in {pg_dir}")
    members = [node_settings(settings, i) for i in range(1, nodes + 1)]
    state = ClusterState(
        instance=settings.instance, host=settings.host, front_port=settings.ports.sip,
        nodes=[m.instance for m in members], node_sip_ports=[m.ports.sip for m in members],
        database_url=database_url, own_postgres=own, postgres_dir=pg_dir, ports=asdict(settings.ports),
    )  # fmt: skip
    _save_state(settings, state)
    for member in members:
        say(f"cluster {settings.instance}: node {member.instance} (sip {member.ports.sip})")
        manager.up(replace(member, db_url=database_url))
        start_controller(member, database_url)
    say(f"cluster {settings.instance}: Kamailio on sip:{settings.host}:{settings.ports.sip}")
    try:
        start_kamailio(settings, state.node_sip_ports)
        uris = [node_uri(settings.host, p) for p in state.node_sip_ports]
        wait_for_nodes_active(settings, uris, DISPATCHER_READY_S)
    except KamailioError as exc:
        raise ClusterError(str(exc)) from exc
    result = status(settings)
    assert result is not None
    return result


def down(settings: Settings) -> None:
    """Stop Kamailio, the controllers, the nodes and the cluster's own PostgreSQL
    (deleting it), and forget the cluster. Raises SandboxError when a node's
    supervisor does not stop (the state is kept, so ``down`` can be run again)."""
    from ivr.sandbox import manager  # not at import: every ivr command reads this module

    state = load_state(settings)
    if state is None:
        return
    settings = as_started(settings, state)
    kamailio_peer(settings).stop(settings)
    for index in range(1, len(state.nodes) + 1):
        node = node_settings(settings, index)
        controller_peer(node).stop(node)
        manager.down(node)
    if state.own_postgres and state.postgres_dir:
        stop_postgres(Path(state.postgres_dir))
    state_file(settings).unlink(missing_ok=True)
