"""The assistant in a serving process: the WhatsApp endpoint, the runner's tasks,
the webhook and the demo page on the ops HTTP server (built by ``ivr.controller``).

``endpoint(settings)``: where the assistant sends and what its webhook checks.
With no WhatsApp number configured (``CITAS_WHATSAPP_PHONE_NUMBER_ID`` empty)
that is the sandbox's simulator (``ivr.sandbox.whatsapp``, on
``Ports.whatsapp_sim``) with the sandbox's own credentials; with one, the
configured Cloud API (README "Connecting a real WhatsApp Business number").
The demo chat page is served only with the simulator: it plays a user there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import web

from ivr.chat.runner import ChatRunner
from ivr.chat.webpage import add_chat_page
from ivr.settings import Settings
from ivr.whatsapp.client import WhatsAppClient
from ivr.whatsapp.webhook import WebhookCounters, add_webhook_routes

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp/webhook"
SANDBOX_PHONE_NUMBER_ID = "100000000000001"
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_APP_SECRET = "sandbox-app-secret"
SANDBOX_VERIFY_TOKEN = "sandbox-verify-token"


@dataclass(frozen=True)
class WhatsAppEndpoint:
    """The Cloud API the assistant uses: ``api_base`` (Graph API or the simulator),
    ``api_version``, ``phone_number_id``, ``token``, ``app_secret`` (webhook
    signatures), ``verify_token`` (webhook subscription); ``simulated``: the
    sandbox's simulator."""

    api_base: str
    api_version: str
    phone_number_id: str
    token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    simulated: bool


def simulator_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.ports.whatsapp_sim}"


def webhook_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.ports.ops_http}{WEBHOOK_PATH}"


def endpoint(settings: Settings) -> WhatsAppEndpoint:
    if settings.whatsapp_phone_number_id:
        return WhatsAppEndpoint(
            settings.whatsapp_api_base, settings.whatsapp_api_version,
            settings.whatsapp_phone_number_id, settings.whatsapp_token,
            settings.whatsapp_app_secret, settings.whatsapp_verify_token, simulated=False,
        )  # fmt: skip
    return WhatsAppEndpoint(
        simulator_url(settings), settings.whatsapp_api_version, SANDBOX_PHONE_NUMBER_ID,
        SANDBOX_TOKEN, SANDBOX_APP_SECRET, SANDBOX_VERIFY_TOKEN, simulated=True,
    )  # fmt: skip


def whatsapp_client(point: WhatsAppEndpoint, timeout: float) -> WhatsAppClient:
    return WhatsAppClient(
        token=point.token, phone_number_id=point.phone_number_id, api_base=point.api_base,
        api_version=point.api_version, timeout=timeout,
    )  # fmt: skip


@dataclass
class ChatService:
    """The runner's loop as a task, and its HTTP side (``mount``)."""

    runner: ChatRunner
    point: WhatsAppEndpoint
    counters: WebhookCounters = field(default_factory=WebhookCounters)
    _task: asyncio.Task[None] | None = None

    def mount(self, app: web.Application) -> None:
        """The webhook (and, with the simulator, the demo page at ``/chat``)."""
        add_webhook_routes(
            app, path=WEBHOOK_PATH, verify_token=self.point.verify_token,
            app_secret=self.point.app_secret, handler=self.runner.on_events,
            counters=self.counters,
        )  # fmt: skip
        if self.point.simulated:
            add_chat_page(app, self.point.api_base)

    def start(self) -> None:
        self._task = asyncio.create_task(self.runner.run(), name="chat-runner")
        logger.info(
            "WhatsApp assistant: webhook %s, sending to %s%s",
            WEBHOOK_PATH, self.point.api_base, " (simulator)" if self.point.simulated else "",
        )  # fmt: skip

    async def stop(self) -> None:
        await self.runner.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.runner.client.close()
