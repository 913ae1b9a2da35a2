"""``ivr cases list|show``: the operator's read-only view, in Spanish and masked.

The kind of fault: a personal number printed in clear, a mistyped number
taken for another case, an instant shown in UTC instead of Bogotá time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.cases.config import load_cases_config
from ivr.cases.model import Actor, NewCase
from ivr.cases.store import CaseStore
from ivr.cli import main
from ivr.settings import Settings
from ivr.store.db import Database

FRIDAY = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 10:00 in Bogotá


@pytest.fixture
def filed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "casestest")
    monkeypatch.delenv("CITAS_DB_URL", raising=False)
    config = load_cases_config()

    async def seed() -> list[str]:
        db = Database(Settings.from_env().database_url)
        try:
            await db.migrate()
            store = CaseStore(db, config.calendar_for, config, clock=lambda: FRIDAY)
            a = await store.file(NewCase("1012345678", "general", "mg_first", "890201", "norte", "voice",
                                         "Cita de medicina general; no hay cupos.",
                                         contact_phone="+573001234567", contact_email="p@example.org",
                                         consent=True))  # fmt: skip
            b = await store.file(NewCase("52000111", "pediatrics", "ped_first", "890283", "sur", "chat",
                                         "Pediatría para mi hija.", wa_id="573009998877"))  # fmt: skip
            await store.assign(b.number, to="ana", group=None, actor=Actor("ana", "operator"))
            return [a.number, b.number]
        finally:
            await db.close()

    return asyncio.run(seed())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_queue_in_spanish(
    capsys: pytest.CaptureFixture[str], filed: list[str]
) -> None:
    code, out, _ = run(capsys, "cases", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["Número", "Estado", "Prioridad", "Especialidad", "Sede",
                                           "Radicado", "Vence", "Asignado"]  # fmt: skip
    assert filed[0] in out and filed[1] in out and "asignado" in out and "2 caso(s)." in out
    assert "2026-12-04 10:00" in out and "2026-12-14 17:00" in out  # Bogotá time
    code, out, _ = run(capsys, "cases", "list", "--state", "assigned")
    assert filed[1] in out and filed[0] not in out
    code, out, _ = run(capsys, "cases", "list", "--site", "nadie")
    assert "No hay casos" in out


def test_show_masks_and_tells_the_clocks(
    capsys: pytest.CaptureFixture[str], filed: list[str]
) -> None:
    code, out, _ = run(capsys, "cases", "show", filed[0])
    assert code == 0
    assert f"Caso {filed[0]} — abierto" in out and "*******678" in out
    assert "1012345678" not in out and "3001234567" not in out
    assert (
        "Primera respuesta: vence 2026-12-05 09:00" in out
        and "Resolución: vence 2026-12-14 17:00" in out
    )
    assert "filed por sistema (system)" in out
    code, out, _ = run(capsys, "cases", "show", filed[1], "--json")
    assert '"wa_id": "*********877"' in out and "573009998877" not in out


@pytest.mark.parametrize(
    ("typed", "why"),
    [("0000012", " (el dígito de control no corresponde)"),
     ("0000031", " (el dígito de control no corresponde)"),
     ("9999999", " (el dígito de control no corresponde)"),
     ("abc", " (un número de radicado tiene 7 dígitos)"),
     ("13", " (un número de radicado tiene 7 dígitos)"),  # review: was "dígito de control"
     ("0005004", "")],  # a well-formed number no case has
)  # fmt: skip
def test_show_refuses_a_mistyped_number(
    capsys: pytest.CaptureFixture[str], filed: list[str], typed: str, why: str
) -> None:
    code, out, err = run(capsys, "cases", "show", typed)
    assert code == 1 and err.strip() == f"No existe el caso {typed}{why}." and out == ""
