"""Where the deployment's files come from: CITAS_CONFIG_DIR, CITAS_PROMPTS_DIR,
the defaults shipped in the package, and settings that must do something.

The kind: a file the controller needs is found relative to the checkout, or a
setting is read and then never used. The observed instances (the tables always
read from the checkout's config/citas; CITAS_FLOW and CITAS_LINE read and never
used; the line's number in line.yaml never used) are kept below, and the kind
is checked over every module, every Settings field and every packaged file.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from ivr.citas.reference import load_reference
from ivr.controller import flow_loader, load_all_flows
from ivr.sandbox.render import template_values
from ivr.settings import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_PROMPTS_DIR,
    DEFAULTS_DIR,
    REPO_ROOT,
    TEMPLATE_DIR,
    Ports,
    Settings,
    SettingsError,
)
from ivr.yamlsrc import ConfigError

PACKAGE = REPO_ROOT / "ivr"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config, outside the checkout."""
    target = tmp_path / "etc-citas"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    target = tmp_path / "prompts"
    target.mkdir()
    shutil.copyfile(DEFAULT_PROMPTS_DIR / "prompts.yaml", target / "prompts.yaml")
    return target


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


# --- the defaults: the shipped files, which in a checkout are the repository's ---


def test_the_defaults_are_the_repository_files_in_a_checkout() -> None:
    s = Settings.from_env({})

    assert s.config_dir == DEFAULT_CONFIG_DIR == REPO_ROOT / "config"
    assert s.prompts_dir == DEFAULT_PROMPTS_DIR == REPO_ROOT / "prompts"
    assert TEMPLATE_DIR == REPO_ROOT / "dialplans" / "asterisk"
    assert (s.flows_dir, s.citas_dir) == (REPO_ROOT / "config/flows", REPO_ROOT / "config/citas")
    assert s.prompts_file == REPO_ROOT / "prompts" / "prompts.yaml"
    assert (s.recorded_dir, s.prompts_build_dir) == (
        REPO_ROOT / "prompts" / "recorded",
        REPO_ROOT / "prompts" / "build",
    )


def package_data_patterns() -> list[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns: list[str] = pyproject["tool"]["setuptools"]["package-data"]["ivr"]
    return patterns


def shipped_default_files() -> list[Path]:
    """Every file under ivr/defaults the package needs (not built audio, not READMEs)."""
    wanted = []
    # os.walk, not rglob: ivr/defaults/* are links in a checkout.
    found = [Path(d) / f for d, _, files in os.walk(DEFAULTS_DIR, followlinks=True) for f in files]
    for path in sorted(found):
        relative = path.relative_to(DEFAULTS_DIR)
        if relative.parts[:2] == ("prompts", "build"):
            continue
        if path.suffix in (".yaml", ".yml", ".conf") or relative.parts[:2] == (
            "prompts",
            "recorded",
        ):
            wanted.append(relative)
    return wanted


@pytest.mark.parametrize("relative", shipped_default_files(), ids=str)
def test_every_default_file_is_package_data(relative: Path) -> None:
    # A non-editable install gets only what package-data names: a flow, table,
    # prompt text or dialplan template left out would be missing there only.
    packaged = [p for p in package_data_patterns() if p.startswith("defaults/")]

    assert any((DEFAULTS_DIR / relative).match(str(PACKAGE / p)) for p in packaged), relative


def test_the_shipped_defaults_cover_the_config_layout() -> None:
    names = {str(p) for p in shipped_default_files()}

    for required in (
        "config/flows/citas.yaml",
        "config/flows/smoke.yaml",
        "config/citas/line.yaml",
        "config/citas/affiliates.yaml",
        "prompts/prompts.yaml",
        "dialplans/extensions.conf",
    ):
        assert required in names


# --- CITAS_CONFIG_DIR and CITAS_PROMPTS_DIR ---


def test_config_and_prompts_dirs_come_from_the_environment(
    config_dir: Path, prompts_dir: Path
) -> None:
    s = Settings.from_env(
        {"CITAS_CONFIG_DIR": str(config_dir), "CITAS_PROMPTS_DIR": str(prompts_dir)}
    )

    assert (s.config_dir, s.prompts_dir) == (config_dir, prompts_dir)
    assert (s.flows_dir, s.citas_dir) == (config_dir / "flows", config_dir / "citas")
    assert s.prompts_file == prompts_dir / "prompts.yaml"
    assert (s.recorded_dir, s.prompts_build_dir) == (
        prompts_dir / "recorded",
        prompts_dir / "build",
    )


def test_a_relative_directory_is_made_absolute(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Resolved once at start: a later chdir (or a log line) sees the same directory.
    monkeypatch.chdir(config_dir.parent)

    assert Settings.from_env({"CITAS_CONFIG_DIR": config_dir.name}).config_dir == config_dir


@pytest.mark.parametrize(
    ("variable", "make", "problem"),
    [
        ("CITAS_CONFIG_DIR", "absent", "is not a directory"),
        ("CITAS_CONFIG_DIR", "file", "is not a directory"),
        ("CITAS_CONFIG_DIR", "empty", "has no flows/ (expected: flows/, citas/line.yaml)"),
        ("CITAS_CONFIG_DIR", "no-line", "has no citas/line.yaml"),
        ("CITAS_CONFIG_DIR", "flows-file", "has no flows/"),
        ("CITAS_PROMPTS_DIR", "absent", "is not a directory"),
        ("CITAS_PROMPTS_DIR", "empty", "has no prompts.yaml (expected: prompts.yaml)"),
        ("CITAS_PROMPTS_DIR", "prompts-dir", "has no prompts.yaml"),
    ],
)
def test_a_directory_without_its_layout_is_refused_naming_the_variable(
    tmp_path: Path, variable: str, make: str, problem: str
) -> None:
    target = tmp_path / "given"
    if make == "file":
        target.write_text("x")
    elif make != "absent":
        target.mkdir()
    if make == "no-line":
        (target / "flows").mkdir()
        (target / "citas").mkdir()
    if make == "flows-file":
        (target / "flows").write_text("x")
        (target / "citas").mkdir()
        (target / "citas" / "line.yaml").write_text("x")
    if make == "prompts-dir":
        (target / "prompts.yaml").mkdir()

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: str(target)})

    assert str(caught.value).startswith(f"{variable}={str(target)!r} ")
    assert problem in str(caught.value)


def test_an_empty_variable_means_the_default() -> None:
    s = Settings.from_env({"CITAS_CONFIG_DIR": "", "CITAS_PROMPTS_DIR": ""})

    assert (s.config_dir, s.prompts_dir) == (DEFAULT_CONFIG_DIR, DEFAULT_PROMPTS_DIR)


# --- every loader reads the configured directories ---


def test_the_reference_tables_come_from_the_config_dir(config_dir: Path) -> None:
    # Observed: the tables were always read from the checkout's config/citas.
    replace_once(
        config_dir / "citas" / "line.yaml", 'non_target: "5550001"', 'non_target: "5550077"'
    )
    s = Settings.from_env({"CITAS_CONFIG_DIR": str(config_dir)})

    assert load_reference(s.citas_dir).line.vdn_non_target == "5550077"
    assert load_reference().line.vdn_non_target == "5550001"


def test_the_flows_come_from_the_config_dir(config_dir: Path) -> None:
    smoke = (config_dir / "flows" / "smoke.yaml").read_text(encoding="utf-8")
    (config_dir / "flows" / "smoke2.yaml").write_text(
        smoke.replace("flow: smoke", "flow: smoke2"), encoding="utf-8"
    )
    s = Settings.from_env({"CITAS_CONFIG_DIR": str(config_dir)})

    assert sorted(load_all_flows(s)) == ["citas", "smoke", "smoke2"]
    assert sorted(load_all_flows()) == ["citas", "smoke"]


def test_a_flow_is_checked_against_the_prompts_dir(config_dir: Path, prompts_dir: Path) -> None:
    replace_once(
        config_dir / "flows" / "citas.yaml",
        "    prompt: document_not_found\n",
        "    prompt: deployment_only_notice\n",
    )
    with (prompts_dir / "prompts.yaml").open("a", encoding="utf-8") as f:
        f.write('deployment_only_notice: "Aviso de esta implantación."\n')
    own = Settings.from_env(
        {"CITAS_CONFIG_DIR": str(config_dir), "CITAS_PROMPTS_DIR": str(prompts_dir)}
    )
    shipped_prompts = Settings.from_env({"CITAS_CONFIG_DIR": str(config_dir)})

    assert "citas" in load_all_flows(own)
    with pytest.raises(ConfigError, match="deployment_only_notice"):
        load_all_flows(shipped_prompts)
    with pytest.raises(ConfigError, match="deployment_only_notice"):
        flow_loader(settings=shipped_prompts).load(config_dir / "flows" / "citas.yaml")


def test_the_dialplan_takes_the_line_number_and_default_vdn_from_line_yaml(
    config_dir: Path,
) -> None:
    # Observed: line.yaml's number was never used (the dialplan's came from a
    # hard-coded Settings field), and its default VDN was a second copy.
    line = config_dir / "citas" / "line.yaml"
    replace_once(line, 'number: "4441234"', 'number: "4449876"')
    replace_once(line, 'default: "5550001"', 'default: "5550042"')
    s = Settings.from_env({"CITAS_CONFIG_DIR": str(config_dir)})

    values = template_values(s, "/srv/citas/x")

    assert (values["citas_number"], values["agent_vdn"]) == ("4449876", "5550042")
    assert (template_values(Settings(), "/x")["citas_number"]) == "4441234"


# --- the kind: nothing finds its files through the checkout; no setting is idle ---


def package_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "settings.py")


@pytest.mark.parametrize("module", package_sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_finds_files_through_the_checkout(module: Path) -> None:
    # In a non-editable install the checkout does not exist: files the package
    # reads are package data next to the module (Path(__file__).parent) or
    # come from Settings.
    text = module.read_text(encoding="utf-8")

    assert "REPO_ROOT" not in text
    assert not re.search(r"__file__\)?(\.resolve\(\))?\.parents?\b(\[[1-9]\]|\.parent)", text)


SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in package_sources())


@pytest.mark.parametrize(
    "name",
    [f.name for f in fields(Settings)] + [f"ports.{f.name}" for f in fields(Ports)],
)
def test_every_setting_is_read_outside_settings_py(name: str) -> None:
    # Observed: CITAS_FLOW and CITAS_LINE were parsed into Settings and never read.
    attribute = name.rsplit(".", 1)[-1]

    assert re.search(rf"\.{attribute}\b", SOURCES), f"Settings.{name} is never used"


SETTINGS_SOURCE = (PACKAGE / "settings.py").read_text(encoding="utf-8")
VARIABLES = sorted(set(re.findall(r'"(CITAS_[A-Z0-9_]+)"', SETTINGS_SOURCE)))


def test_the_removed_variables_are_gone() -> None:
    assert VARIABLES and "CITAS_FLOW" not in VARIABLES and "CITAS_LINE" not in VARIABLES


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_is_documented_in_the_readme(variable: str) -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

    assert f"`{variable}`" in readme


# --- the controller image: the config goes where CITAS_CONFIG_DIR points ---

DOCKERFILE = (REPO_ROOT / "docker" / "Dockerfile.controller").read_text(encoding="utf-8")
IMAGE_ENV = dict(re.findall(r"\b(CITAS_[A-Z_]+)=(\S+)", DOCKERFILE))
COMPOSE = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
CONTROLLERS = sorted(name for name in COMPOSE["services"] if name.startswith("controller"))


def test_the_image_makes_the_directories_its_variables_name() -> None:
    # Observed: the image copied config/ to /app/config, where the installed
    # package never looked. Now the operator's files are mounted there.
    made = re.search(r"install -d [^\n]*", DOCKERFILE)

    assert made is not None
    for variable in ("CITAS_CONFIG_DIR", "CITAS_PROMPTS_DIR", "CITAS_STATE_DIR"):
        assert IMAGE_ENV[variable] in made.group(0).split(), variable


@pytest.mark.parametrize("service", CONTROLLERS)
def test_compose_mounts_the_operators_files_where_the_image_looks(service: str) -> None:
    controller = COMPOSE["services"][service]
    targets = [volume.rsplit(":", 2)[1] for volume in controller["volumes"]]

    for variable in ("CITAS_CONFIG_DIR", "CITAS_PROMPTS_DIR"):
        assert controller["environment"][variable] == IMAGE_ENV[variable]
        assert IMAGE_ENV[variable] in targets


def test_compose_has_a_controller_per_node() -> None:
    assert CONTROLLERS == ["controller-n1", "controller-n2"]
