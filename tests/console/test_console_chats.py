"""The console's WhatsApp panel in a real Chromium, against ``ivr ops serve``: the
active chats (masked), the counts by outcome, and the hand-off queue with "Tomar"
and "Liberar" (issue 10 §6, §7). The conversations are written by the real
conversation store into the server's own SQLite database."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from ivr.chat.store import ConversationStore, InboundMessage
from ivr.masking import mask_number
from ivr.settings import Settings
from ivr.store.db import Database
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import WAIT_S, css, log_in, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S

pytestmark = pytest.mark.console

ANA = "573001234567"  # at the main menu, with the bot
BETO = "573007654321"  # asked for a person
CARLA = "573005550000"  # booked, closed
NUMBERS = (ANA, BETO, CARLA)


async def _seed(server: OpsServer) -> None:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    store = ConversationStore(db, flow="citas")
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        for n, wa_id in enumerate(NUMBERS):
            await store.receive(InboundMessage(f"wamid.seed{n}", wa_id, "text", now, "Hola"))
        async with store.turn(ANA) as turn:
            turn.conversation.node = "main_menu"
        async with store.turn(BETO) as turn:
            turn.conversation.node = None
            turn.conversation.outcome = "handed_off"
            turn.hand_to_agent("asked", {"segment": "target"})
        async with store.turn(CARLA) as turn:
            turn.conversation.state, turn.conversation.outcome = "closed", "booked"
    finally:
        await db.close()


async def _state(server: OpsServer, wa_id: str) -> tuple[str, str | None]:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    try:
        conv = await ConversationStore(db, flow="citas").conversation(wa_id)
        assert conv is not None
        return conv.state, conv.assigned_agent
    finally:
        await db.close()


def _no_full_number(driver: WebDriver) -> None:
    page = driver.page_source
    for number in NUMBERS:
        for form in (number, "+" + number, number[2:]):
            assert form not in page, f"the page shows {mask_number(number)} unmasked"


def test_the_chats_panel_shows_active_and_handed_off_chats_masked(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    asyncio.run(_seed(ops_server))
    log_in(browser, ops_server, ops_server.token("vale", "viewer"))
    wait_text(browser, "#chat-active", "2")  # Ana with the bot, Beto with (waiting for) a person
    wait_text(browser, '#chat-outcomes tr[data-outcome="booked"] .label', "cita asignada")
    assert css(browser, '#chat-outcomes tr[data-outcome="booked"] .count').text == "1"
    assert css(browser, '#chat-outcomes tr[data-outcome="handed_off"] .label').text == (
        "transferida a un asesor"
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#chats tbody tr")
    shown = {r.find_element(By.CSS_SELECTOR, ".number").text: r for r in rows}
    assert set(shown) == {mask_number(ANA), mask_number(BETO)}
    ana = shown[mask_number(ANA)]
    assert ana.find_element(By.CSS_SELECTOR, ".node").text == "main_menu"
    assert ana.find_element(By.CSS_SELECTOR, ".holder").text == "asistente automático"
    assert re.fullmatch(
        r"quedan 2[34] h \d+ min", ana.find_element(By.CSS_SELECTOR, ".window").text
    )
    beto = shown[mask_number(BETO)]
    assert beto.find_element(By.CSS_SELECTOR, ".holder").text == "asesor (en cola)"
    queue = css(browser, "#handoffs tbody tr[data-handoff]")
    assert queue.find_element(By.CSS_SELECTOR, ".number").text == mask_number(BETO)
    assert queue.find_element(By.CSS_SELECTOR, ".reason").text == "pidió hablar con un asesor"
    # A viewer sees the queue but cannot take or release.
    assert not queue.find_element(By.CSS_SELECTOR, ".take").is_enabled()
    assert not queue.find_element(By.CSS_SELECTOR, ".release").is_enabled()
    _no_full_number(browser)


def test_an_operator_takes_then_releases_a_handed_off_chat(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    asyncio.run(_seed(ops_server))
    log_in(browser, ops_server, ops_server.token("olivia", "operator"))
    row = "#handoffs tbody tr[data-handoff]"
    wait_text(browser, f"{row} .taken-by", "nadie todavía")
    css(browser, f"{row} .take").click()

    wait_text(browser, f"{row} .taken-by", "token:olivia")
    wait_text(browser, "#notice", "ahora la atiende usted")
    assert not css(browser, f"{row} .take").is_enabled()
    wait_text(browser, '#chats tr[data-state="agent"] .holder', "asesor: token:olivia")
    assert asyncio.run(_state(ops_server, BETO)) == ("agent", "token:olivia")

    css(browser, f"{row} .release").click()
    wait_for(
        browser,
        ec.invisibility_of_element_located((By.CSS_SELECTOR, row)),
        f"{row} never went away",
        WAIT_S,
    )
    wait_text(browser, "#handoffs tbody", "Nadie espera a un asesor.")
    wait_text(browser, "#notice", "de vuelta al asistente automático")
    wait_text(browser, "#chat-active", "1")  # Beto waits for his next message, with the bot
    assert asyncio.run(_state(ops_server, BETO)) == ("bot", None)
    _no_full_number(browser)


def test_the_whole_page_reads_in_spanish(browser: WebDriver, ops_server: OpsServer) -> None:
    asyncio.run(_seed(ops_server))
    log_in(browser, ops_server, ops_server.token("olga", "operator"))
    wait_text(browser, "#chat-active", "2")
    text = css(browser, "#chats-section").text
    for english in ("bot", "agent", "closed", "handed_off", "booked", "asked", "Take", "Release"):
        assert not re.search(rf"\b{english}\b", text), f"{english!r} shown to the operator"
    for spanish in ("Conversaciones de WhatsApp", "Cola de transferencias a un asesor", "Tomar",
                    "Liberar", "Ventana de 24 horas"):  # fmt: skip
        assert spanish in text


def test_a_handoff_taken_by_someone_else_is_refused_in_spanish(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    asyncio.run(_seed(ops_server))
    log_in(browser, ops_server, ops_server.token("oscar", "operator"))
    row = "#handoffs tbody tr[data-handoff]"
    handoff_id = css(browser, row).get_attribute("data-handoff")
    status, _ = ops_server.request(
        "POST", f"/api/chat/handoffs/{handoff_id}/take", ops_server.token("pia", "operator"), {}
    )
    assert status == 200
    css(browser, f"{row} .take").click()  # the page has not refreshed yet: still enabled
    wait_text(browser, "#error", "No se pudo: la transferencia")
    assert "ya la tomó token:pia" in css(browser, "#error").text
    wait_text(browser, f"{row} .taken-by", "token:pia")
