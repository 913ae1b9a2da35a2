"""The composition root's entry to cases: the deployment's config and store from its settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.store import CaseStore, utcnow
from ivr.settings import Settings
from ivr.store.db import Database


def cases_config(settings: Settings) -> CasesConfig:
    """``<config>/citas/cases.yaml`` of the deployment; ``ConfigError`` (file, line,
    field) when it is not valid, so a bad file fails the start."""
    return load_cases_config(settings.citas_dir / "cases.yaml")


def case_store(
    settings: Settings, db: Database, clock: Callable[[], datetime] = utcnow
) -> CaseStore:
    """The cases of ``db`` under the deployment's cases.yaml (each group's calendar)."""
    config = cases_config(settings)
    return CaseStore(db, config.calendar_for, config, clock=clock)
