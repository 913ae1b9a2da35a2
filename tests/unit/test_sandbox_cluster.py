"""The cluster's parts that decide (ivr/sandbox/cluster.py, ivr/sandbox/kamailio.py):
its nodes' ports, which database a command of a cluster or node uses, its state
file, Kamailio's rendered configuration (checked by the real ``kamailio -c``) and
the dispatcher's listing as ``kamcmd`` prints it. The cluster itself runs in
tests/e2e/test_cluster.py."""

from __future__ import annotations

import doctest
import json
import logging
import os
import re
import stat
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from ivr import cli
from ivr.sandbox import cluster, kamailio
from ivr.sandbox.instance import udp_port_taken
from ivr.settings import Ports, Settings
from tests.e2e.conftest import WORKER_PORT_STEP
from tests.e2e.test_cluster import CLUSTER_OFFSET

PG_URL = "postgresql+asyncpg://citas@127.0.0.1:55999/citas"


def test_doctests() -> None:
    for module in (cluster, kamailio):
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module


# SIP, its agents' and support phones' and RTP are UDP; ARI, AMI, AGI, the ops
# API, the simulator and SMTP are TCP: one protocol's ports never clash with the
# other's.
UDP_FIELDS = ("sip", "agent_sip", "support_sip", "desk_sip")


def used_ports(ports: Ports, protocol: str, shared: tuple[str, ...] = ()) -> set[int]:
    """Every port a block uses over ``protocol``: the single ones, the desk agents'
    and support phones' few, the RTP range; but the ``shared`` fields' (a node's
    phones that are the cluster's, ``cluster.SHARED_PHONES``)."""
    fields = {k: v for k, v in asdict(ports).items() if k not in shared}
    if protocol == "tcp":
        return {v for k, v in fields.items() if k not in (*UDP_FIELDS, "rtp_start", "rtp_end")}
    phones = {ports.desk_sip + n for n in range(1, 10)}
    if "support_sip" not in shared:
        phones |= {ports.support_sip + n for n in range(1, 5)}
    udp = {fields[k] for k in UDP_FIELDS if k in fields}
    return udp | phones | set(range(ports.rtp_start, ports.rtp_end + 1))


Block = Ports | tuple[Ports, tuple[str, ...]]  # a block, or a node's and the fields it shares


def node_block(cluster_settings: Settings, index: int) -> Block:
    """Node ``index``'s ports, checked to call the cluster's own phones."""
    ports = cluster.node_settings(cluster_settings, index).ports
    for name in cluster.SHARED_PHONES:
        assert getattr(ports, name) == getattr(cluster_settings.ports, name), name
    return ports, cluster.SHARED_PHONES


def clash(blocks: list[Block]) -> str:
    """The first pair of blocks sharing a port, or a port past 65535; "" if none."""
    pairs = [b if isinstance(b, tuple) else (b, ()) for b in blocks]
    for protocol in ("udp", "tcp"):
        for i, (a, a_shared) in enumerate(pairs):
            if max(used_ports(a, protocol, a_shared)) > 65535:
                return f"{protocol} port past 65535 in {a}"
            for b, b_shared in pairs[i + 1 :]:
                if both := used_ports(a, protocol, a_shared) & used_ports(b, protocol, b_shared):
                    return f"{protocol} {sorted(both)[:3]} in {a} and {b}"
    return ""


@pytest.mark.parametrize("offset", [0, 2000, 14000])
@pytest.mark.parametrize("nodes", range(1, cluster.MAX_NODES + 1))
def test_no_two_parts_of_a_cluster_share_a_port(offset: int, nodes: int) -> None:
    base = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_PORT_OFFSET": str(offset)})
    blocks = [base.ports] + [node_block(base, i) for i in range(1, nodes + 1)]
    assert clash(blocks) == ""


def test_one_node_more_than_the_limit_would_share_a_port() -> None:
    base = Settings.from_env({"CITAS_INSTANCE": "c"}).ports
    blocks = [base] + [
        base.shifted(i * cluster.NODE_PORT_STEP) for i in range(1, cluster.MAX_NODES + 3)
    ]
    assert clash(blocks) != ""  # what the limit is for, at offset 0


@pytest.mark.parametrize("worker", [0, 1])
def test_the_e2e_cluster_clears_both_workers_sandboxes(worker: int) -> None:
    base = 2000  # tests/e2e/conftest.py DEFAULT_PORT_OFFSET
    sandboxes = [
        Settings.from_env({"CITAS_PORT_OFFSET": str(base + w * WORKER_PORT_STEP)}).ports
        for w in (0, 1)
    ]
    offset = base + worker * WORKER_PORT_STEP + CLUSTER_OFFSET
    ours = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_PORT_OFFSET": str(offset)})
    blocks = [ours.ports] + [node_block(ours, i) for i in (1, 2)]
    assert clash(blocks + sandboxes) == ""


def test_a_node_out_of_range_is_refused() -> None:
    base = Settings.from_env({})
    for index in (0, cluster.MAX_NODES + 1):
        with pytest.raises(cluster.ClusterError, match="1 to"):
            cluster.node_settings(base, index)


# --- the state file, and the database every command of a cluster uses ------------


def settings_in(tmp_path: Path, instance: str, **env: str) -> Settings:
    return Settings.from_env({"CITAS_INSTANCE": instance, "CITAS_STATE_DIR": str(tmp_path), **env})


def saved_cluster(tmp_path: Path, name: str = "c") -> cluster.ClusterState:
    settings = settings_in(tmp_path, name, CITAS_PORT_OFFSET="3000")
    state = cluster.ClusterState(
        instance=name, host="127.0.0.1", front_port=settings.ports.sip,
        nodes=[f"{name}-n1", f"{name}-n2"], node_sip_ports=[8560, 9060],
        database_url=PG_URL, own_postgres=True, postgres_dir="/tmp/x", ports=asdict(settings.ports),
    )  # fmt: skip
    cluster._save_state(settings, state)
    return state


def test_the_state_is_kept_for_its_owner_only_and_read_back(tmp_path: Path) -> None:
    state = saved_cluster(tmp_path)
    path = cluster.state_file(settings_in(tmp_path, "c"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a database URL may carry a password
    assert cluster.load_state(settings_in(tmp_path, "c")) == state
    assert cluster.load_state(settings_in(tmp_path, "other")) is None


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"instance": "c"}', '{"instance": "c", "nope": 1}']
)
def test_a_broken_state_file_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    path = cluster.state_file(settings_in(tmp_path, "c"))
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(cluster.ClusterError, match=r"cluster\.json is not a cluster's state"):
        cluster.load_state(settings_in(tmp_path, "c"))


def test_a_cluster_and_its_nodes_use_its_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved_cluster(tmp_path)
    for instance in ("c", "c-n1", "c-n2"):
        assert cluster.with_cluster_database(settings_in(tmp_path, instance)).db_url == PG_URL, (
            instance
        )
    # Not its nodes: another node number, another cluster's name, a look-alike.
    for instance in ("c-n3", "cc-n1", "c-nx", "c-n", "b", "c-n1-n1"):
        assert cluster.with_cluster_database(settings_in(tmp_path, instance)).db_url == "", instance
    # A CITAS_DB_URL naming another database is overridden, and said.
    with caplog.at_level(logging.WARNING, "ivr.sandbox.cluster"):
        other = settings_in(tmp_path, "c-n1", CITAS_DB_URL="sqlite+aiosqlite:////tmp/other.db")
        assert cluster.with_cluster_database(other).db_url == PG_URL
    assert "its database, not CITAS_DB_URL's" in caplog.text


def test_the_cli_takes_the_cluster_s_ports_and_database_whatever_the_offset_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_cluster(tmp_path)  # started at offset 3000
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_PORT_OFFSET", "0")
    args = cli.build_parser().parse_args(["call", "smoke", "--instance", "c"])
    settings = cli._settings(args)
    assert (settings.ports.sip, settings.db_url) == (8060, PG_URL)  # Kamailio's front, at 3000
    ops_args = cli.build_parser().parse_args(["flags", "list", "--instance", "c-n2"])
    assert cli._base_settings(ops_args).db_url == PG_URL  # ivr flags, cases, desk...


def test_nodes_is_for_up_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    for action in ("status", "down"):
        assert cli.main(["sandbox", action, "--nodes", "2", "--instance", "plain"]) == 2
        assert "--nodes is for up" in capsys.readouterr().err


def test_the_status_lines_say_what_serves() -> None:
    node = cluster.NodeStatus(
        "c-n1", 5560, asterisk=True, controller_pid=42, registered=True, dispatcher="AP"
    )
    dead = replace(node, instance="c-n2", sip_port=6060, asterisk=False, controller_pid=None, registered=False,
                   dispatcher="IP")  # fmt: skip
    status = cluster.ClusterStatus("c", "sip:4440000@127.0.0.1:5060", 7, "postgresql+asyncpg://citas@x/citas",
                                   True, [node, dead], serving=True)  # fmt: skip
    assert status.lines() == [
        "cluster c: serving",
        "  kamailio: running (pid 7), callers dial sip:4440000@127.0.0.1:5060",
        "  database: postgresql+asyncpg://citas@x/citas (answers)",
        "  node c-n1 (sip 5560): asterisk up, controller pid 42, dispatcher AP",
        "  node c-n2 (sip 6060): asterisk DOWN, controller DOWN, dispatcher IP",
    ]
    read = replace(
        status, nodes=[replace(node, flags_revision=12, breaker="closed", active_calls=4)]
    )
    assert read.lines()[3] == (
        "  node c-n1 (sip 5560): asterisk up, controller pid 42, dispatcher AP; "
        "flags revision 12, breaker closed, 4 call(s)"
    )
    assert replace(status, serving=False, kamailio_pid=None).lines()[:2] == [
        "cluster c: NOT serving",
        "  kamailio: NOT running, callers dial sip:4440000@127.0.0.1:5060",
    ]


def test_a_taken_front_port_is_found(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        assert udp_port_taken("127.0.0.1", port)
    assert not udp_port_taken("127.0.0.1", port)


# --- Kamailio ---------------------------------------------------------------------


def test_the_rendered_configuration_is_accepted_by_kamailio(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, "c")
    ports = [cluster.node_settings(settings, i).ports.sip for i in (1, 2)]
    cfg = kamailio.render_kamailio(settings, ports)  # runs `kamailio -c` itself
    text = cfg.read_text()
    assert f"listen=udp:127.0.0.1:{settings.ports.sip}" in text
    assert f'ds_ping_interval", {kamailio.PROBE_INTERVAL_S})' in text
    assert "@@" not in text
    listing = (cfg.parent / "dispatcher.list").read_text()
    assert listing.splitlines() == [
        f"1 sip:127.0.0.1:{p} 1" for p in ports
    ]  # inactive until probed
    check = subprocess.run(["kamailio", "-c", "-f", str(cfg), "-Y", str(cfg.parent / "run")],
                           capture_output=True, text=True, errors="replace", check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_a_configuration_kamailio_refuses_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "kamailio.cfg"
    broken.write_text(kamailio.TEMPLATE.read_text().replace("request_route {", "request_route {{"))
    monkeypatch.setattr(kamailio, "TEMPLATE", broken)
    with pytest.raises(kamailio.KamailioError, match="kamailio -c refused"):
        kamailio.render_kamailio(settings_in(tmp_path, "c"), [5560])


def test_a_control_socket_path_too_long_is_refused_before_kamailio_starts(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(kamailio.KamailioError, match="longer than a Unix socket allows"):
        kamailio.render_kamailio(settings_in(deep, "c"), [5560])
    assert not (deep / "c" / "kamailio").exists()


# As Kamailio 5.6's `kamcmd dispatcher.list` prints it (seen in the cluster: one
# node active and probed, one found dead by the probes).
KAMCMD_LIST = """{
\tNRSETS: 1
\tRECORDS: {
\t\tSET: {
\t\t\tID: 1
\t\t\tTARGETS: {
\t\t\t\tDEST: {
\t\t\t\t\tURI: sip:127.0.0.1:12060
\t\t\t\t\tFLAGS: IP
\t\t\t\t\tPRIORITY: 0
\t\t\t\t}
\t\t\t\tDEST: {
\t\t\t\t\tURI: sip:127.0.0.1:11560
\t\t\t\t\tFLAGS: AP
\t\t\t\t\tPRIORITY: 0
\t\t\t\t}
\t\t\t}
\t\t}
\t}
}
"""


def test_the_dispatcher_listing_is_read_per_node() -> None:
    assert kamailio.parse_dispatcher_list(KAMCMD_LIST) == {
        "sip:127.0.0.1:12060": "IP",
        "sip:127.0.0.1:11560": "AP",
    }
    assert kamailio.parse_dispatcher_list("") == {}


def test_the_peers_are_told_apart_by_their_whole_last_argument(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, "c")
    one, ten = (cluster.controller_peer(replace(settings, instance=f"c-n{i}")) for i in (1, 10))
    command_of_ten = "python -m ivr.cli serve --instance c-n10 "  # /proc cmdline, NULs as spaces
    assert one.module not in command_of_ten and ten.module in command_of_ten
    assert os.path.basename(kamailio.kamailio_peer(settings).module.split()[1]) == "kamailio.cfg"
    json.dumps(asdict(cluster.ClusterState("c", "h", 1, [], [], "u", False)))  # JSON-able as saved


def test_the_documented_cluster_clears_the_demo_sandbox() -> None:
    # docs/cluster.md's quick start runs beside the README's demo (offset 0).
    from ivr.settings import REPO_ROOT

    found = re.search(r"CITAS_PORT_OFFSET=(\d+)", (REPO_ROOT / "docs" / "cluster.md").read_text())
    assert found is not None
    ours = Settings.from_env({"CITAS_INSTANCE": "lab", "CITAS_PORT_OFFSET": found.group(1)})
    demo = Settings.from_env({}).ports
    assert clash([demo, ours.ports] + [node_block(ours, i) for i in (1, 2)]) == ""


def test_a_controller_s_flags_revision_breaker_and_calls_are_read_from_its_metrics(
    tmp_path: Path,
) -> None:
    # A real ops Metrics registry served over real HTTP, as `ivr serve` serves /metrics.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ivr.ops.metrics import Metrics

    metrics = Metrics()
    metrics.flags_reloaded(6, 7)
    metrics.set_breaker_state("half_open")
    metrics.active_calls.set(3)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.exposition()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        node = settings_in(tmp_path, "c-n1")
        node = replace(node, ports=replace(node.ports, ops_http=server.server_address[1]))
        found = cluster.controller_metrics(node)
        assert found == {
            "citas_flags_revision": 7.0,
            "citas_booking_breaker_state": 2.0,
            "citas_active_calls": 3.0,
        }
        assert cluster.breaker_name(found["citas_booking_breaker_state"]) == "half_open"
    finally:
        server.shutdown()
        server.server_close()
    assert cluster.controller_metrics(node) == {}  # nobody listening: nothing, no error
    assert [cluster.breaker_name(v) for v in (0, 1, None, 9)] == ["closed", "open", "", ""]
