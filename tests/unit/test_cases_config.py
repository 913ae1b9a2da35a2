"""cases.yaml (ivr.cases.config): every mistake is refused naming file, line and field.

The kind of fault: a cases.yaml that loads but means something else (a
ladder calling nobody, overlapping or impossible hours, a default group that
does not exist, warnings out of order) or an error that does not say where.
The table breaks the shipped file one way per rule; each must fail with its
line and field, and the shipped file must load to the documented values.
"""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

import ivr.cases.config
from ivr.cases.config import (
    DEFAULT_PATH,
    Budget,
    TimeRange,
    load_cases_config,
    parse_days,
)
from ivr.citas.config import check_config_dir
from ivr.settings import REPO_ROOT
from ivr.yamlsrc import ConfigError

SHIPPED = DEFAULT_PATH.read_text(encoding="utf-8")


def test_doctests() -> None:
    assert doctest.testmod(ivr.cases.config).failed == 0


def test_the_shipped_file_loads_to_the_documented_values() -> None:
    cfg = load_cases_config()
    assert DEFAULT_PATH == REPO_ROOT / "config" / "citas" / "cases.yaml"
    assert (cfg.answer_within_business_days, cfg.default_group, cfg.timezone) == (
        5,
        "citas",
        "America/Bogota",
    )
    assert cfg.business_weekdays == frozenset(range(5))
    group = cfg.group("citas")
    assert group.name == "Agendamiento de citas"
    assert group.working_hours == {
        **{d: ((time(7), time(17)),) for d in range(5)},
        5: ((time(8), time(12)),),
    }
    assert group.sla.first_response == Budget(business_time=timedelta(hours=8))
    assert group.sla.resolution == Budget(business_days=5)
    assert group.quiet_hours == (TimeRange(time(20), time(7)),)
    assert group.warnings == (50, 75, 100)
    assert [(s.person, s.wait) for s in group.ladder] == [
        ("lider_citas", timedelta(minutes=10)),
        ("coordinadora", timedelta(minutes=10)),
    ]
    assert cfg.people["coordinadora"].extension == "6002"
    assert cfg.people["lider_citas"].email == "lider@example.org"
    assert cfg.calendar_for("citas") is cfg.calendar_for("citas")
    with pytest.raises(KeyError):
        cfg.calendar_for("nadie")


@pytest.mark.parametrize("local,quiet", [
    ((19, 59), False), ((20, 0), True), ((23, 59), True), ((0, 0), True), ((6, 59), True), ((7, 0), False),
])  # fmt: skip
def test_quiet_hours_cross_midnight(local: tuple[int, int], quiet: bool) -> None:
    cfg = load_cases_config()
    instant = datetime(2026, 12, 4, *local, tzinfo=cfg.calendar_for("citas").tz).astimezone(UTC)
    assert cfg.in_quiet_hours("citas", instant) is quiet


@pytest.mark.parametrize("text,days", [
    ("mon-fri", [0, 1, 2, 3, 4]), ("sat", [5]), ("mon,wed", [0, 2]), ("fri-mon", [4, 5, 6, 0]),
])  # fmt: skip
def test_day_names(text: str, days: list[int]) -> None:
    assert parse_days(text) == days


# (what is broken, text in the shipped file, its replacement, field named, words of the message)
BROKEN = [
    ("unknown top field", "default_group: citas", "default_group: citas\nescalation: on", "escalation", "unknown field"),
    ("default group missing", "default_group: citas", "default_group: ventas", "default_group", "no group 'ventas'"),
    ("bad zone", "timezone: America/Bogota", "timezone: America/Bogata", "timezone", "unknown time zone"),
    ("promise zero", "answer_within_business_days: 5", "answer_within_business_days: 0", "answer_within_business_days", "at least 1"),
    ("bad day name", "mon-fri: [", "mon-fry: [", "groups.citas.working_hours.mon-fry", "days like"),
    ("day twice", 'sat: ["08:00-12:00"]', 'fri: ["08:00-12:00"]', "groups.citas.working_hours.fri", "also in"),
    ("impossible time", '"07:00-17:00"', '"07:00-25:00"', "groups.citas.working_hours.mon-fri[0]", "real times"),
    ("range backwards", '"07:00-17:00"', '"17:00-07:00"', "groups.citas.working_hours.mon-fri[0]", "ends before it starts"),
    ("ranges overlap", '["07:00-17:00"]', '["07:00-12:00", "11:00-17:00"]', "groups.citas.working_hours.mon-fri", "overlap"),
    ("not a range", '"07:00-17:00"', '"7-17"', "groups.citas.working_hours.mon-fri[0]", "HH:MM-HH:MM"),
    ("bad duration", "first_response: 8h", "first_response: 8 horas", "groups.citas.sla.first_response", "duration"),
    ("clock missing", "sla: {first_response: 8h, resolution: 5d}", "sla: {first_response: 8h}", "groups.citas.sla.resolution", "required"),
    ("warnings out of order", "warnings: [50, 75, 100]", "warnings: [75, 50, 100]", "groups.citas.warnings", "must go up"),
    ("warning above 100", "warnings: [50, 75, 100]", "warnings: [50, 75, 120]", "groups.citas.warnings[2]", "at most 100"),
    ("ladder calls nobody", "{person: coordinadora, wait: 10m}", "{person: gerente, wait: 10m}", "groups.citas.ladder[1].person", "no person 'gerente'"),
    ("bad wait", "{person: lider_citas, wait: 10m}", "{person: lider_citas, wait: 10d}", "groups.citas.ladder[0].wait", "wall-clock"),
    ("bad quiet hours", '["20:00-07:00"]', '["20:00-31:00"]', "groups.citas.quiet_hours[0]", "real times"),
    ("extension as number", 'extension: "6001"', "extension: 6001", "people.lider_citas.extension", "in quotes"),
    ("bad email", "email: lider@example.org", "email: lider", "people.lider_citas.email", "not a valid email"),
    ("bad group id", "\n  citas:\n", "\n  Citas:\n", "groups.Citas", "must be an id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("broken", "old", "new", "field", "words"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_each_mistake_names_file_line_and_field(
    tmp_path: Path, broken: str, old: str, new: str, field: str, words: str
) -> None:
    assert old in SHIPPED, old
    path = tmp_path / "cases.yaml"
    text = SHIPPED.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_cases_config(path)
    error = refused.value
    assert error.file == str(path) and error.field == field, str(error)
    assert words in error.problem, str(error)
    # The line named is the line of the change (or of its key, for a whole-mapping rule).
    changed = next(
        i for i, line in enumerate(text.splitlines(), 1) if new.strip().splitlines()[-1] in line
    )
    assert error.line is not None and abs(error.line - changed) <= 1, (error.line, changed)


def test_config_check_reads_cases_yaml(tmp_path: Path) -> None:
    import shutil

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    prompts = REPO_ROOT / "prompts" / "prompts.yaml"
    from datetime import date

    checks = {Path(c.file).name: c for c in check_config_dir(config, prompts, date(2026, 12, 4))}
    assert checks["cases.yaml"].ok and "1 support group" in checks["cases.yaml"].note
    (config / "citas" / "cases.yaml").write_text(
        SHIPPED.replace("default_group: citas", "default_group: x")
    )
    checks = {Path(c.file).name: c for c in check_config_dir(config, prompts, date(2026, 12, 4))}
    assert (
        checks["cases.yaml"].error is not None
        and checks["cases.yaml"].error.field == "default_group"
    )


def test_the_composition_root_reads_the_deployments_cases_yaml(tmp_path: Path) -> None:
    import shutil
    from dataclasses import replace

    from ivr.cases.setup import case_store, cases_config
    from ivr.settings import Settings
    from ivr.store.db import Database

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    settings = replace(Settings(), config_dir=config)
    assert cases_config(settings).answer_within_business_days == 5
    (config / "citas" / "cases.yaml").write_text(
        SHIPPED.replace("answer_within_business_days: 5", "answer_within_business_days: 3")
    )
    store = case_store(settings, Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    assert store.config.answer_within_business_days == 3
    assert store.calendar_for("citas").business_weekdays == frozenset(range(5))
    (config / "citas" / "cases.yaml").write_text(
        SHIPPED.replace("default_group: citas", "default_group: nadie")
    )
    with pytest.raises(ConfigError):
        cases_config(settings)
