"""The simulator against the product's real webhook: signed inbound, statuses, control API."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from ivr.settings import REPO_ROOT
from ivr.whatsapp.client import RetryPolicy, WhatsAppClient
from ivr.whatsapp.events import (
    InteractiveReply,
    StatusUpdate,
    TemplateButtonReply,
    TextMessage,
    UnsupportedMessage,
)
from ivr.whatsapp.messages import (
    ListRow,
    ListSection,
    ReplyButton,
    buttons_message,
    list_message,
    text_message,
)
from ivr.whatsapp.simulator import WhatsAppSimulator
from tests.unit.eventually import eventually
from tests.unit.whatsapp_helpers import APP_SECRET, TOKEN, product_webhook, simulator_and_product

USER = "573001234567"


def client_for(simulator: WhatsAppSimulator) -> WhatsAppClient:
    return WhatsAppClient(
        api_base=simulator.base_url,
        token=TOKEN,
        phone_number_id=simulator.phone_number_id,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.05),
    )


async def test_every_inbound_kind_is_signed_and_accepted_by_the_webhook() -> None:
    async with simulator_and_product() as (simulator, product):
        ids = [
            await simulator.send_text(USER, "hola", name="Ana"),
            await simulator.send_list_reply(USER, "slot-1", "Lunes 8:00"),
            await simulator.send_button_reply(USER, "si", "Sí"),
            await simulator.send_template_button(USER, "Confirmar", "CONFIRMAR"),
        ]
        for kind in (
            "audio",
            "image",
            "sticker",
            "location",
            "video",
            "document",
            "contacts",
            "reaction",
        ):
            ids.append(await simulator.send_media(USER, kind))
        got = product.events
        assert [e.message_id for e in got if not isinstance(e, StatusUpdate)] == ids
        assert product.counters.accepted == len(ids)
        assert product.counters.unsigned == product.counters.bad_signature == 0
        text, listed, button, template, *media = got
        assert isinstance(text, TextMessage) and (text.body, text.contact_name) == ("hola", "Ana")
        assert isinstance(listed, InteractiveReply) and (listed.reply_kind, listed.reply_id) == (
            "list_reply",
            "slot-1",
        )
        assert isinstance(button, InteractiveReply) and (button.reply_kind, button.reply_id) == (
            "button_reply",
            "si",
        )
        assert isinstance(template, TemplateButtonReply) and template.payload == "CONFIRMAR"
        assert [m.kind for m in media if isinstance(m, UnsupportedMessage)] == [
            "audio",
            "image",
            "sticker",
            "location",
            "video",
            "document",
            "contacts",
            "reaction",
        ]


@pytest.mark.parametrize("status_delay", [0.0, 0.02])
async def test_sent_messages_are_recorded_and_answered_with_signed_statuses(
    status_delay: float,
) -> None:
    async with (
        simulator_and_product(status_delay=status_delay) as (simulator, product),
        client_for(simulator) as client,
    ):
        wamid = await client.send(text_message(USER, "Bienvenido"), idempotency_key="c1:0:0")
        sent = await simulator.wait_for_message(USER)
        assert (sent.wamid, sent.text) == (wamid, "Bienvenido")

        def statuses() -> list[StatusUpdate]:
            return [e for e in product.events if isinstance(e, StatusUpdate)]

        await eventually(lambda: len(statuses()) == 3, within=5.0)
        assert [(s.status, s.message_id, s.recipient, s.callback_data) for s in statuses()] == [
            ("sent", wamid, USER, "c1:0:0"),
            ("delivered", wamid, USER, "c1:0:0"),
            ("read", wamid, USER, "c1:0:0"),
        ]
        assert product.counters.bad_signature == 0


async def test_wait_for_message_returns_each_message_once_in_order_and_by_predicate() -> None:
    async with (
        simulator_and_product(statuses=()) as (simulator, product),
        client_for(simulator) as client,
    ):
        menu = list_message(
            USER,
            "Elija",
            "Opciones",
            [ListSection([ListRow("1", "Agendar"), ListRow("2", "Cancelar")])],
        )
        confirm = buttons_message(
            USER, "¿Confirma?", [ReplyButton("si", "Sí"), ReplyButton("no", "No")]
        )
        for key, message in [("a", text_message(USER, "Hola")), ("b", menu), ("c", confirm)]:
            await client.send(message, idempotency_key=key)
        assert (await simulator.wait_for_message(USER)).text == "Hola"
        picked = await simulator.wait_for_message(USER, lambda m: m.option_ids == ["si", "no"])
        assert picked.text == "¿Confirma?"
        with pytest.raises(TimeoutError, match=f"no matching message to {USER}"):
            await simulator.wait_for_message(USER, timeout=0.05)
        waiting = asyncio.ensure_future(simulator.wait_for_message(USER, timeout=5.0))
        await client.send(text_message(USER, "Después"), idempotency_key="d")
        assert (await waiting).text == "Después"
        assert product.events == []  # statuses=(): no status webhooks


async def test_duplicates_and_out_of_order_deliveries_reach_the_product_as_sent() -> None:
    async with simulator_and_product() as (simulator, product):
        later = simulator.text_payload(USER, "segundo", timestamp=1_700_000_100)
        earlier = simulator.text_payload(USER, "primero", timestamp=1_700_000_000)
        for body in (later, earlier, later):  # out of order, then Meta's retry of one
            assert await simulator.post_payload(body) == 200
        got = [e for e in product.events if isinstance(e, TextMessage)]
        assert [e.body for e in got] == ["segundo", "primero", "segundo"]
        assert got[0].message_id == got[2].message_id  # the product dedupes by this id
        assert got[1].timestamp < got[0].timestamp


@pytest.mark.parametrize(
    ("header", "status", "counter"),
    [(None, 401, "unsigned"), ("sha256=deadbeef", 403, "bad_signature")],
)
async def test_the_simulator_can_post_unsigned_or_badly_signed(
    header: str | None, status: int, counter: str
) -> None:
    async with simulator_and_product() as (simulator, product):
        answer = await simulator.post_payload(
            simulator.text_payload(USER, "x"), signature_header=header
        )
        assert answer == status and product.counters.snapshot()[counter] == 1
        assert product.events == []


async def test_a_failed_status_with_errors_reaches_the_product() -> None:
    async with simulator_and_product() as (simulator, product):
        error = {
            "code": 131047,
            "title": "Re-engagement message",
            "error_data": {"details": "24 h"},
        }
        assert await simulator.post_status("wamid.X", "failed", USER, errors=[error]) == 200
        [event] = product.events
        assert isinstance(event, StatusUpdate) and event.status == "failed"
        assert (event.errors[0].code, event.errors[0].details) == (131047, "24 h")


async def test_the_control_api_drives_the_simulator_from_another_process() -> None:
    async with (
        simulator_and_product(statuses=()) as (simulator, product),
        aiohttp.ClientSession() as http,
    ):
        control = f"{simulator.base_url}/_simulator"
        for spec in (
            {"from": USER, "text": "hola"},
            {"from": USER, "reply_id": "2", "title": "Cancelar"},
            {"from": USER, "kind": "sticker"},
        ):
            async with http.post(f"{control}/inbound", json=spec) as response:
                assert (await response.json())["status"] == 200
        kinds = [type(e).__name__ for e in product.events]
        assert kinds == ["TextMessage", "InteractiveReply", "UnsupportedMessage"]
        async with http.post(f"{control}/fail", json={"count": 1, "status": 503}) as response:
            assert (await response.json()) == {"pending_failures": 1}
        async with client_for(simulator) as client:
            await client.send(text_message(USER, "Hola"), idempotency_key="k")
        assert simulator.requests == 2
        async with http.get(f"{control}/messages", params={"to": USER}) as response:
            listed = await response.json()
        assert [m["payload"]["text"]["body"] for m in listed["messages"]] == ["Hola"]
        async with http.get(
            f"{control}/messages", params={"since": str(listed["next"])}
        ) as response:
            assert (await response.json())["messages"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v25.0/999/messages", 400), ("/latest/{phone}/messages", 400)],
)
async def test_the_messages_endpoint_refuses_unknown_numbers_and_versions(
    path: str, status: int
) -> None:
    async with (
        WhatsAppSimulator(app_secret=APP_SECRET) as simulator,
        aiohttp.ClientSession() as http,
    ):
        url = simulator.base_url + path.format(phone=simulator.phone_number_id)
        async with http.post(url, json=text_message(USER, "x")) as response:
            assert response.status == status
            assert (await response.json())["error"]["code"] == 100
        assert simulator.sent == []


async def test_runs_as_a_program_and_posts_to_the_webhook() -> None:
    async with product_webhook() as product:
        port = unused_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.whatsapp.simulator",
            "--port",
            str(port),
            "--webhook",
            product.url,
            "--app-secret",
            APP_SECRET,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert f"127.0.0.1:{port}".encode() in line
            async with aiohttp.ClientSession() as http:
                inbound = f"http://127.0.0.1:{port}/_simulator/inbound"
                async with http.post(inbound, json={"from": USER, "text": "hola"}) as response:
                    assert (await response.json())["status"] == 200
            [event] = product.events
            assert isinstance(event, TextMessage) and event.body == "hola"
        finally:
            process.terminate()
            assert await asyncio.wait_for(process.wait(), 30) == 0
