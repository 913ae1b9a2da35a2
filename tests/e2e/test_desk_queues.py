"""Desk agents in app_queue queues through the real Asterisk (issue 12 §1, docs/desk/queues.md).

A sipp agent (``ivr.scenarios.deskagent``: REGISTER, then answer) logs in through
the ops API (``POST /api/desk/agents/7001/login`` with the token of its desk.yaml
user, ``ana``); a non-target caller transferred by the IVR waits in queue
``l1_general`` (VDN 5550001) and the agent answers with the IVR's X-Citas-*
headers. Paused (API), or logged out (``ivr desk logout``), the agent is not rung: the tester agent
(``PJSIP/agent``, a static member with a high penalty) takes the call, with the
unchanged ``non-target-agent`` scenario. Three calls in all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.scenarios.deskagent import DeskAgentPhone
from ivr.scenarios.spec import SCENARIO_DIR
from ivr.settings import REPO_ROOT, Settings
from tests.e2e.conftest import ControllerProcess, Sandbox, ok, wait_until
from tests.e2e.ops_peers import OpsApi, agent_token, create_token

pytestmark = pytest.mark.e2e

AGENT = "7001"  # Ana Gómez, user ana, profile recepcion (config/citas/desk.yaml)
QUEUES = ["l1_general", "incidentes"]


@pytest.fixture(scope="module")
def tokens(sandbox: Sandbox, controller: ControllerProcess) -> dict[str, str]:
    return {
        "ana": agent_token(sandbox.env, "ana"),  # an agent's own token
        "bruno": agent_token(sandbox.env, "bruno"),  # another agent
        "admin": create_token(sandbox.env, "e2e-desk-admin", "admin"),
    }


def api(settings: Settings, token: str) -> OpsApi:
    return OpsApi(settings.ports.ops_http, token)


def agent_json(client: OpsApi, extension: str) -> dict[str, object]:
    status, body = client.request("GET", "/api/desk/agents")
    assert status == 200, body
    (found,) = [a for a in body["agents"] if a["extension"] == extension]
    return dict(found)


@pytest.fixture
def ana(sandbox: Sandbox, tokens: dict[str, str], tmp_path: Path) -> Iterator[DeskAgentPhone]:
    """Agent 7001's phone registered, and 7001 logged in with its own token."""
    admin = api(sandbox.settings, tokens["admin"])
    admin.request("POST", f"/api/desk/agents/{AGENT}/logout")  # a previous run's (persistent)
    phone = DeskAgentPhone(sandbox.settings, AGENT, tmp_path / "agent", talk_s=2, calls=1,
                           timeout_s=200)  # fmt: skip
    try:
        status, body = api(sandbox.settings, tokens["ana"]).request(
            "POST", f"/api/desk/agents/{AGENT}/login"
        )
        assert status == 200 and body["logged_in"] and body["queues"] == QUEUES, body
        # Registered: app_queue sees the phone free before any call is placed.
        wait_until(lambda: agent_json(admin, AGENT)["device"] == "not_inuse", 10,
                   "app_queue to see 7001's phone free")  # fmt: skip
        yield phone
    finally:
        phone.stop()
        admin.request("POST", f"/api/desk/agents/{AGENT}/logout")


def desk_scenario(tmp_path: Path) -> str:
    """The bundled desk scenario as a file (``ivr call FILE``)."""
    path = tmp_path / "desk-non-target.yaml"
    shutil.copy(SCENARIO_DIR / "desk-non-target.yaml", path)
    return str(path)


@pytest.mark.timeout(300)  # one transferred call answered by a sipp agent
def test_a_logged_in_desk_agent_answers_a_non_target_call_with_the_ivr_context(
    sandbox: Sandbox, ana: DeskAgentPhone, tokens: dict[str, str], tmp_path: Path
) -> None:
    admin = api(sandbox.settings, tokens["admin"])
    shown = agent_json(admin, AGENT)
    assert (shown["logged_in"], shown["paused"], shown["device"]) == (True, False, "not_inuse")

    report = ok(sandbox.call(desk_scenario(tmp_path)))
    phone = ana.wait(60)

    assert phone.ok, phone
    (headers,) = ana.invite_headers()
    assert {k: headers.get(k) for k in ("X-Citas-Segment", "X-Citas-Reason", "X-Citas-Vdn",
                                         "X-Citas-Affiliate")} == {
        "X-Citas-Segment": "non_target", "X-Citas-Reason": "non-target",
        "X-Citas-Vdn": "5550001", "X-Citas-Affiliate": "2020202020",
    }  # fmt: skip
    assert headers["X-Citas-Call-Id"].startswith(report["call_id_prefix"])


@pytest.mark.timeout(300)  # two transferred calls, one after the other
def test_a_paused_then_logged_out_agent_is_not_rung_the_tester_agent_takes_the_calls(
    sandbox: Sandbox, ana: DeskAgentPhone, tokens: dict[str, str]
) -> None:
    own, other = api(sandbox.settings, tokens["ana"]), api(sandbox.settings, tokens["bruno"])
    # Only the agent itself (or an admin) changes its presence, in Spanish.
    status, body = other.request("POST", f"/api/desk/agents/{AGENT}/pause", {"reason": "almuerzo"})
    assert status == 403 and "o un administrador" in body["message"], body
    status, body = own.request("POST", f"/api/desk/agents/{AGENT}/pause", {"reason": "siesta"})
    assert status == 422 and "Motivo de pausa desconocido" in body["message"], body

    status, body = own.request("POST", f"/api/desk/agents/{AGENT}/pause", {"reason": "almuerzo"})
    assert status == 200 and (body["paused"], body["pause_reason"]) == (True, "Almuerzo"), body
    ok(sandbox.call("non-target-agent"))  # the tester agent got it, with its headers

    # Logged out from the command line (ivr desk logout), as a supervisor on the server.
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "desk", "logout", AGENT],
                          capture_output=True, text=True, errors="replace", env=sandbox.env, cwd=REPO_ROOT,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and "sin sesión" in done.stdout, done
    assert not agent_json(own, AGENT)["logged_in"]
    ok(sandbox.call("non-target-agent"))

    assert ana.received_invites() == 0
