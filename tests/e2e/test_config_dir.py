"""A non-editable install serves the line from a deployment's own directories.

The project is installed with ``pip install`` (not ``-e``) into a fresh
virtualenv, from a copy of the checkout, as the controller image does. Its
``ivr serve`` then runs outside the checkout with ``CITAS_CONFIG_DIR`` and
``CITAS_PROMPTS_DIR`` pointing at copies that differ from the shipped files:
another non-target VDN (line.yaml), another document for the caller
(affiliates.yaml), and a flow that plays a prompt only that prompts directory
defines (so the controller does not even start if it reads the shipped
prompts). A sipp call through the real Asterisk, placed by the installed
``ivr call FILE`` with a scenario file of our own, shows the values were used.

On today's main (before CITAS_CONFIG_DIR), the agent receives the shipped VDN
and document and the scenario fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import REPO_ROOT
from tests.e2e.conftest import ControllerProcess, Sandbox, edit_once, ok

pytestmark = pytest.mark.e2e

OWN_VDN = "5550077"
OWN_DOCUMENT = "2020202077"
OWN_PROMPT = "deployment_only_notice"
INSTALL_TIMEOUT_S = 600


def run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, capture_output=True, text=True, errors="replace", env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """The environment without anything that would put the checkout on sys.path."""
    return {k: v for k, v in base.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the project installed from a copy of the checkout; its bin/."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    shutil.copytree(
        REPO_ROOT,
        source,
        symlinks=True,  # ivr/defaults/* are links to config/, prompts/, dialplans/asterisk/
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
            "bench-results", "var", "tests", "docs",
        ),
    )  # fmt: skip
    venv = root / "venv"
    env = clean_env(dict(os.environ))
    run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=root, timeout=120)
    run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(source)],
        env=env, cwd=root, timeout=INSTALL_TIMEOUT_S,
    )  # fmt: skip
    shutil.rmtree(source)  # the install must not need its source any more
    return venv / "bin"


@pytest.fixture
def own_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A deployment's config and prompts directories, copied and changed."""
    config = tmp_path / "etc-citas"
    shutil.copytree(REPO_ROOT / "config", config)
    edit_once(config / "citas" / "line.yaml", 'non_target: "5550001"', f'non_target: "{OWN_VDN}"')
    # Without the agent desktop: with desk.yaml, ivr serve refuses a line.yaml VDN that
    # is no desk queue (docs/desk/core.md), and this deployment's own VDN is not.
    (config / "citas" / "desk.yaml").unlink()
    edit_once(config / "citas" / "affiliates.yaml", '"2020202020"', f'"{OWN_DOCUMENT}"')
    # A node the call below never reaches: it only has to load.
    edit_once(config / "flows" / "citas.yaml", "prompt: document_not_found\n", f"prompt: {OWN_PROMPT}\n")
    prompts = tmp_path / "etc-citas-prompts"
    prompts.mkdir()
    text = (REPO_ROOT / "prompts" / "prompts.yaml").read_text(encoding="utf-8")
    (prompts / "prompts.yaml").write_text(
        f'{text}\n{OWN_PROMPT}: "Aviso de esta implantación."\n', encoding="utf-8"
    )
    return config, prompts


def own_scenario(directory: Path) -> Path:
    """The bundled non-target scenario, expecting this deployment's values."""
    text = (REPO_ROOT / "ivr" / "scenarios" / "non-target-agent.yaml").read_text(encoding="utf-8")
    text = text.replace("name: non-target-agent", "name: non-target-own-config", 1)
    text = text.replace('X-Citas-Vdn: "5550001"', f'X-Citas-Vdn: "{OWN_VDN}"', 1)
    text = text.replace(
        'X-Citas-Affiliate: "2020202020"', f'X-Citas-Affiliate: "{OWN_DOCUMENT}"', 1
    )
    path = directory / "cases" / "non-target-own-config.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 240)
def test_a_non_editable_install_serves_the_line_from_a_config_dir_outside_the_checkout(
    sandbox: Sandbox,
    installed: Path,
    own_dirs: tuple[Path, Path],
    no_session_controller: None,
    tmp_path: Path,
) -> None:
    config, prompts = own_dirs
    env = clean_env(
        {**sandbox.env, "CITAS_CONFIG_DIR": str(config), "CITAS_PROMPTS_DIR": str(prompts)}
    )
    # The installed package, not the checkout; and its shipped defaults are there.
    where = run(
        [str(installed / "python"), "-c",
         "import ivr, ivr.settings as s; print(ivr.__file__); print(s.Settings().config_dir)"],
        env=clean_env(dict(os.environ)), cwd=tmp_path, timeout=60,
    ).stdout.split()  # fmt: skip
    assert all(not p.startswith(str(REPO_ROOT)) for p in where), where
    assert (Path(where[1]) / "flows" / "citas.yaml").is_file()

    serve = ControllerProcess(
        Sandbox(sandbox.settings, env),
        tmp_path / "serve.log",
        command=[str(installed / "ivr"), "serve"],
        cwd=tmp_path,
    )
    serve.start()
    try:
        scenario = own_scenario(tmp_path)
        done = subprocess.run(
            [str(installed / "ivr"), "call", str(scenario), "--json"],
            capture_output=True, text=True, errors="replace", timeout=240, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        report = json.loads(done.stdout or "{}") | {"exit_code": done.returncode}
        assert "failures" in report, f"no report:\n{done.stdout}\n{done.stderr}"
        ok(report)
    finally:
        serve.stop()

    assert report["agent_headers"]["X-Citas-Vdn"] == OWN_VDN
    assert report["agent_headers"]["X-Citas-Affiliate"] == OWN_DOCUMENT
    (record,) = report["records"]
    assert record["flow"] == "citas"
    log = serve.log.read_text(encoding="utf-8")
    assert f"from {config}; prompts from {prompts}" in log
