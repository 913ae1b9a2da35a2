"""The first real chain: sipp -> Asterisk 22 -> Stasis -> controller -> call record."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.scenarios.spec import SCENARIO_DIR as SCENARIOS
from tests.e2e.conftest import ControllerProcess, Sandbox

pytestmark = pytest.mark.e2e


def steps(report: dict, kind: str) -> list[dict]:
    (record,) = report["records"]
    return [s for s in record["path"] if s["kind"] == kind]


def test_smoke_key_press_rfc4733(sandbox: Sandbox, controller: ControllerProcess) -> None:
    report = sandbox.call("smoke")
    assert report["failures"] == [], report
    assert report["exit_code"] == 0
    (record,) = report["records"]
    assert record["outcome"] == "completed"
    assert [s["digits"] for s in steps(report, "digits")] == ["1"]
    prompts = [m for s in steps(report, "prompt") for m in s["media"]]
    assert prompts[0] == "sound:citas/smoke_welcome"
    assert "digits:1" in prompts and prompts[-1] == "sound:citas/goodbye"


def test_smoke_key_press_sip_info(sandbox: Sandbox, controller: ControllerProcess) -> None:
    report = sandbox.call("smoke-info")
    assert report["failures"] == [] and report["exit_code"] == 0, report
    assert [s["digits"] for s in steps(report, "digits")] == ["7"]


def test_silence_is_retried_then_ends_with_a_message(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = sandbox.call("smoke-silence")
    assert report["failures"] == [] and report["exit_code"] == 0, report
    attempts = steps(report, "digits")
    assert [(s["attempt"], s["ended_by"]) for s in attempts] == [(1, "no_input"), (2, "no_input")]
    last_prompt = steps(report, "prompt")[-1]["media"]
    assert last_prompt == ["sound:citas/smoke_no_input", "sound:citas/goodbye"]


def test_caller_hangup_closes_the_record(sandbox: Sandbox, controller: ControllerProcess) -> None:
    report = sandbox.call("smoke-hangup")
    assert report["failures"] == [] and report["exit_code"] == 0, report
    (record,) = report["records"]
    assert record["outcome"] == "abandoned" and record["end_reason"] == "caller_hangup"


def test_scenario_fails_when_the_ivr_misbehaves(
    sandbox: Sandbox, controller: ControllerProcess, tmp_path: Path
) -> None:
    """The judge is not a rubber stamp: with no controller, the smoke scenario fails."""
    # With no controller the dialplan sends the caller to the agents' queue: the
    # tester agent answers it here. Unanswered, the queue's INVITE to the agent's
    # port was retransmitted for 32 s (SIP timer B) into the next test's agent,
    # which took it for its own call (test_controller_down_..., seen 2026-11-30).
    smoke = yaml.safe_load((SCENARIOS / "smoke.yaml").read_text(encoding="utf-8"))
    scenario = tmp_path / "smoke-with-agent.yaml"
    scenario.write_text(yaml.safe_dump({**smoke, "agent": True}), encoding="utf-8")
    controller.stop()
    try:
        report = sandbox.call(str(scenario))
        assert report["exit_code"] == 1
        assert any("call record" in f for f in report["failures"]), report
    finally:
        controller.start()


def test_controller_down_dialplan_sends_caller_to_agent(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    controller.stop()
    try:
        assert not sandbox.app_registered()
        report = sandbox.call("controller-down-agent")
        assert report["failures"] == [] and report["exit_code"] == 0, report
        assert report["agent_headers"]["X-Citas-Reason"] == "ivr-unavailable"
        assert report["records"] == []
    finally:
        controller.start()
