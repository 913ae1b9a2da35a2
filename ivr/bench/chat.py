"""The chat line of ``ivr bench``: N WhatsApp contacts at once through the simulator.

Each simulated contact has one conversation with the citas flow on WhatsApp,
the way a person would: it writes "Hola" from a number the affiliate
directory knows (identified by its WhatsApp number, like Ana), picks
"pedir una cita", picks the first service, reads the slot offered and
declines it ("Ninguna"). Declining books nothing, so the demo slots are never
used up and every step sees the same work: identification, two menus, the
eligibility check, a slot search, the spoken slot rendered as chat text.

The contacts are generated (``contact_phones``): one fresh number per
conversation, appended to a copy of the line's affiliate directory
(``write_config``) that the serving process loads (``CITAS_CONFIG_DIR``), so no
conversation of one step is the continuation of another's.

The simulator (``ivr.whatsapp.simulator.WhatsAppSimulator``) runs in the
benchmark's own process, on a loop in a thread (``ChatDriver``); the serving
process sends to it as to a configured Cloud API number
(``CITAS_WHATSAPP_API_BASE`` and the sandbox's credentials) and it posts signed webhooks to the serving process's
``/whatsapp/webhook``, and the ``sent``/``delivered``/``read`` statuses of every
message the product sends, as Meta does.

Latency, per message a contact sends: from just before the signed webhook
POST leaves the simulator to the first message the product sends that
contact afterwards arriving at the simulator's ``/messages`` endpoint
(``time.monotonic``, same process, so one clock). A message counts as answered
when the reply the script expects (a regular expression over the message's
text and option titles) arrives within ``reply_timeout`` seconds; a contact
whose message is not answered stops there and its remaining messages count as
failed too.

Pace: each contact sends its next message ``interval`` seconds after its
previous one (the first at a random offset in ``[0, interval)`` so N contacts
do not write in the same instant), and never before the previous reply has
arrived (a person reads before answering): the offered rate of a step is
``N / interval`` messages per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from ivr.chat.tester import BotMessage, NoSuchOption, SimulatedUser
from ivr.whatsapp.simulator import SentMessage, WhatsAppSimulator

T = TypeVar("T")

CHAT_LINE = "chat"
FIRST_PHONE = 3009000000  # bench contacts: 300 900 0000 upwards (Colombian mobiles)
FIRST_DOCUMENT = 7700000000
SITE = "norte"  # the demo site with slots


@dataclass(frozen=True)
class ChatMove:
    """One message a contact sends and the reply that answers it.

    ``send``: the text typed (``pick`` False) or the option picked from the
    bot's last menu, by position or title (``pick`` True; a menu sent as
    numbered text is answered by typing it). ``expect``: a regular expression
    (case-insensitive) the answering reply's text or option titles match."""

    send: str
    expect: str
    pick: bool = False


def contact_script() -> tuple[ChatMove, ...]:
    """The conversation every simulated contact has (the citas flow, chat texts)."""
    return (
        ChatMove("Hola", r"pedir una cita"),
        ChatMove("1", r"medicina general", pick=True),
        ChatMove("1", r"Tenemos disponible una cita", pick=True),
        ChatMove("Ninguna", r"Hasta pronto", pick=True),  # declined: the goodbye
    )


def contact_phones(count: int, first: int = FIRST_PHONE) -> list[str]:
    """``count`` distinct 10-digit Colombian mobile numbers (``3009000000`` up).

    Raises ``ValueError`` when they would leave the ``300`` block (10**7 numbers)."""
    if count < 0:
        raise ValueError(f"count must be positive, got {count}")
    if first + count > 3010000000:
        raise ValueError(f"{count} contacts from {first} leave the 300 block")
    return [str(first + k) for k in range(count)]


def wa_id(phone: str) -> str:
    """A Colombian mobile as Meta's wa_id: country code 57, no ``+``."""
    return "57" + phone


def bench_affiliates(phones: Sequence[str]) -> list[dict[str, Any]]:
    """Directory entries for the contacts: each like Ana (target, site norte)."""
    return [
        {
            "document": str(FIRST_DOCUMENT + k),
            "phone": phone,
            "name": f"Contacto {k + 1}",
            "age": 30,
            "plan": "PBS",
            "site": SITE,
            "risk": [],
        }
        for k, phone in enumerate(phones)
    ]


def write_config(source: Path, target: Path, phones: Sequence[str]) -> Path:
    """A copy of the config directory ``source`` (flows/, citas/) whose affiliate
    directory also holds the bench contacts; returns ``target``.

    Raises ``ValueError`` when a bench number is already in the directory."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    path = target / "citas" / "affiliates.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    known = {str(a.get("phone")) for a in data["affiliates"]}
    clash = known.intersection(phones)
    if clash:
        raise ValueError(f"bench contacts already in the directory: {sorted(clash)[:3]}")
    data["affiliates"] = list(data["affiliates"]) + bench_affiliates(phones)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def rounds_for(hold: float, interval: float, moves: int) -> int:
    """Conversations per contact slot in a step: enough to last ``hold`` seconds.

    >>> rounds_for(0.0, 2.0, 4), rounds_for(15.0, 2.0, 4), rounds_for(16.0, 2.0, 4)
    (1, 2, 2)
    """
    return max(1, math.ceil(hold / max(interval * moves, 0.001)))


def contacts_needed(
    steps: Sequence[int], max_n: int, rounds: int, warmup: int = 1, repeat: int = 1
) -> int:
    """Directory size for a run: one fresh contact per conversation, every step ``repeat`` times.

    >>> contacts_needed([10, 40, 80], max_n=40, rounds=2)
    101
    >>> contacts_needed([10, 40, 80], max_n=40, rounds=2, repeat=3)
    301
    """
    return warmup + repeat * sum(n * rounds for n in steps if n <= max_n)


def start_offsets(n: int, interval: float, rng: random.Random) -> list[float]:
    """When each of ``n`` contacts writes first: uniform in ``[0, interval)``, seeded."""
    return [rng.uniform(0.0, interval) for _ in range(n)]


def offered_rate(n: int, interval: float) -> float:
    """Messages per second N contacts offer, one message each every ``interval`` s."""
    return n / interval if interval > 0 else 0.0


def matches(message: BotMessage, pattern: str) -> bool:
    return re.search(pattern, message.rendered(), re.IGNORECASE) is not None


@dataclass
class ChatOutcome:
    """What one step measured: latencies (ms) and why messages failed."""

    planned: int = 0
    sent: int = 0
    answered: int = 0
    latency_ms: list[float] = field(default_factory=list)  # webhook POST → first reply
    turn_ms: list[float] = field(default_factory=list)  # webhook POST → the expected reply
    failures: dict[str, int] = field(default_factory=dict)
    first_sent: float = 0.0  # monotonic
    last_answer: float = 0.0
    transcript: list[str] = field(default_factory=list)  # the first contact's, for the log

    def fail(self, why: str, count: int = 1) -> None:
        if count:
            self.failures[why] = self.failures.get(why, 0) + count

    @property
    def achieved_rate(self) -> float:
        span = self.last_answer - self.first_sent
        return self.answered / span if span > 0 and self.answered else 0.0


class BenchSimulator(WhatsAppSimulator):
    """The simulator, stamping the arrival of each message the product sends and
    handing it to the contact's queue."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.inbox: dict[str, asyncio.Queue[tuple[float, SentMessage]]] = defaultdict(asyncio.Queue)
        self._dispatched = 0

    async def _messages(self, request: web.Request) -> web.Response:
        response = await super()._messages(request)
        now = time.monotonic()
        fresh, self._dispatched = self.sent[self._dispatched :], len(self.sent)
        for message in fresh:
            self.inbox[message.to].put_nowait((now, message))
        return response


class ChatDriver:
    """The simulator on its own event loop in a thread, and the contacts' steps."""

    def __init__(self, *, app_secret: str, phone_number_id: str, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-chat", daemon=True)
        self.simulator = BenchSimulator(
            app_secret=app_secret, phone_number_id=phone_number_id, token=token
        )

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> int:
        """Start the simulator on a free port; returns the port."""
        self.thread.start()
        self._call(self.simulator.start(), 30.0)
        return self.simulator.port

    def set_webhook(self, url: str) -> None:
        self.simulator.webhook_url = url

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self.simulator.stop(), 30.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10.0)

    def step(
        self,
        contacts: Sequence[Sequence[str]],
        script: Sequence[ChatMove],
        *,
        interval: float,
        reply_timeout: float,
        seed: int = 0,
    ) -> ChatOutcome:
        """Run ``contacts`` (per slot, the wa_ids of its successive conversations)."""
        limit = (len(script) * (interval + reply_timeout) + 30.0) * max(map(len, contacts))
        return self._call(
            run_step(self.simulator, contacts, script, interval, reply_timeout, seed), limit
        )


async def run_step(
    simulator: BenchSimulator,
    contacts: Sequence[Sequence[str]],
    script: Sequence[ChatMove],
    interval: float,
    reply_timeout: float,
    seed: int = 0,
) -> ChatOutcome:
    outcome = ChatOutcome(planned=sum(len(s) for s in contacts) * len(script))
    offsets = start_offsets(len(contacts), interval, random.Random(seed))
    outcome.first_sent = time.monotonic()
    await asyncio.gather(
        *(
            _slot(simulator, ids, script, interval, reply_timeout, offset, outcome, k == 0)
            for k, (ids, offset) in enumerate(zip(contacts, offsets, strict=True))
        )
    )
    return outcome


async def _slot(
    simulator: BenchSimulator,
    ids: Sequence[str],
    script: Sequence[ChatMove],
    interval: float,
    reply_timeout: float,
    offset: float,
    outcome: ChatOutcome,
    keep_transcript: bool,
) -> None:
    await asyncio.sleep(offset)
    for contact in ids:
        done = await _conversation(
            simulator, contact, script, interval, reply_timeout, outcome, keep_transcript
        )
        # The message that failed counts under its own reason; the rest were never sent.
        outcome.fail("not_sent", max(0, len(script) - done - 1))
        keep_transcript = False


async def _conversation(
    simulator: BenchSimulator,
    contact: str,
    script: Sequence[ChatMove],
    interval: float,
    reply_timeout: float,
    outcome: ChatOutcome,
    keep_transcript: bool,
) -> int:
    """One contact's conversation; returns how many of its messages were answered."""
    inbox = simulator.inbox[contact]
    last_menu: BotMessage | None = None
    next_at = time.monotonic()
    for done, move in enumerate(script):
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        while not inbox.empty():  # the rest of the last turn's messages
            _, late = inbox.get_nowait()
            last_menu = _menu(BotMessage.from_payload(late.index, late.payload), last_menu)
        payload = _payload(simulator, contact, move, last_menu)
        if payload is None:
            outcome.fail("no_such_option")
            return done
        t0 = time.monotonic()
        next_at = t0 + interval
        try:
            status = await simulator.post_payload(payload)
        except Exception:  # the webhook is down or refused the connection
            status = 0
        outcome.sent += 1
        if keep_transcript:
            outcome.transcript.append(f">> {move.send}")
        if status != 200:
            outcome.fail(f"webhook_{status}")
            return done
        first: float | None = None
        deadline = t0 + reply_timeout
        while True:
            try:
                stamp, sent = await asyncio.wait_for(
                    inbox.get(), timeout=max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                outcome.fail("no_reply" if first is None else "unexpected_reply")
                return done
            message = BotMessage.from_payload(sent.index, sent.payload)
            if keep_transcript:
                outcome.transcript.append(message.rendered())
            last_menu = _menu(message, last_menu)
            if first is None:
                first = stamp
                outcome.latency_ms.append((stamp - t0) * 1000)
            if matches(message, move.expect):
                outcome.turn_ms.append((stamp - t0) * 1000)
                outcome.answered += 1
                outcome.last_answer = max(outcome.last_answer, stamp)
                break
    return len(script)


def _menu(message: BotMessage, last: BotMessage | None) -> BotMessage | None:
    """The menu a pick answers after ``message``: it, when it offers options (buttons,
    a list, or numbered text, as ``SimulatedUser`` reads them), else ``last``."""
    if message.options or re.search(r"(?m)^\s*\d+[.)] ", message.body):
        return message
    return last


def _payload(
    simulator: WhatsAppSimulator, contact: str, move: ChatMove, menu: BotMessage | None
) -> dict[str, Any] | None:
    """The webhook payload for ``move`` (None: the pick names no option of ``menu``)."""
    if not move.pick or menu is None or not menu.options:
        return simulator.text_payload(contact, move.send)
    try:
        option = SimulatedUser.option(menu, move.send)
    except NoSuchOption:
        return None
    kind = "button_reply" if menu.interactive == "button" else "list_reply"
    return simulator.reply_payload(contact, option.id, option.title, reply_kind=kind)
