"""``ivr chat``: a terminal chat with the assistant, and chat scenarios (issue 10 §8).

- ``ivr chat`` (``--from NUMBER``): type text; a number answers the bot's last
  menu by position; ``/foto`` sends an image the bot cannot read; ``/salir``
  ends. Every message goes through the sandbox's WhatsApp simulator and the
  real webhook; the bot's messages are shown as text (menus numbered).
- ``ivr chat --list``: the bundled chat scenarios.
- ``ivr chat NAME|PATH.yaml`` (``--json``): run a chat scenario, print its
  transcript; exit 0 when it passed, 1 when it failed, 2 when it cannot run.

The database side of a scenario (demo data, flags, the conversation's facts,
idle expiry) is done here, on the instance's database, as ``ivr call`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select, update

from ivr.chat.tester import BotMessage, NoSuchOption, SimulatedUser, SimulatorUnavailable
from ivr.scenarios.chatrunner import (
    ChatReport,
    ChatScenarioRunner,
    contact_wa_id,
    prefilled_text,
)
from ivr.scenarios.chatspec import (
    DEFAULT_CONTACT,
    ChatScenario,
    list_chat_scenarios,
    load_chat_scenario,
)
from ivr.settings import Settings
from ivr.store.db import Database

FLAG_REASON = "ivr chat scenario"
FLAGS_WAIT_S = 10.0
_REVISION = re.compile(r"^citas_flags_revision (\S+)$", re.M)


class _Hooks:
    """A scenario's database side, on ``settings``' database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.restore: dict[str, object] = {}

    async def prepare(self, scenario: ChatScenario) -> None:
        from ivr.chat.tables import ConversationRow
        from ivr.scenarios.runner import seed

        if scenario.seed in ("agenda", "race", "appointments", "cases", "case_open"):
            await seed(self.settings, scenario.seed)
        elif scenario.seed == "empty":
            await seed(self.settings, "agenda")
            await self._no_free_slots()
        if scenario.flags:
            await self._set_flags(scenario.flags)
        # Each scenario starts a new conversation: the contact's last one is closed.
        wa_id = contact_wa_id(scenario.contact)
        db = Database(self.settings.database_url)
        try:
            await db.migrate()
            async with db.sessions.begin() as session:
                await session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.wa_id == wa_id)
                    .values(state="closed", node=None, attempt=0, variables={},
                            version=ConversationRow.version + 1)
                )  # fmt: skip
        finally:
            await db.close()

    async def _no_free_slots(self) -> None:
        from ivr.booking.db import DbSlotSource
        from ivr.citas.reference import load_sites

        db = Database(self.settings.database_url)
        try:
            slots = DbSlotSource(db, timeout=self.settings.request_timeout)
            for site_id in load_sites(self.settings.citas_dir / "sites.yaml"):
                await slots.delete_free_slots(site_id)
        finally:
            await db.close()

    async def _set_flags(self, flags: dict[str, object]) -> None:
        from ivr.citas.flags import flag_registry
        from ivr.citas.reference import load_reference
        from ivr.ops.cli import cli_actor, open_service

        registry = flag_registry(load_reference(self.settings.citas_dir))
        async with open_service(self.settings, registry) as service:
            for name, value in flags.items():
                before = await service.flag(name)
                self.restore.setdefault(name, before.value)
                await service.set_flag(cli_actor(), name, value, FLAG_REASON)
        await self._serving_has(await self._revision())

    async def _revision(self) -> int:
        from sqlalchemy import text

        db = Database(self.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                return int(
                    (await conn.execute(text("SELECT revision FROM ops_state"))).scalar_one()
                )
        finally:
            await db.close()

    async def _serving_has(self, revision: int) -> None:
        """Wait (at most ``FLAGS_WAIT_S``) until the serving process uses flags
        ``revision`` (its ``citas_flags_revision`` on ``/metrics``): the chat must
        meet the flags the scenario set, not the ones before."""
        url = f"http://{self.settings.host}:{self.settings.ports.ops_http}/metrics"
        deadline = asyncio.get_running_loop().time() + FLAGS_WAIT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as response:
                        match = _REVISION.search(await response.text())
                        if match and float(match.group(1)) >= revision:
                            return
                await asyncio.sleep(0.1)

    async def put_flags_back(self) -> None:
        if self.restore:
            await self._set_flags(dict(self.restore))
            self.restore.clear()

    async def expire(self, wa_id: str) -> None:
        from ivr.chat.tables import ConversationRow

        idle = timedelta(minutes=self.settings.chat.idle_minutes)
        db = Database(self.settings.database_url)
        try:
            async with db.sessions.begin() as session:
                await session.execute(
                    update(ConversationRow)
                    .where(ConversationRow.wa_id == wa_id)
                    .values(last_activity_at=datetime.now(UTC) - idle - timedelta(minutes=1),
                            version=ConversationRow.version + 1)
                )  # fmt: skip
        finally:
            await db.close()

    async def inspect(self, scenario: ChatScenario, wa_id: str) -> dict[str, Any]:
        from ivr.booking.db import DbSlotSource
        from ivr.chat.tables import ConversationRow

        db = Database(self.settings.database_url)
        try:
            async with db.sessions() as session:
                row = await session.scalar(
                    select(ConversationRow).where(ConversationRow.wa_id == wa_id)
                )
            if row is None:
                return {}
            variables = dict(row.variables or {})
            facts: dict[str, Any] = {
                "state": row.state, "outcome": row.outcome, "journey_id": row.journey_id,
                "node": row.node, "variables": variables, "nodes": variables.get("chat_path", []),
            }  # fmt: skip
            affiliate = variables.get("affiliate_id")
            if affiliate:
                pending = await DbSlotSource(db, timeout=5.0).pending_for(str(affiliate))
                facts["booking"] = bool(pending)
            else:
                facts["booking"] = False
            return facts
        finally:
            await db.close()

    async def first_message(self, scenario: ChatScenario) -> str | None:
        from ivr.scenarios.runner import run_scenario
        from ivr.scenarios.spec import list_scenarios

        call = list_scenarios()[str(scenario.from_call)]
        report = await asyncio.to_thread(run_scenario, call, self.settings)
        if not report.ok:
            return None
        for sms in report.sms:
            text = prefilled_text(str(sms.get("text") or ""))
            if text:
                return text
        return None


def find_chat_scenario(arg: str) -> ChatScenario:
    """A bundled chat scenario by name, or a file (``*.yaml`` or a path).

    Raises ``LookupError`` (no such one) and ``ConfigError`` (not a valid scenario)."""
    if arg.lower().endswith((".yaml", ".yml")) or "/" in arg:
        path = Path(arg)
        if not path.is_file():
            raise LookupError(f"no chat scenario file {arg!r}")
        return load_chat_scenario(path)
    found = list_chat_scenarios().get(arg)
    if found is None:
        raise LookupError(f"no chat scenario {arg!r}; try: ivr chat --list")
    return found


async def run_chat_scenario(scenario: ChatScenario, settings: Settings) -> ChatReport:
    hooks = _Hooks(settings)
    runner = ChatScenarioRunner(
        settings, hooks.prepare, hooks.expire, hooks.inspect, hooks.first_message
    )
    try:
        return await runner.run(scenario)
    finally:
        await hooks.put_flags_back()


async def terminal_chat(settings: Settings, contact: str) -> int:
    """The interactive chat on stdin/stdout, until ``/salir`` or end of input."""
    url = f"http://{settings.host}:{settings.ports.whatsapp_sim}"
    loop = asyncio.get_running_loop()
    print(f"Chat con el asistente como {contact} (simulador en {url}).")
    print("Escriba y pulse Enter; un número elige una opción del último menú;")
    print("/foto envía una imagen; /salir termina.")
    async with SimulatedUser(url, contact_wa_id(contact)) as user:

        async def show() -> None:
            while True:
                for message in await user.new_messages():
                    print(_bubble(message), flush=True)
                await asyncio.sleep(0.2)

        shower = asyncio.create_task(show())
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line or line.strip() == "/salir":
                    break
                text = line.strip()
                if not text:
                    continue
                if text == "/foto":
                    await user.media("image")
                elif text.isdigit() and user.last_menu is not None and user.last_menu.options:
                    try:
                        await user.pick(text)
                    except NoSuchOption:
                        await user.send(text)
                else:
                    await user.send(text)
        finally:
            shower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shower
    return 0


def _bubble(message: BotMessage) -> str:
    return "\n".join(f"Lina │ {line}" for line in message.rendered().splitlines())


def cmd_chat(args: argparse.Namespace) -> int:
    from ivr.yamlsrc import ConfigError

    settings = Settings.from_env()
    if args.instance:
        settings = replace(settings, instance=args.instance)
    if args.list:
        scenarios = list_chat_scenarios()
        width = max(len(n) for n in scenarios)
        for name, sc in scenarios.items():
            print(f"{name:<{width}}  {sc.description}")
        return 0
    if not args.scenario:
        try:
            return asyncio.run(terminal_chat(settings, args.contact))
        except SimulatorUnavailable as exc:
            print(f"ivr chat: {exc} (¿está arriba el sandbox? ivr sandbox up)", file=sys.stderr)
            return 2
    try:
        scenario = find_chat_scenario(args.scenario)
    except (LookupError, ConfigError) as exc:
        print(f"ivr chat: {exc}", file=sys.stderr)
        return 2
    if args.contact != DEFAULT_CONTACT:
        scenario = replace(scenario, contact=args.contact)
    report = asyncio.run(run_chat_scenario(scenario, settings))
    if args.json:
        print(json.dumps(report.__dict__ | {"ok": report.ok}, indent=2, default=str))
    else:
        print("\n".join(report.transcript))
    return 0 if report.ok else 1


def add_parser(sub: Any) -> None:
    chat = sub.add_parser(
        "chat",
        help="chat with the assistant through the WhatsApp simulator, or run a chat scenario",
    )
    chat.add_argument(
        "scenario", nargs="?", help="a bundled chat scenario (--list) or a file (*.yaml or a path)"
    )
    chat.add_argument("--list", action="store_true", help="list the chat scenarios")
    chat.add_argument("--from", dest="contact", default=DEFAULT_CONTACT,
                      help="the WhatsApp number writing (default: the demo's Ana)")  # fmt: skip
    chat.add_argument("--instance")
    chat.add_argument("--json", action="store_true", help="machine-readable report")
    chat.set_defaults(func=cmd_chat)
