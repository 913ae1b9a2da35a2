"""A bad configuration file makes the CLI exit with status 2, naming file, line and
field: ``ivr flow check``, ``ivr config check``, ``ivr serve`` at start and
``ivr call`` (real processes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import REPO_ROOT

CONFIG = REPO_ROOT / "config"


def ivr(*args: str, config_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if config_dir is not None:
        env["CITAS_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args],
        capture_output=True, text=True, errors="replace", timeout=90, check=False, env=env,
    )  # fmt: skip


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "config"
    shutil.copytree(CONFIG, copy)
    return copy


def misspell(path: Path, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` once in ``path``; the line it is on."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


LOOPING_FLOW = """\
flow: looping
start: ask
nodes:
  ask: {kind: menu, prompt: goodbye, options: {"1": bye}, on_failure: again}
  again: {kind: play, prompt: goodbye, next: ask_again}
  ask_again: {kind: play, prompt: goodbye, next: again}
  bye: {kind: hangup}
"""


def test_flow_check_exits_2_naming_the_loop(tmp_path: Path) -> None:
    bad = tmp_path / "looping.yaml"
    bad.write_text(LOOPING_FLOW, encoding="utf-8")

    done = ivr("flow", "check", str(CONFIG / "flows" / "smoke.yaml"), str(bad))

    assert done.returncode == 2, done.stderr
    assert f"{bad}:5: nodes.again: a caller can loop forever" in done.stderr
    assert "loop: again -> ask_again -> again" in done.stderr
    assert "flow 'smoke' ok" in done.stdout


def test_flow_check_of_the_real_flows_exits_0() -> None:
    done = ivr("flow", "check", *map(str, sorted((CONFIG / "flows").glob("*.yaml"))))

    assert done.returncode == 0, done.stderr


def test_config_check_of_the_real_configuration_exits_0() -> None:
    done = ivr("config", "check", str(CONFIG))

    assert done.returncode == 0, done.stderr
    for name in ("line", "services", "sites", "eligibility", "affiliates", "cases", "desk"):
        assert f"citas/{name}.yaml: ok" in done.stdout
    assert "flows/citas.yaml: ok" in done.stdout and "prompts.yaml: ok" in done.stdout


def test_config_check_exits_2_naming_every_bad_file(config_copy: Path) -> None:
    sites, line = config_copy / "citas" / "sites.yaml", config_copy / "citas" / "line.yaml"
    at_sites = misspell(sites, "phone_booking_closed_from: null", "phone_booking_closed: null")
    at_line = misspell(line, 'number: "573001112233"', "number: 573001112233")

    done = ivr("config", "check", str(config_copy))

    assert done.returncode == 2
    assert f"{sites}:{at_sites}: sites.norte.phone_booking_closed: unknown field" in done.stderr
    assert f"{line}:{at_line}: whatsapp.number: must be a phone number" in done.stderr
    assert "flows/citas.yaml: not checked" in done.stderr
    assert "services.yaml: ok" in done.stdout


def test_config_check_exits_2_for_a_looping_flow_in_the_directory(config_copy: Path) -> None:
    (config_copy / "flows" / "looping.yaml").write_text(LOOPING_FLOW, encoding="utf-8")

    done = ivr("config", "check", str(config_copy))

    assert done.returncode == 2
    assert f"{config_copy / 'flows' / 'looping.yaml'}:5: nodes.again:" in done.stderr
    assert "flows/citas.yaml: ok" in done.stdout


def test_serve_exits_2_at_start_on_a_bad_flow(config_copy: Path) -> None:
    flow = config_copy / "flows" / "citas.yaml"
    at = misspell(flow, "    on_failure: ask_document\n", "    on_falure: ask_document\n")

    done = ivr("serve", "--instance", "config-check-test", config_dir=config_copy)

    assert done.returncode == 2, done.stderr
    assert f"ivr: {flow}:{at}: nodes.identify_caller.on_falure: unknown field" in done.stderr


def test_call_exits_2_naming_a_bad_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "smoke.yaml"
    shutil.copyfile(REPO_ROOT / "ivr" / "scenarios" / "smoke.yaml", scenario)
    at = misspell(scenario, "  outcome: completed", "  outcom: completed")

    done = ivr("call", str(scenario))

    assert done.returncode == 2, done.stderr
    assert f"ivr call: {scenario}:{at}: expect.outcom: unknown field" in done.stderr
