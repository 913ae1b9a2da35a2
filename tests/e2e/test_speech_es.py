"""Spoken dates and times through the real Asterisk: the sounds exist, the caller hears Spanish."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.sandbox.instance import InstancePaths
from ivr.sandbox.rootfs import ensure_rootfs
from ivr.speech.es import PROMPT_IDS
from tests.e2e.conftest import ControllerProcess, Sandbox, ok
from tests.unit.spanish_words import (
    asterisk_sounds,
    every_media_uri,
    spoken_date,
    spoken_time,
    words,
)

pytestmark = pytest.mark.e2e

BOGOTA = ZoneInfo("America/Bogota")
SOUNDS_ES = "/usr/share/asterisk/sounds/es"


def sound_names(directory: Path) -> set[str]:
    """Every file under ``directory``, links followed, as a sound name (no extension)."""
    return {
        str((Path(folder) / name).relative_to(directory).with_suffix(""))
        for folder, _dirs, names in os.walk(directory, followlinks=True)
        for name in names
    }


def test_committed_sound_list_is_the_sandbox_spanish_sound_package(sandbox: Sandbox) -> None:
    root = ensure_rootfs(sandbox.settings.cache_dir)
    package = root.inside(SOUNDS_ES)
    # A root used by an older checkout may hold prompts there; they are not the package's.
    real = {name for name in sound_names(package) if not name.startswith("citas/")}
    assert asterisk_sounds() == real
    # Every sound the speller can name is where this instance's Asterisk looks
    # (its own data directory: ivr.sandbox.manager.link_data_dir), our prompts included.
    state = InstancePaths(sandbox.settings).load()
    assert state is not None
    installed = sound_names(root.inside(f"{state.inst_in_root}/data/sounds/es"))
    missing = {u for u in every_media_uri() if u.removeprefix("sound:") not in installed}
    assert missing == set()
    assert {f"citas/{p}" for p in PROMPT_IDS} <= installed
    assert real <= installed


def prompts_with(record: dict[str, Any], uri: str) -> list[list[str]]:
    """The media of each prompt the call played that contains ``uri``."""
    return [s["media"] for s in record["path"] if s["kind"] == "prompt" and uri in s["media"]]


def test_caller_hears_an_afternoon_slot_in_spanish(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    log = InstancePaths(sandbox.settings).asterisk_log
    log_start = log.stat().st_size
    # The caller asks for the afternoon band (demo afternoon slots: 14:00, 15:30).
    (record,) = ok(sandbox.call("target-change-band"))["records"]
    # Asterisk found every file it was asked to play during the call.
    with log.open("rb") as f:
        f.seek(log_start)
        during_call = f.read().decode("utf-8", "replace")
    assert "does not exist in any format" not in during_call, during_call
    starts = datetime.fromisoformat(record["variables"]["slot_starts_at"]).astimezone(BOGOTA)
    assert starts.hour in (14, 15)
    heard = words(prompts_with(record, "sound:citas/slot_offer_intro")[-1])
    slot = f"{spoken_date(starts.date())} {spoken_time(starts.time())}"
    # The doctor's name carries its own article: "con la doctora ...", "con el doctor ...".
    assert re.search(
        f"Tenemos disponible una cita para el {slot} con (la doctora|el doctor) ", heard
    )
    assert slot.endswith(" de la tarde")
    (booked,) = prompts_with(record, "sound:citas/slot_booked_intro")
    assert re.search(f"Su cita es el {slot} con (la doctora|el doctor) ", words(booked))
