"""Lina end to end (issue 10 §9): a WhatsApp user played by the sandbox's simulator,
through the real signed webhook of ``ivr serve``, the flow on the chat channel,
the outbox and the real outbound client; calls placed by sipp through the real
Asterisk where a chat follows a call."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from ivr.chat.service import SANDBOX_APP_SECRET, WEBHOOK_PATH
from ivr.chat.tester import BotMessage
from ivr.settings import REPO_ROOT
from ivr.store import Database
from ivr.whatsapp.webhook import signature
from tests.chromium import chromium
from tests.e2e.conftest import ControllerProcess, Sandbox, wait_until

pytestmark = pytest.mark.e2e

ANA = "573001234567"


def chat(sandbox: Sandbox, scenario: str) -> dict[str, Any]:
    """Run a chat scenario with the real CLI (``ivr chat NAME --json``); its report."""
    return sandbox.scenario("chat", scenario, timeout=300)


def passed(report: dict[str, Any]) -> dict[str, Any]:
    assert report["ok"] and report["exit_code"] == 0, "\n".join(report["transcript"])
    return report


def sql(sandbox: Sandbox, query: str, **params: object) -> list[tuple[Any, ...]]:
    async def fetch() -> list[tuple[Any, ...]]:
        db = Database(sandbox.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                result = await conn.execute(text(query), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await db.close()

    return asyncio.run(fetch())


def webhook(sandbox: Sandbox) -> str:
    return f"http://127.0.0.1:{sandbox.settings.ports.ops_http}{WEBHOOK_PATH}"


def post(sandbox: Sandbox, body: dict[str, Any], sign: str | None = "valid") -> int:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if sign == "valid":
        headers["X-Hub-Signature-256"] = signature(SANDBOX_APP_SECRET, raw)
    elif sign is not None:
        headers["X-Hub-Signature-256"] = sign
    request = urllib.request.Request(webhook(sandbox), data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def text_messages(wa_id: str, *messages: tuple[str, str, int]) -> dict[str, Any]:
    """Meta's webhook body with text messages (id, body, unix time), in the order given."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": "100000000000001"},
            "contacts": [{"wa_id": wa_id, "profile": {"name": "Prueba"}}],
            "messages": [
                {"from": wa_id, "id": mid, "timestamp": str(ts), "type": "text", "text": {"body": b}}
                for mid, b, ts in messages
            ],
        }}]}],
    }  # fmt: skip


def bot_texts(sandbox: Sandbox, wa_id: str) -> list[str]:
    """What the contact read, message by message: the body and its options' titles."""
    url = f"http://127.0.0.1:{sandbox.settings.ports.whatsapp_sim}/_simulator/messages?to={wa_id}"
    with urllib.request.urlopen(url, timeout=5) as response:
        found = json.loads(response.read())["messages"]
    return [BotMessage.from_payload(m["index"], m["payload"]).rendered() for m in found]


def fresh(sandbox: Sandbox, wa_id: str) -> None:
    """The demo agenda with no booking, and no conversation going on for ``wa_id``."""
    from ivr.scenarios.runner import seed

    asyncio.run(seed(sandbox.settings, "agenda"))
    sql(sandbox, "UPDATE conversations SET state = 'closed', node = NULL, variables = '{}', "
                 "version = version + 1 WHERE wa_id = :w", w=wa_id)  # fmt: skip


def conversation(sandbox: Sandbox, wa_id: str) -> tuple[Any, ...] | None:
    rows = sql(
        sandbox,
        "SELECT state, node, outcome, journey_id, version FROM conversations WHERE wa_id = :w",
        w=wa_id,
    )
    return rows[0] if rows else None


# --- the core path -------------------------------------------------------------------------
def test_a_chat_books_through_the_webhook_and_the_simulator(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = passed(chat(sandbox, "book"))
    assert report["conversation"]["outcome"] == "booked"
    (count,) = sql(
        sandbox,
        "SELECT count(*) FROM bookings WHERE affiliate_id = '1010101010' AND cancelled_at IS NULL",
    )[0]
    assert count == 1


def test_the_call_s_sms_link_opens_the_chat_where_the_call_ended_and_books(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    report = passed(chat(sandbox, "resumed-from-sms"))
    journey = report["conversation"]["journey_id"]
    # The journey is the call's record: same id, the SMS's reference in both.
    ((call_outcome, call_vars),) = sql(
        sandbox, "SELECT outcome, variables FROM call_records WHERE id = :j", j=journey
    )
    variables = json.loads(call_vars) if isinstance(call_vars, str) else call_vars
    assert call_outcome == "redirected_whatsapp"
    assert report["conversation"]["variables"]["chat_ref"] == variables["chat_ref"]
    # Service and eligibility came from the call: the chat never asked them.
    assert "ask_service" not in report["conversation"]["nodes"]
    assert "identify_caller" not in report["conversation"]["nodes"]


@pytest.mark.parametrize(
    "scenario",
    ["no-slots", "hand-off", "expired-session", "incident-mode", "unsupported-media", "list",
     "cancel", "reschedule"],
)  # fmt: skip
def test_bundled_chat_scenarios_pass(
    sandbox: Sandbox, controller: ControllerProcess, scenario: str
) -> None:
    passed(chat(sandbox, scenario))


# --- the webhook's guarantees ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sign", "status"), [(None, 401), ("sha256=" + "0" * 64, 403), ("garbage", 403)]
)
def test_unsigned_or_badly_signed_deliveries_are_refused_and_change_nothing(
    sandbox: Sandbox, controller: ControllerProcess, sign: str | None, status: int
) -> None:
    wa_id = "573009990001"
    assert (
        post(sandbox, text_messages(wa_id, ("wamid.bad-" + str(status), "Hola", 1)), sign) == status
    )
    assert conversation(sandbox, wa_id) is None
    assert (
        sql(sandbox, "SELECT count(*) FROM chat_inbound WHERE message_id LIKE 'wamid.bad-%'")[0][0]
        == 0
    )


def test_a_duplicate_delivery_is_answered_once(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    wa_id = "573009990002"
    body = text_messages(wa_id, ("wamid.dup-1", "Hola", int(time.time())))
    assert post(sandbox, body) == 200
    assert post(sandbox, body) == 200  # Meta retries: same id
    wait_until(lambda: len(bot_texts(sandbox, wa_id)) >= 1, 20, "the bot's answer")
    time.sleep(1.0)  # a second answer would be queued and sent within this time
    assert (
        sql(sandbox, "SELECT count(*) FROM chat_inbound WHERE message_id = 'wamid.dup-1'")[0][0]
        == 1
    )
    assert len(bot_texts(sandbox, wa_id)) == 1


def test_messages_delivered_out_of_order_are_handled_in_the_order_they_were_sent(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    fresh(sandbox, ANA)
    before = len(bot_texts(sandbox, ANA))
    now = int(time.time())
    # One delivery carrying the later message first. In the order sent, "Hola"
    # opens the chat and "1" picks "pedir una cita": the service question. In the
    # order delivered, "1" would open it and "Hola" would be an invalid option.
    body = text_messages(ANA, ("wamid.ooo-2", "1", now + 1), ("wamid.ooo-1", "Hola", now))
    assert post(sandbox, body) == 200
    wait_until(lambda: (conversation(sandbox, ANA) or (None, None))[1] == "ask_service", 30,
               "the service question")  # fmt: skip
    wait_until(lambda: len(bot_texts(sandbox, ANA)) >= before + 2, 30, "both answers sent")
    texts = [t.lower() for t in bot_texts(sandbox, ANA)[before:]]
    assert "pedir una cita" in texts[0] and "medicina general" in texts[1]
    assert not any("no es válida" in t for t in texts)


def test_statuses_are_recorded_and_never_go_backwards(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    passed(chat(sandbox, "no-slots"))
    rows = sql(
        sandbox,
        "SELECT o.wamid, o.status FROM chat_outbound o JOIN conversations c ON c.id = o.conversation_id "
        "WHERE c.wa_id = '573003333333' AND o.state = 'sent' ORDER BY o.id DESC",
    )
    wamid, _ = rows[0]
    wait_until(
        lambda: sql(sandbox, "SELECT status FROM chat_outbound WHERE wamid = :w", w=wamid)[0][0] == "read",
        20, "the simulator's sent/delivered/read statuses",
    )  # fmt: skip
    late = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": "100000000000001"},
            "statuses": [{"id": wamid, "status": "delivered", "timestamp": str(int(time.time())),
                          "recipient_id": "573003333333"}],
        }}]}],
    }  # fmt: skip
    assert post(sandbox, late) == 200
    assert (
        sql(sandbox, "SELECT status FROM chat_outbound WHERE wamid = :w", w=wamid)[0][0] == "read"
    )


# --- a restart mid-conversation ----------------------------------------------------------------
def test_a_restart_mid_conversation_loses_nothing(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    fresh(sandbox, ANA)
    before = len(bot_texts(sandbox, ANA))
    now = int(time.time())
    assert post(sandbox, text_messages(ANA, ("wamid.rs-1", "Hola", now))) == 200
    wait_until(lambda: (conversation(sandbox, ANA) or (None, None))[1] == "main_menu", 30,
               "the main menu")  # fmt: skip
    controller.stop()
    try:
        # Nobody serves the webhook now: Meta would retry the delivery until a 200.
        with pytest.raises(OSError):
            urllib.request.urlopen(webhook(sandbox), data=b"{}", timeout=2)
    finally:
        controller.start()
    assert post(sandbox, text_messages(ANA, ("wamid.rs-2", "1", now + 1))) == 200
    wait_until(lambda: (conversation(sandbox, ANA) or (None, None))[1] == "ask_service", 30,
               "the service question after the restart")  # fmt: skip

    def texts() -> list[str]:
        return [t.lower() for t in bot_texts(sandbox, ANA)[before:]]

    wait_until(lambda: any("medicina general" in t for t in texts()), 30, "the service question")
    assert sum("pedir una cita" in t for t in texts()) == 1  # asked once: resumed, not restarted


# --- the demo chat page, in a real headless Chromium ----------------------------------------------
@pytest.fixture(scope="module")
def browser(sandbox: Sandbox) -> Iterator[Any]:
    """Headless Chromium allowed to the sandbox's ops port (8080 + offset: 10080 at
    CI's offset 2000 is on Chromium's unsafe-port list: tests/chromium.py)."""
    with chromium(window="1200,900", allowed_ports=[sandbox.settings.ports.ops_http]) as driver:
        yield driver


def test_the_demo_chat_page_books_in_chromium(
    sandbox: Sandbox, controller: ControllerProcess, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    from tests.chromium import wait_for

    fresh(sandbox, ANA)
    browser.get(f"http://127.0.0.1:{sandbox.settings.ports.ops_http}/chat")
    assert browser.find_element(By.ID, "contact").get_attribute("value") == ANA

    def bot_said(words: str) -> bool:
        # What the person reads (the text and the options' titles), in any case:
        # the main menu's options are titles ("Pedir una cita").
        return any(
            words.casefold() in b.text.casefold()
            for b in browser.find_elements(By.CSS_SELECTOR, ".msg.bot")
        )

    def write(message: str) -> None:
        box = browser.find_element(By.ID, "text")
        box.clear()
        box.send_keys(message)
        browser.find_element(By.ID, "send").click()

    write("Hola")
    wait_for(browser, lambda _: bot_said("pedir una cita"), "the bot never said pedir una cita", 30)
    write("1")
    wait_for(
        browser, lambda _: bot_said("medicina general"), "the bot never said medicina general", 30
    )
    write("1")
    wait_for(
        browser,
        lambda _: bot_said("Tenemos disponible"),
        "the bot never said Tenemos disponible",
        30,
    )
    buttons = browser.find_elements(By.CSS_SELECTOR, ".msg.bot:last-child button.option")
    if buttons:
        buttons[0].click()
    else:
        write("1")
    wait_for(browser, lambda _: bot_said("quedó asignada"), "the bot never said quedó asignada", 30)
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None


# --- the terminal chat ------------------------------------------------------------------------------
def test_the_terminal_chat_talks_through_the_simulator(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    import queue
    import threading

    fresh(sandbox, ANA)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "chat", "--from", "3001234567"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        env=sandbox.env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def until(words: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if words.casefold() in lines.get(timeout=1).casefold():
                    return
            except queue.Empty:
                continue
        raise AssertionError(f"the terminal chat never showed {words!r}")

    try:
        until("Chat con el asistente")
        proc.stdin.write("Hola\n")
        proc.stdin.flush()
        until("pedir una cita")
        proc.stdin.write("1\n")  # a number answers the last menu
        proc.stdin.flush()
        until("Medicina general")
        proc.stdin.write("/salir\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()  # ours, by its pid
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
