"""Run a chat scenario (``ivr.scenarios.chatspec``) against a serving product.

The user is played through the WhatsApp simulator (``ivr.chat.tester``): the
product receives signed webhooks and answers through its outbound client, as it
would with Meta. Before the chat: the demo data is reset (``seed``), flags set
(``flags``, through the operations store, as ``ivr ops flags set`` does), and,
with ``from_call``, a call scenario is placed with sipp and the chat opens with
the link of the SMS it ends with. After: the conversation and the bookings are
read from the database and judged against ``expect``.

Every line of the transcript is kept (``ChatReport.transcript``); the report
fails with the first unmet expectation.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.chat.tester import BotMessage, NoSuchOption, SimulatedUser, SimulatorUnavailable
from ivr.phone import parse_e164, whatsapp_digits
from ivr.scenarios.chatspec import ChatScenario, ChatStep
from ivr.settings import Settings

logger = logging.getLogger(__name__)


class ScenarioFailed(AssertionError):
    """An expectation of the scenario was not met (the message says which)."""


@dataclass
class ChatReport:
    scenario: str
    transcript: list[str] = field(default_factory=list)
    failure: str | None = None
    conversation: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def bot(self, messages: list[BotMessage]) -> None:
        for message in messages:
            lines = message.rendered().splitlines() or [""]
            self.transcript.append(f"  < {lines[0]}")
            self.transcript += [f"    {line}" for line in lines[1:]]


# Hooks a composition root supplies (the database side of a scenario).
Prepare = Callable[[ChatScenario], Awaitable[None]]
Expire = Callable[[str], Awaitable[None]]  # wa_id: age its conversation past the idle expiry
Inspect = Callable[[ChatScenario, str], Awaitable[dict[str, Any]]]  # -> conversation facts
FirstMessage = Callable[[ChatScenario], Awaitable[str | None]]  # from_call: the SMS's text


def contact_wa_id(contact: str) -> str:
    """The contact as Meta writes a wa_id (E.164 digits, no ``+``)."""
    e164 = parse_e164(contact)
    if e164 is None:
        raise ValueError(f"{contact!r} is not a phone number")
    return whatsapp_digits(e164)


def prefilled_text(sms_text: str) -> str | None:
    """The prefilled text of the wa.me link in an SMS (what the chat opens with)."""
    for word in sms_text.split():
        if word.startswith("https://wa.me/") and "?text=" in word:
            return urllib.parse.unquote(word.split("?text=", 1)[1])
    return None


@dataclass
class ChatScenarioRunner:
    settings: Settings
    prepare: Prepare
    expire: Expire
    inspect: Inspect
    first_message: FirstMessage
    simulator_url: str = ""

    async def run(self, scenario: ChatScenario) -> ChatReport:
        report = ChatReport(scenario.name)
        report.transcript.append(f"chat {scenario.name}: {scenario.description}")
        wa_id = contact_wa_id(scenario.contact)
        url = (
            self.simulator_url or f"http://{self.settings.host}:{self.settings.ports.whatsapp_sim}"
        )
        try:
            await self.prepare(scenario)
            async with SimulatedUser(url, wa_id) as user:
                opening = await self.first_message(scenario) if scenario.from_call else None
                if scenario.from_call:
                    if opening is None:
                        raise ScenarioFailed(
                            f"the call {scenario.from_call} sent no SMS with a link"
                        )
                    report.transcript.append(f"  (SMS of call {scenario.from_call}: {opening})")
                    await user.send(opening)
                    report.transcript.append(f"  > {opening}")
                for step in scenario.steps:
                    await self._step(user, step, scenario, report)
                report.bot(await user.new_messages())
            report.conversation = await self.inspect(scenario, wa_id)
            self._judge(scenario, report)
        except (ScenarioFailed, NoSuchOption, SimulatorUnavailable) as exc:
            report.failure = str(exc)
        report.transcript.append("PASS" if report.ok else f"FAIL: {report.failure}")
        return report

    async def _step(
        self, user: SimulatedUser, step: ChatStep, scenario: ChatScenario, report: ChatReport
    ) -> None:
        match step.kind:
            case "send":
                report.bot(await user.new_messages())
                await user.send(step.value)
                report.transcript.append(f"  > {step.value}")
            case "pick":
                report.bot(await user.new_messages())
                menu = user.last_menu
                await user.pick(step.value)
                label = step.value
                if menu is not None and menu.options:
                    label = f"{step.value} ({user.option(menu, step.value).title})"
                report.transcript.append(f"  > [elige] {label}")
            case "media":
                report.bot(await user.new_messages())
                await user.media(step.value)
                report.transcript.append(f"  > [{step.value}]")
            case "expect":
                found, read = await user.wait_for(step.value, scenario.timeout)
                report.bot(read)
                if found is None:
                    raise ScenarioFailed(
                        f"no message of the bot matched {step.value!r} within {scenario.timeout:g} s"
                    )
                report.transcript.append(f"  ✓ {step.value}")
            case "expect_no_reply":
                read = await user.quiet_for(step.seconds)
                report.bot(read)
                if read:
                    raise ScenarioFailed(
                        f"the bot answered within {step.seconds:g} s; silence expected"
                    )
                report.transcript.append(f"  ✓ silence for {step.seconds:g} s")
            case "wait":
                await asyncio.sleep(step.seconds)
            case "expire":
                report.bot(await user.new_messages())
                await self.expire(user.wa_id)
                report.transcript.append("  (the conversation goes idle past its expiry)")

    @staticmethod
    def _judge(scenario: ChatScenario, report: ChatReport) -> None:
        exp, conv = scenario.expect, report.conversation
        checks: list[tuple[str, object, object]] = []
        if exp.outcome is not None:
            checks.append(("outcome", exp.outcome, conv.get("outcome")))
        if exp.state is not None:
            checks.append(("state", exp.state, conv.get("state")))
        if exp.booking is not None:
            checks.append(("booking", exp.booking, conv.get("booking")))
        if exp.journey is not None:
            checks.append(("journey", exp.journey, bool(conv.get("journey_id"))))
        for name, want in exp.variables.items():
            checks.append((f"variables.{name}", want, str(conv.get("variables", {}).get(name))))
        nodes = list(conv.get("nodes", []))
        missing = [n for n in exp.nodes if n not in nodes]
        if missing:
            raise ScenarioFailed(f"nodes {missing} not visited (visited: {nodes})")
        for name, expected, got in checks:
            if expected != got:
                raise ScenarioFailed(f"{name}: expected {expected!r}, got {got!r}")
