"""The console page «Reportes de incidente» in a real Chromium, against ``ivr ops serve``:
an operator files a report with the affiliate's consent while the incident switch is
on, sees it masked in the list and whole in the detail, filters, and exports it as
CSV and XLSX, formula cells neutralised (issue 11 §6)."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text

pytestmark = pytest.mark.console
DOWNLOAD_WAIT_S = 30


def wait_notice(browser: WebDriver, text: str) -> None:
    """The page's notice shows ``text``; on a timeout the failure shows the page's error."""
    try:
        wait_text(browser, "#notice", text)
    except TimeoutException:
        error = browser.find_element(By.ID, "error").text
        invalid = browser.execute_script(
            "return [...document.querySelectorAll('#report-form :invalid')]"
            ".map((e) => `${e.id}: ${e.validationMessage}`)"
        )
        raise AssertionError(
            f"no notice {text!r}; the page says: {error!r}; invalid: {invalid}"
        ) from None


def wait_file(folder: Path, suffix: str) -> Path:
    """The downloaded file once Chromium has finished writing it."""
    deadline = time.monotonic() + DOWNLOAD_WAIT_S
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if p.stat().st_size > 0]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)  # polling with a deadline: Chromium writes the file in the background
    raise AssertionError(f"no {suffix} file downloaded into {folder} in {DOWNLOAD_WAIT_S} s")


def test_an_operator_files_a_report_and_exports_it(
    browser: WebDriver, ops_server: OpsServer, tmp_path: Path
) -> None:
    operator = ops_server.token("omar", "operator")
    status, _ = ops_server.request("POST", "/api/incident", operator,
                                   {"active": True, "reason": "caída del agendador"})  # fmt: skip
    assert status == 200
    log_in(browser, ops_server, operator)
    wait_text(browser, "#whoami", "token:omar")
    browser.get(ops_server.url + "/console/incidents.html")
    css(browser, "#app:not([hidden])")

    # the error happened just after the switch went on (the browser's local time)
    when = (datetime.now() + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    browser.execute_script("document.getElementById('occurred-at').value = arguments[0]", when)
    css(browser, "#channel-telefono").click()
    css(browser, "#channel-whatsapp").click()
    css(browser, "#description").send_keys("La afiliada no pudo agendar pediatría")
    css(browser, "#error-message").send_keys('=HYPERLINK("http://x.example","Error 503")')
    assert not css(browser, "#document").is_enabled()  # closed until consent
    css(browser, "#consent").click()
    Select(css(browser, "#document-type")).select_by_value("CC")
    css(browser, "#document").send_keys("1020304050")
    css(browser, "#affiliate-name").send_keys("Ana María Rojas")
    css(browser, "#affiliate-phone").send_keys("3001234567")
    css(browser, "#report-submit").click()

    wait_notice(browser, "registrado (modo incidente encendido en ese momento)")
    row = "#reports tbody tr:first-child"
    wait_text(browser, f"{row} .affiliate", "Ana M. R. · CC *******050")
    wait_text(browser, f"{row} .channels", "Teléfono, WhatsApp")
    wait_text(browser, f"{row} .incident", "encendido")
    # the detail, whole for an operator, with the switch's audit entry
    wait_text(browser, "#detail-fields", "1020304050")
    wait_text(browser, "#detail-fields", "caída del agendador")
    wait_text(browser, "#detail-fields", "+573001234567")

    # filters: nothing on the web channel, the report again on WhatsApp
    Select(css(browser, "#filter-channel")).select_by_value("web")
    css(browser, "#filter-apply").click()
    browser_wait_rows(browser, 0)
    Select(css(browser, "#filter-channel")).select_by_value("whatsapp")
    css(browser, "#filter-apply").click()
    browser_wait_rows(browser, 1)

    # export: the files Chromium downloads are masked and neutralised
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    css(browser, "#export-csv").click()
    wait_notice(browser, ".csv descargado")
    [header, line] = list(csv.reader(io.StringIO(wait_file(tmp_path, ".csv").read_text("utf-8"), newline="")))  # fmt: skip
    cells = dict(zip(header, line, strict=True))
    assert cells["Mensaje de error"].startswith("'=HYPERLINK(")
    assert cells["Documento"] == "*******050" and cells["Modo incidente"] == "encendido"
    css(browser, "#export-xlsx").click()
    wait_notice(browser, ".xlsx descargado")
    sheet = load_workbook(wait_file(tmp_path, ".xlsx")).worksheets[0]
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    written = dict(zip(values[0], values[1], strict=True))
    assert str(written["Mensaje de error"]).startswith("'=HYPERLINK(")
    assert written["Teléfono del afiliado"] == "'+*********567"  # a leading + is neutralised


def browser_wait_rows(browser: WebDriver, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(browser.find_elements(By.CSS_SELECTOR, "#reports tbody tr")) == count:
            return
        time.sleep(0.1)  # polling with a deadline: the list is fetched again
    raise AssertionError(f"the list never showed {count} reports")


def test_data_without_consent_is_refused_with_the_reason(browser: WebDriver, ops_server: OpsServer) -> None:  # fmt: skip
    operator = ops_server.token("olga", "operator")
    status, body = ops_server.request("POST", "/api/incident-reports", operator, {
        "occurred_at": datetime.now().astimezone().isoformat(), "channels": ["web"],
        "description": "x", "error_message": "sin mensaje", "consent": False,
        "document_type": "CC", "document": "1020304050",
    })  # fmt: skip
    assert status == 422 and body["details"][0]["field"] == "consent"
    log_in(browser, ops_server, ops_server.token("vera", "viewer"))
    wait_text(browser, "#whoami", "token:vera")
    browser.get(ops_server.url + "/console/incidents.html")
    css(browser, "#app:not([hidden])")
    assert css(browser, "#operator-only").is_displayed()
    assert not css(browser, "#report-submit").is_enabled()
    assert browser.find_elements(By.CSS_SELECTOR, "#reports tbody tr") == []
