"""The e2e suite on several sandboxes at once: each pytest-xdist worker's instance
and port block (``tests/e2e/conftest.py``: ``e2e_env``), and the line that names it."""

from __future__ import annotations

from dataclasses import astuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.settings import Ports, Settings
from tests.e2e.conftest import WORKER_PORT_STEP, describe, e2e_env


@pytest.mark.parametrize(
    ("environ", "instance", "offset"),
    [
        ({}, "e2e", 2000),  # alone, as always: one file run by a developer, CI before xdist
        ({"CITAS_E2E_INSTANCE": "e2e-mine", "CITAS_E2E_PORT_OFFSET": "14500"}, "e2e-mine", 14500),
        ({"CITAS_E2E_INSTANCE": "", "CITAS_E2E_PORT_OFFSET": ""}, "e2e", 2000),
        ({"PYTEST_XDIST_WORKER": "gw0"}, "e2e-gw0", 2000),
        ({"PYTEST_XDIST_WORKER": "gw1"}, "e2e-gw1", 2500),
        ({"PYTEST_XDIST_WORKER": "gw3"}, "e2e-gw3", 3500),
        (
            {
                "CITAS_E2E_INSTANCE": "e2e-e2epar",
                "CITAS_E2E_PORT_OFFSET": "14500",
                "PYTEST_XDIST_WORKER": "gw1",
            },
            "e2e-e2epar-gw1",
            15000,
        ),
        ({"PYTEST_XDIST_WORKER": ""}, "e2e", 2000),
    ],
)
def test_each_worker_has_its_own_instance_and_offset(
    environ: dict[str, str], instance: str, offset: int
) -> None:
    assert e2e_env(environ) == {"CITAS_INSTANCE": instance, "CITAS_PORT_OFFSET": str(offset)}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CITAS_E2E_PORT_OFFSET": "two"}, "CITAS_E2E_PORT_OFFSET='two' is not an integer"),
        ({"PYTEST_XDIST_WORKER": "master"}, "PYTEST_XDIST_WORKER='master' is not gw<N>"),
    ],
)
def test_an_unusable_setting_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message.replace('(', '[(]')}$"):
        e2e_env(environ)


def port_block(ports: Ports) -> set[int]:
    """Every port a sandbox listens on or uses for media."""
    single = set(astuple(ports)) - {ports.rtp_start, ports.rtp_end}
    return single | set(range(ports.rtp_start, ports.rtp_end + 1))


def worker_ports(base: int, workers: int) -> list[set[int]]:
    blocks = []
    for n in range(workers):
        environ = {"CITAS_E2E_PORT_OFFSET": str(base), "PYTEST_XDIST_WORKER": f"gw{n}"}
        blocks.append(port_block(Settings.from_env(e2e_env(environ)).ports))
    return blocks


@given(
    base=st.integers(min_value=0, max_value=27_000).filter(lambda b: b % 100 == 0),
    workers=st.integers(min_value=2, max_value=4),
)
def test_workers_port_blocks_never_overlap(base: int, workers: int) -> None:
    """Over every base offset and worker count whose ports all exist (the RTP end,
    10999 + 2 * offset, is the highest), no two workers share a port."""
    if 10_999 + 2 * (base + (workers - 1) * WORKER_PORT_STEP) > 65_535:
        with pytest.raises(ValueError, match="out of range"):
            worker_ports(base, workers)
        return
    blocks = worker_ports(base, workers)
    for i, mine in enumerate(blocks):
        for theirs in blocks[i + 1 :]:
            assert not mine & theirs


@pytest.mark.parametrize(("base", "workers"), [(2000, 2), (14500, 2), (0, 4)])
def test_ci_and_documented_layouts_do_not_overlap(base: int, workers: int) -> None:
    blocks = worker_ports(base, workers)
    assert sum(len(b) for b in blocks) == len(set().union(*blocks))


def test_a_failure_names_the_sandbox_it_used() -> None:
    env = {
        **e2e_env({"CITAS_E2E_PORT_OFFSET": "2000", "PYTEST_XDIST_WORKER": "gw1"}),
        "CITAS_STATE_DIR": "/tmp/pytest-of-root/pytest-7/popen-gw1/state0",
        "PYTEST_XDIST_WORKER": "gw1",
    }
    assert describe(env) == (
        "sandbox 'e2e-gw1' at port offset 2500 (SIP 7560, ARI 10588, ops 10580, agent 7570), "
        "state dir /tmp/pytest-of-root/pytest-7/popen-gw1/state0, xdist worker gw1"
    )


def test_a_sandbox_whose_ports_do_not_exist_is_still_named() -> None:
    env = {"CITAS_INSTANCE": "e2e-gw9", "CITAS_PORT_OFFSET": "30000"}
    assert describe(env) == (
        "sandbox 'e2e-gw9' at port offset 30000 "
        "(port rtp_start=70000 is out of range (check CITAS_PORT_OFFSET)), state dir ?"
    )
