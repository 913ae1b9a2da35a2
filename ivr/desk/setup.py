"""The composition root's entry to the desk: the deployment's desk config and stores
from its settings (``ivr/desk/wiring.py`` and ``ivr serve`` call these)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ivr.desk.config import FILE_NAME, DeskConfig, load_desk_for_line
from ivr.desk.store import DeskStore, ScriptStore, utcnow
from ivr.settings import Settings
from ivr.store.db import Database


def desk_config(settings: Settings) -> DeskConfig | None:
    """``<config>/citas/desk.yaml`` of the deployment, cross-checked against its
    ``line.yaml`` (the agent VDNs are queues); None when the deployment has no
    desk.yaml (no agent desktop). ``ConfigError`` (file, line, field) when either
    is not valid, so a bad file fails the start."""
    if not (settings.citas_dir / FILE_NAME).exists():
        return None
    return load_desk_for_line(settings.citas_dir)


def desk_stores(
    db: Database,
    validate: Callable[[Mapping[str, Any]], None],
    clock: Callable[[], datetime] = utcnow,
) -> tuple[DeskStore, ScriptStore]:
    """The desk's contacts and script versions on ``db``; ``validate`` is the script
    tree validator (raises ``ScriptInvalid``)."""
    return DeskStore(db, clock=clock), ScriptStore(db, validate, clock=clock)
