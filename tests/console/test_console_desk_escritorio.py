"""The agent's desktop (Escritorio) in a real Chromium, against ``ivr ops serve``: the agent
of the token, the chat hand-off queue, "Tomar" popping the chat's context over the
server-sent events stream (read with fetch: the token never in a URL), masked numbers,
and a reload that finds the same contact (``/api/desk/current``: nothing lost)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from ivr.chat.store import ConversationStore, InboundMessage
from ivr.settings import Settings
from ivr.store.db import Database
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_shown, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S

pytestmark = pytest.mark.console

BRUNO_WA = "573002222222"  # Bruno, 70: non-target (config/citas/affiliates.yaml)
BRUNO_DOC = "2020202020"
CARLA_WA = "573003333333"


async def _seed(server: OpsServer) -> list[int]:
    """Two chats handed to a person: Bruno's (non-target) and Carla's (target)."""
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    store = ConversationStore(db, flow="citas")
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        for n, (wa_id, document, segment) in enumerate(
            ((BRUNO_WA, BRUNO_DOC, "non_target"), (CARLA_WA, "3030303030", "target"))
        ):
            await store.receive(
                InboundMessage(f"wamid.desk{n}", wa_id, "text", now, "Quiero una cita")
            )
            async with store.turn(wa_id) as turn:
                turn.queue_outbound("k1", {"type": "text", "text": {"body": "Hola, soy Lina."}})
                turn.hand_to_agent("non-target", {
                    "segment": segment, "affiliate_id": document,
                    "eligibility_reasons": ["age_out_of_band:70"] if wa_id == BRUNO_WA else [],
                })  # fmt: skip
        return [h.id for h in await store.open_handoffs()]
    finally:
        await db.close()


def test_an_agent_takes_a_chat_and_its_context_pops(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    bruno, carla = asyncio.run(_seed(ops_server))
    token = ops_server.token("ana", "operator")
    log_in(browser, ops_server, token)
    wait_text(browser, "#whoami", "token:ana")
    nav = css(browser, 'a[href="/console/escritorio.html"]')
    assert nav.text == "Escritorio"
    browser.get(ops_server.url + "/console/escritorio.html")
    wait_text(browser, "#agent-name", "Ana Gómez")
    wait_text(browser, "#stream-state", "conectado")
    wait_text(browser, "#pop-empty", "Sin contacto")
    row = f'#handoffs tr[data-handoff="{carla}"]'
    wait_text(browser, row, "non-target")
    # Taken elsewhere (another tab, the API): the pop reaches this page over the stream.
    status, _ = ops_server.request("POST", f"/api/desk/handoffs/{bruno}/take", token, {})
    assert status == 200

    wait_text(browser, "#pop-kind", "chat")
    wait_text(browser, "#pop-name", "Bruno")
    wait_text(browser, "#pop-segment", "Población no objetivo")
    wait_text(browser, "#pop-reasons", "Edad fuera de la franja: 70 años")
    wait_text(browser, "#pop-chat", "Hola, soy Lina.")
    assert css(browser, "#pop-document").text == "*******020"
    assert css(browser, "#pop-phone").text == "+*********222"
    assert css(browser, "#pop").get_attribute("data-state") == "active"
    contact = css(browser, "#pop").get_attribute("data-contact")
    assert contact
    page = browser.page_source
    assert BRUNO_DOC not in page and BRUNO_WA not in page and BRUNO_WA[2:] not in page

    # The token travels in a header: no request the page made has it in its URL.
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert any("/api/desk/current" in u for u in urls)
    assert not any(token in u for u in urls)

    # A reload (a dropped connection, a new tab) finds the same contact.
    browser.refresh()
    wait_text(browser, "#pop-name", "Bruno")
    assert css(browser, "#pop").get_attribute("data-contact") == contact

    # "Tomar" on the page: Carla's chat pops the same way.
    css(browser, f"{row} button.take").click()
    wait_text(browser, "#pop-name", "Carla")
    wait_text(browser, "#pop-segment", "Población objetivo")
    assert css(browser, "#pop").get_attribute("data-contact") != contact
    wait_text(browser, "#notice", "Chat tomado")
    assert browser.find_elements(By.CSS_SELECTOR, f"{row} button.take") == []


def test_a_token_that_is_no_agent_is_told_so(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("vale", "viewer"))
    wait_text(browser, "#whoami", "token:vale")
    browser.get(ops_server.url + "/console/escritorio.html")
    wait_text(browser, "#error", "no es un asesor del escritorio")


def test_the_desktop_speaks_spanish_with_and_without_a_contact(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    """Review of issue 12: between calls the panels are mounted with no contact (the
    script panel failed on it: "Cannot read properties of null" in the error box); a
    page's own failure is told in Spanish; the disposition form's check is the page's
    Spanish sentence, not the browser's ("Please select an item in the list"); a closed
    contact's path has no step left "en curso"."""
    bruno, _carla = asyncio.run(_seed(ops_server))
    token = ops_server.token("ana", "operator")
    log_in(browser, ops_server, token)
    wait_text(browser, "#whoami", "token:ana")
    browser.get(ops_server.url + "/console/escritorio.html")
    wait_text(browser, "#stream-state", "conectado")
    wait_text(browser, "#pop-empty", "Sin contacto")
    wait_text(browser, "#guion", "El guion se abre al contestar.")
    assert css(browser, "#error").get_attribute("hidden") is not None, css(browser, "#error").text

    # Any error that is not the API's (a script's TypeError) reaches the agent in Spanish.
    browser.execute_script(
        "showError(new TypeError(\"Cannot read properties of null (reading 'id')\"))"
    )
    wait_text(browser, "#error", "la página falló")
    assert "Cannot read" not in css(browser, "#error").text
    browser.execute_script("showError(null)")

    status, _ = ops_server.request("POST", f"/api/desk/handoffs/{bruno}/take", token, {})
    assert status == 200
    wait_text(browser, "#pop-name", "Bruno")
    wait_text(browser, "#guion", "Camino")
    css(browser, "#guion details.script-early-box summary").click()
    css(browser, "#guion form.script-early button").click()
    wait_text(browser, "#guion .script-message", "Elija una tipificación")
    select = css(browser, "#guion form.script-early select")
    option = select.find_elements(By.TAG_NAME, "option")[1]
    option.click()
    css(browser, "#guion form.script-early button").click()
    wait_text(browser, "#guion .script-closed", "Contacto cerrado")
    wait_text(browser, "#pop-state", "cerrado")  # not "en cierre (falta la tipificación)"
    assert css(browser, "#pop").get_attribute("data-state") == "closed"
    wait_text(browser, "#guion .script-path", "s)")
    assert "en curso" not in css(browser, "#guion .script-path").text
    assert css(browser, "#error").get_attribute("hidden") is not None, css(browser, "#error").text


def ana_takes_bruno(browser: WebDriver, ops_server: OpsServer) -> str:
    """Ana's desktop with Bruno's chat taken and its script open; her token."""
    bruno, _carla = asyncio.run(_seed(ops_server))
    token = ops_server.token("ana", "operator")
    log_in(browser, ops_server, token)
    wait_text(browser, "#whoami", "token:ana")
    browser.get(ops_server.url + "/console/escritorio.html")
    wait_text(browser, "#stream-state", "conectado")
    status, _ = ops_server.request("POST", f"/api/desk/handoffs/{bruno}/take", token, {})
    assert status == 200
    wait_text(browser, "#pop-name", "Bruno")
    wait_text(browser, "#guion", "Camino")
    return token


def test_after_an_escalation_the_pop_and_the_script_say_so(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    """Review of issue 12: after the agent escalated, the pop still said "(en curso)" and the
    script kept its answer buttons; a click on one was refused (409) and the refusal was
    hidden by the panel's own re-read: nothing happened, silently."""
    from selenium.webdriver.support.ui import Select

    token = ana_takes_bruno(browser, ops_server)
    contact = css(browser, "#pop").get_attribute("data-contact")
    node = css(browser, "#guion .script-node").get_attribute("data-node")
    answer = css(browser, "#guion .script-node .script-answers button").get_attribute("data-answer")

    # Another tab answers first: this tab's click is refused, and the agent is told why.
    status, _ = ops_server.request(
        "POST",
        f"/api/desk/contacts/{contact}/script/answer",
        token,
        {"node_id": node, "answer": answer},
    )
    assert status == 200, status
    css(browser, f'#guion .script-node[data-node="{node}"] .script-answers button').click()
    # The message is there from the start, hidden and empty: wait for the refusal itself.
    assert "ya no está en ese paso" in wait_shown(browser, "#guion .script-message"), (
        "the 409 must stay"
    )

    Select(css(browser, '#escalar [data-role="area"]')).select_by_visible_text("Nivel 2 – Clínico")
    css(browser, '#escalar [data-role="reason"]').send_keys("Refiere dolor en el pecho")
    css(browser, '#escalar [data-role="escalate"]').click()
    css(browser, '#escalar [data-role="confirm"]').click()
    wait_text(browser, "#pop-state", "escalado")
    assert css(browser, "#pop").get_attribute("data-state") == "escalated"
    wait_text(
        browser, "#guion", "Contacto escalado: el guion sigue con el asesor del siguiente nivel."
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#guion .script-answers button") == []


def test_a_re_read_redraws_only_a_changed_script_and_a_redraw_keeps_the_agents_draft(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    """Stop 21's CI: the desktop re-reads the script on every pop of the same contact, and
    the panel redrew it each time, unchanged: the node under the agent's pointer (and the
    test's) was replaced (StaleElementReferenceException), and a redraw threw away a
    half-typed note and the chosen disposition."""
    from selenium.webdriver.support.ui import Select

    ana_takes_bruno(browser, ops_server)

    # A re-read (what the desktop does on a pop of the same contact) that changed nothing.
    browser.execute_script("document.querySelector('#guion .script-node').citasMark = 'drawn once'")
    browser.execute_script("return document.getElementById('guion').citasScript.panel.refresh()")
    assert (
        browser.execute_script("return document.querySelector('#guion .script-node').citasMark")
        == "drawn once"
    )

    # The agent starts closing early, then answers the script: the redraw keeps the draft.
    css(browser, "#guion details.script-early-box summary").click()
    select = Select(css(browser, "#guion form.script-early select"))
    chosen = select.options[1].get_attribute("value")
    select.select_by_value(chosen)
    css(browser, "#guion form.script-early textarea").send_keys("Pide que lo llamen en la tarde")
    node = css(browser, "#guion .script-node").get_attribute("data-node")
    css(browser, "#guion .script-node .script-answers button").click()
    wait_for(browser, lambda d: d.execute_script(
        "const n = document.querySelector('#guion .script-node'); return n && n.dataset.node") not in (None, node),
        f"the script stayed at {node}", 15)  # fmt: skip
    assert (
        browser.execute_script(
            "return document.querySelector('#guion details.script-early-box').open"
        )
        is True
    )
    assert (
        Select(css(browser, "#guion form.script-early select")).first_selected_option.get_attribute(
            "value"
        )
        == chosen
    )
    assert (
        css(browser, "#guion form.script-early textarea").get_attribute("value")
        == "Pide que lo llamen en la tarde"
    )
