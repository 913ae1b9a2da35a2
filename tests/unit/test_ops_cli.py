"""``ivr flags``, ``ivr incident`` and ``ivr ops token`` in-process, on a temp instance."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from ivr.ops.flags import Role
from ivr.ops.service import Actor
from ivr.settings import Settings
from ivr.store import Database


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "clitest")
    monkeypatch.delenv("CITAS_DB_URL", raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def flags(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run(capsys, "flags", "list", "--json")
    assert code == 0
    return {f["name"]: f for f in json.loads(out)}


ME = f"cli:{getpass.getuser()}"


def test_list_set_and_reset(capsys: pytest.CaptureFixture[str], instance: Path) -> None:
    code, out, _ = run(capsys, "flags", "list")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["self_service_booking", "on", "default"]

    code, out, err = run(capsys, "flags", "set", "self_service_booking", "off", "--reason", "caída")
    assert (code, err) == (0, "")
    assert out.split()[:3] == ["self_service_booking", "off", "set"] and ME in out
    assert (instance / "clitest" / "citas.db").is_file()
    flag = flags(capsys)["self_service_booking"]
    assert (flag["value"], flag["updated_by"]) == (False, ME)

    code, out, _ = run(
        capsys, "flags", "set", "eligibility.cups_in_scope", "890301,890201", "--reason", "alcance"
    )
    assert code == 0 and "890201,890301" in out
    code, _, _ = run(
        capsys,
        "flags",
        "set",
        "site.centro.phone_booking_closed_from",
        "none",
        "--reason",
        "reabre",
    )
    assert code == 0 and flags(capsys)["site.centro.phone_booking_closed_from"]["value"] is None

    code, out, _ = run(capsys, "flags", "reset", "self_service_booking", "--reason", "resuelto")
    assert code == 0 and out.split()[:3] == ["self_service_booking", "on", "default"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["flags", "set", "nope", "on", "--reason", "x"], "unknown flag 'nope'"),
        (
            ["flags", "set", "promo_audio", "maybe", "--reason", "x"],
            "promo_audio: expected on or off",
        ),
        (["flags", "set", "promo_audio", "off"], "every change needs a reason (--reason)"),
        (["flags", "set", "promo_audio", "off", "--reason", "  "], "needs a reason"),
        (["flags", "set", "eligibility.age_min", "80", "--reason", "x"], "quedaría por encima de"),
        (["flags", "reset", "nope", "--reason", "x"], "unknown flag"),
        (
            ["flags", "schedule", "promo_audio", "off", "--for", "3x", "--reason", "x"],
            "expected a duration",
        ),
        (
            ["flags", "schedule", "promo_audio", "off", "--until", "mañana", "--reason", "x"],
            "expected ISO 8601",
        ),
        (
            [
                "flags",
                "schedule",
                "promo_audio",
                "off",
                "--until",
                "2030-01-01T10:00",
                "--reason",
                "x",
            ],
            "give the UTC offset",
        ),
        (
            [
                "flags",
                "schedule",
                "promo_audio",
                "off",
                "--until",
                "2020-01-01T10:00Z",
                "--reason",
                "x",
            ],
            "not valid",
        ),
        (["flags", "cancel", "no-such-window", "--reason", "x"], "no window no-such-window"),
        (["flags", "history", "nope"], "unknown flag"),
        (["flags", "history", "--limit", "0"], "--limit"),
        (["incident", "on"], "needs a reason"),
        (["ops", "token", "revoke", "nobody", "--reason", "x"], "no active token"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert err.startswith(f"ivr {argv[0]}: ")
    code, out, _ = run(capsys, "flags", "history")
    assert out == ""  # nothing was changed


def test_argparse_refuses_a_missing_window_end(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["flags", "schedule", "promo_audio", "off", "--reason", "x"])
    assert caught.value.code == 2
    assert "--for" in capsys.readouterr().err


def test_windows_schedule_list_cancel(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "flags",
        "schedule",
        "promo_audio",
        "off",
        "--for",
        "30m",
        "--reason",
        "campaña pausada",
    )
    assert code == 0 and "promo_audio=off" in out and " active " in out
    window_id = out.split()[0]
    code, out, _ = run(
        capsys,
        "flags",
        "schedule",
        "sms_redirect",
        "off",
        "--start",
        "2099-01-01T08:00-05:00",
        "--until",
        "2099-01-01T10:00-05:00",
        "--reason",
        "mantenimiento",
    )
    assert code == 0 and " scheduled " in out
    assert flags(capsys)["promo_audio"]["source"] == "window"

    code, out, _ = run(capsys, "flags", "windows")
    assert code == 0 and len(out.splitlines()) == 2 and window_id in out

    code, out, _ = run(capsys, "flags", "cancel", window_id, "--reason", "retomada")
    assert code == 0 and " cancelled " in out
    assert flags(capsys)["promo_audio"]["value"] is True
    _, out, _ = run(capsys, "flags", "windows")
    assert window_id not in out
    _, out, _ = run(capsys, "flags", "windows", "--all")
    assert window_id in out and len(out.splitlines()) == 2


@pytest.mark.parametrize(
    ("start", "duration", "accepted"),
    [
        ("2020-01-01T00:00Z", "1h", False),  # observed: was a one-hour window from now
        ("2020-01-01T00:00-05:00", "30m", False),
        ("2099-01-01T08:00-05:00", "2h", True),
    ],
)
def test_a_window_lasts_for_its_duration_from_its_start(
    capsys: pytest.CaptureFixture[str], start: str, duration: str, accepted: bool
) -> None:
    code, out, err = run(
        capsys, "flags", "schedule", "promo_audio", "off",
        "--start", start, "--for", duration, "--reason", "campaña",
    )  # fmt: skip
    if not accepted:
        assert code == 2 and "already over" in err, (out, err)
        assert run(capsys, "flags", "windows")[1] == ""
        return
    assert code == 0, err
    _, out, _ = run(capsys, "flags", "windows")
    assert "2099-01-01T13:00:00+00:00" in out and "2099-01-01T15:00:00+00:00" in out, out


def test_incident_and_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "incident", "on", "--reason", "caída del operador")[:2] == (
        0,
        "incident mode on\n",
    )
    assert run(capsys, "incident", "off", "--reason", "resuelto")[:2] == (0, "incident mode off\n")
    run(capsys, "flags", "set", "promo_audio", "off", "--reason", "pausa")

    code, out, _ = run(capsys, "flags", "history")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert "set promo_audio: on → off" in lines[0] and ME in lines[0]
    assert "incident_on incident_mode: off → on" in lines[2] and "caída del operador" in lines[2]

    _, out, _ = run(capsys, "flags", "history", "incident_mode", "--limit", "1")
    assert len(out.splitlines()) == 1 and "incident_off" in out
    _, out, _ = run(capsys, "flags", "history", "--since", "2099-01-01T00:00Z")
    assert out == ""
    _, out, _ = run(capsys, "flags", "history", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["action"] for r in rows] == ["set", "incident_off", "incident_on"]
    assert rows[0]["actor"] == ME and rows[0]["role"] == "admin"


def test_tokens_create_list_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "ops", "token", "create", "ada", "--role", "admin")
    assert (code, err) == (0, "")
    token = out.strip()
    assert out == token + "\n" and len(token) >= 40

    async def who(secret: str) -> Actor | None:
        from ivr.citas.flags import flag_registry
        from ivr.citas.reference import load_reference
        from ivr.ops.service import FlagService
        from ivr.ops.store import OpsStore

        db = Database(Settings.from_env().database_url)
        try:
            return await FlagService(OpsStore(db), flag_registry(load_reference())).authenticate(
                secret
            )
        finally:
            await db.close()

    assert asyncio.run(who(token)) == Actor("token:ada", Role.ADMIN)
    assert run(capsys, "ops", "token", "create", "ada", "--role", "viewer")[0] == 2
    code, out, _ = run(capsys, "ops", "token", "list")
    assert code == 0 and out.split()[:3] == ["ada", "admin", "active"] and token not in out
    code, out, _ = run(capsys, "ops", "token", "revoke", "ada", "--reason", "rotación")
    assert (code, out) == (0, "token ada revoked\n")
    assert asyncio.run(who(token)) is None
    _, out, _ = run(capsys, "ops", "token", "list")
    assert " revoked " in out


def test_instance_option_picks_the_database(
    capsys: pytest.CaptureFixture[str], instance: Path
) -> None:
    code, _, _ = run(
        capsys, "flags", "set", "promo_audio", "off", "--reason", "x", "--instance", "otra"
    )
    assert code == 0
    assert (instance / "otra" / "citas.db").is_file()
    assert flags(capsys)["promo_audio"]["value"] is True  # the default instance is untouched


# --- the real command, in its own process, on a real SQLite database ------------------------
def ivr(instance: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITAS_")}
    env |= {"CITAS_STATE_DIR": str(instance), "CITAS_INSTANCE": "clitest"}
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *argv],
        env=env, capture_output=True, text=True, errors="replace", timeout=60, check=False,
    )  # fmt: skip


def test_a_rule_broken_under_a_window_is_refused_by_the_command(instance: Path) -> None:
    # Issue 9 §5: with a one-hour window age_max = 30, `ivr flags set eligibility.age_min 40`
    # was accepted and the band became 40–30.
    done = ivr(instance, "flags", "schedule", "eligibility.age_max", "30", "--for", "1h",
               "--reason", "prueba")  # fmt: skip
    assert done.returncode == 0, done.stderr
    window_id = done.stdout.split()[0]
    done = ivr(instance, "flags", "set", "eligibility.age_min", "40", "--reason", "ampliar")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("ivr flags: el cambio rompería la regla «la edad mínima no ")
    assert "(eligibility.age_band) desde 20" in done.stderr
    assert "eligibility.age_min (40) quedaría por encima de eligibility.age_max (30)" in done.stderr
    assert window_id in done.stderr
    flags_now = {f["name"]: f for f in json.loads(ivr(instance, "flags", "list", "--json").stdout)}
    assert (flags_now["eligibility.age_min"]["value"], flags_now["eligibility.age_max"]["value"]) == (
        11, 30,
    )  # fmt: skip
    # Once the window is gone, the same change is judged on the stored values alone.
    assert ivr(instance, "flags", "cancel", window_id, "--reason", "fin").returncode == 0
    assert (
        ivr(instance, "flags", "set", "eligibility.age_min", "40", "--reason", "x").returncode == 0
    )
