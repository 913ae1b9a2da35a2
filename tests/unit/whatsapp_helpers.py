"""Shared pieces of the WhatsApp tests: the product's webhook on a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.whatsapp.events import WebhookEvent
from ivr.whatsapp.simulator import WhatsAppSimulator
from ivr.whatsapp.webhook import WebhookCounters, add_webhook_routes

APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-token-for-tests"
TOKEN = "EAAG-token-for-tests"
PATH = "/whatsapp/webhook"


@dataclass
class Product:
    """The product's side: its webhook URL, what reached its handler, the counters."""

    url: str
    counters: WebhookCounters
    batches: list[list[WebhookEvent]] = field(default_factory=list)
    fail_handler: bool = False

    @property
    def events(self) -> list[WebhookEvent]:
        return [event for batch in self.batches for event in batch]


@asynccontextmanager
async def product_webhook() -> AsyncIterator[Product]:
    app = web.Application()
    product = Product(url="", counters=WebhookCounters())

    async def handler(events: Sequence[WebhookEvent]) -> None:
        if product.fail_handler:
            raise RuntimeError("database down")
        product.batches.append(list(events))

    add_webhook_routes(
        app,
        path=PATH,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        handler=handler,
        counters=product.counters,
    )
    server = TestServer(app)
    await server.start_server()
    product.url = str(server.make_url(PATH))
    try:
        yield product
    finally:
        await server.close()


@asynccontextmanager
async def simulator_and_product(**kw: object) -> AsyncIterator[tuple[WhatsAppSimulator, Product]]:
    async with product_webhook() as product:
        simulator = WhatsAppSimulator(
            app_secret=APP_SECRET,
            webhook_url=product.url,
            token=TOKEN,
            **kw,  # type: ignore[arg-type]
        )
        async with simulator:
            yield simulator, product
