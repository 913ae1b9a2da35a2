"""The console's navigation to the parts' pages (``ApiExtension.pages``) in a real Chromium.

The kind of fault: a part's page that the console does not link, or that opens
signed out (the token lives in the tab's sessionStorage), or a navigation shown
when no part adds a page. The ops app runs in this process (a thread with its own
event loop) with one extension whose page calls the API with the console's token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import ApiExtension, ConsolePage, build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text

pytestmark = pytest.mark.console

PAGE = """<!doctype html>
<html lang="es-CO"><head><meta charset="utf-8"><title>Prueba</title>
<script src="/console/prueba.js" defer></script></head>
<body><h1>Página de prueba</h1><p id="who">—</p></body></html>
"""
SCRIPT = """"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const token = sessionStorage.getItem("citas-ops-token") || "";
  const response = await fetch("/api/whoami", { headers: { Authorization: `Bearer ${token}` } });
  document.getElementById("who").textContent = response.ok ? (await response.json()).name : `HTTP ${response.status}`;
});
"""


@contextmanager
def ops_app_with_a_page(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, an operator's token) of an ops app with one extension page, served from a thread."""
    (tmp_path / "prueba.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "prueba.js").write_text(SCRIPT, encoding="utf-8")
    extension = ApiExtension(
        "prueba", (), lambda api: {},
        console_files={"prueba.html": tmp_path / "prueba.html", "prueba.js": tmp_path / "prueba.js"},
        pages=(ConsolePage("prueba.html", "Prueba"),),
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    port = unused_port()
    started: dict[str, object] = {}
    ready = threading.Event()

    async def start() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}")
        await db.migrate()
        service = FlagService(OpsStore(db), flag_registry(load_reference()))
        token = await service.create_token(Actor("cli:test", Role.ADMIN), "ana", Role.OPERATOR, "x")
        app = build_ops_app(service, Metrics(), readiness=lambda: {}, extensions=[extension])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        started.update(db=db, runner=runner, token=token)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="ops-app", daemon=True)
    thread.start()
    assert ready.wait(30) and "token" in started, "the ops app did not start"
    try:
        yield f"http://127.0.0.1:{port}", str(started["token"])
    finally:

        async def stop() -> None:
            runner, db = started["runner"], started["db"]
            assert isinstance(runner, web.AppRunner) and isinstance(db, Database)
            await runner.cleanup()
            await db.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def test_a_parts_page_is_linked_and_opens_signed_in(browser: WebDriver, tmp_path: Path) -> None:
    with ops_app_with_a_page(tmp_path) as (url, token):
        log_in(browser, OpsServer(url, {}), token)
        wait_text(browser, "#whoami", "token:ana (operador)")
        wait_text(browser, "#pages", "Prueba")
        assert css(browser, "#pages").is_displayed()
        links = browser.find_elements(By.CSS_SELECTOR, "#pages a")
        assert [(a.text, a.get_attribute("href")) for a in links] == [
            ("Operación", f"{url}/console"), ("Prueba", f"{url}/console/prueba.html")
        ]  # fmt: skip
        links[1].click()
        wait_text(browser, "h1", "Página de prueba")
        wait_text(browser, "#who", "token:ana")


def test_no_navigation_without_pages(browser: WebDriver, ops_server: OpsServer) -> None:
    log_in(browser, ops_server, ops_server.token("luis", "viewer"))
    wait_text(browser, "#whoami", "token:luis (consulta)")
    css(browser, '#flags tr[data-flag="self_service_booking"]')  # loaded after the pages
    nav = css(browser, "#pages")
    assert nav.get_attribute("hidden") is not None and not nav.is_displayed()
    assert browser.find_elements(By.CSS_SELECTOR, "#pages a") == []
