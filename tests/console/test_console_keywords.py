"""The console page «Palabras clave» in a real Chromium, against ``ivr ops serve``:
an admin creates a list, adds a keyword that raises priority, sees it audited and
tries a text; a viewer sees the page read-only (issue 11 §5)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text

pytestmark = pytest.mark.console


def open_page(browser: WebDriver, server: OpsServer, token: str) -> None:
    log_in(browser, server, token)
    wait_text(browser, "#whoami", "token:")
    wait_text(browser, "#pages", "Palabras clave")  # the console links both pages
    wait_text(browser, "#pages", "Reportes de incidente")
    css(browser, '#pages a[href="/console/keywords.html"]').click()
    css(browser, "#app:not([hidden])")


def test_an_admin_adds_a_keyword_that_raises_priority(browser: WebDriver, ops_server: OpsServer) -> None:  # fmt: skip
    open_page(browser, ops_server, ops_server.token("ada", "admin"))
    wait_text(browser, "#whoami", "token:ada (administrador)")

    css(browser, "#list-name").send_keys("Jurídico")
    css(browser, "#list-description").send_keys("Escalan a la oficina jurídica")
    css(browser, "#list-reason").send_keys("plan de contingencia")
    css(browser, "#list-create").click()
    wait_text(browser, "#notice", "Lista «Jurídico» creada.")
    wait_text(browser, "#keyword-list", "Jurídico")

    css(browser, "#keyword-phrase").send_keys("Tutela")
    css(browser, "#keyword-raises").click()
    css(browser, "#keyword-reason").send_keys("riesgo legal")
    css(browser, "#keyword-add").click()
    wait_text(browser, "#notice", "Palabra clave «Tutela» agregada a «Jurídico».")
    row = '.keyword-list[data-list="Jurídico"] tr[data-keyword="Tutela"]'
    wait_text(browser, f"{row} .raises", "sí")
    wait_text(browser, '#audit tr[data-action="keyword_added"] .reason', "riesgo legal")
    wait_text(browser, '#audit tr[data-action="list_created"] .reason', "plan de contingencia")

    # the keyword and the sentiment, tried on a caller's text
    css(browser, "#try-text").send_keys("Nadie responde, voy a poner una TUTELA 😡")
    css(browser, "#try-button").click()
    wait_text(browser, "#try-label", "negativo")
    wait_text(browser, "#try-keywords", "TUTELA → Tutela (Jurídico)")
    wait_text(browser, "#try-priority", "palabra clave: Tutela")

    # a change from the table needs the reason typed above it
    css(browser, f"{row} .toggle").click()
    wait_text(browser, "#error", "escriba el motivo del cambio")
    css(browser, "#row-reason").send_keys("demasiados casos urgentes")
    css(browser, f"{row} .toggle").click()
    wait_text(browser, f"{row} .raises", "no")
    wait_text(
        browser, '#audit tr[data-action="keyword_changed"] .reason', "demasiados casos urgentes"
    )


def test_a_viewer_sees_the_lists_but_cannot_change_them(browser: WebDriver, ops_server: OpsServer) -> None:  # fmt: skip
    admin = ops_server.token("ada", "admin")
    status, created = ops_server.request(
        "POST", "/api/keyword-lists", admin, {"name": "Maltrato", "reason": "inicio"}
    )
    assert status == 201
    status, _ = ops_server.request(
        "POST", f"/api/keyword-lists/{created['id']}/keywords", admin,
        {"phrase": "grosero", "raises_priority": False, "reason": "inicio"},
    )  # fmt: skip
    assert status == 201
    open_page(browser, ops_server, ops_server.token("vera", "viewer"))
    wait_text(
        browser, '.keyword-list[data-list="Maltrato"] tr[data-keyword="grosero"] .raises', "no"
    )
    assert css(browser, "#admin-only").is_displayed()
    assert not css(browser, "#keyword-add").is_enabled()
    assert not browser.find_element(By.CSS_SELECTOR, ".keyword-list .remove").is_enabled()
