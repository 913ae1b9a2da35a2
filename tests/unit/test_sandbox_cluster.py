"""The cluster's pure parts (ivr/sandbox/cluster.py): its nodes' ports, Kamailio's
rendered configuration (checked by the real ``kamailio -c``), the dispatcher's
listing as ``kamcmd`` prints it. The cluster itself runs in
tests/e2e/test_cluster.py."""

from __future__ import annotations

import doctest
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from ivr.sandbox import cluster
from ivr.settings import Ports, Settings
from tests.e2e.conftest import WORKER_PORT_STEP
from tests.e2e.test_cluster import CLUSTER_OFFSET


def test_doctests() -> None:
    result = doctest.testmod(cluster)
    assert result.attempted >= 3 and result.failed == 0


def used_ports(ports: Ports) -> set[int]:
    """Every port a block uses: the single ones, the RTP range, the desk agents' few."""
    single = {v for k, v in asdict(ports).items() if k not in ("rtp_start", "rtp_end")}
    desk = {ports.desk_sip + n for n in range(1, 10)}
    support = {ports.support_sip + n for n in range(1, 5)}
    return single | desk | support | set(range(ports.rtp_start, ports.rtp_end + 1))


@pytest.mark.parametrize("offset", [0, 2000, 14000])
@pytest.mark.parametrize("nodes", range(1, cluster.MAX_NODES + 1))
def test_no_two_parts_of_a_cluster_share_a_port(offset: int, nodes: int) -> None:
    base = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_PORT_OFFSET": str(offset)})
    blocks = [base.ports] + [cluster.node_settings(base, i).ports for i in range(1, nodes + 1)]
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            assert not used_ports(a) & used_ports(b), (a, b)
        assert max(used_ports(a)) < 65536


@pytest.mark.parametrize("worker", [0, 1])
def test_the_e2e_cluster_clears_both_workers_sandboxes(worker: int) -> None:
    base = 2000  # tests/e2e/conftest.py DEFAULT_PORT_OFFSET
    sandboxes = [
        Settings.from_env({"CITAS_PORT_OFFSET": str(base + w * WORKER_PORT_STEP)}).ports
        for w in (0, 1)
    ]
    ours = Settings.from_env(
        {
            "CITAS_INSTANCE": "c",
            "CITAS_PORT_OFFSET": str(base + worker * WORKER_PORT_STEP + CLUSTER_OFFSET),
        }
    )
    blocks = [ours.ports] + [cluster.node_settings(ours, i).ports for i in (1, 2)]
    for block in blocks:
        for sandbox in sandboxes:
            assert not used_ports(block) & used_ports(sandbox)


def test_a_node_out_of_range_is_refused() -> None:
    base = Settings.from_env({})
    for index in (0, cluster.MAX_NODES + 1):
        with pytest.raises(cluster.ClusterError, match="1 to"):
            cluster.node_settings(base, index)


def test_the_rendered_configuration_is_accepted_by_kamailio(tmp_path: Path) -> None:
    settings = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_STATE_DIR": str(tmp_path)})
    ports = [cluster.node_settings(settings, i).ports.sip for i in (1, 2)]
    cfg = cluster.render_kamailio(settings, ports)  # runs `kamailio -c` itself
    text = cfg.read_text()
    assert f"listen=udp:127.0.0.1:{settings.ports.sip}" in text
    assert f'ds_ping_interval", {cluster.PROBE_INTERVAL_S})' in text
    assert "@@" not in text.replace("dispatcher@127", "")
    listing = (cfg.parent / "dispatcher.list").read_text()
    assert listing.splitlines() == [f"1 sip:127.0.0.1:{p}" for p in ports]
    check = subprocess.run(["kamailio", "-c", "-f", str(cfg), "-Y", str(cfg.parent / "run")],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_a_configuration_kamailio_refuses_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "kamailio.cfg"
    broken.write_text(cluster.TEMPLATE.read_text().replace("request_route {", "request_route {{"))
    monkeypatch.setattr(cluster, "TEMPLATE", broken)
    settings = Settings.from_env({"CITAS_INSTANCE": "c", "CITAS_STATE_DIR": str(tmp_path)})
    with pytest.raises(cluster.ClusterError, match="kamailio -c refused"):
        cluster.render_kamailio(settings, [5560])


# As Kamailio 5.6's `kamcmd dispatcher.list` prints it (one node active and
# probed, one found dead by the probes).
KAMCMD_LIST = """{
\tNRSETS: 1
\tRECORDS: {
\t\tSET: {
\t\t\tID: 1
\t\t\tTARGETS: {
\t\t\t\tDEST: {
\t\t\t\t\tURI: sip:127.0.0.1:10060
\t\t\t\t\tFLAGS: AP
\t\t\t\t\tPRIORITY: 0
\t\t\t\t}
\t\t\t\tDEST: {
\t\t\t\t\tURI: sip:127.0.0.1:10061
\t\t\t\t\tFLAGS: IP
\t\t\t\t\tPRIORITY: 0
\t\t\t\t}
\t\t\t}
\t\t}
\t}
}
"""


def test_the_dispatcher_listing_is_read_per_node() -> None:
    assert cluster.parse_dispatcher_list(KAMCMD_LIST) == {
        "sip:127.0.0.1:10060": "AP",
        "sip:127.0.0.1:10061": "IP",
    }
    assert cluster.parse_dispatcher_list("") == {}
