"""Spoken dates and times through the real Asterisk: the sounds exist, the caller hears Spanish."""

from __future__ import annotations

import re
from datetime import datetime
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


def test_committed_sound_list_is_the_sandbox_spanish_sound_package(sandbox: Sandbox) -> None:
    sounds = ensure_rootfs(sandbox.settings.cache_dir).inside(SOUNDS_ES)
    real = {
        str(f.relative_to(sounds).with_suffix(""))
        for f in sounds.rglob("*")
        if f.is_file() and f.relative_to(sounds).parts[0] != "citas"  # our prompts
    }
    assert asterisk_sounds() == real
    # Every sound the speller can name is in the root, our prompts included.
    installed = {str(f.relative_to(sounds).with_suffix("")) for f in sounds.rglob("*")}
    missing = {u for u in every_media_uri() if u.removeprefix("sound:") not in installed}
    assert missing == set()
    assert {f"citas/{p}" for p in PROMPT_IDS} <= installed


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
