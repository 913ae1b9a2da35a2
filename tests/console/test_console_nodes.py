"""The console's "Nodos y controladores" panel in a real Chromium, against ``ivr ops serve``
(conftest.py), with the controllers' heartbeats written to its database by the registry's
own store (ivr/ops/controllers.py), as every controller process writes them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from ivr.ops.controllers import STALE_AFTER_S, ControllerIdentity, ControllerStatus, ControllerStore
from ivr.ops.runtime import BREAKER_ALERT
from ivr.ops.store import OpsStore
from ivr.settings import Settings
from ivr.store.db import Database
from tests.chromium import wait_text as browser_wait_text
from tests.console.conftest import OpsServer
from tests.console.test_console import css, log_in, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S

pytestmark = pytest.mark.console

REFRESH_WAIT_S = 40  # the console refreshes every 10 s; a loaded machine is slow
STARTED = datetime.now(UTC) - timedelta(minutes=10)


def who(node: str, pid: int, app: str) -> ControllerIdentity:
    return ControllerIdentity(f"{node}@nodo-host:{pid}", node, "nodo-host", pid, app, STARTED)


def row(source: str) -> str:
    return f'#nodes tr[data-source="{source}"]'


async def _beat(
    server: OpsServer,
    beats: list[tuple[ControllerIdentity, ControllerStatus, datetime]],
    alert: str | None = None,
) -> None:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    try:
        store = ControllerStore(db)
        for identity, status, at in beats:
            await store.beat(identity, status, at)
        if alert is not None:
            await OpsStore(db).raise_alert(BREAKER_ALERT, alert, "5 fallos seguidos del agendador",
                                           datetime.now(UTC))  # fmt: skip
    finally:
        await db.close()


async def _revision(server: OpsServer) -> int:
    db = Database(Settings.from_env(server.env).database_url, timeout=TEST_DB_TIMEOUT_S)
    try:
        return await OpsStore(db).revision()
    finally:
        await db.close()


def test_two_nodes_with_one_controller_stale_and_one_behind(
    browser: WebDriver, ops_server: OpsServer
) -> None:
    ops_server.cli("flags", "set", "promo_audio", "off", "--reason", "campaña pausada")
    current = asyncio.run(_revision(ops_server))
    assert current >= 1
    now = datetime.now(UTC)
    n1_main, n1_worker, n2_main = (
        who("lab-n1", 101, "citas-ivr"),
        who("lab-n1", 102, "citas-ivr-2"),
        who("lab-n2", 201, "citas-ivr"),
    )
    asyncio.run(_beat(ops_server, [
        (n1_main, ControllerStatus(current, "closed", 3, True), now),
        (n1_worker, ControllerStatus(current, "closed", 1, True), now - timedelta(seconds=STALE_AFTER_S + 45)),
        (n2_main, ControllerStatus(current - 1, "open", 0, True), now),
    ], alert=n2_main.source_id))  # fmt: skip

    log_in(browser, ops_server, ops_server.token("vera", "viewer"))
    wait_text(
        browser,
        '#nodes tr[data-node-head="lab-n1@nodo-host"]',
        "Nodo lab-n1 (nodo-host): 2 controlador(es)",
    )
    wait_text(browser, '#nodes tr[data-node-head="lab-n2@nodo-host"]', "Nodo lab-n2")
    wait_text(browser, "#nodes-revision", str(current))

    main = row(n1_main.source_id)
    wait_text(browser, f"{main} .health", "activo")
    wait_text(browser, f"{main} .revision", f"{current} · al día")
    wait_text(browser, f"{main} .calls", "3")
    wait_text(browser, f"{main} .controller", "citas-ivr (pid 101)")

    stale = row(n1_worker.source_id)
    wait_text(browser, f"{stale} .health", "sin respuesta")
    wait_text(browser, f"{stale} .seen", "hace 1 min")
    assert "health-unresponsive" in (css(browser, f"{stale} .health").get_attribute("class") or "")

    behind = row(n2_main.source_id)
    wait_text(browser, f"{behind} .health", "activo")
    wait_text(browser, f"{behind} .revision", f"{current - 1} · atrasado (la base va en {current})")
    assert css(browser, behind).get_attribute("data-flags-current") == "false"
    wait_text(browser, f"{behind} .breaker", "ABIERTO")
    wait_text(browser, f"{behind} .alerts", f"{BREAKER_ALERT}: 5 fallos seguidos del agendador")

    # The panel refreshes on its own: the stale worker beats again and shows active.
    asyncio.run(
        _beat(
            ops_server,
            [(n1_worker, ControllerStatus(current, "closed", 1, True), datetime.now(UTC))],
        )
    )
    browser_wait_text(browser, f"{stale} .health", "activo", REFRESH_WAIT_S)
