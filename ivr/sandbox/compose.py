"""``ivr compose up | down | status``: the cluster of ``ivr sandbox up --nodes 2`` in
containers (issue 14), built and run on this machine with no registry.

The same layout as the host's cluster (ivr/sandbox/cluster.py), from the same
sources: Kamailio (``ivr/sandbox/kamailio.cfg``) on the instance's SIP port in
front of two Asterisk nodes (their configuration rendered from
``dialplans/asterisk/`` as a sandbox's), a controller each (``ivr serve``,
reading the line from the mounted ``CITAS_CONFIG_DIR``), one PostgreSQL. Every
container uses the host's network; node ``i`` is at the cluster's offset
``+ i * NODE_PORT_STEP`` (its RTP ``+ 2 * i * NODE_PORT_STEP``).

``up`` starts our Docker engine (ivr/sandbox/dockerd.py), builds the images
(ivr/sandbox/images.py), renders the configurations into
``<state>/<instance>/compose/`` and ``<state>/<instance>/kamailio/``, writes
``compose/stack.env`` (the values ``docker/compose.yaml`` names) and brings the
services up with ``docker-compose`` in the cluster's order, each once the one
before it answers: PostgreSQL, then each node and its controller (the first
migrates the schema), then Kamailio, until its dispatcher finds both nodes
active. ``down`` removes the containers and the database's volume and stops the
engine when no other stack uses it. ``compose/stack.json`` records what runs
(``StackState``). Errors are SandboxError (DockerError, ClusterError,
KamailioError underneath).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ivr.sandbox.cluster import (
    CONTROLLER_READY_S,
    DISPATCHER_READY_S,
    ClusterError,
    controller_serves,
    database_answers,
    line_number,
    load_state,
    node_settings,
)
from ivr.sandbox.dockerd import DockerDaemon, DockerError, run_tool
from ivr.sandbox.errors import SandboxError
from ivr.sandbox.hosttools import CLUSTER_TOOLS, DOCKER_TOOLS, ensure_host_tools
from ivr.sandbox.images import StackImages, build_images
from ivr.sandbox.instance import stack_file, udp_port_taken
from ivr.sandbox.kamailio import (
    KamailioError,
    dispatcher_states,
    kamailio_dir,
    node_uri,
    render_kamailio,
    wait_for_nodes_active,
)
from ivr.sandbox.postgres import free_tcp_port
from ivr.sandbox.render import render_all, template_values
from ivr.settings import Ports, Settings

logger = logging.getLogger(__name__)

NODES = 2  # compose.yaml's asterisk-n1/n2 and controller-n1/n2
ENV_FILE = "stack.env"
DATABASE = "citas"
DB_USER = "citas"
UP_TIMEOUT_S = 300.0  # one `docker-compose up` (it pulls nothing: the images are here)
ASTERISK_READY_S = 90.0
DATABASE_READY_S = 60.0


@dataclass
class StackState:
    """What ``up`` started, as ``<state>/<instance>/compose/stack.json`` keeps it."""

    instance: str
    project: str  # docker-compose's project name
    checkout: str  # the checkout whose docker/compose.yaml runs
    front_port: int  # Kamailio's SIP port: the line's address
    nodes: list[str]
    database_url: str  # the stack's PostgreSQL, as the host (and the containers) reach it
    images: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)  # the stack's own block (Ports)
    started_at: float = field(default_factory=time.time)


def stack_dir(settings: Settings) -> Path:
    return settings.state_dir / settings.instance / "compose"


def project_name(settings: Settings) -> str:
    """docker-compose's project: ``citas-<instance>`` (letters, digits and dashes)."""
    return "citas-" + "".join(c if c.isalnum() else "-" for c in settings.instance.lower())


def load_stack(settings: Settings) -> StackState | None:
    path = stack_file(settings)
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return StackState(**data)
    except (ValueError, TypeError) as exc:
        raise SandboxError(f"{path} is not a stack's state ({exc}): remove it") from exc


def with_stack(settings: Settings) -> Settings:
    """``settings`` on the stack's database, host and ports when its instance runs a
    stack (every ``ivr`` command given the stack's instance: ``ivr call``, ``ivr
    flags``...), whatever ``CITAS_PORT_OFFSET`` or ``CITAS_DB_URL`` say now;
    ``settings`` unchanged otherwise."""
    state = load_stack(settings)
    if state is None:
        return settings
    ports = Ports(**state.ports) if state.ports else settings.ports
    return replace(settings, db_url=state.database_url, host=state.host, ports=ports)


def stack_env(
    settings: Settings, state: StackState, audio_dir: Path, images: StackImages
) -> dict[str, str]:
    """The values ``docker/compose.yaml`` names (its ``${...}``), for ``stack.env``."""
    from sqlalchemy.engine import make_url

    values = {
        "CITAS_ASTERISK_IMAGE": images.asterisk,
        "CITAS_CONTROLLER_IMAGE": images.controller,
        "CITAS_KAMAILIO_IMAGE": images.kamailio,
        "CITAS_POSTGRES_IMAGE": images.postgres,
        "CITAS_STACK_DIR": str(stack_dir(settings)),
        "CITAS_KAMAILIO_DIR": str(kamailio_dir(settings)),
        "CITAS_CONFIG_HOST_DIR": str(settings.config_dir),
        "CITAS_PROMPTS_HOST_DIR": str(settings.prompts_dir),
        "CITAS_PROMPTS_AUDIO_DIR": str(audio_dir),
        "CITAS_DB_PORT": str(make_url(state.database_url).port),
        "CITAS_DB_URL": state.database_url,
        "CITAS_ARI_USER": settings.ari_user,
        "CITAS_ARI_PASSWORD": settings.ari_password,
        "CITAS_AMI_USER": settings.ami_user,
        "CITAS_AMI_PASSWORD": settings.ami_password,
        "CITAS_CONTROLLERS": str(settings.controllers),
        "CITAS_SEED_DEMO": "1" if settings.seed_demo else "0",
    }
    for index in range(1, NODES + 1):
        node = node_settings(settings, index)
        values |= {
            f"CITAS_N{index}_INSTANCE": node.instance,
            f"CITAS_N{index}_PORT_OFFSET": str(node_offset(node)),
            f"CITAS_N{index}_RTP_START": str(node.ports.rtp_start),
            f"CITAS_N{index}_RTP_END": str(node.ports.rtp_end),
        }
    return values


def node_offset(node: Settings) -> int:
    """The ``CITAS_PORT_OFFSET`` that gives a node's controller the node's ports
    (its RTP range is given apart: ``CITAS_RTP_START``, ``CITAS_RTP_END``).

    >>> node_offset(node_settings(Settings.from_env({"CITAS_PORT_OFFSET": "1000"}), 2))
    2000
    """
    return node.ports.sip - Ports().sip  # its own port (the phones are the cluster's)


def render_node(node: Settings, directory: Path) -> None:
    """A node's Asterisk files under ``directory`` (mounted at ``/srv/citas/<node>``):
    ``etc/`` rendered from the sandbox's templates, and the empty ``lib``,
    ``spool``, ``run``, ``log`` and ``cache`` Asterisk writes to."""
    if directory.exists():
        shutil.rmtree(directory)  # a new stack: no astdb, spool or socket of an old one
    for sub in ("etc", "lib", "spool", "run", "log", "cache"):
        (directory / sub).mkdir(parents=True)
    render_all(directory / "etc", template_values(node, f"/srv/citas/{node.instance}"))


def build_audio(settings: Settings) -> Path:
    """The prompts' audio built from ``settings.prompts_dir`` (as ``ivr sandbox up``
    does); the build directory, mounted as the nodes' ``sounds/es/citas``."""
    from ivr.prompts import build_prompts, load_prompt_texts

    texts = load_prompt_texts(settings.prompts_file)
    build_prompts(texts, settings.prompts_build_dir, recorded_dir=settings.recorded_dir)
    return settings.prompts_build_dir


COMPOSE_FILE = "compose.yaml"  # the checkout's docker/compose.yaml, as ``up`` ran it


class Compose:
    """``docker-compose`` on our engine for one stack (its project, env file and
    the copy of ``docker/compose.yaml`` ``up`` keeps beside them, so that ``down``
    needs no checkout: the one it came from may be gone)."""

    def __init__(self, daemon: DockerDaemon, settings: Settings) -> None:
        self.daemon = daemon
        self.file = stack_dir(settings) / COMPOSE_FILE
        self.env_file = stack_dir(settings) / ENV_FILE
        self.project = project_name(settings)

    def __call__(self, *args: str, timeout: float = UP_TIMEOUT_S) -> str:
        command = ["docker-compose", "-f", str(self.file), "-p", self.project,
                   "--env-file", str(self.env_file), *args]  # fmt: skip
        return run_tool(command, self.daemon.env(), timeout=timeout).stdout


def wait_for(ready: Callable[[], bool], within: float, what: str, logs: Callable[[], str]) -> None:
    """Until ``ready()``; SandboxError naming ``what`` with ``logs()`` after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.25)
    raise SandboxError(f"{what} not ready in {within:.0f} s\n{logs()}")


def up(
    settings: Settings, checkout: Path, *, say: Callable[[str], None] = logger.info
) -> StackState:
    """Build the images (cached when unchanged) and start the stack, each service
    once the one before it answers; the stack's state. A running stack is taken
    down first (the configuration is rendered anew).

    Raises SandboxError naming the part that failed; what started stays up for
    ``down`` and ``docker-compose logs``."""
    from ivr.sandbox import manager

    ensure_host_tools({**DOCKER_TOOLS, **CLUSTER_TOOLS})
    if manager.status(settings).running or load_state(settings) is not None:
        raise ClusterError(
            f"instance {settings.instance} runs as a sandbox or a cluster on the host: "
            "choose another CITAS_INSTANCE"
        )
    if load_stack(settings) is not None:
        down(settings)
    nodes = [node_settings(settings, i) for i in range(1, NODES + 1)]
    for what, port in [("the front", settings.ports.sip)] + [
        (f"node {n.instance}'s", n.ports.sip) for n in nodes
    ]:  # another sandbox's RTP range may hold one: Kamailio would find the node mute
        if udp_port_taken(settings.host, port):
            raise ClusterError(
                f"UDP {settings.host}:{port}, {what} SIP port, is taken: "
                "choose another CITAS_PORT_OFFSET"
            )
    daemon = DockerDaemon(settings.cache_dir)
    say(f"stack {settings.instance}: Docker engine {daemon.host}")
    daemon.start()
    say(f"stack {settings.instance}: building the images (no registry; base roots cached)")
    images = build_images(daemon, checkout, settings.cache_dir)
    state = StackState(
        instance=settings.instance, project=project_name(settings), checkout=str(checkout),
        front_port=settings.ports.sip, nodes=[n.instance for n in nodes],
        database_url=f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{free_tcp_port()}/{DATABASE}",
        images=asdict(images), host=settings.host, ports=asdict(settings.ports),
    )  # fmt: skip
    directory = stack_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        render_node(replace(node, db_url=state.database_url), directory / node.instance)
    try:
        render_kamailio(settings, [n.ports.sip for n in nodes])
    except KamailioError as exc:
        raise ClusterError(str(exc)) from exc
    values = stack_env(settings, state, build_audio(settings), images)
    env_file = directory / ENV_FILE
    env_file.touch(mode=0o600)
    env_file.chmod(0o600)  # the ARI and AMI passwords, also in a file an older run left
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    shutil.copyfile(checkout / "docker" / COMPOSE_FILE, directory / COMPOSE_FILE)
    stack_file(settings).write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    compose = Compose(daemon, settings)

    def logs(*services: str) -> Callable[[], str]:
        return lambda: _logs(compose, services)

    say(f"stack {settings.instance}: PostgreSQL on {state.database_url}")
    compose("up", "-d", "--no-build", "postgres")
    wait_for(
        lambda: database_answers(state.database_url),
        DATABASE_READY_S,
        "PostgreSQL",
        logs("postgres"),
    )
    for index, node in enumerate(nodes, start=1):
        say(
            f"stack {settings.instance}: node {node.instance} (sip {node.ports.sip}) and its controller"
        )
        compose("up", "-d", "--no-build", "--no-deps", f"asterisk-n{index}")
        wait_for(
            partial(manager.ari_ping, node, node.host, node.ports.http, 1.0),
            ASTERISK_READY_S, f"Asterisk {node.instance}", logs(f"asterisk-n{index}"),
        )  # fmt: skip
        compose("up", "-d", "--no-build", "--no-deps", f"controller-n{index}")
        wait_for(
            partial(controller_serves, node),
            CONTROLLER_READY_S, f"the controller of {node.instance}", logs(f"controller-n{index}"),
        )  # fmt: skip
    say(f"stack {settings.instance}: Kamailio on sip:{settings.host}:{settings.ports.sip}")
    compose("up", "-d", "--no-build", "--no-deps", "kamailio")
    try:
        wait_for_nodes_active(
            settings, [node_uri(settings.host, n.ports.sip) for n in nodes], DISPATCHER_READY_S
        )
    except KamailioError as exc:
        said = _logs(compose, ("kamailio", *(f"asterisk-n{i}" for i in range(1, NODES + 1))))
        raise ClusterError(f"{exc}\n{said}") from exc
    return state


def _logs(compose: Compose, services: tuple[str, ...]) -> str:
    try:
        return compose("logs", "--no-color", "--tail", "30", *services, timeout=60)
    except DockerError as exc:
        return str(exc)


@dataclass(frozen=True)
class StackStatus:
    instance: str
    front: str  # the line's SIP address (Kamailio in its container)
    database_url: str
    containers: dict[str, str]  # compose service -> its state ("Up", "Exit 1", ...)
    dispatcher: dict[str, str]  # node URI -> Kamailio's flags
    serving: bool

    def lines(self) -> list[str]:
        out = [
            f"stack {self.instance}: {'serving' if self.serving else 'NOT serving'}",
            f"  callers dial {self.front}; database {self.database_url}",
        ]
        out += [f"  {name}: {state}" for name, state in sorted(self.containers.items())]
        out += [f"  dispatcher: {uri} {flags}" for uri, flags in sorted(self.dispatcher.items())]
        return out


def status(settings: Settings) -> StackStatus | None:
    """The stack's status, or None when ``settings.instance`` runs none."""
    state = load_stack(settings)
    if state is None:
        return None
    daemon = DockerDaemon(settings.cache_dir)
    containers: dict[str, str] = {}
    if daemon.pid() is not None:
        out = daemon.run(["ps", "-a", "--filter", f"label=com.docker.compose.project={state.project}",
                          "--format", '{{.Label "com.docker.compose.service"}}\t{{.Status}}'])  # fmt: skip
        containers = dict(line.split("\t", 1) for line in out.stdout.splitlines() if "\t" in line)
    try:
        flags = dispatcher_states(settings)
    except KamailioError:
        flags = {}
    return StackStatus(
        instance=state.instance,
        front=f"sip:{line_number(settings)}@{settings.host}:{state.front_port}",
        database_url=state.database_url,
        containers=containers,
        dispatcher=flags,
        serving=len(containers) == 2 * NODES + 2
        and all(s.startswith("Up") for s in containers.values())
        and sum("A" in f for f in flags.values()) == NODES,
    )


def down(settings: Settings) -> None:
    """Remove the stack's containers and its database's volume, forget the stack,
    and stop the Docker engine when no other stack has containers in it. Raises
    DockerError when compose or the engine does not stop (the state is kept, so
    ``down`` can be run again)."""
    state = load_stack(settings)
    daemon = DockerDaemon(settings.cache_dir)
    if state is not None:
        # Also when the engine stopped (a reboot): its containers would start again
        # with it (restart: unless-stopped) at the next `up`, of any stack.
        daemon.start()
        Compose(daemon, settings)("down", "-v", "--timeout", "15")
    daemon.stop()
    if state is not None:
        shutil.rmtree(stack_dir(settings), ignore_errors=True)
        shutil.rmtree(kamailio_dir(settings), ignore_errors=True)
