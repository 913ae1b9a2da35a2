"""The WhatsApp settings: CITAS_WHATSAPP_* variables, defaults, and secrets kept out of repr."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.settings import Settings, SettingsError
from ivr.whatsapp.events import StatusUpdate, WebhookEvent
from ivr.whatsapp.messages import text_message
from ivr.whatsapp.setup import WEBHOOK_PATH, client_from_settings, mount_webhook
from ivr.whatsapp.simulator import WhatsAppSimulator
from tests.unit.eventually import eventually

ENV = {
    "CITAS_WHATSAPP_API_BASE": "http://127.0.0.1:19000",
    "CITAS_WHATSAPP_API_VERSION": "v23.0",
    "CITAS_WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "CITAS_WHATSAPP_TOKEN": "EAAG-secret-token",
    "CITAS_WHATSAPP_APP_SECRET": "app-secret-value",
    "CITAS_WHATSAPP_VERIFY_TOKEN": "verify-token-value",
}


def test_defaults_point_at_metas_graph_api_with_nothing_secret_set() -> None:
    s = Settings.from_env({})
    assert (s.whatsapp_api_base, s.whatsapp_api_version) == ("https://graph.facebook.com", "v25.0")
    assert (s.whatsapp_token, s.whatsapp_app_secret, s.whatsapp_verify_token) == ("", "", "")
    assert s.whatsapp_phone_number_id == ""


def test_every_variable_is_read() -> None:
    s = Settings.from_env(ENV)
    assert (
        s.whatsapp_api_base,
        s.whatsapp_api_version,
        s.whatsapp_phone_number_id,
        s.whatsapp_token,
        s.whatsapp_app_secret,
        s.whatsapp_verify_token,
    ) == tuple(ENV.values())


def test_an_empty_api_base_keeps_the_default() -> None:
    assert Settings.from_env({"CITAS_WHATSAPP_API_BASE": ""}).whatsapp_api_base.startswith(
        "https://"
    )


def test_secrets_never_appear_in_repr() -> None:
    shown = repr(Settings.from_env(ENV))
    for secret in ("EAAG-secret-token", "app-secret-value", "verify-token-value"):
        assert secret not in shown
    assert "106540352242922" in shown  # not a secret: useful in a support log


@pytest.mark.parametrize("version", ["25.0", "v25", "latest", "v25.0.1", "V25.0"])
def test_a_bad_api_version_names_the_variable(version: str) -> None:
    with pytest.raises(SettingsError, match="CITAS_WHATSAPP_API_VERSION"):
        Settings.from_env({"CITAS_WHATSAPP_API_VERSION": version})


async def test_client_and_webhook_built_from_settings_talk_to_the_simulator() -> None:
    app = web.Application()
    received: list[WebhookEvent] = []

    async def handler(events: Sequence[WebhookEvent]) -> None:
        received.extend(events)

    async with WhatsAppSimulator(app_secret="s3cret", token="tok") as simulator:
        settings = Settings.from_env(
            {
                "CITAS_WHATSAPP_API_BASE": simulator.base_url,
                "CITAS_WHATSAPP_PHONE_NUMBER_ID": simulator.phone_number_id,
                "CITAS_WHATSAPP_TOKEN": "tok",
                "CITAS_WHATSAPP_APP_SECRET": "s3cret",
                "CITAS_WHATSAPP_VERIFY_TOKEN": "vt",
            }
        )
        counters = mount_webhook(app, settings, handler)
        server = TestServer(app)
        await server.start_server()
        try:
            simulator.webhook_url = str(server.make_url(WEBHOOK_PATH))
            async with client_from_settings(settings) as client:
                assert client.timeout == settings.request_timeout
                wamid = await client.send(text_message("573001234567", "hola"), idempotency_key="k")
            await eventually(lambda: len(received) == 3, within=5.0)
            assert {e.message_id for e in received if isinstance(e, StatusUpdate)} == {wamid}
            assert counters.accepted == 3
            async with aiohttp.ClientSession() as http:
                params = {
                    "hub.mode": "subscribe",
                    "hub.verify_token": "vt",
                    "hub.challenge": "42",
                }
                async with http.get(simulator.webhook_url, params=params) as response:
                    assert await response.text() == "42"
        finally:
            await server.close()


def test_unset_credentials_are_refused_when_building() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValueError, match="token and a phone number id"):
        client_from_settings(settings)
    with pytest.raises(ValueError, match="CITAS_WHATSAPP_APP_SECRET"):
        mount_webhook(web.Application(), settings, _never)


async def _never(events: Sequence[WebhookEvent]) -> None:
    raise AssertionError("never called")
