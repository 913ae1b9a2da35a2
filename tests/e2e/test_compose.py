"""The compose stack (issue 14): images built on this machine with no registry,
``docker/compose.yaml`` brought up by ``ivr compose up``, and a real sipp call
through the Kamailio container, answered by an Asterisk container and driven
by a controller container, whose record is read back from the PostgreSQL
container.

Run it alone with ``pytest -m compose``; CI runs it in the e2e phase
(``scripts/setup.sh test``). It never skips: when Docker cannot run here, ``up``
fails and so does the test, with the engine's log.

Slow the first time on a machine: two debootstrap roots (the sandbox's, shared
with every e2e test, and the services' one), their import and the builds. Both
roots and the engine's images stay in the cache directory, keyed by their
recipes, so a second run builds in seconds. Its ports: the session's sandbox
offset + ``COMPOSE_OFFSET`` for Kamailio, the nodes 500 and 1000 above
(tests/e2e/test_cluster.py uses +1000 to +2000; tests/unit/test_sandbox_cluster.py
checks the blocks stay apart).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ivr.sandbox import compose
from ivr.sandbox.dockerd import DockerDaemon
from ivr.settings import DEFAULT_CONFIG_DIR, REPO_ROOT, Ports, Settings
from tests.e2e.conftest import E2E_ENV, edit_once, ok

pytestmark = [pytest.mark.e2e, pytest.mark.compose, pytest.mark.timeout(900)]

COMPOSE_OFFSET = 3000
SAID_ONCE = 'prompt: [smoke_you_pressed, "digits:{smoke_digit}"]'
SAID_TWICE = 'prompt: [smoke_you_pressed, "digits:{smoke_digit}", "digits:{smoke_digit}"]'
# A node's RTP range is 1000 ports above the one before (+2 x 500).
RTP_SPAN = (compose.NODES + 1) * 1000


def compose_env(base_offset: int) -> dict[str, str]:
    """The stack's ``CITAS_*``: its offset, and its RTP range moved down into the
    port space when the offset would push it past 65535 (offset 30000: a
    developer's own run beside other sandboxes).

    >>> compose_env(2000)["CITAS_RTP_START"], compose_env(30000)["CITAS_RTP_START"]
    ('20000', '62000')
    """
    offset = base_offset + COMPOSE_OFFSET
    rtp = Ports().rtp_start + 2 * offset
    if rtp + RTP_SPAN > 65535:
        rtp = 62000
    return {
        "CITAS_PORT_OFFSET": str(offset),
        "CITAS_RTP_START": str(rtp),
        "CITAS_RTP_END": str(rtp + 999),
    }


def ivr(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True,
        text=True, errors="replace", timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # The operator's configuration directory, mounted into the controllers: a copy
    # of the shipped one whose smoke flow reads the caller's key back twice, so the
    # call's record shows which files the controller served the line from.
    config = tmp_path_factory.mktemp("operator") / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    edit_once(config / "flows" / "smoke.yaml", SAID_ONCE, SAID_TWICE)
    env = {
        **os.environ,
        **compose_env(int(E2E_ENV["CITAS_PORT_OFFSET"])),
        "CITAS_INSTANCE": f"{E2E_ENV['CITAS_INSTANCE']}-dk",
        "CITAS_STATE_DIR": str(tmp_path_factory.mktemp("compose-state")),
        "CITAS_CONFIG_DIR": str(config),
        "CITAS_CONTROLLERS": "1",
    }
    env.pop("CITAS_DB_URL", None)  # the stack's own PostgreSQL
    settings = Settings.from_env(env)
    daemon = DockerDaemon(settings.cache_dir)
    engine_before = daemon.pid()
    started = time.monotonic()
    try:
        up = ivr(env, "compose", "up", "--checkout", str(REPO_ROOT), timeout=780)
        print(f"ivr compose up: {time.monotonic() - started:.1f} s")
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:  # also when `up` failed half-way: nothing of ours left running
        down = ivr(env, "compose", "down", timeout=180)
        assert down.returncode == 0, down.stdout + down.stderr
        assert compose.load_stack(settings) is None
        assert not compose.stack_dir(settings).exists()
        if engine_before is None:  # the engine we started is stopped
            assert daemon.pid() is None, daemon.log_tail()


def test_a_call_through_the_containers_is_answered_and_recorded(
    stack_env: dict[str, str],
) -> None:
    settings = Settings.from_env(stack_env)
    done = ivr(stack_env, "compose", "status", "--json", timeout=60)
    stack = json.loads(done.stdout)
    assert done.returncode == 0 and stack["serving"], stack
    services = {
        "postgres",
        "kamailio",
        "asterisk-n1",
        "asterisk-n2",
        "controller-n1",
        "controller-n2",
    }
    assert set(stack["containers"]) == services, stack
    # What the containers say about themselves: the images built here, no registry.
    daemon = DockerDaemon(settings.cache_dir)
    ps = daemon.run(["ps", "--format", "{{.Image}}"]).stdout.split()
    assert ps and all(image.startswith("citas-ivr/") for image in ps), ps

    # `ivr call` finds the stack's front port and database by its instance alone,
    # whatever the environment says now.
    call_env = {**stack_env, "CITAS_PORT_OFFSET": "0", "CITAS_RTP_START": "", "CITAS_RTP_END": ""}
    call = ivr(call_env, "call", "smoke", "--json", timeout=240)
    report: dict[str, Any] = json.loads(call.stdout or "{}") | {"exit_code": call.returncode}
    ok(report)

    # The record was read from the stack's PostgreSQL (the only database the
    # controllers write to); its channel id names the node whose Asterisk answered.
    [record] = report["records"]
    assert record["outcome"] == "completed", record
    node, _, _ = str(record["channel_id"]).rpartition("-")
    assert node in {f"{settings.instance}-n1", f"{settings.instance}-n2"}, record
    # The flow came from the mounted configuration directory: the key read back twice.
    media = [m for step in record["path"] if step["kind"] == "prompt" for m in step["media"]]
    assert media.count("digits:1") == 2, media
