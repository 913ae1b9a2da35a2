"""The desk reports' page ("Reportes del escritorio") in a real Chromium, against
``ivr ops serve`` and its own SQLite database holding a seeded desk: the figures on
the page are the seed's, a filter changes them, the charts and the mismatch matrix
are drawn, times read in Bogotá whatever the browser's zone, and the CSV and XLSX
downloads are files with the same figures (issue 12 §4, §5)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ivr.desk import report_figures as f
from ivr.desk import report_service as sl
from ivr.desk.reports import expected_call_types
from ivr.desk.seed import SEED_TREE, DeskSeed, facts, generate, write
from ivr.settings import Settings
from ivr.store.db import Database
from ivr.xlsx_export import read_back
from tests.chromium import wait_for
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_desk_reports_db import publish

pytestmark = pytest.mark.console

BOGOTA = ZoneInfo("America/Bogota")
WAIT_S = 30
DOWNLOAD_WAIT_S = 30


def _plan() -> DeskSeed:
    """60 contacts over the last three Bogotá days (today included: the page's default
    period is the last 7 days), all answered before now."""
    now = datetime.now(UTC)
    today = now.astimezone(BOGOTA).date()
    plan = generate(60, first_day=today - timedelta(days=3), days=3, tz=BOGOTA, seed=5)
    assert all(c.answered_at < now for c in plan.contacts)
    return plan


async def _seed(server: OpsServer, plan: DeskSeed) -> None:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    try:
        await write(db, plan)
        await publish(db, SEED_TREE)
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


def _shown(n: float) -> str:
    return f"{n:.1f}".rstrip("0").rstrip(".").replace(".", ",")


def test_the_desk_reports_show_filter_draw_and_export(
    browser: WebDriver, ops_server: OpsServer, tmp_path: Path
) -> None:
    plan = _plan()
    asyncio.run(_seed(ops_server, plan))
    contacts, _, _ = facts(plan)
    downloads = tmp_path / "descargas"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    # The browser thinks it is in Tokyo (UTC+9): the page must still speak Bogotá.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    try:
        _walk_the_page(browser, ops_server, contacts, downloads)
    finally:  # the browser is shared: the next test must see the host's zone again
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def _walk_the_page(
    browser: WebDriver, server: OpsServer, contacts: list[f.ContactFacts], downloads: Path
) -> None:
    log_in(browser, server, server.token("tania", "viewer"))
    css(browser, "#app")
    browser.get(server.url + "/console/reportes-escritorio.html")

    # The seed's figures: every contact, the service level, the mismatch share.
    wait_text(browser, "#reasons-contacts", str(len(contacts)))
    total = sl.service_total(contacts)
    wait_text(browser, "#levels-within-pct", f"{_shown(total.within_pct or 0)} %")
    expects = expected_call_types(SEED_TREE)
    mismatch = f.mismatch(contacts, expects)
    wait_text(browser, "#mismatch-pct", f"{_shown(mismatch.mismatch_pct or 0)} %")
    non_target = mismatch.cells["non-target"]
    for call_type, n in non_target.items():
        cell = css(
            browser, f'#t-matrix tr[data-ivr-reason="non-target"] td[data-call-type="{call_type}"]'
        )
        assert cell.text == str(n)
        assert ("off" in (cell.get_attribute("class") or "")) == (
            call_type not in expects["non-target"]
        )
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-reasons svg rect.bar")
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-levels svg rect.bar")
    assert browser.find_elements(By.CSS_SELECTOR, '#t-steps tr[data-node="saludo"]')

    # Bogotá's wall time, not Tokyo's.
    as_of = css(browser, "#as-of")
    local = datetime.fromisoformat(as_of.get_attribute("data-iso") or "").astimezone(BOGOTA)
    assert f"{local:%d/%m/%Y}" in as_of.text and f"{local:%H:%M}" in as_of.text, as_of.text

    # A filter: Ana's contacts only.
    Select(css(browser, "#f-agent")).select_by_value("7001")
    ana = [c for c in contacts if c.agent == "7001"]
    wait_text(browser, "#reasons-contacts", str(len(ana)))
    wait_for(browser, lambda d: [r.get_attribute("data-agent") for r in d.find_elements(By.CSS_SELECTOR, "#t-agents tbody tr")]
               == ["7001"], "the agents' table never showed 7001 alone", WAIT_S)  # fmt: skip

    offered = [o.get_attribute("value") for o in Select(css(browser, "#f-agent")).options]
    assert {"", "7001", "7002"} <= set(offered)  # the other agents stay offered
    # The service levels as CSV: Ana's total.
    css(browser, '#levels a[data-format="csv"]').click()
    lines = list(
        csv.reader(io.StringIO(_downloaded(downloads, ".csv").read_text(encoding="utf-8")))
    )
    header, last = lines[0], lines[-1]
    assert dict(zip(header, last, strict=True))["Contactos"] == str(len(ana)) and last[0] == "Total"

    # The reasons as a workbook: its sheets, Ana's contacts by call type.
    css(browser, '#reasons a[data-format="xlsx"]').click()
    book = read_back(_downloaded(downloads, ".xlsx").read_bytes())
    assert list(book) == ["Motivos", "Por tipo de llamada", "Por día"]
    by_type = {row[0]: row[1] for row in book["Por tipo de llamada"][1:]}
    expected: dict[str, int] = {}
    for c in ana:
        expected[c.call_type or f.NO_VALUE] = expected.get(c.call_type or f.NO_VALUE, 0) + 1
    assert by_type == expected
