"""A WhatsApp Cloud API simulator: a real HTTP server on loopback that plays Meta.

It serves what the product calls and calls what Meta would call:

- ``POST /{version}/{phone_number_id}/messages`` records the message, checks it
  as Meta would (our limits: 400 with code 131009 past one; a token when
  ``token`` is set: 401 code 190), answers ``{"messages": [{"id": wamid}]}``
  and then posts the status webhooks ``sent``, ``delivered``, ``read``
  (signed) to the product. ``fail_next(n, 500|429)`` makes the next n requests
  fail; ``delay_next(n, s)`` makes them slow (timeouts).
- Inbound: ``send_text``, ``send_list_reply``, ``send_button_reply``,
  ``send_template_button``, ``send_media`` post signed webhooks to the product
  as a user would; ``post_payload`` posts any payload (duplicates, out of
  order, bad signatures), ``*_payload`` build them.
- ``wait_for_message(to, predicate, timeout)`` waits for the product's next
  message to a contact.
- A control API for tools in other processes (``ivr chat``, the benchmark):
  ``POST /_simulator/inbound`` ``{"from", "text"}`` | ``{"from", "reply_id",
  "title", "reply_kind"}`` | ``{"from", "kind"}``; ``GET
  /_simulator/messages?to=&since=``; ``POST /_simulator/fail`` ``{"count",
  "status", "retry_after"}``.

Run: ``python -m ivr.whatsapp.simulator --port P --webhook URL --app-secret S``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import signal
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

from ivr.whatsapp import messages as builders
from ivr.whatsapp.webhook import SIGNATURE_HEADER, signature

VALID = "valid"
"""``post_payload(signature=VALID)``: sign with the app secret (the default)."""


@dataclass(frozen=True)
class SentMessage:
    """One message the product sent (``index``: its position in ``sent``)."""

    index: int
    wamid: str
    to: str
    type: str
    payload: dict[str, Any]
    authorization: str | None

    @property
    def text(self) -> str:
        """What the user reads first: a text's body, an interactive's body, a template's name."""
        content = self.payload.get(self.type, {})
        if self.type == "text":
            return str(content.get("body", ""))
        if self.type == "interactive":
            return str(content.get("body", {}).get("text", ""))
        if self.type == "template":
            return str(content.get("name", ""))
        return ""

    @property
    def option_ids(self) -> list[str]:
        """The ids of an interactive's buttons or list rows (empty otherwise)."""
        action = self.payload.get("interactive", {}).get("action", {})
        ids = [b["reply"]["id"] for b in action.get("buttons", ())]
        ids += [row["id"] for s in action.get("sections", ()) for row in s.get("rows", ())]
        return ids


@dataclass
class _Plan:
    """Pending failures / delays for the next messages requests."""

    failures: deque[tuple[int, float | None]] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)


class WhatsAppSimulator:
    """Meta's side of the Cloud API for one business number, on ``host:port`` (0: any).

    ``token``: when set, sends without ``Authorization: Bearer <token>`` get
    401 (code 190). ``statuses`` are posted for every message accepted, each
    ``status_delay`` seconds after the previous step; like Meta's, the first
    may reach the webhook before the product has read the send's answer.
    """

    def __init__(
        self,
        *,
        app_secret: str,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        phone_number_id: str = "100000000000001",
        display_phone_number: str = "15550000001",
        token: str | None = None,
        statuses: Sequence[str] = ("sent", "delivered", "read"),
        status_delay: float = 0.0,
    ) -> None:
        self.app_secret = app_secret
        self.webhook_url = webhook_url
        self.host = host
        self.port = port
        self.phone_number_id = phone_number_id
        self.display_phone_number = display_phone_number
        self.token = token
        self.statuses = tuple(statuses)
        self.status_delay = status_delay
        self.sent: list[SentMessage] = []
        self.requests = 0
        self.webhook_answers: list[int] = []
        self._plan = _Plan()
        self._cursors: dict[str, int] = defaultdict(int)
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        """The API base to give the product's client (``CITAS_WHATSAPP_API_BASE``)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        app.router.add_post("/_simulator/inbound", self._control_inbound)
        app.router.add_get("/_simulator/messages", self._control_messages)
        app.router.add_post("/_simulator/fail", self._control_fail)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        # A delayed answer (delay_next) must not hold up stop().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- failures ---------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        """The next ``count`` messages requests answer ``status`` (Meta's error body)."""
        self._plan.failures.extend([(status, retry_after)] * count)

    def delay_next(self, count: int, seconds: float) -> None:
        """The next ``count`` messages requests answer only after ``seconds``."""
        self._plan.delays.extend([seconds] * count)

    # --- what the product sent ---------------------------------------------

    def messages_to(self, to: str) -> list[SentMessage]:
        return [m for m in self.sent if m.to == to]

    async def wait_for_message(
        self,
        to: str,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the tests' and tools' call shape)
    ) -> SentMessage:
        """The next message to ``to`` (after those returned before) matching ``predicate``.

        Messages to ``to`` that precede the match are passed over. Raises
        ``TimeoutError`` after ``timeout`` seconds, naming what was sent.
        """

        def found() -> SentMessage | None:
            for message in self.sent[self._cursors[to] :]:
                if message.to == to and (predicate is None or predicate(message)):
                    return message
            return None

        try:
            async with asyncio.timeout(timeout), self._changed:
                match = await self._changed.wait_for(found)
                assert match is not None
        except TimeoutError:
            texts = [m.text for m in self.messages_to(to)[-5:]]
            raise TimeoutError(
                f"no matching message to {to} in {timeout}s; last: {texts}"
            ) from None
        self._cursors[to] = match.index + 1
        return match

    # --- inbound: what a user sends -------------------------------------------

    def text_payload(self, sender: str, body: str, **kw: Any) -> dict[str, Any]:
        return self._inbound(sender, "text", {"text": {"body": body}}, **kw)

    def reply_payload(
        self,
        sender: str,
        reply_id: str,
        title: str,
        *,
        reply_kind: str = "list_reply",
        description: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        reply = {"id": reply_id, "title": title}
        if description is not None:
            reply["description"] = description
        content = {"interactive": {"type": reply_kind, reply_kind: reply}}
        kw.setdefault("context_id", self._last_wamid_to(sender))
        return self._inbound(sender, "interactive", content, **kw)

    def media_payload(self, sender: str, kind: str, **kw: Any) -> dict[str, Any]:
        """A message of ``kind`` (audio, image, sticker, location, reaction, ...)."""
        examples: dict[str, dict[str, Any]] = {
            "location": {"location": {"latitude": 4.6097, "longitude": -74.0817}},
            "reaction": {"reaction": {"message_id": "wamid.x", "emoji": "\N{THUMBS UP SIGN}"}},
            "contacts": {"contacts": [{"name": {"formatted_name": "Ana"}}]},
        }
        media = {"id": str(uuid.uuid4().int)[:15], "mime_type": "application/octet-stream"}
        content = examples.get(kind, {kind: media})
        return self._inbound(sender, kind, content, **kw)

    async def send_text(self, sender: str, body: str, **kw: Any) -> str:
        """Post a signed text from ``sender``; returns its wamid (raises if not 200)."""
        return await self._post_inbound(self.text_payload(sender, body, **kw))

    async def send_list_reply(self, sender: str, reply_id: str, title: str, **kw: Any) -> str:
        return await self._post_inbound(self.reply_payload(sender, reply_id, title, **kw))

    async def send_button_reply(self, sender: str, reply_id: str, title: str, **kw: Any) -> str:
        payload = self.reply_payload(sender, reply_id, title, reply_kind="button_reply", **kw)
        return await self._post_inbound(payload)

    async def send_template_button(
        self, sender: str, text: str, payload: str | None = None, **kw: Any
    ) -> str:
        button = {"text": text} | ({"payload": payload} if payload is not None else {})
        return await self._post_inbound(self._inbound(sender, "button", {"button": button}, **kw))

    async def send_media(self, sender: str, kind: str, **kw: Any) -> str:
        return await self._post_inbound(self.media_payload(sender, kind, **kw))

    async def post_status(
        self,
        wamid: str,
        status: str,
        recipient: str,
        *,
        errors: Sequence[dict[str, Any]] = (),
        callback_data: str | None = None,
    ) -> int:
        """Post a status webhook for one of the product's messages; returns the HTTP status."""
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if errors:
            entry["errors"] = list(errors)
        if callback_data is not None:
            entry["biz_opaque_callback_data"] = callback_data
        return await self.post_payload(self._envelope({"statuses": [entry]}))

    async def post_payload(
        self, payload: dict[str, Any] | bytes, *, signature_header: str | None = VALID
    ) -> int:
        """POST ``payload`` to the product's webhook; returns the HTTP status.

        ``signature_header``: ``VALID`` signs with the app secret, ``None`` sends
        none, any other string is sent as is.
        """
        if self.webhook_url is None or self._session is None:
            raise RuntimeError("the simulator has no webhook URL or is not started")
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature_header == VALID:
            headers[SIGNATURE_HEADER] = signature(self.app_secret, body)
        elif signature_header is not None:
            headers[SIGNATURE_HEADER] = signature_header
        async with self._session.post(self.webhook_url, data=body, headers=headers) as response:
            await response.read()
            self.webhook_answers.append(response.status)
            return response.status

    async def _post_inbound(self, payload: dict[str, Any]) -> str:
        status = await self.post_payload(payload)
        if status != 200:
            raise RuntimeError(f"the product's webhook answered {status}")
        return str(payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"])

    def _inbound(
        self,
        sender: str,
        kind: str,
        content: dict[str, Any],
        *,
        name: str | None = "Usuario de prueba",
        message_id: str | None = None,
        timestamp: int | None = None,
        context_id: str | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "from": sender,
            "id": message_id or f"wamid.SIM{uuid.uuid4().hex}",
            "timestamp": str(timestamp if timestamp is not None else int(time.time())),
            "type": kind,
            **content,
        }
        if context_id is not None:
            message["context"] = {"from": self.display_phone_number, "id": context_id}
        contact: dict[str, Any] = {"wa_id": sender}
        if name is not None:
            contact["profile"] = {"name": name}
        return self._envelope({"contacts": [contact], "messages": [message]})

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        metadata = {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA-SIMULATOR",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {"messaging_product": "whatsapp", "metadata": metadata}
                            | value,
                        }
                    ],
                }
            ],
        }

    def _last_wamid_to(self, to: str) -> str | None:
        sent = self.messages_to(to)
        return sent[-1].wamid if sent else None

    # --- the messages endpoint ---------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self._plan.delays:
            await asyncio.sleep(self._plan.delays.popleft())
        if self._plan.failures:
            status, retry_after = self._plan.failures.popleft()
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            code = 130429 if status == 429 else 2
            return _meta_error(status, code, "Simulated failure", headers)
        authorization = request.headers.get("Authorization")
        if self.token is not None and authorization != f"Bearer {self.token}":
            return _meta_error(401, 190, "Invalid OAuth access token.")
        if not re.fullmatch(r"v[0-9]+\.[0-9]+", request.match_info["version"]):
            return _meta_error(400, 100, "Unknown path components")
        if request.match_info["phone_number_id"] != self.phone_number_id:
            return _meta_error(400, 100, "Unsupported post request: unknown phone number id")
        try:
            payload = await request.json()
            builders.check_message(payload)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _meta_error(400, 131009, f"Parameter value is not valid: {exc}")
        wamid = f"wamid.SIM{next(self._ids):06d}{uuid.uuid4().hex[:8]}"
        message = SentMessage(
            index=len(self.sent),
            wamid=wamid,
            to=payload["to"],
            type=payload["type"],
            payload=payload,
            authorization=authorization,
        )
        async with self._changed:
            self.sent.append(message)
            self._changed.notify_all()
        if self.webhook_url is not None and self.statuses:
            self._spawn(self._post_statuses(message))
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": message.to, "wa_id": message.to}],
                "messages": [{"id": wamid}],
            }
        )

    async def _post_statuses(self, message: SentMessage) -> None:
        callback_data = message.payload.get("biz_opaque_callback_data")
        for status in self.statuses:
            if self.status_delay:
                await asyncio.sleep(self.status_delay)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await self.post_status(
                    message.wamid, status, message.to, callback_data=callback_data
                )

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- control API (for tools in other processes) ---------------------------------

    async def _control_inbound(self, request: web.Request) -> web.Response:
        spec = await request.json()
        sender = str(spec["from"])
        if "text" in spec:
            payload = self.text_payload(sender, str(spec["text"]))
        elif "reply_id" in spec:
            payload = self.reply_payload(
                sender,
                str(spec["reply_id"]),
                str(spec.get("title", spec["reply_id"])),
                reply_kind=str(spec.get("reply_kind", "list_reply")),
            )
        else:
            payload = self.media_payload(sender, str(spec.get("kind", "image")))
        status = await self.post_payload(payload)
        message_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        return web.json_response({"message_id": message_id, "status": status})

    async def _control_messages(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        since = int(request.query.get("since", "0"))
        found = [
            {"index": m.index, "wamid": m.wamid, "to": m.to, "type": m.type, "payload": m.payload}
            for m in self.sent[since:]
            if to is None or m.to == to
        ]
        return web.json_response({"messages": found, "next": len(self.sent)})

    async def _control_fail(self, request: web.Request) -> web.Response:
        spec = await request.json()
        retry_after = spec.get("retry_after")
        self.fail_next(
            int(spec.get("count", 1)),
            int(spec.get("status", 500)),
            float(retry_after) if retry_after is not None else None,
        )
        return web.json_response({"pending_failures": len(self._plan.failures)})


def _meta_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "SIMULATOR",
        }
    }
    return web.json_response(body, status=status, headers=headers)


async def _serve(args: argparse.Namespace) -> None:
    simulator = WhatsAppSimulator(
        app_secret=args.app_secret,
        webhook_url=args.webhook,
        host=args.host,
        port=args.port,
        phone_number_id=args.phone_number_id,
        token=args.token,
    )
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"whatsapp simulator on {simulator.base_url} -> {args.webhook}", flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ivr.whatsapp.simulator", description="WhatsApp Cloud API simulator"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook", required=True, help="the product's webhook URL")
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--phone-number-id", default="100000000000001")
    parser.add_argument("--token", default=None, help="require this Bearer token")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
