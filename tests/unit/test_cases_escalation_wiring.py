"""How ``ivr serve`` wires the SLA monitor (``ivr.controller.build_sla_monitor``).

The kinds of fault: a monitor running without its configuration, a call that
would say a prompt the catalogue lacks (silence to the person called), a test
clock active outside a sandbox, an orphan escalation call sent to the agents.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivr.ari import AriClient
from ivr.controller import build_sla_monitor, sla_clock
from ivr.escalation.testclock import CLOCK_FILE, utcnow
from ivr.settings import DEFAULT_CONFIG_DIR, DEFAULT_PROMPTS_DIR, Settings
from ivr.store import Database
from ivr.yamlsrc import ConfigError
from tests.unit.lines import CITAS_VOICE


def settings_in(tmp_path: Path, *, cases: bool = True) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    if not cases:
        (config / "citas" / "cases.yaml").unlink()
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(DEFAULT_PROMPTS_DIR / "prompts.yaml", prompts / "prompts.yaml")
    return replace(Settings(), config_dir=config, prompts_dir=prompts, state_dir=tmp_path / "state")


async def build(settings: Settings) -> object:
    client = AriClient(settings.ari_url, "u", "p")
    db = Database("sqlite+aiosqlite:///:memory:")
    try:
        line = SimpleNamespace(voice=CITAS_VOICE)  # what the monitor reads of a line
        return build_sla_monitor(settings, db, client, line)  # type: ignore[arg-type]
    finally:
        await client.close()
        await db.close()


async def test_no_cases_yaml_no_monitor(tmp_path: Path) -> None:
    assert await build(settings_in(tmp_path, cases=False)) is None


async def test_with_cases_yaml_the_monitor_and_its_calls(tmp_path: Path) -> None:
    built = await build(settings_in(tmp_path))

    assert isinstance(built, tuple) and built[0].calls is built[1]
    assert built[0].clock is utcnow  # no sandbox here: the real time


async def test_a_missing_escalation_prompt_stops_the_start(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    text = settings.prompts_file.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("escalation_press_one:")]
    settings.prompts_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"prompts\.escalation_press_one: no text"):
        await build(settings)


def test_the_test_clock_is_on_only_in_a_sandbox_instance(tmp_path: Path) -> None:
    settings = replace(Settings(), state_dir=tmp_path, instance="probe")
    assert sla_clock(settings) is utcnow

    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "sandbox.json").write_text("{}", encoding="utf-8")
    (tmp_path / "probe" / CLOCK_FILE).write_text(json.dumps({"offset_s": 86400}), encoding="utf-8")
    now = sla_clock(settings)()

    assert now - datetime.now(UTC) > timedelta(hours=23)
