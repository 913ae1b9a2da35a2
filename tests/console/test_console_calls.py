"""The console's calls panel ("Llamadas") in a real Chromium, against ``ivr ops serve``:
calls in progress and the last 24 hours by outcome in Spanish, beside the WhatsApp
panel, refreshed by itself (issue 10 §6). The calls are written by the real call
record store into the server's own SQLite database."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from ivr.settings import Settings
from ivr.store.db import Database
from ivr.store.models import CallRecordRow
from ivr.store.records import CallRecord, CallRecordStore
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S

pytestmark = pytest.mark.console

CALLER = "3001234567"
REFRESH_WAIT_S = 40  # the console refreshes every 10 s; a loaded machine is slow


async def _open(server: OpsServer, n: int) -> list[CallRecord]:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    store = CallRecordStore(db)
    try:
        return [await store.open(channel_id=f"chan-{k}", flow="citas", sip_call_id=f"sip-{k}",
                                 caller_number=CALLER) for k in range(n)]  # fmt: skip
    finally:
        await db.close()


async def _close(server: OpsServer, records: list[tuple[CallRecord, str]]) -> None:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    store = CallRecordStore(db)
    try:
        for record, outcome in records:
            await store.close(record, outcome=outcome, reason="hangup")
    finally:
        await db.close()


async def _interrupted(server: OpsServer) -> None:
    """A call that started 3 h ago and never ended (the controller died mid-call)."""
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    try:
        async with db.sessions.begin() as session:
            session.add(CallRecordRow(
                id="00000000-0000-0000-0000-000000000099", channel_id="chan-old", sip_call_id=None,
                flow="citas", caller_number=CALLER, started_at=datetime.now(UTC) - timedelta(hours=3),
                ended_at=None, outcome=None, end_reason=None, steps=0, path=[], variables={},
            ))  # fmt: skip
    finally:
        await db.close()


def _seed(server: OpsServer) -> list[CallRecord]:
    """Six calls: two transferred, one booked, one that hung up, two still in progress;
    plus one interrupted. Returns the two in progress."""
    records = asyncio.run(_open(server, 6))
    asyncio.run(_close(server, list(zip(records[:4], ("transferred", "transferred", "booked",
                                                      "abandoned"), strict=True))))  # fmt: skip
    asyncio.run(_interrupted(server))
    return records[4:]


def test_the_calls_panel_shows_calls_in_progress_and_by_outcome_in_spanish(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    _seed(ops_server)
    log_in(browser, ops_server, ops_server.token("vale", "viewer"))
    wait_text(browser, "#call-in-progress", "2")
    expected = {
        "transferred": ("transferida a un asesor", "2"),
        "booked": ("cita asignada", "1"),
        "abandoned": ("el usuario colgó", "1"),
        "interrupted": ("interrumpida", "1"),
    }
    for outcome, (label, count) in expected.items():
        row = f'#call-outcomes tr[data-outcome="{outcome}"]'
        wait_text(browser, f"{row} .label", label)
        assert css(browser, f"{row} .count").text == count
    rows = browser.find_elements("css selector", "#call-outcomes tbody tr")
    assert len(rows) == len(expected)

    section = css(browser, "#calls-section").text
    assert "Llamadas" in section and "Llamadas en curso ahora" in section
    for english in ("transferred", "booked", "abandoned", "interrupted", "calls", "outcome"):
        assert not re.search(rf"\b{english}\b", section), f"{english!r} shown to the operator"
    page = browser.page_source
    for form in (CALLER, "57" + CALLER, "+57" + CALLER):
        assert form not in page, "the page shows a caller's number"

    # Beside the WhatsApp panel: same row, calls first.
    calls, chats = css(browser, "#calls-section"), css(browser, "#chats-section")
    assert calls.location["y"] == chats.location["y"]
    assert calls.location["x"] + calls.size["width"] <= chats.location["x"]


def test_the_calls_panel_refreshes_by_itself(browser: WebDriver, ops_server: OpsServer) -> None:
    running = _seed(ops_server)
    log_in(browser, ops_server, ops_server.token("olga", "operator"))
    wait_text(browser, "#call-in-progress", "2")
    wait_text(browser, '#call-outcomes tr[data-outcome="transferred"] .count', "2")

    asyncio.run(_close(ops_server, [(running[0], "transferred"), (running[1], "no_input")]))

    wait_for(
        browser,
        lambda d: css(d, "#call-in-progress").text == "0",
        "the panel never refreshed",
        REFRESH_WAIT_S,
    )
    wait_text(browser, '#call-outcomes tr[data-outcome="transferred"] .count', "3")
    wait_text(browser, '#call-outcomes tr[data-outcome="no_input"] .label',
              "sin respuesta del usuario")  # fmt: skip


def test_no_calls_reads_as_such(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("nora", "viewer"))
    wait_text(browser, "#call-in-progress", "0")
    wait_text(browser, "#call-outcomes tbody", "Ninguna llamada terminada en las últimas 24 horas.")
