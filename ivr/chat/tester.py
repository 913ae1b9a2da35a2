"""A WhatsApp user for testers: talks to the product through the simulator's
control API (``ivr.whatsapp.simulator``), so every message goes through the
real, signed webhook and every answer through the real outbound client.

Used by ``ivr chat`` (the terminal chat), the chat scenarios
(``ivr.scenarios.chatrunner``) and the web chat page. Waiting is bounded: every
wait has a deadline and polls the simulator (another process, over HTTP).

Exceptions: ``SimulatorUnavailable`` (the simulator does not answer),
``NoSuchOption`` (``pick`` names no option of the bot's last menu).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from ivr.chat.replies import normalize
from ivr.failures import failure_text

POLL_S = 0.1


class SimulatorUnavailable(RuntimeError):
    """The WhatsApp simulator did not answer (is the sandbox or demo up?)."""


class NoSuchOption(LookupError):
    """A pick that matches no option of the bot's last menu."""


@dataclass(frozen=True)
class Option:
    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class BotMessage:
    """One message the product sent to the contact, as the simulator recorded it."""

    index: int
    type: str  # text | interactive | template
    body: str
    options: tuple[Option, ...] = ()
    interactive: str = ""  # button | list
    list_button: str = ""

    @classmethod
    def from_payload(cls, index: int, payload: dict[str, Any]) -> BotMessage:
        kind = str(payload.get("type", ""))
        if kind == "text":
            return cls(index, kind, str(payload["text"]["body"]))
        if kind == "template":
            return cls(index, kind, f"[plantilla {payload['template']['name']}]")
        if kind != "interactive":
            return cls(index, kind, "")
        inter = payload["interactive"]
        action = inter.get("action", {})
        options = [Option(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", ())]
        options += [
            Option(r["id"], r["title"], r.get("description") or "")
            for s in action.get("sections", ())
            for r in s.get("rows", ())
        ]
        parts = [inter.get("header", {}).get("text", ""), inter["body"]["text"]]
        parts.append(inter.get("footer", {}).get("text", ""))
        return cls(
            index,
            kind,
            "\n".join(p for p in parts if p),
            tuple(options),
            str(inter.get("type", "")),
            str(action.get("button", "")),
        )

    def rendered(self) -> str:
        """What a person reads, as plain text (options numbered by position)."""
        lines = [self.body]
        for n, option in enumerate(self.options, 1):
            extra = f" — {option.description}" if option.description else ""
            lines.append(f"  [{n}] {option.title}{extra}")
        return "\n".join(lines)


class SimulatedUser:
    """One WhatsApp contact (``wa_id``: E.164 digits without ``+``) driving the
    simulator at ``base_url`` (``http://127.0.0.1:<Ports.whatsapp_sim>``)."""

    def __init__(self, base_url: str, wa_id: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.wa_id = wa_id.lstrip("+")
        self.timeout = timeout
        self.seen = 0  # simulator index after the last message read
        self.last_menu: BotMessage | None = None
        self._unread: list[BotMessage] = []  # fetched, not yet given to the caller
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimulatedUser:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self.seen = await self._next_index()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert self._session is not None, "use SimulatedUser as an async context manager"
        try:
            async with self._session.request(method, self.base_url + path, **kw) as response:
                response.raise_for_status()
                data: dict[str, Any] = await response.json()
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = failure_text(exc, deadline_s=self.timeout)
            raise SimulatorUnavailable(f"WhatsApp simulator at {self.base_url}: {reason}") from exc

    async def _next_index(self) -> int:
        data = await self._call("GET", "/_simulator/messages", params={"to": "-", "since": "0"})
        return int(data["next"])

    # --- writing ----------------------------------------------------------------
    async def send(self, text: str) -> str:
        """A text message; returns its message id (wamid)."""
        data = await self._call(
            "POST", "/_simulator/inbound", json={"from": self.wa_id, "text": text}
        )
        return str(data["message_id"])

    async def media(self, kind: str) -> str:
        data = await self._call(
            "POST", "/_simulator/inbound", json={"from": self.wa_id, "kind": kind}
        )
        return str(data["message_id"])

    async def pick(self, choice: str) -> str:
        """Answer the bot's last menu: by option id, position (``"2"``) or title
        (accents and case ignored). A menu sent as numbered text is answered by
        typing ``choice``. Raises ``NoSuchOption``."""
        menu = self.last_menu
        if menu is None or not menu.options:
            return await self.send(choice)
        option = self.option(menu, choice)
        kind = "button_reply" if menu.interactive == "button" else "list_reply"
        spec = {
            "from": self.wa_id,
            "reply_id": option.id,
            "title": option.title,
            "reply_kind": kind,
        }
        data = await self._call("POST", "/_simulator/inbound", json=spec)
        return str(data["message_id"])

    @staticmethod
    def option(menu: BotMessage, choice: str) -> Option:
        for option in menu.options:
            if option.id == choice:
                return option
        if choice.isdigit() and 1 <= int(choice) <= len(menu.options):
            return menu.options[int(choice) - 1]
        wanted = normalize(choice)
        for option in menu.options:
            if normalize(option.title) == wanted:
                return option
        titles = ", ".join(repr(o.title) for o in menu.options)
        raise NoSuchOption(f"no option {choice!r} in the last menu ({titles})")

    # --- reading ----------------------------------------------------------------
    async def new_messages(self) -> list[BotMessage]:
        """The bot's messages to this contact not read yet, oldest first."""
        unread, self._unread = self._unread, []
        return unread + await self._fetch()

    async def _fetch(self) -> list[BotMessage]:
        data = await self._call(
            "GET", "/_simulator/messages", params={"to": self.wa_id, "since": str(self.seen)}
        )
        found = [BotMessage.from_payload(m["index"], m["payload"]) for m in data["messages"]]
        self.seen = int(data["next"])
        for message in found:
            if message.options:
                self.last_menu = message
            elif message.type == "text" and re.search(r"(?m)^\s*\d+[.)] ", message.body):
                self.last_menu = message  # a numbered text menu: answered by typing
        return found

    async def wait_for(
        self, pattern: str, within: float
    ) -> tuple[BotMessage | None, list[BotMessage]]:
        """Read the bot's messages until one matches ``pattern`` (case-insensitive
        regular expression) or ``within`` seconds pass: (the match or None,
        every message read meanwhile, in order)."""
        regex = re.compile(pattern, re.IGNORECASE)
        read: list[BotMessage] = []
        deadline = time.monotonic() + within
        while True:
            fetched = await self.new_messages()
            for n, message in enumerate(fetched):
                read.append(message)
                if regex.search(message.rendered()):
                    self._unread = fetched[n + 1 :] + self._unread  # the next expect's
                    return message, read
            if time.monotonic() > deadline:
                return None, read
            await asyncio.sleep(POLL_S)

    async def quiet_for(self, seconds: float) -> list[BotMessage]:
        """Every message the bot sends within ``seconds`` (empty: it stayed silent)."""
        read: list[BotMessage] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            read += await self.new_messages()
            await asyncio.sleep(POLL_S)
        return read + await self.new_messages()
