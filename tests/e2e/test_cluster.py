"""A cluster on one machine (issue 14), through the real CLI: ``ivr sandbox up
--nodes 2`` starts Kamailio in front of two Asterisk sandbox nodes, a controller
on each and one PostgreSQL; sipp calls the front address.

- Calls are answered on either node. Kamailio's dispatcher takes turns (round
  robin), and each node's channel ids carry its name (asterisk.conf's
  ``systemname``), so the call records say which node served a call.
- A node that dies between two probes loses no call. The probes are held still
  for the test (``dispatcher.ping_active 0``), so Kamailio still takes the node
  for alive: the INVITE sent to it gets no answer within ``fr_timer`` (2 s), and
  the failure route (its line in Kamailio's log) gives the call to the other node.
- A stopped node is found by the probes alone within two probe intervals; new
  calls then go straight to the living node, and the node comes back the same way.
- A flag set once reaches the controllers of both nodes within a second
  (PostgreSQL LISTEN/NOTIFY: ivr/store/changes.py).
- The cluster's PostgreSQL restarted during a call: the call goes on, and its
  record is written and closed (the records' buffer, ivr/store/records.py); and
  during two citas calls: one is booked, the other's SMS is sent exactly once.
- With its controller down, each node's dialplan sends its callers to the
  agents, and Kamailio keeps the node in rotation.
- The console of either node lists both nodes' controllers (the registry's
  heartbeats in the shared PostgreSQL), on the flags revision just set; a
  controller stopped cleanly shows "detenido" beside the one that replaced it.
- ``ivr sandbox status`` says all of it, and ``down`` leaves nothing running.

Slow: two Asterisks and a PostgreSQL start. It uses its own ports: the session's
sandbox offset + ``CLUSTER_OFFSET`` for Kamailio, and the nodes 500 and 1000
above that (ivr/sandbox/cluster.py). Both xdist workers' sandboxes stay clear
(tests/e2e/conftest.py: +0 and +500; tests/unit/test_sandbox_cluster.py checks it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ivr.sandbox import cluster, kamailio, manager
from ivr.settings import REPO_ROOT, Settings
from tests.e2e.conftest import E2E_ENV, ok, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CLUSTER_OFFSET = 1000
# The failure route's line in Kamailio's log (ivr/sandbox/kamailio.cfg).
FAILED_OVER = re.compile(r"node sip:\S+ failed call (\S+) \((\d+)\): next node")


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "CITAS_INSTANCE": f"{E2E_ENV['CITAS_INSTANCE']}-cl",
        "CITAS_PORT_OFFSET": str(int(E2E_ENV["CITAS_PORT_OFFSET"]) + CLUSTER_OFFSET),
        "CITAS_STATE_DIR": str(tmp_path_factory.mktemp("cluster-state")),
        "CITAS_CONTROLLERS": "1",
    }
    env.pop("CITAS_DB_URL", None)  # the cluster's own PostgreSQL
    try:
        up = ivr(env, "sandbox", "up", "--nodes", "2", timeout=420)
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:  # also when `up` failed or timed out half-way: nothing left running
        down = ivr(env, "sandbox", "down", timeout=180)
        settings = Settings.from_env(env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert cluster.load_state(settings) is None
        for index in (1, 2):
            node = cluster.node_settings(settings, index)
            assert not manager.status(node).running, node.instance
            assert cluster.controller_peer(node).running_pid(node) is None, node.instance
        assert kamailio.kamailio_peer(settings).running_pid(settings) is None


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


def call(env: dict[str, str], scenario: str, *options: str) -> dict[str, Any]:
    """``ivr call SCENARIO`` against the cluster's front address; its passed report
    (the scenario's own expectations met: tests/e2e/conftest.py ``ok``)."""
    done = ivr(env, "call", scenario, "--json", *options, timeout=240)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"ivr call {scenario} printed no report:\n{done.stdout}\n{done.stderr}"
        ) from None
    report["exit_code"] = done.returncode
    return ok(report)


def smoke_call(env: dict[str, str]) -> dict[str, Any]:
    return call(env, "smoke")


def served_by(report: dict[str, Any]) -> str:
    """The node whose Asterisk made the call's channel (``<systemname>-<epoch>.<n>``)."""
    [record] = report["records"]
    node, sep, _ = str(record["channel_id"]).rpartition("-")
    assert sep and node, record["channel_id"]
    return node


def flags_of(settings: Settings, node: Settings) -> str:
    return kamailio.dispatcher_states(settings).get(
        kamailio.node_uri(settings.host, node.ports.sip), ""
    )


def restart_node(settings: Settings, node: Settings, cluster_env: dict[str, str]) -> None:
    """The node's Asterisk up again; the probes make it active, its controller
    registers again by itself."""
    manager.up(node)
    wait_until(lambda: "A" in flags_of(settings, node), kamailio.PROBE_INTERVAL_S * 2 + 5,
               "the node back in the dispatcher")  # fmt: skip
    wait_until(lambda: status(cluster_env)["exit_code"] == 0
               and all(n["registered"] for n in status(cluster_env)["nodes"]), 60,
               "its controller back")  # fmt: skip


def test_the_status_names_every_part(cluster_env: dict[str, str]) -> None:
    found = status(cluster_env)
    assert found["exit_code"] == 0 and found["serving"], found
    assert found["kamailio_pid"] and found["database_up"], found
    assert found["front"].endswith(f"@127.0.0.1:{Settings.from_env(cluster_env).ports.sip}")
    nodes = found["nodes"]
    assert [n["instance"] for n in nodes] == [
        f"{cluster_env['CITAS_INSTANCE']}-n{i}" for i in (1, 2)
    ]
    for node in nodes:
        assert node["asterisk"] and node["registered"] and node["controller_pid"], node
        # Listed inactive: active means a probe was answered (kamailio.dispatcher_list).
        assert "A" in node["dispatcher"], node


def test_calls_through_kamailio_are_answered_on_either_node(cluster_env: dict[str, str]) -> None:
    served = [served_by(smoke_call(cluster_env)) for _ in range(4)]
    # Round robin over two active nodes: each takes two of four calls in a row.
    assert sorted(served) == sorted(
        [f"{cluster_env['CITAS_INSTANCE']}-n{i}" for i in (1, 2)] * 2
    ), served


def test_a_node_dead_between_two_probes_loses_no_call(cluster_env: dict[str, str]) -> None:
    settings = Settings.from_env(cluster_env)
    first, second = (cluster.node_settings(settings, i) for i in (1, 2))
    log = kamailio.kamailio_peer(settings).log_file(settings)
    kamailio.set_probing(settings, False)  # the dispatcher's view held still
    try:
        manager.down(second)  # its Asterisk stops: its port goes silent
        assert "A" in flags_of(settings, second)  # Kamailio does not know yet
        seen = len(FAILED_OVER.findall(log.read_text(errors="replace")))
        with ThreadPoolExecutor(2) as pool:  # round robin: one of the two goes to the dead node
            reports = list(pool.map(lambda _: smoke_call(cluster_env), range(2)))
        assert {served_by(r) for r in reports} == {first.instance}
        failed_over = FAILED_OVER.findall(log.read_text(errors="replace"))[seen:]
        prefixes = {r["call_id_prefix"] for r in reports}
        assert [code for call, code in failed_over if call.startswith(tuple(prefixes))] == [
            "408"
        ], failed_over
        assert "I" in flags_of(settings, second)  # marked by the failure route, not a probe
    finally:
        kamailio.set_probing(settings, True)
        restart_node(settings, second, cluster_env)


def test_a_stopped_node_is_found_by_the_probes(cluster_env: dict[str, str]) -> None:
    settings = Settings.from_env(cluster_env)
    first, second = (cluster.node_settings(settings, i) for i in (1, 2))
    manager.down(second)
    stopped_at = time.monotonic()
    try:
        wait_until(lambda: "I" in flags_of(settings, second), kamailio.PROBE_INTERVAL_S * 2 + 2,
                   "the probes to mark the stopped node inactive")  # fmt: skip
        found = status(cluster_env)
        assert found["exit_code"] == 0 and found["serving"], found  # still serving, on one node
        [dead] = [n for n in found["nodes"] if n["instance"] == second.instance]
        assert not dead["asterisk"] and "I" in dead["dispatcher"], dead
        print(f"\nstopped node inactive after {time.monotonic() - stopped_at:.1f} s")
        # New calls go straight to the living node.
        assert [served_by(smoke_call(cluster_env)) for _ in range(2)] == [first.instance] * 2
    finally:
        restart_node(settings, second, cluster_env)


def flags_revision(node: Settings) -> float:
    """The flags revision a node's controller runs (its ``/metrics``, as ``status`` reads it)."""
    found = cluster.controller_metrics(node)
    assert "citas_flags_revision" in found, f"no citas_flags_revision on {node.instance}'s /metrics"
    return found["citas_flags_revision"]


def viewer_token(env: dict[str, str]) -> str:
    """A viewer's token for the ops API, made in the cluster's database."""
    name = f"e2e-viewer-{time.monotonic_ns()}"
    done = ivr(env, "ops", "token", "create", name, "--role", "viewer", "--reason", "prueba",
               timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def registry(node: Settings, token: str) -> dict[str, Any]:
    """``GET /api/controllers`` on ``node``'s ops API (the controller registry)."""
    request = urllib.request.Request(
        f"http://{node.host}:{node.ports.ops_http}/api/controllers",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found


def test_a_flag_change_reaches_both_nodes_within_a_second(cluster_env: dict[str, str]) -> None:
    settings = Settings.from_env(cluster_env)
    nodes = [cluster.node_settings(settings, i) for i in (1, 2)]
    before = [flags_revision(n) for n in nodes]
    assert before[0] == before[1], before
    # The CLI with the cluster's instance writes the cluster's database (its own
    # PostgreSQL: no CITAS_DB_URL in this environment).
    done = ivr(
        cluster_env,
        "flags",
        "set",
        "promo_audio",
        "off",
        "--reason",
        "prueba del clúster",
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    set_at = time.monotonic()
    try:
        wait_until(lambda: all(flags_revision(n) > before[0] for n in nodes), 1.0,
                   "both nodes' controllers to run the new flags revision")  # fmt: skip
        assert time.monotonic() - set_at < 1.0
        assert flags_revision(nodes[0]) == flags_revision(nodes[1])
        # `ivr sandbox status` says it per node, beside the breaker and the calls.
        shown = status(cluster_env)["nodes"]
        assert {n["flags_revision"] for n in shown} == {int(flags_revision(nodes[0]))}, shown
        assert {n["breaker"] for n in shown} == {"closed"}, shown
        # And the console of either node shows both nodes' controllers, each on the
        # new revision (their heartbeats, written at once on a reload).
        token = viewer_token(cluster_env)
        for node in nodes:
            wait_until(lambda node=node: all(
                c["flags_current"] for n in registry(node, token)["nodes"] for c in n["controllers"]
            ), 5.0, f"{node.instance}'s console to show every controller on the new revision")  # fmt: skip
            found = registry(node, token)
            assert [n["instance"] for n in found["nodes"]] == [n.instance for n in nodes], found
            for shown_node in found["nodes"]:
                active = [c for c in shown_node["controllers"] if c["health"] == "active"]
                assert len(active) == 1, shown_node  # CITAS_CONTROLLERS=1: one process a node
                assert active[0]["ari_connected"] and active[0]["breaker"] == "closed", active
                assert active[0]["flags_revision"] == found["flags_revision"], active
    finally:
        reset = ivr(
            cluster_env, "flags", "reset", "promo_audio", "--reason", "fin de la prueba", timeout=60
        )
        assert reset.returncode == 0, reset.stdout + reset.stderr


def test_a_postgresql_restart_loses_no_call_record(cluster_env: dict[str, str]) -> None:
    from ivr.sandbox.postgres import ThrowawayPostgres

    state = cluster.load_state(Settings.from_env(cluster_env))
    assert state is not None and state.own_postgres
    server = ThrowawayPostgres(Path(state.postgres_dir) / "pg")
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(smoke_call, cluster_env)
        time.sleep(2.0)  # the call is up: its record opened, its steps to come
        pid_before = server.pid()
        server.restart()  # every session cut, as when the database host restarts it
        assert server.pid() not in (None, pid_before)
        report = running.result(timeout=240)  # ok(): record written and closed, path as expected
    [record] = report["records"]
    assert record["outcome"] == "completed", record


def test_a_postgresql_restart_loses_no_booking_nor_sms(cluster_env: dict[str, str]) -> None:
    # Two citas calls, one per node (round robin), both in the promotional audio
    # when the database restarts: every step after it (the caller identified, the
    # slot found and booked; the SMS queued, then sent by a node's worker) runs on
    # connections opened after the restart.
    from ivr.booking.db import DbSlotSource
    from ivr.sandbox.postgres import ThrowawayPostgres
    from ivr.store import Database

    settings = cluster.with_cluster_database(Settings.from_env(cluster_env))
    state = cluster.load_state(settings)
    assert state is not None and state.own_postgres
    server = ThrowawayPostgres(Path(state.postgres_dir) / "pg")
    with ThreadPoolExecutor(2) as pool:
        booked = pool.submit(call, cluster_env, "target-booked")  # seeds the agenda first
        time.sleep(2.0)
        redirected = pool.submit(call, cluster_env, "target-no-slots")
        time.sleep(4.0)  # both in the promotional audio (10 s)
        server.restart()
        reports = [booked.result(timeout=240), redirected.result(timeout=240)]
    assert {served_by(r) for r in reports} == set(state.nodes), "one call per node"
    # ok() checked each call's path, its outcome, and the SMS: sent exactly once, by
    # one node's gateway. The booking is in the database, the call's own.
    [record] = reports[0]["records"]
    variables = record["variables"]

    async def bookings() -> list[Any]:
        db = Database(settings.database_url)
        try:
            source = DbSlotSource(db, timeout=10.0)
            return await source.bookings_for(str(variables["affiliate_id"]))
        finally:
            await db.close()

    found = [b for b in asyncio.run(bookings()) if b.id == variables["booking_id"]]
    assert [b.call_id for b in found] == [record["id"]], found


def test_with_no_controller_a_node_sends_its_callers_to_the_agents(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    # Both controllers stopped: Kamailio keeps both nodes active (its probes ask
    # Asterisk), and each node's dialplan sends its callers to the agent VDN, at
    # the cluster's one agent address (cluster.SHARED_PHONES).
    settings = Settings.from_env(cluster_env)
    nodes = [cluster.node_settings(settings, i) for i in (1, 2)]
    for node in nodes:
        cluster.controller_peer(node).stop(node)
    try:
        time.sleep(kamailio.PROBE_INTERVAL_S * 2)
        assert all("A" in flags_of(settings, n) for n in nodes), "a node left rotation"
        sources = []
        for attempt in (1, 2):  # round robin: one call per node
            keep = tmp_path / f"call-{attempt}"
            call(cluster_env, "controller-down-agent", "--keep", str(keep))  # agent headers
            invite = (keep / "agent_messages.log").read_text(errors="replace")
            sources.append(int(re.findall(r"Via: SIP/2.0/UDP [\d.]+:(\d+)", invite)[0]))
        assert sorted(sources) == sorted(n.ports.sip for n in nodes), sources
    finally:
        up = ivr(cluster_env, "sandbox", "up", "--nodes", "2", timeout=300)  # the controllers again
        assert up.returncode == 0, up.stdout + up.stderr
    # The console: each node's stopped controller "detenido" beside its new one.
    found = registry(nodes[0], viewer_token(cluster_env))
    for shown_node in found["nodes"]:
        health = sorted(c["health"] for c in shown_node["controllers"])
        assert health[:1] == ["active"] and "stopped" in health, shown_node


def test_a_second_up_is_refused_while_a_plain_sandbox_holds_the_instance(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    # The README's demo sandbox and a cluster on the same instance: refused before
    # anything starts (docs/cluster.md), here with a sandbox of this test's own.
    del cluster_env  # the cluster keeps running beside it
    env = {**os.environ, "CITAS_INSTANCE": f"{E2E_ENV['CITAS_INSTANCE']}-solo",
           "CITAS_PORT_OFFSET": str(int(E2E_ENV["CITAS_PORT_OFFSET"]) + CLUSTER_OFFSET + 1500),
           "CITAS_STATE_DIR": str(tmp_path)}  # fmt: skip
    solo = Settings.from_env(env)
    manager.up(solo)
    try:
        refused = ivr(env, "sandbox", "up", "--nodes", "2", timeout=60)
        assert refused.returncode != 0 and "runs as a single node" in refused.stderr, refused.stderr
        assert cluster.load_state(solo) is None  # no cluster.json written
    finally:
        manager.down(solo)
