"""Tester scenarios: the bundled ones load, bad files fail with file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.scenarios.spec import SCENARIO_DIR, Step, list_scenarios, load_scenario
from ivr.yamlsrc import ConfigError


def test_every_bundled_scenario_loads() -> None:
    files = sorted(SCENARIO_DIR.glob("*.yaml"))

    scenarios = list_scenarios()

    assert len(scenarios) == len(files) >= 5
    assert {"smoke", "smoke-info", "smoke-hangup", "smoke-silence", "controller-down-agent"} <= set(
        scenarios
    )
    for s in scenarios.values():
        assert s.description and s.dial.isdigit()
        assert s.ends_by in ("ivr", "caller")


def test_bundled_scenarios_say_what_they_expect() -> None:
    scenarios = list_scenarios()

    smoke = scenarios["smoke"]
    assert smoke.steps == (Step("wait", seconds=1.0), Step("dtmf", digits="1"))
    assert (smoke.expect.outcome, smoke.expect.digits) == ("completed", ("1",))
    assert smoke.expect.variables == {"smoke_digit": "1"}
    assert scenarios["smoke-info"].steps[1] == Step("dtmf", digits="7", mode="info")
    hangup = scenarios["smoke-hangup"]
    assert (hangup.ends_by, hangup.steps[-1]) == ("caller", Step("hangup"))
    down = scenarios["controller-down-agent"]
    assert (down.controller, down.agent, down.expect.record) == (False, True, False)
    assert down.expect.agent_headers["X-Citas-Vdn"] == "5550001"


VALID = """\
name: t
description: a test scenario
dial: 4440001
steps:
  - wait: 1
  - dtmf: "12"
expect:
  outcome: completed
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_defaults_and_number_coercion(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, VALID))

    assert (s.dial, s.caller_ids, s.timeout, s.calls) == ("4440001", ("3000000000",), 90.0, 1)
    assert (s.ends_by, s.agent, s.controller) == ("ivr", False, True)
    assert s.steps == (Step("wait", seconds=1.0), Step("dtmf", digits="12", mode="rfc4733"))


def test_the_file_dtmf_mode_applies_unless_a_step_says_otherwise(tmp_path: Path) -> None:
    text = VALID.replace("steps:\n", "dtmf_mode: info\nsteps:\n")
    text = text.replace('  - dtmf: "12"\n', '  - dtmf: "12"\n  - {dtmf: "3", mode: rfc4733}\n')

    s = load_scenario(write(tmp_path, text))

    assert [step.mode for step in s.steps if step.kind == "dtmf"] == ["info", "rfc4733"]


def test_a_list_of_caller_ids_gives_one_per_call(tmp_path: Path) -> None:
    text = VALID + 'calls: 2\ncaller_id: [3001111111, "3002222222"]\n'

    s = load_scenario(write(tmp_path, text))

    assert (s.calls, s.caller_ids, s.caller_id) == (2, ("3001111111", "3002222222"), "3001111111")


def test_caller_ids_may_be_international_or_withheld(tmp_path: Path) -> None:
    # What carriers put in the From user: +country code, or RFC 3323's anonymous.
    text = VALID + 'calls: 2\ncaller_id: ["+573001234567", anonymous]\n'
    s = load_scenario(write(tmp_path, text))
    assert s.caller_ids == ("+573001234567", "anonymous")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


BAD = {
    "missing name": (VALID.replace("name: t\n", ""), "description:", "name", "is required"),
    "missing expect": (VALID.replace("expect:\n  outcome: completed\n", ""), "name: t", "expect", "is required"),
    "bad keys": (VALID.replace('"12"', '"12a"'), '"12a"', "steps[1].dtmf", "keys must be 0-9 * #"),
    "bad mode": (VALID.replace('- dtmf: "12"', '- {dtmf: "1", mode: sms}'), "mode: sms", "steps[1].mode", "must be rfc4733 or info"),
    "unknown step": (VALID.replace("- wait: 1", "- sing: 1"), "sing", "steps[0]", "unknown step {'sing': 1}; a step is one of: wait, dtmf (with mode), hangup"),
    "two kinds in a step": (VALID.replace("- wait: 1", "- {wait: 1, hangup: true}"), "- {wait", "steps[0].hangup", "a step does one thing"),
    "bad ends_by": (VALID + "ends_by: agent\n", "ends_by", "ends_by", "must be ivr or caller"),
    "wrong type": (VALID + "timeout: long\n", "timeout", "timeout", "must be number, got str"),
    "steps not a list": (VALID.replace("steps:\n  - wait: 1\n  - dtmf: \"12\"\n", "steps: wait\n"), "steps:", "steps", "must be list, got str"),
    "caller id not a number": (VALID + "caller_id: [3001111111, withheld]\n", "caller_id", "caller_id[1]", "'withheld' is not a number, +number or anonymous"),
    "caller id plus inside": (VALID + "caller_id: \"57+3001111111\"\n", "caller_id", "caller_id", "is not a number, +number or anonymous"),
    "yaml syntax": (VALID.replace("dial: 4440001", "dial: [4440001"), None, "yaml", ""),
    "not a mapping": ("- just a list\n", "- just", "scenario", "must be a mapping"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "needle", "field", "problem"), BAD.values(), ids=BAD.keys())
def test_bad_scenario_files_are_config_errors(
    tmp_path: Path, text: str, needle: str | None, field: str, problem: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_scenario(path)

    err = caught.value
    assert (err.file, err.field) == (str(path), field)
    assert problem in err.problem
    if needle is not None:
        assert err.line == line_of(text, needle)
    else:
        assert err.line is not None and err.line >= 1


def test_a_wait_that_is_not_a_number_is_a_config_error(tmp_path: Path) -> None:
    # float("soon") escapes as a bare ValueError: the CLI then prints a traceback
    # instead of the file and line.
    text = VALID.replace("wait: 1", "wait: soon")
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_scenario(path)

    assert (caught.value.file, caught.value.line) == (str(path), line_of(text, "soon"))
