"""A cluster on one machine (issue 14), through the real CLI: ``ivr sandbox up
--nodes 2`` starts Kamailio in front of two Asterisk sandbox nodes, a controller
on each and one PostgreSQL; sipp calls the front address.

- Calls are answered on either node: Kamailio's dispatcher takes turns (round
  robin), and each node's channel ids carry its name (asterisk.conf's
  ``systemname``), so the call records say which node served a call.
- A node stopped: the calls placed at once, before the OPTIONS probe has
  noticed, still get answered. Kamailio's INVITE to the dead node times out
  (``fr_timer``, 2 s) and goes to the next node. Once the probe has marked the
  node inactive, new calls go only to the living node.
- ``ivr sandbox status`` says all of it; ``down`` leaves nothing running.

Slow (two Asterisks and a PostgreSQL start); its own ports: the session's
sandbox offset + ``CLUSTER_OFFSET`` for Kamailio, the nodes 500 and 1000 above
(ivr/sandbox/cluster.py), clear of both xdist workers' sandboxes
(tests/e2e/conftest.py: +0 and +500).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from ivr.sandbox import cluster, manager
from ivr.settings import REPO_ROOT, Settings
from tests.e2e.conftest import E2E_ENV, ok, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CLUSTER_OFFSET = 1000


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    import os

    env = {
        **os.environ,
        "CITAS_INSTANCE": f"{E2E_ENV['CITAS_INSTANCE']}-cl",
        "CITAS_PORT_OFFSET": str(int(E2E_ENV["CITAS_PORT_OFFSET"]) + CLUSTER_OFFSET),
        "CITAS_STATE_DIR": str(tmp_path_factory.mktemp("cluster-state")),
        "CITAS_CONTROLLERS": "1",
    }
    env.pop("CITAS_DB_URL", None)  # the cluster's own PostgreSQL
    up = ivr(env, "sandbox", "up", "--nodes", "2", timeout=420)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        down = ivr(env, "sandbox", "down", timeout=180)
        settings = Settings.from_env(env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert cluster.load_state(settings) is None
        for index in (1, 2):
            node = cluster.node_settings(settings, index)
            assert not manager.status(node).running, node.instance
            assert cluster.controller_peer(node).running_pid(node) is None, node.instance
        assert cluster.kamailio_peer(settings).running_pid(settings) is None


def ivr(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True,
        text=True, errors="replace", timeout=timeout, check=False,
    )  # fmt: skip


def status(env: dict[str, str]) -> dict[str, Any]:
    done = ivr(env, "sandbox", "status", "--json", timeout=60)
    found: dict[str, Any] = json.loads(done.stdout)
    found["exit_code"] = done.returncode
    return found


def smoke_call(env: dict[str, str]) -> dict[str, Any]:
    """``ivr call smoke`` against the cluster's front address; its passed report."""
    done = ivr(env, "call", "smoke", "--json", timeout=240)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"ivr call smoke printed no report:\n{done.stdout}\n{done.stderr}"
        ) from None
    report["exit_code"] = done.returncode
    return ok(report)


def served_by(report: dict[str, Any]) -> str:
    """The node whose Asterisk made the call's channel (``<systemname>-<epoch>.<n>``)."""
    [record] = report["records"]
    node, sep, _ = str(record["channel_id"]).rpartition("-")
    assert sep and node, record["channel_id"]
    return node


def test_the_status_names_every_part(cluster_env: dict[str, str]) -> None:
    found = status(cluster_env)
    assert found["exit_code"] == 0, found
    assert found["kamailio_pid"] and found["database_up"], found
    assert found["front"].endswith(f":{Settings.from_env(cluster_env).ports.sip}")
    nodes = found["nodes"]
    assert [n["instance"] for n in nodes] == [
        f"{cluster_env['CITAS_INSTANCE']}-n{i}" for i in (1, 2)
    ]
    for node in nodes:
        assert node["asterisk"] and node["registered"] and node["controller_pid"], node
        assert "A" in node["dispatcher"], node  # active in Kamailio's dispatcher


def test_calls_through_kamailio_are_answered_on_either_node(cluster_env: dict[str, str]) -> None:
    served = [served_by(smoke_call(cluster_env)) for _ in range(4)]
    # Round robin over two active nodes: each takes two of four calls in a row.
    assert sorted(served) == sorted(
        [f"{cluster_env['CITAS_INSTANCE']}-n{i}" for i in (1, 2)] * 2
    ), served


def test_a_stopped_node_loses_no_call(cluster_env: dict[str, str]) -> None:
    settings = Settings.from_env(cluster_env)
    first, second = (cluster.node_settings(settings, i) for i in (1, 2))
    state = cluster.load_state(settings)
    assert state is not None
    second = replace(second, db_url=state.database_url)
    manager.down(second)  # its Asterisk stops: its port goes silent
    stopped_at = time.monotonic()
    try:
        # At once, before the probe has noticed: the calls that Kamailio first
        # sends to the dead node are answered by the other, after fr_timer.
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda _: smoke_call(cluster_env), range(2)))
        assert {served_by(r) for r in reports} == {first.instance}
        # Within the probe interval (and a probe's own time), the node is inactive...
        uri = cluster.node_uri(settings.host, second.ports.sip)
        wait_until(
            lambda: "I" in cluster.dispatcher_states(settings).get(uri, ""),
            cluster.PROBE_INTERVAL_S * 2 + 2, "Kamailio to mark the stopped node inactive",
        )  # fmt: skip
        assert time.monotonic() - stopped_at < 60
        found = status(cluster_env)
        assert found["exit_code"] == 0, found  # still serving, on one node
        [dead] = [n for n in found["nodes"] if n["instance"] == second.instance]
        assert not dead["asterisk"] and "I" in dead["dispatcher"], dead
        # ... and new calls go straight to the living one.
        assert served_by(smoke_call(cluster_env)) == first.instance
    finally:
        manager.up(second)  # the same node again; its controller reconnects
        wait_until(
            lambda: "A" in cluster.dispatcher_states(settings).get(
                cluster.node_uri(settings.host, second.ports.sip), ""
            ),
            60, "the node back in the dispatcher",
        )  # fmt: skip
    wait_until(lambda: status(cluster_env)["exit_code"] == 0 and all(
        n["registered"] for n in status(cluster_env)["nodes"]), 60, "its controller back")  # fmt: skip
