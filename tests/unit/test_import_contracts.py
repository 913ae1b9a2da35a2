"""The platform/line boundary (``[tool.importlinter]`` in pyproject.toml) holds, and can fail.

The kind of fault: a platform package that imports the citas line (directly or
through a composition root), or an import cycle between sibling packages. The
contracts are run by ``lint-imports`` in ``scripts/setup.sh test``; here they
are run on a copy of ``ivr`` with one forbidden import added, for every
platform package, so a contract that stopped looking (a package left out, a
cycle no longer seen) fails this test. The observed instances (ops and citas,
booking and citas, schemas and flow importing each other) are among the cases.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

from ivr.settings import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
CONFIG: dict[str, Any] = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"][
    "importlinter"
]
CONTRACTS: dict[str, dict[str, Any]] = {c["id"]: c for c in CONFIG["contracts"]}
BOUNDARY = CONTRACTS["platform-knows-no-line"]
ACYCLIC = CONTRACTS["no-package-cycles"]
PLATFORM: list[str] = BOUNDARY["source_modules"]
LINE = "ivr.citas"
# The composition roots: the only packages besides the line that may import it
# (docs in pyproject.toml). Each must really need it (test below): the list stays
# as small as true.
ROOTS = ("ivr.bench", "ivr.cli", "ivr.controller", "ivr.sandbox", "ivr.scenarios")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def top_level_modules() -> set[str]:
    """Every package and module directly under ``ivr`` (as the import system sees them)."""
    found: set[str] = set()
    for entry in (REPO_ROOT / "ivr").iterdir():
        if entry.is_file() and entry.suffix == ".py" and entry.name != "__init__.py":
            found.add(f"ivr.{entry.stem}")
        elif entry.is_dir() and entry.name != "__pycache__" and any(entry.glob("*.py")):
            # A package (regular or namespace); ivr/defaults holds only links to data.
            found.add(f"ivr.{entry.name}")
    return found


def test_every_ivr_package_is_either_platform_or_the_line_or_a_composition_root() -> None:
    # A new package (ivr.whatsapp, ivr.chat...) must be classified, else it escapes the rule.
    assert BOUNDARY["type"] == "forbidden" and BOUNDARY["forbidden_modules"] == [LINE]
    assert set(PLATFORM).isdisjoint({*ROOTS, LINE})
    assert top_level_modules() == {*PLATFORM, *ROOTS, LINE}


def test_every_package_has_an_init_so_the_linter_sees_it() -> None:
    # grimp builds the graph from regular packages only: a namespace package's
    # modules would be in no contract at all.
    without = sorted(
        str(d.relative_to(REPO_ROOT))
        for d in (REPO_ROOT / "ivr").rglob("*")
        if d.is_dir()
        and "defaults" not in d.relative_to(REPO_ROOT).parts
        and any(d.glob("*.py"))
        and not (d / "__init__.py").exists()
    )
    assert without == []


def test_every_composition_root_really_imports_the_line() -> None:
    graph = grimp.build_graph("ivr", cache_dir=None)

    needless = [
        root
        for root in ROOTS
        if not graph.chain_exists(importer=root, imported=LINE, as_packages=True)
    ]
    assert needless == []


def test_the_acyclic_contract_covers_every_package_under_ivr() -> None:
    assert ACYCLIC["type"] == "acyclic_siblings" and ACYCLIC["ancestors"] == ["ivr"]
    assert "depth" not in ACYCLIC and "skip_descendants" not in ACYCLIC


def test_the_test_command_runs_the_contracts() -> None:
    setup = (REPO_ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    test_section = setup[setup.index("\n  test)") :]

    assert ".venv/bin/lint-imports" in test_section


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of ``ivr`` and the contracts, to break on purpose."""
    shutil.copytree(
        REPO_ROOT / "ivr",
        tmp_path / "ivr",
        ignore=shutil.ignore_patterns("__pycache__", "defaults", "console"),
    )
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path


def lint(tree: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True, errors="replace",
        timeout=90,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def add_import(tree: Path, module: str, imported: str) -> None:
    """Append ``import <imported>`` to ``module``'s file (its ``__init__`` for a package)."""
    path = tree.joinpath(*module.split("."))
    target = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    with target.open("a", encoding="utf-8") as out:
        out.write(f"\nimport {imported}  # added by test_import_contracts\n")


def verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports' summary."""
    found: dict[str, str] = {}
    for contract in CONTRACTS.values():
        for line in output.splitlines():
            if line.startswith(contract["name"] + " "):
                found[contract["name"]] = line.rsplit(" ", 1)[-1]
    return found


def test_the_untouched_copy_keeps_every_contract(tree: Path) -> None:
    code, output = lint(tree)

    assert code == 0, output
    assert verdicts(output) == {c["name"]: "KEPT" for c in CONTRACTS.values()}


@pytest.mark.parametrize("module", PLATFORM)
def test_any_platform_package_importing_the_line_breaks_the_boundary(
    tree: Path, module: str
) -> None:
    add_import(tree, module, "ivr.citas.reference")

    code, output = lint(tree)

    assert code == 1, output
    assert verdicts(output)[BOUNDARY["name"]] == "BROKEN", output
    assert f"{module} is not allowed to import {LINE}" in output, output


# (importer, imported, the contracts it must break): the observed instances first.
CYCLES = [
    ("ivr.ops.cli", "ivr.citas.reference", {BOUNDARY["name"], ACYCLIC["name"]}),
    ("ivr.booking.seed", "ivr.citas.reference", {BOUNDARY["name"], ACYCLIC["name"]}),
    ("ivr.schemas", "ivr.flow.loader", {ACYCLIC["name"]}),
    # Through a composition root: the line comes in indirectly.
    ("ivr.store.db", "ivr.controller", {BOUNDARY["name"], ACYCLIC["name"]}),
    # Between platform packages, and between modules one level down.
    ("ivr.store.db", "ivr.ops.api", {ACYCLIC["name"]}),
    ("ivr.ops.flags", "ivr.ops.service", {ACYCLIC["name"]}),
    ("ivr.flow.model", "ivr.flow.engine", {ACYCLIC["name"]}),
    # The desk is platform: the line's config check imports it, never the reverse.
    ("ivr.desk.store", "ivr.citas.config", {BOUNDARY["name"], ACYCLIC["name"]}),
]


def _case_id(value: object) -> str:
    # Sorted: a set's order follows the process's hash seed, and pytest-xdist
    # refuses workers that collected different ids.
    return ",".join(sorted(value)) if isinstance(value, set) else str(value)


@pytest.mark.parametrize(("module", "imported", "broken"), CYCLES, ids=_case_id)
def test_a_cycle_or_a_line_import_is_found(
    tree: Path, module: str, imported: str, broken: set[str]
) -> None:
    add_import(tree, module, imported)

    code, output = lint(tree)

    assert code == 1, output
    assert {name for name, verdict in verdicts(output).items() if verdict == "BROKEN"} == broken
