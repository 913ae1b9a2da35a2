"""Every prompt the citas actions play by themselves has a text, or the line does not start.

Observed (review of issue 9): with ``CITAS_PROMPTS_DIR`` at a prompts file that
lacks ``time_noon`` (an older copy) or ``doctor_dr_ortiz`` (a doctor added to
``sites.yaml`` without a name to say), ``ivr config check`` said ok and ``ivr
serve`` started; callers heard nothing where the time or the doctor's name
belongs. The flow loader checks the prompts a flow names; these are named by
code: ``ivr.speech.es`` (times), the slot offer's words, and one ``doctor_<id>``
and ``site_<id>`` per doctor and site of ``sites.yaml``. The kind is tested over
every such prompt of the shipped tables, and over a doctor and a site added.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ivr.citas.actions import check_spoken_prompts, spoken_prompts
from ivr.citas.config import check_config_dir
from ivr.citas.reference import CITAS_DIR, load_sites
from ivr.prompts import DEFAULT_TEXTS, load_prompt_texts
from ivr.settings import REPO_ROOT
from ivr.speech.es import PROMPT_IDS
from ivr.yamlsrc import ConfigError

SITES = load_sites(CITAS_DIR / "sites.yaml")
SHIPPED = DEFAULT_TEXTS.read_text(encoding="utf-8")
SPOKEN = sorted(spoken_prompts(SITES))


def test_the_list_names_the_times_the_offer_and_every_doctor_and_site() -> None:
    doctors = {f"doctor_{d}" for s in SITES.values() for d in s.doctors}
    sites = {f"site_{s}" for s in SITES}
    offer = {"slot_with_doctor", "slot_at_site", "appointment_item"}  # item: issue 10 §2
    cases = {"case_sms_sent"}  # a filed case's SMS notice (issue 11, ivr/citas/cases.py)
    assert set(SPOKEN) == {*PROMPT_IDS, *offer, *doctors, *sites, *cases}
    assert set(SPOKEN) <= set(load_prompt_texts(DEFAULT_TEXTS))


def without(prompts: Path, prompt_id: str) -> Path:
    lines = [
        line for line in SHIPPED.splitlines(keepends=True) if not line.startswith(f"{prompt_id}:")
    ]
    assert len(lines) == len(SHIPPED.splitlines()) - 1, prompt_id
    prompts.mkdir(exist_ok=True)
    path = prompts / "prompts.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("prompt_id", SPOKEN)
def test_a_prompt_spoken_by_code_missing_from_the_catalogue_is_refused(
    tmp_path: Path, prompt_id: str
) -> None:
    path = without(tmp_path / "prompts", prompt_id)

    with pytest.raises(ConfigError) as caught:
        check_spoken_prompts(load_prompt_texts(path).keys(), SITES, path)

    err = caught.value
    assert (err.file, err.field) == (str(path), f"prompts.{prompt_id}")
    assert err.problem.startswith("no text, and ")


@pytest.mark.parametrize("prompt_id", ["time_noon", "doctor_dr_ortiz", "site_sur"])
def test_config_check_names_it(tmp_path: Path, prompt_id: str) -> None:
    path = without(tmp_path / "prompts", prompt_id)

    checks = check_config_dir(REPO_ROOT / "config", path, date(2026, 11, 30))

    errors = [c.error for c in checks if c.error is not None]
    assert [(e.file, e.field) for e in errors] == [(str(path), f"prompts.{prompt_id}")]


def test_a_doctor_added_to_sites_yaml_needs_a_name_to_say(tmp_path: Path) -> None:
    sites_file = tmp_path / "sites.yaml"
    text = (CITAS_DIR / "sites.yaml").read_text(encoding="utf-8")
    old = "      dr_ortiz: {name: Doctor Mario Ortiz, specialty: general}\n"
    assert old in text
    sites_file.write_text(
        text.replace(old, old + "      dr_nuevo: {name: Doctora Nueva, specialty: general}\n"),
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        check_spoken_prompts(
            load_prompt_texts(DEFAULT_TEXTS).keys(), load_sites(sites_file), DEFAULT_TEXTS
        )

    assert caught.value.field == "prompts.doctor_dr_nuevo"
    assert "doctor dr_nuevo of site oriente" in caught.value.problem


def test_the_shipped_catalogue_has_them_all() -> None:
    check_spoken_prompts(load_prompt_texts(DEFAULT_TEXTS).keys(), SITES, DEFAULT_TEXTS)


def test_serve_exits_2_at_start_naming_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = without(tmp_path / "prompts", "time_noon")
    env = {
        **os.environ,
        "CITAS_PROMPTS_DIR": str(path.parent),
        "CITAS_INSTANCE": "spoken-prompts-test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "serve"],
        capture_output=True, text=True, errors="replace", timeout=90, check=False, env=env,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert f"ivr: {path}: prompts.time_noon: no text, and " in done.stderr
