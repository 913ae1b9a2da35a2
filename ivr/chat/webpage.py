"""The demo chat page (issue 10 §8): a WhatsApp user in the browser, played through
the simulator, so a demo shows the real webhook and the real replies.

Served by the ops HTTP server when the assistant talks to the simulator
(``ivr.controller``): ``GET /chat`` (the page, Spanish), ``/chat/chat.js``, and
two routes the page calls, proxied to the simulator's control API
(``ivr.whatsapp.simulator``): ``POST /chat/api/send`` -> ``/_simulator/inbound``,
``GET /chat/api/messages`` -> ``/_simulator/messages``. The page never talks to
the simulator directly (another port: the browser would refuse it, CORS).
"""

from __future__ import annotations

from importlib import resources

import aiohttp
from aiohttp import web

from ivr.failures import failure_text

PAGE_TIMEOUT_S = 5.0


def _asset(name: str) -> str:
    return resources.files("ivr.chat").joinpath("web", name).read_text(encoding="utf-8")


def add_chat_page(app: web.Application, simulator_url: str) -> None:
    """Add ``/chat`` and its API to ``app``, proxying to the simulator at ``simulator_url``."""
    base = simulator_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=PAGE_TIMEOUT_S)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_asset("chat.html"), content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        return web.Response(text=_asset("chat.js"), content_type="application/javascript")

    async def forward(method: str, path: str, **kw: object) -> web.Response:
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.request(method, base + path, **kw) as answer:  # type: ignore[arg-type]
                    return web.json_response(await answer.json(), status=answer.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = failure_text(exc, deadline_s=PAGE_TIMEOUT_S)
            return web.json_response({"error": f"simulator: {reason}"}, status=502)

    async def send(request: web.Request) -> web.Response:
        return await forward("POST", "/_simulator/inbound", json=await request.json())

    async def messages(request: web.Request) -> web.Response:
        return await forward("GET", "/_simulator/messages", params=dict(request.query))

    app.router.add_get("/chat", page)
    app.router.add_get("/chat/chat.js", script)
    app.router.add_post("/chat/api/send", send)
    app.router.add_get("/chat/api/messages", messages)
