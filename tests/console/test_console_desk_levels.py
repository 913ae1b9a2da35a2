"""The desktop's escalation panel (``desk-levels.js``) as an agent uses it, in a real
Chromium: the areas of the contact's level only, a reason required, a confirmation,
the state after; the telephony down (503) leaves the call with the agent and says so.

The server is the real ops app with the levels' extension on a real SQLite database,
served from a thread of this test; AMI is the recorder of the unit tests (the move
itself is tested on the real Asterisk: tests/e2e/test_desk_levels.py). The module
is mounted on a page of the console's origin, as the desktop page mounts it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.desk.escalations import EscalationLog
from ivr.desk.levels import AmiCallMover, HandoffRequeue, Levels
from ivr.desk.levels_http import levels_extension
from ivr.desk.model import Contact
from ivr.desk.store import DeskStore
from ivr.ops.api import build_ops_app, start_ops_site
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.chromium import wait_for
from tests.console.test_console import css, wait_text
from tests.unit.databases import TEST_DB_TIMEOUT_S
from tests.unit.test_desk_levels import CONFIG, PROMPTS, T0, Clock, RecordingAmi, voice

pytestmark = pytest.mark.console
WAIT_S = 15
T = TypeVar("T")
BOOTSTRAP = Actor("cli:test", Role.ADMIN)


@dataclass
class LevelsServer:
    url: str
    levels: Levels
    ami: RecordingAmi
    tokens: dict[str, str]
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


@pytest.fixture
def levels_server(tmp_path: Path) -> Iterator[LevelsServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="levels-server", daemon=True)
    thread.start()
    port = unused_port()

    async def start() -> tuple[LevelsServer, web.AppRunner, Database]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}", timeout=TEST_DB_TIMEOUT_S)
        await db.migrate()
        clock, ami = Clock(), RecordingAmi()
        levels = Levels(CONFIG, DeskStore(db, clock=clock), EscalationLog(db, clock=clock),
                        mover=AmiCallMover(ami), chats=HandoffRequeue(db, clock=clock),
                        prompts=PROMPTS)  # fmt: skip
        service = FlagService(OpsStore(db), flag_registry(load_reference()))
        tokens = {name: await service.create_token(BOOTSTRAP, name, Role.OPERATOR, "pruebas")
                  for name in ("ana", "carla", "fabio")}  # fmt: skip
        app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                            extensions=[levels_extension(levels)])  # fmt: skip
        runner = await start_ops_site(app, "127.0.0.1", port)
        return LevelsServer(f"http://127.0.0.1:{port}", levels, ami, tokens, loop), runner, db

    server, runner, db = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield server
    finally:

        async def stop() -> None:
            await runner.cleanup()
            await db.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def mount(driver: WebDriver, server: LevelsServer, who: str, contact: Contact) -> None:
    """The console's page (it loads common.js first, as the desktop does: the panel
    calls its api()), the agent's token, and the panel mounted on ``#escalar`` as the
    desktop page mounts it."""
    driver.get(server.url + "/console")
    driver.execute_script(
        "sessionStorage.setItem('citas-ops-token', arguments[0]);", server.tokens[who]
    )
    driver.execute_async_script(
        """
        const [contact, done] = arguments;
        document.body.replaceChildren();
        const section = document.createElement("section");
        section.id = "escalar";
        document.body.append(section);
        import("/console/desk-levels.js").then((m) => { m.mountEscalation(section, contact); done(); });
        """,
        contact.as_json(),
    )


def options(driver: WebDriver) -> list[str]:
    select = Select(css(driver, '#escalar [data-role="area"]'))
    return [o.text for o in select.options]


def test_an_agent_escalates_a_call_after_a_reason_and_a_confirmation(
    browser: WebDriver, levels_server: LevelsServer
) -> None:
    server = levels_server
    contact = server.run(server.levels.contacts.open_contact(voice()))  # Ana, level 1
    mount(browser, server, "ana", contact)
    assert options(browser) == ["Nivel 2 – Técnico", "Nivel 2 – Clínico", "Nivel 2 – Comercial"]
    css(browser, '#escalar [data-role="escalate"]').click()
    wait_text(browser, '#escalar [data-role="error"]', "Indique el motivo del escalamiento.")
    assert server.ami.actions == []

    Select(css(browser, '#escalar [data-role="area"]')).select_by_visible_text("Nivel 2 – Clínico")
    css(browser, '#escalar [data-role="reason"]').send_keys(
        "Pregunta por un resultado de laboratorio"
    )
    css(browser, '#escalar [data-role="escalate"]').click()
    wait_text(
        browser, '#escalar [data-role="confirmation"]', "¿Escalar a Nivel 2 – Clínico (nivel dos)?"
    )
    css(browser, '#escalar [data-role="cancel"]').click()  # back to the form, nothing sent
    css(browser, '#escalar [data-role="escalation-form"]')
    assert server.ami.actions == []
    # The agent's choice and words survive the cancel (regression: the form came back empty).
    assert (
        Select(css(browser, '#escalar [data-role="area"]')).first_selected_option.text
        == "Nivel 2 – Clínico"
    )
    assert (
        css(browser, '#escalar [data-role="reason"]').get_attribute("value")
        == "Pregunta por un resultado de laboratorio"
    )
    css(browser, '#escalar [data-role="reason"]').clear()

    # The telephony is down: the agent reads why, and the call stays with the agent.
    server.ami.healthy = False
    css(browser, '#escalar [data-role="reason"]').send_keys("Resultado de laboratorio")
    css(browser, '#escalar [data-role="escalate"]').click()
    css(browser, '#escalar [data-role="confirm"]').click()
    wait_text(
        browser,
        '#escalar [data-role="confirmation"] [data-role="error"]',
        "La llamada sigue con usted",
    )
    after = server.run(server.levels.contacts.get(contact.id))
    assert after is not None and after.state == "active"

    server.ami.healthy = True
    css(browser, '#escalar [data-role="confirm"]').click()
    wait_text(browser, "#escalar", "Contacto escalado: el usuario pasó al siguiente nivel.")
    wait_text(
        browser,
        '#escalar [data-role="escalations"]',
        "l2_clinico · nivel 2: En espera del siguiente nivel",
    )
    assert [a["Action"] for a in server.ami.actions] == ["Setvar"] * 3 + ["Redirect"]
    after = server.run(server.levels.contacts.get(contact.id))
    assert after is not None and (after.state, after.escalated_to) == ("escalated", "l2_clinico")


@pytest.mark.parametrize(
    ("queue", "agent", "who", "shown"),
    [
        ("l2_clinico", "7003", "carla", ["Nivel 3 – Técnico especializado", "Nivel 3 – Clínico especializado"]),
        ("l3_clinico", "7006", "fabio", []),
    ],
    ids=["level-2", "level-3"],
)  # fmt: skip
def test_each_level_offers_only_its_own_targets(
    browser: WebDriver, levels_server: LevelsServer, queue: str, agent: str, who: str,
    shown: list[str],
) -> None:  # fmt: skip
    server = levels_server
    contact = server.run(server.levels.contacts.open_contact(
        voice(queue, agent=agent, answered_at=T0 + timedelta(minutes=1))
    ))  # fmt: skip
    mount(browser, server, who, contact)
    if shown:
        wait_for(browser, lambda d: options(d) == shown, f"never offered {shown}", WAIT_S)
    else:
        wait_text(browser, "#escalar", "Nivel 3: es el último nivel, no hay a dónde escalar.")
        assert browser.find_elements(By.CSS_SELECTOR, '#escalar [data-role="area"]') == []
