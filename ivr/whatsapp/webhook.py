"""The webhook Meta calls: subscription check (GET) and signed event delivery (POST).

``add_webhook_routes(app, path=..., ...)`` mounts both on an aiohttp app (the
ops HTTP server or a chat server). Meta's rules (Graph API "Webhooks: getting
started"):

- ``GET path?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`` answers
  ``C`` as text when ``T`` is our verify token, else 403.
- ``POST path`` carries ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
  raw body with the app secret>``. No header: 401; a wrong one: 403 (both
  counted in ``WebhookCounters``). A signed body that is not Meta's format:
  400. Otherwise the parsed events go to ``handler`` (one call per POST, events
  in payload order) and the answer is 200.

Meta retries a delivery that does not get a 200 (for up to several days), so
the webhook answers 500 when the handler raises: the contract for the handler
is "return only once the events are durably accepted" (stored or queued), and
do the slow work (running the flow, sending replies) elsewhere, so the 200 is
quick. Deliveries are at least once: the handler deduplicates by message id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from aiohttp import web

from ivr.masking import mask_number
from ivr.whatsapp.events import (
    InboundMessage,
    WebhookEvent,
    WebhookPayloadError,
    parse_webhook,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"

EventHandler = Callable[[Sequence[WebhookEvent]], Awaitable[None]]
"""Receives the events of one POST; raising makes the webhook answer 500 (Meta retries)."""


@dataclass
class WebhookCounters:
    """What the webhook saw since start; read by the ops metrics.

    ``unsigned`` (no signature header, 401) and ``bad_signature`` (403) are the
    refused deliveries; ``malformed`` (400) were signed but not Meta's format;
    ``handler_failed`` (500) are deliveries Meta will retry.
    """

    received: int = 0
    accepted: int = 0
    events: int = 0
    unsigned: int = 0
    bad_signature: int = 0
    malformed: int = 0
    handler_failed: int = 0
    verified: int = 0
    verify_refused: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


def signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``: ``"sha256=" + hex``.

    >>> signature("secret", b"test")
    'sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914'
    """
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time compare)."""
    expected = signature(app_secret, body).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def add_webhook_routes(
    app: web.Application,
    *,
    path: str,
    verify_token: str,
    app_secret: str,
    handler: EventHandler,
    counters: WebhookCounters | None = None,
) -> WebhookCounters:
    """Add ``GET`` and ``POST`` ``path`` to ``app``; returns the counters they update.

    Raises ``ValueError`` when ``app_secret`` or ``verify_token`` is empty:
    a webhook that cannot check who calls it is not mounted.
    """
    if not app_secret:
        raise ValueError("the WhatsApp webhook needs the app secret (CITAS_WHATSAPP_APP_SECRET)")
    if not verify_token:
        raise ValueError("the WhatsApp webhook needs a verify token (CITAS_WHATSAPP_VERIFY_TOKEN)")
    seen = counters if counters is not None else WebhookCounters()
    endpoint = _Webhook(verify_token, app_secret, handler, seen)
    app.router.add_get(path, endpoint.verify)
    app.router.add_post(path, endpoint.deliver)
    return seen


class _Webhook:
    def __init__(
        self, verify_token: str, app_secret: str, handler: EventHandler, counters: WebhookCounters
    ) -> None:
        self._verify_token = verify_token.encode()
        self._app_secret = app_secret
        self._handler = handler
        self.counters = counters

    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "").encode("utf-8", "replace")
        challenge = query.get("hub.challenge")
        if (
            query.get("hub.mode") != "subscribe"
            or challenge is None
            or not hmac.compare_digest(token, self._verify_token)
        ):
            self.counters.verify_refused += 1
            logger.warning("whatsapp webhook: subscription check refused (mode or token)")
            return web.Response(status=403, text="forbidden")
        self.counters.verified += 1
        logger.info("whatsapp webhook: subscription verified")
        return web.Response(text=challenge)

    async def deliver(self, request: web.Request) -> web.Response:
        self.counters.received += 1
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            self.counters.unsigned += 1
            logger.warning("whatsapp webhook: POST without %s refused", SIGNATURE_HEADER)
            return web.Response(status=401, text="signature required")
        if not signature_matches(self._app_secret, body, header):
            self.counters.bad_signature += 1
            logger.warning("whatsapp webhook: POST with a bad signature refused")
            return web.Response(status=403, text="bad signature")
        try:
            events = parse_webhook(body)
        except WebhookPayloadError as exc:
            self.counters.malformed += 1
            logger.warning("whatsapp webhook: %s", exc)
            return web.Response(status=400, text=str(exc))
        for event in events:
            if isinstance(event, InboundMessage):
                logger.debug(
                    "whatsapp webhook: %s from %s",
                    type(event).__name__,
                    mask_number(event.sender),
                )
        try:
            await self._handler(events)
        except Exception:
            self.counters.handler_failed += 1
            logger.exception("whatsapp webhook: handler failed; Meta will retry the delivery")
            return web.Response(status=500, text="retry later")
        self.counters.accepted += 1
        self.counters.events += len(events)
        return web.Response(text="ok")
