"""The scripts in a real Chromium, against ``ivr ops serve`` (issue 12 §3, §4):

- an administrator opens «Guiones», sees the live version's tree, breaks the YAML and
  reads the validator's Spanish message beside the editor, fixes it, saves a draft
  and publishes it (with the confirmation);
- an agent's script panel (``desk-script.js``'s ``mountScript``, mounted here in a
  small ``<section id="guion">`` on a console page of the same origin) opens where
  the IVR context says, with the caller's name inserted, follows the answers to the
  procedure, refuses to close without a disposition, and closes with one; every
  step is stored.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from ivr.desk.model import VOICE, Contact, NewContact, Step
from ivr.desk.store import DeskStore
from ivr.store.db import Database
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import WAIT_S, css, log_in, wait_text

pytestmark = pytest.mark.console
CONTEXT = {"ivr": {"reason": "non-target", "segment": "non_target", "eligibility": ["age_out_of_band:70"]},
           "caller": {"name": "Ana María Pérez"}, "facts": [{"label": "Servicio", "value": "Medicina general primera vez"}]}  # fmt: skip


def database(ops_server: OpsServer) -> Database:
    return Database(
        f"sqlite+aiosqlite:///{Path(ops_server.env['CITAS_STATE_DIR']) / 'default' / 'citas.db'}"
    )


def open_contact(ops_server: OpsServer) -> str:
    async def run() -> str:
        db = database(ops_server)
        try:
            contact = await DeskStore(db).open_contact(NewContact(
                kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="general", level=1,
                area="recepcion", journey_key="1733324400.50", answered_at=datetime.now(UTC),
                context=CONTEXT, ivr_reason="non-target", source_key="1733324400.50/7001",
            ))  # fmt: skip
            return contact.id
        finally:
            await db.close()

    return asyncio.run(run())


def stored(ops_server: OpsServer, contact_id: str) -> tuple[Contact | None, list[Step]]:
    async def run() -> tuple[Contact | None, list[Step]]:
        db = database(ops_server)
        try:
            desk = DeskStore(db)
            return await desk.get(contact_id), await desk.steps(contact_id)
        finally:
            await db.close()

    return asyncio.run(run())


def set_editor(browser: WebDriver, text: str) -> None:
    browser.execute_script("document.getElementById('editor').value = arguments[0]", text)


def test_an_admin_edits_sees_a_spanish_error_and_publishes(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    admin = ops_server.token("admin", "admin")
    log_in(browser, ops_server, admin)
    wait_text(browser, "#whoami", "token:admin")
    browser.get(ops_server.url + "/console/guiones.html")
    wait_text(browser, "#live-version", "versión 1")
    wait_text(browser, "#tree", "¿Cuenta con un smartphone?")
    wait_text(browser, "#entry", "reason = incident")
    original = browser.execute_script("return document.getElementById('editor').value")
    assert "call_types:" in original
    # Times in Bogotá's zone, not the browser's (review of issue 12: the page used the browser's).
    status, listed = ops_server.request("GET", "/api/desk/scripts", admin, None)
    assert status == 200
    created = listed["versions"][-1]["created_at"]
    bogota, utc = browser.execute_script(
        "const d = new Date(arguments[0]); return [d.toLocaleString('es-CO', {timeZone: 'America/Bogota'}),"
        " d.toLocaleString('es-CO', {timeZone: 'UTC'})];",
        created,
    )
    assert bogota != utc
    wait_text(browser, '#versions tr[data-version="1"]', bogota)

    broken = original.replace("next: invitar_lina", "next: invitar_a_lina", 1)
    set_editor(browser, broken)
    css(browser, "#check").click()
    wait_text(
        browser,
        "#problems",
        "'next: invitar_a_lina' no es un paso de este escenario ni un procedimiento",
    )
    assert "problema" in css(browser, "#check-state").text
    css(browser, "#note").send_keys("Lina: texto nuevo")
    css(browser, "#save").click()  # refused: the same messages, nothing saved
    wait_text(browser, "#error", "el guion no es válido")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")) == 1

    fixed = original.replace("Lina le muestra los cupos", "Lina le ofrece los cupos")
    set_editor(browser, fixed)
    css(browser, "#check").click()
    wait_text(browser, "#check-state", "El guion es válido.")
    css(browser, "#save").click()
    wait_text(browser, "#notice", "Borrador guardado como versión 2")
    row = '#versions tr[data-version="2"]'
    wait_text(browser, row, "borrador")
    css(browser, f"{row} button.publish").click()
    alert = wait_for(browser, ec.alert_is_present(), "no confirmation asked", WAIT_S)
    assert "¿Publicar la versión 2?" in alert.text
    alert.accept()
    wait_text(browser, "#notice", "Versión 2 publicada")
    wait_text(browser, "#live-version", "versión 2")
    wait_text(browser, '#versions tr[data-version="1"]', "retirada")
    status, detail = ops_server.request("GET", "/api/desk/scripts/2", admin, None)
    assert (
        status == 200
        and detail["state"] == "published"
        and "Lina le ofrece los cupos" in detail["yaml"]
    )


def mount_panel(browser: WebDriver, contact_id: str) -> None:
    browser.execute_script(
        "const s = document.createElement('section'); s.id = 'guion'; document.body.prepend(s);"
        "import('/console/desk-script.js').then((m) => { window.panel = m.mountScript(s, {contact_id: arguments[0]}); });",
        contact_id,
    )


PANEL_AT = ("const form = document.querySelector('#guion form.script-close');"
            "const node = document.querySelector('#guion .script-node');"
            "return form ? 'cierre-form' : (node ? node.dataset.node : null);")  # fmt: skip


def answer(browser: WebDriver, answer_id: str) -> None:
    """Click an answer and wait for the panel to move on. The panel redraws its
    element on each move, so where it is is read in one script (no stale element)."""
    node = wait_for(
        browser, lambda d: d.execute_script(PANEL_AT), "the script panel never showed", WAIT_S
    )
    css(browser, f'#guion .script-node button[data-answer="{answer_id}"]').click()
    wait_for(browser, lambda d: d.execute_script(PANEL_AT) not in (None, node),
               f"the panel stayed at {node} after {answer_id}", WAIT_S)  # fmt: skip


def test_an_agent_follows_the_script_to_a_disposition(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    contact_id = open_contact(ops_server)
    log_in(browser, ops_server, ops_server.token("ana", "operator"))
    wait_text(browser, "#whoami", "token:ana")
    browser.get(ops_server.url + "/console/guiones.html")  # any page of the console's origin
    wait_text(browser, "#admin-only", "administradores")
    mount_panel(browser, contact_id)
    wait_text(browser, "#guion .script-text", "Buenos días, Ana María Pérez. Le habla Ana Gómez")
    wait_text(
        browser, "#guion .script-labels", "Agendamiento de citas › No es población objetivo del IVR"
    )
    for choice in ("continuar", "continuar", "afiliado", "continuar"):
        answer(browser, choice)
    wait_text(browser, "#guion .script-text", "¿El afiliado aceptó un cupo?")
    wait_text(browser, "#guion .script-labels", "El asesor agenda la cita")
    answer(browser, "si")
    answer(browser, "continuar")
    form = css(browser, "#guion form.script-close")
    options = [
        o.get_attribute("value") for o in Select(form.find_element(By.NAME, "disposition")).options
    ]
    assert options == ["", "agendado", "caso_radicado", "sin_cupo"]
    browser.execute_script(
        "arguments[0].noValidate = true", form
    )  # the page's own check, not the browser's
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(
        browser, "#guion .script-message", "Elija una tipificación: es obligatoria para cerrar."
    )
    Select(form.find_element(By.NAME, "disposition")).select_by_value("agendado")
    form.find_element(By.NAME, "note").send_keys("Cita del martes")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(browser, "#guion .script-closed", "Contacto cerrado: Cita agendada por el asesor.")
    wait_text(browser, "#guion .script-path", "¿El afiliado aceptó un cupo? → Sí")

    contact, steps = stored(ops_server, contact_id)
    assert contact is not None and (contact.state, contact.disposition) == ("closed", "agendado")
    assert (
        contact.disposition_note == "Cita del martes"
        and contact.procedure == "El asesor agenda la cita"
    )
    assert [s.node_id.rsplit("/", 1)[-1] for s in steps] == [
        "saludo", "contexto", "para_quien", "buscar", "cupo", "confirmar", "cierre"]  # fmt: skip
    assert all(s.seconds is not None and s.seconds >= 0 for s in steps)
    assert [s.answer for s in steps][2:5] == ["afiliado", "continuar", "si"]
