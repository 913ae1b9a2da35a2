"""``ivr desk contacts``: the desk's contacts from the command line, Spanish and masked.

The kind of fault: a caller's number printed in clear, an instant shown in UTC
instead of Bogotá time, an unknown agent taken for "no contacts".
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.desk.model import CHAT, VOICE, NewContact
from ivr.desk.store import DeskStore
from ivr.settings import Settings
from ivr.store.db import Database

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 10:00 in Bogotá


@pytest.fixture
def opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "desktest")
    monkeypatch.delenv("CITAS_DB_URL", raising=False)

    async def seed() -> list[str]:
        db = Database(Settings.from_env().database_url)
        try:
            await db.migrate()
            store = DeskStore(db, clock=lambda: T0)
            call = await store.open_contact(NewContact(
                kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="l1_general", level=1,
                area="recepcion", journey_key="u1", answered_at=T0,
                channel="PJSIP/3001234567-0000000c", ivr_reason="non-target",
            ))  # fmt: skip
            await store.close(call.id, disposition="remitido_whatsapp", agent="7001")
            chat = await store.open_contact(NewContact(
                kind=CHAT, agent="7002", agent_name="Bruno Díaz", queue="l1_general", level=1,
                area="recepcion", journey_key="conv", answered_at=T0, wa_id="573009998877",
            ))  # fmt: skip
            return [call.id, chat.id]
        finally:
            await db.close()

    return asyncio.run(seed())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_contacts_in_spanish_masked_in_bogota_time(
    capsys: pytest.CaptureFixture[str], opened: list[str]
) -> None:
    code, out, _ = run(capsys, "desk", "contacts")
    assert code == 0
    assert "Atendido" in out and "Tipificación" in out and "2 contacto(s)." in out
    assert "2026-12-04 10:00:00" in out  # Bogotá, not 15:00 UTC
    assert "Nivel 1 – Recepción" in out and "Cerrado" in out and "En curso" in out
    assert "PJSIP/*******567-0000000c" in out and "*********877" in out
    assert "3001234567" not in out and "573009998877" not in out


def test_contacts_of_one_agent_and_as_json(
    capsys: pytest.CaptureFixture[str], opened: list[str]
) -> None:
    code, out, _ = run(capsys, "desk", "contacts", "--agent", "7002", "--json")
    assert code == 0
    shown = json.loads(out)["contacts"]
    assert [c["id"] for c in shown] == [opened[1]] and shown[0]["wa_id"] == "*********877"
    code, out, _ = run(capsys, "desk", "contacts", "--state", "wrapup")
    assert (code, out.strip()) == (0, "No hay contactos que cumplan el filtro.")


def test_an_unknown_agent_is_an_error_not_an_empty_list(
    capsys: pytest.CaptureFixture[str], opened: list[str]
) -> None:
    code, _, err = run(capsys, "desk", "contacts", "--agent", "7999")
    assert code == 2 and "no hay un asesor '7999'" in err and "7001" in err


def test_every_disposition_is_shown_by_its_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review of issue 12: the table showed the disposition's id (``agendado``); the operator
    reads its label in the script version the contact followed. Over every disposition of
    the shipped tree."""
    from ivr.desk.scripts import validate_tree
    from ivr.desk.store import ScriptStore
    from ivr.yamlsrc import load_yaml_file

    monkeypatch.setenv("CITAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CITAS_INSTANCE", "desktest")
    monkeypatch.delenv("CITAS_DB_URL", raising=False)
    tree = load_yaml_file(Path(__file__).resolve().parents[2] / "config" / "citas" / "scripts.yaml")
    dispositions: dict[str, str] = dict(tree["dispositions"])
    assert len(dispositions) > 5

    async def seed() -> None:
        db = Database(Settings.from_env().database_url)
        try:
            await db.migrate()
            seeded = await ScriptStore(db, validate_tree).seed(tree)
            assert seeded is not None
            store = DeskStore(db, clock=lambda: T0)
            for n, disposition in enumerate(dispositions):
                contact = await store.open_contact(NewContact(
                    kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="l1_general", level=1,
                    area="recepcion", journey_key=f"u{n}", answered_at=T0, channel=f"PJSIP/caller-{n}",
                ))  # fmt: skip
                await store.set_script(contact.id, version=seeded.version, node_id="inicio")
                await store.close(contact.id, disposition=disposition, agent="7001")
        finally:
            await db.close()

    asyncio.run(seed())
    code, out, _ = run(capsys, "desk", "contacts", "--limit", "100")
    assert code == 0
    for disposition, label in dispositions.items():
        assert label in out, (disposition, label)
    cells = {c.strip() for line in out.splitlines() for c in line.split("  ")}
    assert not set(dispositions) & cells, "an id shown where its label belongs"
