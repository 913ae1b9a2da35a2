"""The webhook over real HTTP: Meta's subscription check and signed deliveries."""

from __future__ import annotations

import doctest
import json

import aiohttp
import pytest
from aiohttp import web

from ivr.whatsapp import webhook as webhook_module
from ivr.whatsapp.events import TextMessage
from ivr.whatsapp.webhook import SIGNATURE_HEADER, add_webhook_routes, signature, signature_matches
from tests.unit.whatsapp_helpers import APP_SECRET, VERIFY_TOKEN, product_webhook

TEXT = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "1",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550000001", "phone_number_id": "9"},
                        "contacts": [{"wa_id": "573001234567", "profile": {"name": "Ana"}}],
                        "messages": [
                            {
                                "from": "573001234567",
                                "id": "wamid.1",
                                "timestamp": "1749416383",
                                "type": "text",
                                "text": {"body": "hola"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}


@pytest.mark.parametrize(
    ("params", "status", "answer"),
    [
        (
            {
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            },
            200,
            "1158201444",
        ),
        (
            {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"},
            403,
            None,
        ),
        (
            {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN[:-1], "hub.challenge": "7"},
            403,
            None,
        ),
        (
            {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"},
            403,
            None,
        ),
        ({"hub.mode": "subscribe", "hub.challenge": "7"}, 403, None),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, 403, None),
        ({}, 403, None),
    ],
)
async def test_subscription_check_echoes_the_challenge_only_for_our_token(
    params: dict[str, str], status: int, answer: str | None
) -> None:
    async with product_webhook() as product, aiohttp.ClientSession() as http:
        async with http.get(product.url, params=params) as response:
            assert response.status == status
            if answer is not None:
                assert await response.text() == answer
        assert (product.counters.verified, product.counters.verify_refused) == (
            (1, 0) if status == 200 else (0, 1)
        )


async def test_signed_delivery_reaches_the_handler_as_typed_events() -> None:
    body = json.dumps(TEXT).encode()
    async with product_webhook() as product, aiohttp.ClientSession() as http:
        headers = {SIGNATURE_HEADER: signature(APP_SECRET, body)}
        async with http.post(product.url, data=body, headers=headers) as response:
            assert response.status == 200
        [[event]] = product.batches
        assert isinstance(event, TextMessage)
        assert (event.sender, event.body, event.message_id) == ("573001234567", "hola", "wamid.1")
        assert (product.counters.received, product.counters.accepted, product.counters.events) == (
            1,
            1,
            1,
        )


BODY = json.dumps(TEXT).encode()


@pytest.mark.parametrize(
    ("header", "status", "counter"),
    [
        (None, 401, "unsigned"),
        ("", 401, "unsigned"),
        ("sha256=" + "0" * 64, 403, "bad_signature"),
        (signature("another-secret", BODY), 403, "bad_signature"),
        (signature(APP_SECRET, BODY + b" "), 403, "bad_signature"),  # body changed after signing
        (signature(APP_SECRET, BODY).removeprefix("sha256="), 403, "bad_signature"),
        (signature(APP_SECRET, BODY).upper(), 403, "bad_signature"),
        ("sha1=" + signature(APP_SECRET, BODY)[7:], 403, "bad_signature"),
        ("sha256=ñ", 403, "bad_signature"),
    ],
)
async def test_unsigned_or_badly_signed_posts_are_refused_and_counted(
    header: str | None, status: int, counter: str
) -> None:
    async with product_webhook() as product, aiohttp.ClientSession() as http:
        headers = {} if header is None else {SIGNATURE_HEADER: header}
        async with http.post(product.url, data=BODY, headers=headers) as response:
            assert response.status == status
        assert product.batches == []
        counts = product.counters.snapshot()
        assert counts[counter] == 1
        assert counts["accepted"] == 0 and counts["received"] == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"entry": "x"}',
        json.dumps({"entry": [{"changes": [{"field": "messages", "value": {}}]}]}).encode(),
        BODY.replace(b'"timestamp": "1749416383"', b'"timestamp": "yesterday"'),
        BODY.replace(b'"text": {"body": "hola"}', b'"text": {}'),
    ],
)
async def test_signed_but_malformed_bodies_get_400_with_a_reason(body: bytes) -> None:
    async with product_webhook() as product, aiohttp.ClientSession() as http:
        headers = {SIGNATURE_HEADER: signature(APP_SECRET, body)}
        async with http.post(product.url, data=body, headers=headers) as response:
            assert response.status == 400
            assert "webhook body" in await response.text()
        assert product.batches == [] and product.counters.malformed == 1


async def test_a_failing_handler_answers_500_so_meta_retries() -> None:
    async with product_webhook() as product, aiohttp.ClientSession() as http:
        product.fail_handler = True
        headers = {SIGNATURE_HEADER: signature(APP_SECRET, BODY)}
        async with http.post(product.url, data=BODY, headers=headers) as response:
            assert response.status == 500
        product.fail_handler = False
        async with http.post(product.url, data=BODY, headers=headers) as response:
            assert response.status == 200
        assert product.counters.handler_failed == 1 and product.counters.accepted == 1
        assert len(product.events) == 1


def test_signature_is_metas_hmac_sha256_hex() -> None:
    # The value Meta's docs and other SDKs give for payload "test", secret "secret".
    expected = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
    assert signature("secret", b"test") == expected
    assert signature_matches("secret", b"test", expected)
    assert signature_matches("secret", b"test", f" {expected} ")
    assert not signature_matches("secret", b"test ", expected)


@pytest.mark.parametrize(("secret", "token"), [("", "t"), ("s", "")])
def test_a_webhook_without_secret_or_verify_token_is_not_mounted(secret: str, token: str) -> None:
    async def handler(events: object) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="CITAS_WHATSAPP_"):
        add_webhook_routes(
            web.Application(), path="/w", verify_token=token, app_secret=secret, handler=handler
        )


def test_the_module_examples_run() -> None:
    result = doctest.testmod(webhook_module)
    assert result.attempted >= 1 and result.failed == 0
