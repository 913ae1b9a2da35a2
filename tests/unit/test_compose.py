"""The compose stack's parts that need no Docker engine: the values compose.yaml
is given, its services, the Dockerfiles' rule (no network while building), the
base roots' keys and the test stack's ports. The stack itself is
tests/e2e/test_compose.py."""

from __future__ import annotations

import doctest
import json
import re
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from ivr import cli
from ivr.sandbox import cluster, compose, dockerd, images, rootfs
from ivr.sandbox.images import StackImages
from ivr.settings import REPO_ROOT, Settings
from tests.e2e.conftest import WORKER_PORT_STEP
from tests.e2e.test_cluster import CLUSTER_OFFSET
from tests.e2e.test_compose import compose_env
from tests.unit.test_sandbox_cluster import clash, node_block

DOCKER = REPO_ROOT / "docker"
COMPOSE_TEXT = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
SERVICES = yaml.safe_load(COMPOSE_TEXT)["services"]
IMAGES = StackImages("a:1", "c:1", "k:1", "p:1")


def test_doctests() -> None:
    for module in (compose, dockerd, rootfs):
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module


def stack_values(tmp_path: Path, offset: int = 1000) -> dict[str, str]:
    settings = Settings.from_env(
        {"CITAS_INSTANCE": "s", "CITAS_PORT_OFFSET": str(offset), "CITAS_STATE_DIR": str(tmp_path)}
    )
    state = compose.StackState(
        instance="s", project="citas-s", checkout=str(REPO_ROOT), front_port=settings.ports.sip,
        nodes=["s-n1", "s-n2"], database_url="postgresql+asyncpg://citas@127.0.0.1:55998/citas",
    )  # fmt: skip
    return compose.stack_env(settings, state, tmp_path / "audio", IMAGES)


def test_compose_yaml_is_given_every_value_it_names(tmp_path: Path) -> None:
    named = set(re.findall(r"\$\{([A-Z0-9_]+)\}", COMPOSE_TEXT))

    assert named == set(stack_values(tmp_path))


@pytest.mark.parametrize("index", [1, 2])
def test_a_node_s_controller_gets_the_node_s_ports(tmp_path: Path, index: int) -> None:
    # Observed in the cluster: a node's ports are the cluster's moved by 500 * i and
    # its RTP by 1000 * i; the controller in its container must find the same.
    values = stack_values(tmp_path)
    env = {
        "CITAS_PORT_OFFSET": values[f"CITAS_N{index}_PORT_OFFSET"],
        "CITAS_RTP_START": values[f"CITAS_N{index}_RTP_START"],
        "CITAS_RTP_END": values[f"CITAS_N{index}_RTP_END"],
    }
    base = Settings.from_env({"CITAS_INSTANCE": "s", "CITAS_PORT_OFFSET": "1000"})

    node = cluster.node_settings(base, index).ports
    # Every port it binds or calls the node on; the phones (cluster.SHARED_PHONES) are
    # the node's Asterisk's to call, not the controller's.
    phones = {name: getattr(node, name) for name in cluster.SHARED_PHONES}
    assert replace(Settings.from_env(env).ports, **phones) == node
    assert values[f"CITAS_N{index}_INSTANCE"] == f"s-n{index}"


def test_every_service_runs_an_image_built_here_on_the_host_network() -> None:
    assert set(SERVICES) == {
        "postgres", "kamailio", "asterisk-n1", "asterisk-n2", "controller-n1", "controller-n2",
    }  # fmt: skip
    for name, service in SERVICES.items():
        assert service["network_mode"] == "host", name
        assert "build" not in service, name  # built by `ivr compose`, with no network
        assert re.fullmatch(r"\$\{CITAS_[A-Z]+_IMAGE\}", service["image"]), name


@pytest.mark.parametrize("dockerfile", sorted(DOCKER.glob("Dockerfile.*")), ids=lambda p: p.name)
def test_a_dockerfile_fetches_nothing(dockerfile: Path) -> None:
    # `docker build --network none`: a step that downloads would fail there, and no
    # image is pulled (FROM the base imported from a debootstrap root).
    text = dockerfile.read_text(encoding="utf-8")

    assert re.search(r"^FROM \$\{BASE\}$", text, re.MULTILINE)
    assert not re.search(r"apt-get|curl|wget|ADD ", text)
    for pip in re.findall(r"pip install[^\n]*", text):
        assert "--no-index" in pip


def test_a_changed_recipe_is_another_root() -> None:
    services = images.SERVICES_RECIPE
    more = rootfs.RootRecipe(services.suite, (*services.packages, "sox"), services.check, "")

    assert more.key() != services.key()
    assert rootfs.SANDBOX_RECIPE.key() == rootfs.rootfs_key()  # the sandbox's cache stays
    assert images.base_tag("services", services) == f"citas-ivr/services-base:{services.key()}"


@pytest.mark.parametrize("compose_worker", [0, 1])
@pytest.mark.parametrize("cluster_worker", [0, 1])
def test_the_e2e_stack_clears_the_sandboxes_and_the_e2e_cluster(
    compose_worker: int, cluster_worker: int
) -> None:
    base = 2000  # tests/e2e/conftest.py DEFAULT_PORT_OFFSET
    sandboxes = [
        Settings.from_env({"CITAS_PORT_OFFSET": str(base + w * WORKER_PORT_STEP)}).ports
        for w in (0, 1)
    ]
    the_cluster = Settings.from_env(
        {"CITAS_PORT_OFFSET": str(base + cluster_worker * WORKER_PORT_STEP + CLUSTER_OFFSET)}
    )
    stack = Settings.from_env(compose_env(base + compose_worker * WORKER_PORT_STEP))
    blocks = [stack.ports] + [node_block(stack, i) for i in (1, 2)]
    others = [the_cluster.ports] + [node_block(the_cluster, i) for i in (1, 2)]
    for block in others:
        assert clash([*blocks, *sandboxes, block]) == ""


def test_a_developer_s_stack_at_offset_30000_stays_in_the_port_space() -> None:
    stack = Settings.from_env(compose_env(30000))
    blocks = [stack.ports] + [node_block(stack, i) for i in (1, 2)]

    assert clash(blocks) == ""


def test_the_project_name_is_one_compose_accepts() -> None:
    settings = Settings.from_env({"CITAS_INSTANCE": "E2e_gw0.dk"})

    assert compose.project_name(settings) == "citas-e2e-gw0-dk"


def test_status_and_down_of_no_stack_start_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CITAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CITAS_INSTANCE", "nostack")

    assert cli.main(["compose", "status"]) == 3
    assert cli.main(["compose", "down"]) == 0
    assert "stack nostack: not running" in capsys.readouterr().out
    assert not (tmp_path / "cache").exists()  # no engine was started for either


def test_the_cli_takes_the_stack_s_ports_and_database_whatever_the_offset_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = Settings.from_env(
        {"CITAS_INSTANCE": "s", "CITAS_PORT_OFFSET": "3000", "CITAS_STATE_DIR": str(tmp_path)}
    )
    url = "postgresql+asyncpg://citas@127.0.0.1:55997/citas"
    state = compose.StackState(
        instance="s", project="citas-s", checkout=str(REPO_ROOT), front_port=started.ports.sip,
        nodes=["s-n1", "s-n2"], database_url=url, ports=asdict(started.ports),
    )  # fmt: skip
    compose.stack_dir(started).mkdir(parents=True)
    compose.stack_file(started).write_text(json.dumps(asdict(state)))
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_PORT_OFFSET", "0")
    monkeypatch.setenv("CITAS_DB_URL", "sqlite+aiosqlite:////tmp/other.db")

    call = cli._settings(cli.build_parser().parse_args(["call", "smoke", "--instance", "s"]))
    flags = cli._base_settings(cli.build_parser().parse_args(["flags", "list", "--instance", "s"]))
    up = cli._base_settings(cli.build_parser().parse_args(["compose", "up", "--instance", "s"]))

    assert (call.ports.sip, call.db_url) == (8060, url)  # Kamailio's front, at 3000
    assert flags.db_url == url
    assert (up.ports.sip, up.db_url) == (5060, "sqlite+aiosqlite:////tmp/other.db")  # anew


def test_a_sandbox_or_cluster_is_refused_on_a_stack_s_instance(tmp_path: Path) -> None:
    # Their ports would be the stack's containers' (review, 2026-12-02): refused
    # before anything starts, naming the way out.
    from ivr.sandbox import manager
    from ivr.sandbox.errors import SandboxError

    settings = Settings.from_env({"CITAS_INSTANCE": "s", "CITAS_STATE_DIR": str(tmp_path)})
    compose.stack_dir(settings).mkdir(parents=True)
    compose.stack_file(settings).write_text("{}")
    for start in (lambda: manager.up(settings), lambda: cluster.up(settings, 2)):
        with pytest.raises(SandboxError, match="ivr compose down --instance s"):
            start()
    assert not (tmp_path / "s" / "sandbox.json").exists()
    assert cluster.load_state(settings) is None
