"""The Cloud API client against the simulator over real HTTP: retries, give-ups, idempotency."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ivr.whatsapp.client import (
    RetryPolicy,
    WhatsAppClient,
    WhatsAppPermanentError,
    WhatsAppTemporaryError,
)
from ivr.whatsapp.messages import text_message
from ivr.whatsapp.simulator import WhatsAppSimulator
from tests.unit.whatsapp_helpers import APP_SECRET, TOKEN

TO = "573001234567"
FAST = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05)


@asynccontextmanager
async def connected(
    retry: RetryPolicy = FAST, per_attempt: float = 2.0, token: str = TOKEN
) -> AsyncIterator[tuple[WhatsAppSimulator, WhatsAppClient]]:
    async with WhatsAppSimulator(app_secret=APP_SECRET, token=TOKEN) as simulator:
        client = WhatsAppClient(
            api_base=simulator.base_url,
            api_version="v25.0",
            token=token,
            phone_number_id=simulator.phone_number_id,
            timeout=per_attempt,
            retry=retry,
            rng=random.Random(7),
        )
        async with client:
            yield simulator, client


async def test_a_send_returns_metas_wamid_and_sends_the_token_as_bearer() -> None:
    async with connected() as (simulator, client):
        wamid = await client.send(text_message(TO, "Hola"), idempotency_key="c1:0:0")
        [sent] = simulator.sent
        assert wamid == sent.wamid and wamid.startswith("wamid.")
        assert sent.authorization == f"Bearer {TOKEN}"
        assert sent.payload["text"]["body"] == "Hola"
        assert sent.payload["biz_opaque_callback_data"] == "c1:0:0"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
@pytest.mark.parametrize("failures", [1, 3])
async def test_temporary_failures_are_retried_until_success(status: int, failures: int) -> None:
    async with connected() as (simulator, client):
        simulator.fail_next(failures, status)
        wamid = await client.send(text_message(TO, "Hola"), idempotency_key="k")
        assert simulator.requests == failures + 1
        assert [m.wamid for m in simulator.sent] == [wamid]


async def test_gives_up_after_the_attempts_with_a_clear_error() -> None:
    async with connected() as (simulator, client):
        simulator.fail_next(10, 500)
        with pytest.raises(WhatsAppTemporaryError, match=r"gave up after 4 attempts: HTTP 500"):
            await client.send(text_message(TO, "Hola"), idempotency_key="k")
        assert simulator.requests == 4 and simulator.sent == []


@pytest.mark.parametrize(
    ("token", "message", "status", "code"),
    [
        ("wrong-token", text_message(TO, "Hola"), 401, 190),
        (TOKEN, {**text_message(TO, "x"), "text": {"body": "x" * 4097}}, 400, 131009),
        (TOKEN, {**text_message(TO, "x"), "type": "carrier_pigeon"}, 400, 131009),
    ],
)
async def test_4xx_is_not_retried(
    token: str, message: dict[str, object], status: int, code: int
) -> None:
    async with connected(token=token) as (simulator, client):
        with pytest.raises(WhatsAppPermanentError, match=f"HTTP {status}") as raised:
            await client.send(message, idempotency_key="k")
        assert (raised.value.status, raised.value.code) == (status, code)
        assert simulator.requests == 1


async def test_each_attempt_has_its_timeout() -> None:
    async with connected(per_attempt=0.2) as (simulator, client):
        simulator.delay_next(1, 5.0)
        started = time.monotonic()
        await client.send(text_message(TO, "Hola"), idempotency_key="k")
        assert time.monotonic() - started < 4.0  # the slow answer was not waited for
        assert simulator.requests == 2


async def test_timeouts_exhaust_the_attempts() -> None:
    async with connected(retry=RetryPolicy(2, 0.01, 0.01), per_attempt=0.1) as (simulator, client):
        simulator.delay_next(2, 5.0)
        with pytest.raises(WhatsAppTemporaryError, match=r"no answer in 0.1s"):
            await client.send(text_message(TO, "Hola"), idempotency_key="k")


async def test_connection_refused_is_temporary() -> None:
    async with connected() as (simulator, client):
        await simulator.stop()
        with pytest.raises(WhatsAppTemporaryError, match="gave up after 4 attempts"):
            await client.send(text_message(TO, "Hola"), idempotency_key="k")


async def test_retry_after_of_a_429_is_honoured() -> None:
    async with connected(retry=RetryPolicy(2, 0.01, 1.0)) as (simulator, client):
        simulator.fail_next(1, 429, retry_after=0.3)
        started = time.monotonic()
        await client.send(text_message(TO, "Hola"), idempotency_key="k")
        assert time.monotonic() - started >= 0.3


async def test_a_key_sent_is_never_sent_again_in_the_process() -> None:
    async with connected() as (simulator, client):
        first = await client.send(text_message(TO, "Hola"), idempotency_key="c1:0:0")
        again = await client.send(text_message(TO, "Hola"), idempotency_key="c1:0:0")
        other = await client.send(text_message(TO, "Hola"), idempotency_key="c1:0:1")
        assert again == first != other
        assert [m.wamid for m in simulator.sent] == [first, other]
        assert client.was_sent("c1:0:0") == first and client.was_sent("nope") is None


async def test_concurrent_sends_of_one_key_share_one_request() -> None:
    async with connected() as (simulator, client):
        simulator.delay_next(1, 0.1)
        got = await asyncio.gather(
            *(client.send(text_message(TO, "Hola"), idempotency_key="k") for _ in range(5))
        )
        assert len(set(got)) == 1 and len(simulator.sent) == 1


async def test_a_failed_key_is_released_for_the_callers_retry() -> None:
    async with connected(retry=RetryPolicy(1, 0.01, 0.01)) as (simulator, client):
        simulator.fail_next(1, 503)
        with pytest.raises(WhatsAppTemporaryError):
            await client.send(text_message(TO, "Hola"), idempotency_key="k")
        wamid = await client.send(text_message(TO, "Hola"), idempotency_key="k")
        assert [m.wamid for m in simulator.sent] == [wamid]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=8, backoff_s=0.5, max_backoff_s=8.0)
    rng = random.Random(1)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (7, 8.0)]:
        delays = {policy.delay(retry, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_the_token_stays_out_of_repr() -> None:
    client = WhatsAppClient(token="EAAGsecret", phone_number_id="1")
    assert "EAAGsecret" not in repr(client)
    assert client.messages_url == "https://graph.facebook.com/v25.0/1/messages"


@pytest.mark.parametrize(("token", "phone"), [("", "1"), ("t", "")])
def test_a_client_needs_token_and_phone_number_id(token: str, phone: str) -> None:
    with pytest.raises(ValueError, match="token and a phone number id"):
        WhatsAppClient(token=token, phone_number_id=phone)


async def test_the_remembered_keys_are_bounded_oldest_first() -> None:
    async with connected() as (simulator, client):
        client.REMEMBERED_KEYS = 2
        for key in ("a", "b", "c"):
            await client.send(text_message(TO, key), idempotency_key=key)
        assert client.was_sent("a") is None
        assert client.was_sent("b") is not None and client.was_sent("c") is not None
        assert len(simulator.sent) == 3
