"""A deployment's own directory and line table are what calls use, through the real Asterisk.

A phone two affiliates share identifies neither of them:

Review of issue 9: since caller IDs and directory numbers are normalised (§2),
``3001234567`` and ``+57 300 123 4567`` in two entries are one number, and the
lookup silently took the last entry: calling from Ana's phone, listed again for
Carla, a caller was taken for Carla. Here a deployment's own directory
(``CITAS_CONFIG_DIR``, a copy of the shipped one) lists Ana's phone for Carla
too; a tester's own scenario file (``ivr call FILE``) calls from it. The caller
is asked for the document, types Carla's, finds no slot at her site and gets the
WhatsApp SMS. Before the fix the caller ID found Carla and the typed document
answered the service menu.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ivr.settings import REPO_ROOT
from tests.e2e.conftest import ControllerProcess, Sandbox, edit_once, ok

pytestmark = pytest.mark.e2e

SCENARIO = """\
name: shared-phone-document
description: Ana's phone is listed for Carla too; the caller ID identifies neither.
dial: "4441234"
caller_id: "3001234567"
steps:
  - wait: 10.0
  - dtmf: "3030303030#"
  - wait: 3.0
  - dtmf: "1"
  - wait: 2.0
  - dtmf: "1"
ends_by: ivr
timeout: 90
expect:
  outcome: redirected_whatsapp
  nodes: [identify_caller, ask_document, lookup_document, main_menu, ask_service, find_slot, whatsapp_bye]
  variables: {identified_by: document, affiliate_id: "3030303030", segment: target, sms: queued}
  sms_sent: 1
"""


def own_config(tmp_path: Path, table: str, old: str, new: str) -> Path:
    """A copy of the shipped config with ``old`` (found exactly once) made ``new`` in citas/<table>."""
    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    edit_once(config / "citas" / table, old, new)
    # A line without the agent desktop (no desk.yaml): its VDNs are plain dialplan
    # destinations. With desk.yaml, ivr serve refuses a line.yaml VDN that is no desk
    # queue (config/citas/desk.yaml, docs/desk/core.md), which these VDNs are not.
    (config / "citas" / "desk.yaml").unlink()
    return config


@contextmanager
def serving(sandbox: Sandbox, config: Path, log: Path) -> Iterator[Sandbox]:
    """A controller of its own on ``config`` (CITAS_CONFIG_DIR) for the time of the block."""
    own = Sandbox(sandbox.settings, {**sandbox.env, "CITAS_CONFIG_DIR": str(config)})
    serve = ControllerProcess(own, log)
    serve.start()
    try:
        yield own
    finally:
        serve.stop()


@pytest.mark.timeout(240)
def test_a_phone_two_affiliates_share_identifies_neither(
    sandbox: Sandbox, no_session_controller: None, tmp_path: Path
) -> None:
    # Carla's phone becomes Ana's, written in another form.
    config = own_config(
        tmp_path, "affiliates.yaml", 'phone: "3003333333"', 'phone: "+57 300 123 4567"'
    )
    scenario = tmp_path / "shared-phone.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")

    with serving(sandbox, config, tmp_path / "serve.log") as own:
        report = ok(own.call(str(scenario)))

    (record,) = report["records"]
    steps = [s for s in record["path"] if s.get("kind") == "action"]
    assert steps[0]["action"] == "identify_by_caller_id" and steps[0]["outcome"] == "not_found"


INVALID_INPUT = (REPO_ROOT / "ivr" / "scenarios" / "invalid-input-agent.yaml").read_text(
    encoding="utf-8"
)
OWN_DEFAULT_VDN = "5550088"


@pytest.mark.timeout(240)
def test_the_general_agents_vdn_comes_from_line_yaml(
    sandbox: Sandbox, no_session_controller: None, tmp_path: Path
) -> None:
    # Review of issue 9: the citas flow named its own agent_vdn "5550001", which
    # won over line.yaml's agent_vdn.default for every transfer before the
    # eligibility decision (unknown caller, invalid input, service down): a
    # deployment that changed line.yaml still sent those callers to 5550001.
    config = own_config(
        tmp_path, "line.yaml", 'default: "5550001"', f'default: "{OWN_DEFAULT_VDN}"'
    )
    scenario = tmp_path / "invalid-input-own-vdn.yaml"
    assert INVALID_INPUT.count("    X-Citas-Reason: invalid-input\n") == 1
    scenario.write_text(
        INVALID_INPUT.replace("name: invalid-input-agent", "name: invalid-input-own-vdn").replace(
            "    X-Citas-Reason: invalid-input\n",
            f'    X-Citas-Reason: invalid-input\n    X-Citas-Vdn: "{OWN_DEFAULT_VDN}"\n',
        ),
        encoding="utf-8",
    )
    with serving(sandbox, config, tmp_path / "serve.log") as own:
        report = ok(own.call(str(scenario)))

    assert report["agent_headers"]["X-Citas-Vdn"] == OWN_DEFAULT_VDN


INCIDENT = (REPO_ROOT / "ivr" / "scenarios" / "incident-agent.yaml").read_text(encoding="utf-8")
OWN_INCIDENT_VDN = "5550066"


@pytest.mark.timeout(240)
def test_the_incident_queue_comes_from_line_yaml(
    sandbox: Sandbox, no_session_controller: None, tmp_path: Path
) -> None:
    # Review of issue 9: line.yaml's agent_vdn.incident was read and never used;
    # the flow's incident transfer named "5550002" itself.
    config = own_config(
        tmp_path, "line.yaml", 'incident: "5550002"', f'incident: "{OWN_INCIDENT_VDN}"'
    )
    scenario = tmp_path / "incident-own-vdn.yaml"
    assert INCIDENT.count('X-Citas-Vdn: "5550002"') == 1
    scenario.write_text(
        INCIDENT.replace("name: incident-agent", "name: incident-own-vdn").replace(
            'X-Citas-Vdn: "5550002"', f'X-Citas-Vdn: "{OWN_INCIDENT_VDN}"'
        ),
        encoding="utf-8",
    )

    def incident(own: Sandbox, state: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "ivr.cli", "incident", state, "--reason", "e2e: incident VDN"],
            capture_output=True, text=True, errors="replace", timeout=60, env=own.env, cwd=REPO_ROOT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    with serving(sandbox, config, tmp_path / "serve.log") as own:
        incident(own, "on")
        try:
            report = ok(own.call(str(scenario)))
        finally:
            incident(own, "off")

    assert report["agent_headers"]["X-Citas-Vdn"] == OWN_INCIDENT_VDN
