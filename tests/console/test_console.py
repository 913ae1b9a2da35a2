"""The ops console as an operator uses it, in a real Chromium (see conftest.py)."""

from __future__ import annotations

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from tests.chromium import wait_for
from tests.chromium import wait_shown as browser_wait_shown
from tests.chromium import wait_text as browser_wait_text
from tests.console.conftest import OpsServer

pytestmark = pytest.mark.console
WAIT_S = 15


def css(driver: WebDriver, selector: str) -> WebElement:
    return wait_for(driver, ec.presence_of_element_located((By.CSS_SELECTOR, selector)),
                      f"{selector} never appeared", WAIT_S)  # fmt: skip


def wait_text(driver: WebDriver, selector: str, text: str) -> None:
    """``tests.chromium.wait_text`` with this suite's wait (refuses an empty ``text``)."""
    browser_wait_text(driver, selector, text, WAIT_S)


def wait_shown(driver: WebDriver, selector: str) -> str:
    """``tests.chromium.wait_shown`` with this suite's wait: the shown element's text."""
    return browser_wait_shown(driver, selector, WAIT_S)


def log_in(driver: WebDriver, server: OpsServer, token: str) -> None:
    driver.get(server.url + "/")
    css(driver, "#token-input").send_keys(token)
    driver.find_element(By.ID, "login-button").click()


def flag_row(driver: WebDriver, name: str) -> str:
    return f'#flags tr[data-flag="{name}"]'


def test_an_operator_switches_self_service_off(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("alicia", "operator"))
    wait_text(browser, "#whoami", "token:alicia (operador)")
    row = flag_row(browser, "self_service_booking")
    wait_text(browser, f"{row} .value", "encendido")

    css(browser, f"{row} .toggle").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "change-name").get_attribute("value") == "self_service_booking",
               "the change form never named self_service_booking", WAIT_S)  # fmt: skip
    assert (
        Select(browser.find_element(By.ID, "change-value")).first_selected_option.text == "apagado"
    )
    browser.find_element(By.ID, "change-reason").send_keys("caída del agendador")
    browser.find_element(By.ID, "change-apply").click()

    wait_text(browser, f"{row} .value", "apagado")
    wait_text(browser, f"{row} .source", "fijado")
    wait_text(browser, f"{row} .updated", "token:alicia")
    audit = '#audit tr[data-action="set"][data-name="self_service_booking"]'
    wait_text(browser, f"{audit} .reason", "caída del agendador")
    assert browser.find_element(By.CSS_SELECTOR, f"{audit} .actor").text == "token:alicia"
    wait_text(browser, "#notice", "self_service_booking: ahora apagado")

    stored = ops_server.flag("self_service_booking")
    assert (stored["value"], stored["updated_by"]) == (False, "token:alicia")


def test_the_incident_switch_on_and_off(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("oscar", "operator"))
    wait_text(browser, "#incident-state", "apagado")
    css(browser, "#incident-reason").send_keys("caída del operador de telefonía")
    browser.find_element(By.ID, "incident-toggle").click()

    wait_text(browser, "#incident-state", "ENCENDIDO")
    banner = browser.find_element(By.ID, "incident")
    assert banner.get_attribute("class") == "incident-on"
    assert banner.value_of_css_property("background-color") == "rgba(176, 0, 0, 1)"  # red
    wait_text(browser, '#audit tr[data-action="incident_on"] .reason', "caída del operador")
    assert ops_server.flag("incident_mode")["value"] is True

    browser.find_element(By.ID, "incident-reason").send_keys("servicio restablecido")
    browser.find_element(By.ID, "incident-toggle").click()
    wait_text(browser, "#incident-state", "apagado")
    assert browser.find_element(By.ID, "incident").get_attribute("class") == "incident-off"
    assert ops_server.flag("incident_mode")["value"] is False


def test_a_short_window_is_shown_and_can_be_cancelled(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    log_in(browser, ops_server, ops_server.token("olga", "operator"))
    row = flag_row(browser, "promo_audio")
    css(browser, f"{row} .edit").click()
    Select(css(browser, "#change-value")).select_by_visible_text("apagado")
    browser.find_element(By.ID, "change-reason").send_keys("campaña pausada")
    browser.find_element(By.ID, "mode-window").click()
    minutes = browser.find_element(By.ID, "window-minutes")
    minutes.clear()
    minutes.send_keys("5")
    browser.find_element(By.ID, "change-apply").click()

    window = '#windows tr[data-state="active"]'
    wait_text(browser, f"{window} .name", "promo_audio")
    wait_text(browser, f"{window} .state", "activa")
    wait_text(browser, f"{row} .source", "ventana (hasta")
    wait_text(browser, f"{row} .value", "apagado")
    assert ops_server.flag("promo_audio")["source"] == "window"

    browser.find_element(By.CSS_SELECTOR, f"{window} .cancel-reason").send_keys("campaña retomada")
    browser.find_element(By.CSS_SELECTOR, f"{window} .cancel").click()
    wait_for(browser, ec.invisibility_of_element_located((By.CSS_SELECTOR, window)),
               f"{window} never went away", WAIT_S)  # fmt: skip
    wait_text(browser, f"{row} .value", "encendido")
    wait_text(browser, '#audit tr[data-action="cancel_window"] .reason', "campaña retomada")
    assert ops_server.flag("promo_audio")["value"] is True


def test_a_viewer_sees_the_controls_disabled_and_the_api_refuses(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    token = ops_server.token("vera", "viewer")
    log_in(browser, ops_server, token)
    wait_text(browser, "#whoami", "token:vera (consulta)")
    wait_text(browser, f"{flag_row(browser, 'self_service_booking')} .value", "encendido")
    buttons = browser.find_elements(By.CSS_SELECTOR, "#flags button")
    assert buttons and all(not b.is_enabled() for b in buttons)
    assert not browser.find_element(By.ID, "incident-toggle").is_enabled()
    assert not browser.find_element(By.ID, "change-reason").is_enabled()

    status, answer = ops_server.request(
        "PUT", "/api/flags/self_service_booking", token, {"value": False, "reason": "x"}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    assert ops_server.flag("self_service_booking")["value"] is True


def test_an_operator_cannot_edit_admin_flags(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("omar", "operator"))
    admin_row = flag_row(browser, "eligibility.age_min")
    assert not css(browser, f"{admin_row} .edit").is_enabled()
    assert css(browser, f"{flag_row(browser, 'sms_redirect')} .edit").is_enabled()


def test_a_wrong_token_shows_the_error(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, "not-a-token")
    wait_text(browser, "#login-error", "Token no válido")
    assert "no es válido" in browser.find_element(By.ID, "login-error").text
    assert not browser.find_element(By.ID, "app").is_displayed()


def test_an_api_error_is_shown_to_the_user(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("ana", "admin"))
    css(browser, f"{flag_row(browser, 'eligibility.age_min')} .edit").click()
    value = css(browser, "#change-value")
    value.clear()
    value.send_keys("90")
    browser.find_element(By.ID, "change-reason").send_keys("prueba")
    browser.find_element(By.ID, "change-apply").click()
    wait_text(browser, "#error", "Cambio rechazado")
    assert "quedaría por encima de" in browser.find_element(By.ID, "error").text
    assert ops_server.flag("eligibility.age_min")["source"] == "default"


def test_a_change_that_breaks_a_rule_under_a_window_shows_why(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    # Issue 9 §5 in the console: a one-hour window age_max = 30, then age_min = 40.
    window_id = ops_server.cli(
        "flags", "schedule", "eligibility.age_max", "30", "--for", "1h", "--reason", "prueba"
    ).split()[0]
    log_in(browser, ops_server, ops_server.token("ana", "admin"))
    wait_text(browser, f"{flag_row(browser, 'eligibility.age_max')} .value", "30")
    css(browser, f"{flag_row(browser, 'eligibility.age_min')} .edit").click()
    value = css(browser, "#change-value")
    value.clear()
    value.send_keys("40")
    browser.find_element(By.ID, "change-reason").send_keys("ampliar la población")
    browser.find_element(By.ID, "change-apply").click()
    wait_text(browser, "#error", "Cambio rechazado: el cambio rompería la regla")
    shown = browser.find_element(By.ID, "error").text
    assert "eligibility.age_min (40) quedaría por encima de eligibility.age_max (30)" in shown
    assert window_id in shown
    assert "Regla eligibility.age_band, incumplida desde" in shown
    assert ops_server.flag("eligibility.age_min")["value"] == 11
    # The same refusal through real HTTP to the same server.
    token = ops_server.token("api", "admin")
    status, answer = ops_server.request(
        "PUT", "/api/flags/eligibility.age_min", token, {"value": 40, "reason": "x"}
    )
    assert (status, answer["error"], answer["details"][0]["rule"]) == (
        422, "invalid", "eligibility.age_band",
    )  # fmt: skip
