"""The dashboard ("Tablero") in a real Chromium, against ``ivr ops serve`` and its own
SQLite database holding real rows: the figures are on the page, a filter changes them,
the charts are drawn, and the XLSX and CSV downloads are valid files with those figures
(issue 11 §7, §8)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ivr.settings import Settings
from ivr.store.db import Database
from ivr.xlsx_export import read_back
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text
from tests.unit import cases_report_tables as t
from tests.unit.cases_report_seed import (
    AUDIT,
    BOGOTA,
    CALLS,
    CONVERSATIONS,
    add_rows,
    audit,
    call,
    case,
    conversation,
)
from tests.unit.databases import TEST_DB_TIMEOUT_S

pytestmark = pytest.mark.console

WAIT_S = 30
DOWNLOAD_WAIT_S = 30


async def _seed(server: OpsServer) -> None:
    """Three cases of today: at Norte one answered and closed in time and one waiting, at
    Sur one answered late; three calls and a chat; a flag change; in the server's database."""
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    now = datetime.now(UTC)
    try:
        # Today in Bogotá (the line's zone) whatever the hour the test runs at.
        midnight = datetime.combine(now.astimezone(BOGOTA).date(), datetime.min.time(), BOGOTA)
        filed = max(now - timedelta(hours=3), midnight.astimezone(UTC))
        await add_rows(db, t.CASES, [
            case(filed, site="norte", assignee="ana", first_response_at=filed + timedelta(minutes=30),
                 first_response_due_at=filed + timedelta(hours=8), closed_at=filed + timedelta(hours=1)),
            case(filed, site="norte", assignee="luis"),
            case(filed, site="sur", assignee="ana", first_response_at=filed + timedelta(hours=2),
                 first_response_due_at=filed + timedelta(hours=1)),
        ])  # fmt: skip
        calls = [call(now - timedelta(hours=2), outcome=o, site=s) for o, s in
                 (("booked", "norte"), ("redirected_whatsapp", "norte"), ("redirected_whatsapp", "sur"))]  # fmt: skip
        await add_rows(db, CALLS, calls)
        await add_rows(db, CONVERSATIONS, [conversation(calls[1]["id"], "booked", now)])
        await add_rows(
            db, AUDIT, [audit(now - timedelta(minutes=90), "set", "promo_audio", True, False)]
        )
    finally:
        await db.close()


def _downloaded(folder: Path, suffix: str) -> Path:
    deadline = time.monotonic() + DOWNLOAD_WAIT_S
    while time.monotonic() < deadline:
        done = sorted(folder.glob(f"*{suffix}"))
        if done and not list(folder.glob("*.crdownload")):
            return done[-1]
        time.sleep(0.2)  # polling the download folder, with a deadline
    raise AssertionError(f"no {suffix} file downloaded into {folder}: {list(folder.iterdir())}")


def test_the_dashboard_shows_filters_draws_and_exports(
    browser: WebDriver, ops_server: OpsServer, tmp_path: Path
) -> None:
    asyncio.run(_seed(ops_server))
    downloads = tmp_path / "descargas"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    log_in(browser, ops_server, ops_server.token("tania", "viewer"))
    css(browser, "#app")
    browser.get(ops_server.url + "/console/tablero.html")

    # The figures of the period (the last 7 days, today included).
    wait_text(browser, "#fig-cases", "3")
    wait_text(browser, "#headline-today", "3")
    wait_text(browser, "#fig-sla", "50 %")  # Norte's answered in time, Sur's late; one pending
    wait_text(browser, "#fig-first-response", "min")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-cases svg rect.bar")) >= 1
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-funnel svg rect[data-stage='target']")
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-timeline svg line.marker")
    wait_text(browser, "#funnel-sites tr[data-site='norte'] td:nth-child(2)", "2")
    wait_text(browser, "#markers tbody", "promo_audio")

    # A filter changes the figures: Norte only.
    Select(css(browser, "#f-site")).select_by_value("norte")
    wait_text(browser, "#fig-cases", "2")
    wait_text(browser, "#fig-sla", "100 %")
    wait_for(browser, lambda d: [r.get_attribute("data-site") for r in d.find_elements(By.CSS_SELECTOR, "#funnel-sites tbody tr")]
               == ["norte"], "the funnel never showed Norte alone", WAIT_S)  # fmt: skip

    # The workbook: every sheet, Norte's figures.
    browser.find_element(By.ID, "dl-xlsx").click()
    book = read_back(_downloaded(downloads, ".xlsx").read_bytes())
    assert list(book) == ["Indicadores", "Embudo por sede", "Embudo por hora", "Embudo detalle",
                          "Cambios de variables"]  # fmt: skip
    header, *rows = book["Indicadores"]
    total = dict(zip(header, rows[-1], strict=True))
    assert (total["Día"], total["Casos radicados"], total["ANS cumplido (%)"]) == ("Total", 2, 100)
    assert [r[0] for r in book["Embudo por sede"][1:]] == ["norte", "Total"]
    assert book["Cambios de variables"][1][1] == "promo_audio"

    # The CSV of the figures: the same total.
    browser.find_element(By.ID, "dl-figures-csv").click()
    text = _downloaded(downloads, ".csv").read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:2] == ["Día", "Casos radicados"] and lines[-1][:2] == ["Total", "2"]
