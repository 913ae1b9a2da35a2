"""Build the client and mount the webhook from ``Settings`` (for the composition root).

``CITAS_WHATSAPP_*`` map one to one: API base and version, phone number id
and token for the client (each attempt's timeout is ``CITAS_REQUEST_TIMEOUT``);
app secret and verify token for the webhook.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ivr.settings import Settings
from ivr.whatsapp.client import RetryPolicy, WhatsAppClient
from ivr.whatsapp.webhook import EventHandler, WebhookCounters, add_webhook_routes

WEBHOOK_PATH = "/whatsapp/webhook"
"""Where the webhook is mounted unless told otherwise (the URL given to Meta ends so)."""


def client_from_settings(
    settings: Settings,
    *,
    session: aiohttp.ClientSession | None = None,
    retry: RetryPolicy | None = None,
) -> WhatsAppClient:
    """The messages client; raises ``ValueError`` when the token or phone number id is unset."""
    return WhatsAppClient(
        api_base=settings.whatsapp_api_base,
        api_version=settings.whatsapp_api_version,
        token=settings.whatsapp_token,
        phone_number_id=settings.whatsapp_phone_number_id,
        timeout=settings.request_timeout,
        retry=retry,
        session=session,
    )


def mount_webhook(
    app: web.Application,
    settings: Settings,
    handler: EventHandler,
    *,
    path: str = WEBHOOK_PATH,
    counters: WebhookCounters | None = None,
) -> WebhookCounters:
    """Add the webhook routes to ``app``; raises ``ValueError`` when a secret is unset."""
    return add_webhook_routes(
        app,
        path=path,
        verify_token=settings.whatsapp_verify_token,
        app_secret=settings.whatsapp_app_secret,
        handler=handler,
        counters=counters,
    )
