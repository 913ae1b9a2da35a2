"""Sends messages through the Cloud API: ``POST {base}/{version}/{phone_number_id}/messages``.

Exceptions (every one a ``WhatsAppError``):

WhatsAppError
 ├── WhatsAppTemporaryError   gave up after the retries (timeouts, connection errors,
 │                            429, 5xx); the caller may try again later
 └── WhatsAppPermanentError   Meta refused the message (4xx other than 429):
                              never retried; ``status`` and Meta's ``code``

Retries: each attempt has its own timeout; a timeout, a connection error, a
429 or a 5xx is retried after an exponential backoff with jitter (a 429's
``Retry-After`` is honoured, capped by the backoff cap); other 4xx are not.

Idempotency contract. ``send`` takes an ``idempotency_key`` per message (the
chat outbox uses conversation id + turn + index). Within this process a key
whose send succeeded is never sent again: a second ``send`` with it returns
the first wamid without calling Meta, and concurrent sends of one key share
one request. The Cloud API itself has no idempotency header, so a key whose
send FAILED (including a timeout after which Meta may in fact have accepted
it) is released and may be sent again by the caller. The durable guarantee
(a row sent is never re-sent, across processes and restarts) belongs to the
chat outbox (``ivr.chat``), which marks a row sent with the wamid returned
here. The key also travels as ``biz_opaque_callback_data`` unless the message
sets its own, so Meta's status webhooks name the outbox row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ivr.httpsession import OwnedSession
from ivr.masking import mask_number
from ivr.whatsapp import limits

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v25.0"


class WhatsAppError(RuntimeError):
    """Sending a WhatsApp message failed."""


class WhatsAppTemporaryError(WhatsAppError):
    """No success after every attempt (timeouts, connection errors, 429, 5xx)."""


class WhatsAppPermanentError(WhatsAppError):
    """Meta refused the message (HTTP 4xx other than 429): do not retry it.

    ``status`` is the HTTP status; ``code`` Meta's error code when it gave one
    (e.g. 131047 outside the 24-hour window, 131026 not a WhatsApp user).
    """

    def __init__(self, message: str, *, status: int, code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (first try included); waits ``backoff_s`` × 2ⁿ, at most
    ``max_backoff_s``, each scaled by a random factor in [0.5, 1] (jitter)."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (retry - 1))
        return float(ceiling * rng.uniform(0.5, 1.0))


class WhatsAppClient(OwnedSession):
    """The Cloud API's messages endpoint for one business phone number.

    ``api_base`` is Meta's Graph API base by default (the simulator's URL in
    tests); ``token`` is sent as ``Authorization: Bearer``; ``timeout`` is
    seconds per attempt.
    """

    # Keys remembered per process; an outbox never has this many in flight.
    REMEMBERED_KEYS = 100_000

    def __init__(
        self,
        *,
        token: str,
        phone_number_id: str,
        api_base: str = DEFAULT_API_BASE,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not token or not phone_number_id:
            raise ValueError("the WhatsApp client needs a token and a phone number id")
        super().__init__(session)
        self.messages_url = f"{api_base.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._headers = {"Authorization": f"Bearer {token}"}
        self._rng = rng or random.Random()
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[str]] = {}

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"WhatsAppClient({self.messages_url!r})"

    async def send(self, message: Mapping[str, Any], *, idempotency_key: str) -> str:
        """Send ``message`` (built by ``ivr.whatsapp.messages``); returns Meta's wamid.

        Raises ``WhatsAppTemporaryError`` / ``WhatsAppPermanentError`` (see the
        module docstring for the idempotency contract).
        """
        if not idempotency_key:
            raise ValueError("idempotency_key is empty")
        if idempotency_key in self._sent:
            logger.info("whatsapp %s: already sent, not sending again", idempotency_key)
            return self._sent[idempotency_key]
        pending = self._in_flight.get(idempotency_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._in_flight[idempotency_key] = future
        try:
            wamid = await self._send_with_retries(message, idempotency_key)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._in_flight[idempotency_key]
        future.set_result(wamid)
        self._remember(idempotency_key, wamid)
        return wamid

    def was_sent(self, idempotency_key: str) -> str | None:
        """The wamid of a key this process sent, else None."""
        return self._sent.get(idempotency_key)

    async def _send_with_retries(self, message: Mapping[str, Any], key: str) -> str:
        payload = dict(message)
        if "biz_opaque_callback_data" not in payload and len(key) <= limits.CALLBACK_DATA_MAX:
            payload["biz_opaque_callback_data"] = key
        to = mask_number(str(payload.get("to", "")))
        problem = ""
        retry_after: float | None = None
        for attempt in range(1, self.retry.attempts + 1):
            if attempt > 1:
                if retry_after is not None:
                    delay = min(retry_after, self.retry.max_backoff_s)
                else:
                    delay = self.retry.delay(attempt - 1, self._rng)
                logger.info(
                    "whatsapp %s to %s: retry %d in %.2fs (%s)",
                    key,
                    to,
                    attempt - 1,
                    delay,
                    problem,
                )
                await asyncio.sleep(delay)
            outcome = await self._attempt(payload, key, to)
            if isinstance(outcome, str):
                return outcome
            problem, retry_after = outcome
        raise WhatsAppTemporaryError(
            f"whatsapp {key} to {to}: gave up after {self.retry.attempts} attempts: {problem}"
        )

    async def _attempt(
        self, payload: Mapping[str, Any], key: str, to: str
    ) -> str | tuple[str, float | None]:
        """The wamid, or (why it may work later, Retry-After seconds or None)."""
        session = self._get_session()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.post(
                    self.messages_url, json=payload, headers=self._headers
                ) as response:
                    status = response.status
                    body = await response.text()
                    retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            return f"no answer in {self.timeout}s", None
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}", None
        if 200 <= status < 300:
            return self._wamid(body, key)
        detail = _error_detail(body)
        if status == 429 or status >= 500:
            return f"HTTP {status}: {detail}", _seconds(retry_after) if status == 429 else None
        raise WhatsAppPermanentError(
            f"whatsapp {key} to {to}: refused, HTTP {status}: {detail}",
            status=status,
            code=_error_code(body),
        )

    @staticmethod
    def _wamid(body: str, key: str) -> str:
        try:
            return str(json.loads(body)["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            # Accepted all the same: sending again would risk a duplicate.
            logger.warning("whatsapp %s: accepted without a message id: %.200s", key, body)
            return f"unknown:{key}"

    def _remember(self, key: str, wamid: str) -> None:
        self._sent[key] = wamid
        if len(self._sent) > self.REMEMBERED_KEYS:
            self._sent.popitem(last=False)


def _error_detail(body: str) -> str:
    """Meta's ``{"error": {"message", "code", ...}}`` as one line, else the body's start."""
    try:
        error = json.loads(body)["error"]
        return f"{error.get('message', '')} (code {error.get('code')})"
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:200]


def _error_code(body: str) -> int | None:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, int) else None


def _seconds(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
