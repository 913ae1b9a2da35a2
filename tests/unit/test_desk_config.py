"""desk.yaml (ivr.desk.config): every mistake is refused naming file, line and field.

The kind of fault: a desk.yaml that loads but means something else — two queues (or
an agent and a queue) on one extension, a profile taking a queue that does not
exist, an agent with no profile, one ops user acting as two agents, an escalation
to a queue that is not one level up or not of its area, a line whose agent VDN is
no queue (a transfer that rings nobody) — or an error that does not say where. The
table breaks the shipped file one way per rule; each must fail with its line and
field, and the shipped file must load to the documented values.
"""

from __future__ import annotations

import doctest
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

import ivr.desk.config
from ivr.citas.config import check_config_dir
from ivr.desk.config import (
    DEFAULT_PATH,
    check_agent_vdns,
    load_desk_config,
    load_desk_for_line,
)
from ivr.desk.errors import AgentNotAllowed, UnknownAgent
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

SHIPPED = DEFAULT_PATH.read_text(encoding="utf-8")
LINE = (REPO_ROOT / "config" / "citas" / "line.yaml").read_text(encoding="utf-8")


def test_doctests() -> None:
    result = doctest.testmod(ivr.desk.config)
    assert result.attempted > 0 and result.failed == 0


def test_the_shipped_file_loads_to_the_documented_values() -> None:
    cfg = load_desk_config()
    assert DEFAULT_PATH == REPO_ROOT / "config" / "citas" / "desk.yaml"
    assert (cfg.ring_timeout, cfg.wrapup, cfg.timezone) == (
        timedelta(seconds=20), timedelta(0), "America/Bogota",
    )  # fmt: skip
    assert {q.id: (q.extension, q.level, q.area) for q in cfg.queues.values()} == {
        "l1_general": ("5550001", 1, "recepcion"), "incidentes": ("5550002", 1, "recepcion"),
        "l2_tecnico": ("5550021", 2, "tecnico"), "l2_clinico": ("5550022", 2, "clinico"),
        "l2_comercial": ("5550023", 2, "comercial"), "l3_tecnico": ("5550031", 3, "tecnico"),
        "l3_clinico": ("5550032", 3, "clinico"),
    }  # fmt: skip
    assert cfg.queue("l1_general").name == "Nivel 1 – Recepción"
    assert cfg.queue_by_extension("5550022") == cfg.queue("l2_clinico")
    assert cfg.queue_by_extension("7001") is None
    ana = cfg.agent("7001")
    assert (ana.name, ana.user, ana.profile, ana.interface) == (
        "Ana Gómez", "ana", "recepcion", "PJSIP/7001",
    )  # fmt: skip
    assert cfg.agent_for_user("carla") == cfg.agent("7003")
    assert cfg.agent_for_user("admin") is None
    recepcion = cfg.profile("recepcion")
    assert recepcion.queues == ("l1_general", "incidentes") and recepcion.chat
    assert recepcion.call_types == ("agendamiento", "incidente", "informacion")
    assert not cfg.profile("clinico_l2").chat
    assert [a.extension for a in cfg.chat_agents()] == ["7001", "7002"]
    assert [q.id for q in cfg.queues_of("7006")] == ["l3_clinico"]


# (queue, area, target): every level and area, including where there is none.
TARGETS = [
    ("l1_general", "tecnico", "l2_tecnico"), ("l1_general", "clinico", "l2_clinico"),
    ("l1_general", "comercial", "l2_comercial"), ("incidentes", "tecnico", "l2_tecnico"),
    ("l1_general", "recepcion", None), ("l2_tecnico", "tecnico", "l3_tecnico"),
    ("l2_clinico", "clinico", "l3_clinico"), ("l2_comercial", "comercial", None),
    ("l2_clinico", "tecnico", "l3_tecnico"), ("l3_tecnico", "tecnico", None),
    ("l3_clinico", "clinico", None), ("l1_general", "nada", None),
]  # fmt: skip


@pytest.mark.parametrize(("queue", "area", "target"), TARGETS)
def test_escalation_target(queue: str, area: str, target: str | None) -> None:
    found = load_desk_config().escalation_target(queue, area)
    assert (found.id if found else None) == target


def test_escalation_areas_and_unknown_queue() -> None:
    cfg = load_desk_config()
    assert sorted(cfg.escalation_areas("l1_general")) == ["clinico", "comercial", "tecnico"]
    assert cfg.escalation_areas("l3_clinico") == {}
    with pytest.raises(KeyError):
        cfg.escalation_target("nada", "clinico")


def test_unknown_agent_and_profile_rules() -> None:
    cfg = load_desk_config()
    with pytest.raises(UnknownAgent) as unknown:
        cfg.agent("7999")
    assert "7999" in str(unknown.value) and isinstance(unknown.value, LookupError)
    cfg.check_call_type("7003", "informacion")
    with pytest.raises(AgentNotAllowed, match="no atiende el tipo de llamada 'incidente'"):
        cfg.check_call_type("7003", "incidente")
    cfg.check_queue("7001", "incidentes")
    with pytest.raises(AgentNotAllowed, match="no atiende la cola 'l2_clinico'"):
        cfg.check_queue("7001", "l2_clinico")


# (what is broken, text in the shipped file, its replacement, field named, words of the message)
BROKEN = [
    ("unknown top field", "wrapup: 0s", "wrapup: 0s\nmusic: default", "music", "unknown field"),
    ("bad duration", "ring_timeout: 20s", "ring_timeout: 20 segundos", "ring_timeout", "duration like"),
    ("hours not allowed", "wrapup: 0s", "wrapup: 1h", "wrapup", "duration like"),
    ("bad zone", "wrapup: 0s", "wrapup: 0s\ntimezone: America/Bogata", "timezone", "unknown time zone"),
    ("queue extension unquoted", 'extension: "5550002"', "extension: 5550002", "queues.incidentes.extension", "in quotes"),
    ("queue extension twice", 'extension: "5550002"', 'extension: "5550001"', "queues.incidentes.extension", "also queue l1_general"),
    ("agent on a queue's extension", '"7006": {', '"5550031": {', "agents.5550031", "also queue l3_tecnico"),
    ("level zero", "level: 3, area: clinico", "level: 0, area: clinico", "queues.l3_clinico.level", "at least 1"),
    ("queue name missing", 'l2_comercial: {name: "Nivel 2 – Comercial",', "l2_comercial: {", "queues.l2_comercial.name", "required"),
    ("bad queue id", "  l2_tecnico:   {", "  L2-tecnico:   {", "queues.L2-tecnico", "must be an id"),
    ("profile takes no queue", "queues: [l2_tecnico],", "queues: [],", "profiles.tecnico_l2.queues", "must not be empty"),
    ("profile's queue missing", "queues: [l3_tecnico],", "queues: [l3_tecnicos],", "profiles.tecnico_l3.queues[0]", "no queue 'l3_tecnicos'"),
    ("profile's queue twice", "queues: [l1_general, incidentes]", "queues: [l1_general, l1_general]", "profiles.recepcion.queues", "duplicate"),
    ("agent's profile missing", "profile: clinico_l3}", "profile: clinico_l4}", "agents.7006.profile", "no profile 'clinico_l4'"),
    ("user twice", "user: bruno,", "user: ana,", "agents.7002.user", "already acts as agent 7001"),
    ("agent field unknown", "user: fabio,", "user: fabio, pin: 1,", "agents.7006.pin", "unknown field"),
    ("escalation to nowhere", "1: {tecnico: l2_tecnico,", "1: {tecnico: l2_tecnica,", "escalation.1.tecnico", "no queue 'l2_tecnica'"),
    ("escalation skips a level", "1: {tecnico: l2_tecnico,", "1: {tecnico: l3_tecnico,", "escalation.1.tecnico", "goes to level 2"),
    ("escalation down", "2: {tecnico: l3_tecnico,", "2: {tecnico: l1_general,", "escalation.2.tecnico", "at level 1"),
    ("escalation to another area", "clinico: l2_clinico,", "clinico: l2_comercial,", "escalation.1.clinico", "of area 'comercial'"),
    ("escalation from an empty level", "2: {tecnico", "4: {tecnico", "escalation.4", "no queue is at level 4"),
    ("escalation level not a number", "2: {tecnico", "dos: {tecnico", "escalation.dos", "service level"),
    # app_queue's [general] is its settings section (queues part, issue 12)
    ("queue named general", "  l1_general:   {", "  general:   {", "queues.general", "app_queue's settings section"),
    ("pause reason without a label", "  almuerzo: Almuerzo", '  almuerzo: ""', "pause_reasons.almuerzo", "must not be empty"),
    ("pause reason id", "  almuerzo: Almuerzo", "  Almuerzo: Almuerzo", "pause_reasons.Almuerzo", "must be an id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("broken", "old", "new", "field", "words"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_each_mistake_names_file_line_and_field(
    tmp_path: Path, broken: str, old: str, new: str, field: str, words: str
) -> None:
    assert old in SHIPPED, old
    path = tmp_path / "desk.yaml"
    text = SHIPPED.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_desk_config(path)
    error = refused.value
    assert error.file == str(path) and error.field == field, str(error)
    assert words in error.problem, str(error)
    # The line named is the line of the change (or of its key, for a whole-mapping rule).
    changed = next(
        i for i, line in enumerate(text.splitlines(), 1) if new.strip().splitlines()[-1] in line
    )
    assert error.line is not None and abs(error.line - changed) <= 1, (error.line, changed)


def citas_dir(tmp_path: Path, line: str = LINE, desk: str | None = SHIPPED) -> Path:
    citas = tmp_path / "citas"
    citas.mkdir()
    (citas / "line.yaml").write_text(line, encoding="utf-8")
    if desk is not None:
        (citas / "desk.yaml").write_text(desk, encoding="utf-8")
    return citas


# Each agent_vdn of line.yaml: pointed at an extension that is no queue, it is refused there.
VDNS = [
    ("default", 'default: "5550001"', 'default: "5550009"'),
    ("non_target", 'non_target: "5550001"', 'non_target: "7001"'),
    ("incident", 'incident: "5550002"', 'incident: "5550099"'),
]


@pytest.mark.parametrize(("name", "old", "new"), VDNS, ids=[v[0] for v in VDNS])
def test_a_line_vdn_that_is_no_queue_is_refused_in_line_yaml(
    tmp_path: Path, name: str, old: str, new: str
) -> None:
    assert old in LINE
    citas = citas_dir(tmp_path, line=LINE.replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        load_desk_for_line(citas)
    error = refused.value
    assert (error.file, error.field) == (str(citas / "line.yaml"), f"agent_vdn.{name}")
    assert (
        error.line
        == LINE.replace(old, new, 1)
        .splitlines()
        .index(next(li for li in LINE.replace(old, new, 1).splitlines() if new in li))
        + 1
    )
    assert "is no queue of" in error.problem and "5550001" in error.problem


def test_the_shipped_line_and_desk_agree(tmp_path: Path) -> None:
    cfg = load_desk_for_line(citas_dir(tmp_path))
    assert cfg.queue_by_extension("5550002") == cfg.queue("incidentes")
    # A line.yaml that does not load is its own check's business, not this one's.
    check_agent_vdns(cfg, tmp_path / "nowhere.yaml")


def test_config_check_reads_desk_yaml_and_the_cross_check(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    prompts = REPO_ROOT / "prompts" / "prompts.yaml"

    checks = {Path(c.file).name: c for c in check_config_dir(config, prompts, date(2026, 12, 4))}
    assert checks["desk.yaml"].ok and checks["desk.yaml"].note == "7 queue(s), 6 agent(s)"
    assert checks["line.yaml"].ok

    (config / "citas" / "line.yaml").write_text(LINE.replace('"5550002"', '"5550003"'))
    checks = {Path(c.file).name: c for c in check_config_dir(config, prompts, date(2026, 12, 4))}
    line_error = checks["line.yaml"].error
    assert line_error is not None and line_error.field == "agent_vdn.incident"

    (config / "citas" / "desk.yaml").write_text(
        SHIPPED.replace("profile: recepcion}", "profile: x}", 1)
    )
    checks = {Path(c.file).name: c for c in check_config_dir(config, prompts, date(2026, 12, 4))}
    desk_error = checks["desk.yaml"].error
    assert desk_error is not None and desk_error.field == "agents.7001.profile"


def test_a_deployment_without_desk_yaml_has_no_desk_and_passes(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    (config / "citas" / "desk.yaml").unlink()
    checks = check_config_dir(config, REPO_ROOT / "prompts" / "prompts.yaml", date(2026, 12, 4))
    assert all(c.ok for c in checks if Path(c.file).name != "desk.yaml")
    assert not any(Path(c.file).name == "desk.yaml" for c in checks)


def test_the_composition_roots_entry(tmp_path: Path) -> None:
    from dataclasses import replace

    from ivr.desk.setup import desk_config
    from ivr.settings import Settings

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    settings = replace(Settings(), config_dir=config)
    found = desk_config(settings)
    assert found is not None and found.file == str(config / "citas" / "desk.yaml")
    (config / "citas" / "line.yaml").write_text(LINE.replace('"5550002"', '"5550003"'))
    with pytest.raises(ConfigError) as refused:
        desk_config(settings)  # a bad pair fails the start
    assert refused.value.field == "agent_vdn.incident"
    (config / "citas" / "desk.yaml").unlink()
    assert desk_config(settings) is None
