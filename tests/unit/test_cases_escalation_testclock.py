"""The SLA monitor's test clock and ``ivr cases clock`` (sandbox only).

The kind of fault: a test clock active where it must not be (no sandbox), an
offset misread (a half-written file, a bad duration), or lost between
commands. Table of durations; the CLI in and outside a sandbox instance.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.escalation.testclock import CLOCK_FILE, TestClock, parse_offset

REAL = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("8h", timedelta(hours=8)),
     ("2d", timedelta(days=2)), (" 3d ", timedelta(days=3)), ("0s", timedelta(0))],
)  # fmt: skip
def test_offsets(text: str, offset: timedelta) -> None:
    assert parse_offset(text) == offset


@pytest.mark.parametrize("text", ["", "2", "d", "-1d", "1.5h", "2w", "2 d", "123456d"])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_offset(text)


def test_the_offset_accumulates_survives_a_new_reader_and_resets(tmp_path: Path) -> None:
    path = tmp_path / CLOCK_FILE
    clock = TestClock(path, real=lambda: REAL)

    assert clock.now() == REAL
    clock.advance(timedelta(days=2))
    clock.advance(timedelta(hours=3))
    assert TestClock(path, real=lambda: REAL).now() == REAL + timedelta(days=2, hours=3)
    clock.reset()
    assert clock.now() == REAL


@pytest.mark.parametrize("content", ["", "{", "[]", '{"offset_s": "x"}', '{"other": 1}'])
def test_an_unreadable_file_is_no_offset(tmp_path: Path, content: str) -> None:
    path = tmp_path / CLOCK_FILE
    path.write_text(content, encoding="utf-8")

    assert TestClock(path, real=lambda: REAL).now() == REAL


def test_the_command_works_only_in_a_sandbox_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "probe")

    assert main(["cases", "clock", "advance", "2d"]) == 2
    assert "only in a sandbox" in capsys.readouterr().out
    assert not (tmp_path / "probe" / CLOCK_FILE).exists()

    from ivr.sandbox.instance import InstancePaths, InstanceState
    from ivr.settings import Settings

    settings = Settings.from_env()
    state = InstanceState(instance="probe", root="/nonexistent", host="127.0.0.1",
                          ports=dict(vars(settings.ports)))  # fmt: skip
    InstancePaths(settings).save(state)
    assert main(["cases", "clock", "advance", "2d"]) == 0
    assert main(["cases", "clock", "advance", "bogus"]) == 2
    data = json.loads((tmp_path / "probe" / CLOCK_FILE).read_text())
    assert data == {"offset_s": 2 * 86400}
    assert main(["cases", "clock", "reset"]) == 0
    assert not (tmp_path / "probe" / CLOCK_FILE).exists()
