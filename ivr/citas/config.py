"""Check a deployment's whole configuration at once (``ivr config check [DIR]``).

``DIR`` is laid out like the checkout's ``config/``: ``citas/line.yaml``,
``services.yaml``, ``sites.yaml``, ``eligibility.yaml``, ``affiliates.yaml``,
``cases.yaml``, ``desk.yaml`` (when present: the agent desktop; its queues must
include line.yaml's ``agent_vdn`` extensions), ``scripts.yaml`` (the desk's default
call scripts; every call type a desk profile takes must be in it) and ``flows/*.yaml``;
the prompts file is given apart. Every file is checked with the same loaders ``ivr serve`` uses (schema, then cross-checks), and a
bad file does not hide the next one. Flows are checked against the prompts,
the citas actions and the flags the tables define, so they are only checked
when those load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from ivr.cases.config import load_cases_config
from ivr.citas.actions import COMMITS, OUTCOMES, check_spoken_prompts
from ivr.citas.affiliates import YamlAffiliateDirectory
from ivr.citas.flags import flag_registry
from ivr.citas.reference import (
    Reference,
    load_eligibility,
    load_line,
    load_services,
    load_sites,
)
from ivr.desk.config import check_agent_vdns, load_desk_config
from ivr.desk.scripts import check_profile_call_types, load_script_file
from ivr.flow.loader import FlowLoader
from ivr.prompts import load_prompt_texts
from ivr.yamlsrc import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict: ``error`` is None when it loaded; ``note`` says what it holds
    (or why it was not checked)."""

    file: str
    error: ConfigError | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.note.startswith("not checked")


def check_config_dir(directory: Path, prompts_file: Path, today: date) -> list[FileCheck]:
    """Every file of the configuration in ``directory`` (and ``prompts_file``), in order.

    Never raises ``ConfigError``: each one becomes the ``error`` of its file's check.
    ``today`` turns the demo affiliates' ``age:`` into birth dates.
    """
    checks: list[FileCheck] = []

    def run(path: Path, load: Callable[[Path], T], note: Callable[[T], str]) -> T | None:
        try:
            loaded = load(path)
        except ConfigError as exc:
            checks.append(FileCheck(str(path), exc))
            return None
        checks.append(FileCheck(str(path), note=note(loaded)))
        return loaded

    prompts = run(prompts_file, load_prompt_texts, lambda p: f"{len(p)} prompts")
    citas = directory / "citas"
    line = run(citas / "line.yaml", load_line, lambda li: f"line {li.number}")
    services = run(citas / "services.yaml", load_services, lambda s: f"{len(s)} services")
    sites = run(citas / "sites.yaml", load_sites, lambda s: f"{len(s)} sites")
    tables = run(citas / "eligibility.yaml", load_eligibility, lambda e: "eligibility tables")
    run(
        citas / "affiliates.yaml",
        lambda p: YamlAffiliateDirectory.load(p, today, sites=sites),
        lambda d: "affiliate directory",
    )
    run(citas / "cases.yaml", load_cases_config,
        lambda c: f"{len(c.groups)} support group(s), answer within "
                  f"{c.answer_within_business_days} business days")  # fmt: skip
    desk_file, desk = citas / "desk.yaml", None
    if desk_file.exists():
        desk = run(desk_file, load_desk_config,
                   lambda d: f"{len(d.queues)} queue(s), {len(d.agents)} agent(s)")  # fmt: skip
        if desk is not None and line is not None:
            try:  # the cross-file check: a transfer's VDN must be a queue
                check_agent_vdns(desk, citas / "line.yaml")
            except ConfigError as exc:
                checks.append(FileCheck(str(citas / "line.yaml"), exc))
    # Call scripts (issue 12 §3): version 1 of the desk's scripts, seeded at start.
    scripts = run(citas / "scripts.yaml", load_script_file,
                  lambda t: f"call scripts: {sum(1 for n in t.nodes.values() if n.kind == 'disposition')} "
                            f"procedures, {len(t.entry)} entry rules")  # fmt: skip
    if desk is not None and scripts is not None:
        try:  # every call type a profile takes has a script
            check_profile_call_types(
                {pid: p.call_types for pid, p in desk.profiles.items()}, scripts, str(desk_file)
            )
        except ConfigError as exc:
            checks.append(FileCheck(str(desk_file), exc))
    if prompts is not None and sites is not None:
        # The prompts the citas actions say by themselves (times, doctors, sites).
        try:
            check_spoken_prompts(prompts.keys(), sites, prompts_file)
        except ConfigError as exc:
            checks.append(FileCheck(str(prompts_file), exc))
    flows_dir = directory / "flows"
    flow_files = sorted(flows_dir.glob("*.yaml"))
    if not flow_files:
        error = ConfigError(str(flows_dir), None, "flows", "no flow files (*.yaml)")
        checks.append(FileCheck(str(flows_dir), error))
    if prompts is None or line is None or services is None or sites is None or tables is None:
        why = "not checked: the prompts or the citas tables above do not load"
        checks += [FileCheck(str(path), note=why) for path in flow_files]
        return checks
    flags = flag_registry(Reference(line, services, sites, tables)).names()
    # The same four inputs as ivr.controller.flow_loader, which ivr serve uses.
    loader = FlowLoader(prompts, dict(OUTCOMES), flags, COMMITS)
    names: dict[str, Path] = {}
    for path in flow_files:
        flow = run(path, loader.load, lambda f: f"flow {f.name!r}, {len(f.nodes)} nodes")
        if flow is not None and flow.name in names:
            problem = f"name {flow.name!r} also used by {names[flow.name]}"
            checks[-1] = FileCheck(str(path), ConfigError(str(path), 1, "flow", problem))
        elif flow is not None:
            names[flow.name] = path
    return checks
