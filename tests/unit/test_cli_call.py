"""``ivr call NAME`` and ``ivr call FILE``: which scenario runs, and the exit
codes when it cannot (the calls themselves: tests/e2e/test_config_dir.py)."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import pytest

from ivr import cli
from ivr.scenarios.runner import CallReport
from ivr.scenarios.spec import SCENARIO_DIR, Scenario, list_scenarios
from ivr.settings import Settings
from ivr.yamlsrc import ConfigError


@pytest.mark.parametrize(
    ("arg", "is_file"),
    [
        ("smoke", False),
        ("non-target-agent", False),
        ("yaml", False),
        ("smoke.yaml.bak", False),
        ("smoke.yaml", True),
        ("smoke.yml", True),
        ("Mine.YAML", True),
        ("./smoke", True),
        ("cases/smoke", True),
        ("/abs/case.yaml", True),
        ("../up.yml", True),
    ],
)
def test_a_path_is_anything_ending_in_yaml_or_with_a_slash(arg: str, is_file: bool) -> None:
    assert cli.is_scenario_file(arg) is is_file


@pytest.mark.parametrize("name", sorted(list_scenarios()))
def test_every_bundled_name_still_works(name: str) -> None:
    assert cli.find_scenario(name).name == name


def own_scenario(directory: Path, file_name: str = "my-case.yaml") -> Path:
    """A tester's file: the bundled smoke scenario under another name."""
    text = (SCENARIO_DIR / "smoke.yaml").read_text(encoding="utf-8")
    path = directory / file_name
    path.write_text(text.replace("name: smoke", "name: my-case", 1), encoding="utf-8")
    return path


@pytest.mark.parametrize("spelling", ["absolute", "relative", "dot-slash", "yml"])
def test_a_testers_own_file_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    path = own_scenario(tmp_path, "my-case.yml" if spelling == "yml" else "my-case.yaml")
    monkeypatch.chdir(tmp_path)
    arg = {"absolute": str(path), "relative": path.name, "dot-slash": f"./{path.name}"}.get(
        spelling, path.name
    )

    scenario = cli.find_scenario(arg)

    assert (scenario.name, scenario.dial) == ("my-case", list_scenarios()["smoke"].dial)


def test_a_file_named_like_a_bundled_scenario_is_still_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "smoke.yaml" means the file in the current directory, never the bundled one.
    monkeypatch.chdir(tmp_path)

    with pytest.raises(cli.ScenarioNotFound, match=r"no scenario file 'smoke\.yaml'"):
        cli.find_scenario("smoke.yaml")
    own_scenario(tmp_path, "smoke.yaml")
    assert cli.find_scenario("smoke.yaml").name == "my-case"


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("/nonexistent/case.yaml", "ivr call: no scenario file '/nonexistent/case.yaml'"),
        ("missing.yml", "ivr call: no scenario file 'missing.yml'"),
        ("dir/case", "ivr call: no scenario file 'dir/case'"),
        ("no-such-scenario", "ivr call: no scenario 'no-such-scenario'; try: ivr call --list"),
    ],
)
def test_a_missing_scenario_exits_2_before_any_call(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arg: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)

    assert cli.main(["call", arg]) == 2

    assert capsys.readouterr().err.startswith(message)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("name: x\ndescription: y\ndial: 1\n", "expect"),
        ("name: x\ndescription: y\ndial: 1\nsteps: [{dtmf: 'A'}]\nexpect: {}\n", "dtmf"),
        ("- not a mapping\n", "scenario"),
    ],
)
def test_an_invalid_file_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, field: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError):
        cli.find_scenario(str(path))

    assert cli.main(["call", str(path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"ivr call: {path}:") and field in err


def test_the_file_is_the_scenario_that_is_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    placed: list[Scenario] = []

    def run_scenario(scenario: Scenario, settings: Settings, keep: Path | None) -> CallReport:
        placed.append(scenario)
        return CallReport(scenario=scenario.name, call_id_prefix="t", sipp_rc=0)

    monkeypatch.setattr("ivr.scenarios.runner.run_scenario", run_scenario)
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path / "state"))
    path = own_scenario(tmp_path)

    assert cli.main(["call", str(path), "--json"]) == 0

    assert [s.name for s in placed] == ["my-case"]
    assert json.loads(capsys.readouterr().out)["scenario"] == "my-case"


@pytest.mark.parametrize("module", ["ivr.cli", "ivr.settings"])
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))

    assert result.attempted > 0 and result.failed == 0
