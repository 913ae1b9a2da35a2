"""``ivr flags``, ``ivr incident`` and ``ivr ops``: operations from the command line.

These commands work directly on the instance's database, so whoever can run
them can read and write that database: they act as ``cli:<login user>`` with
the admin role (the audit trail records that name). Bad input (unknown flag,
value, window or token, missing reason) prints one line on stderr and exits 2.

ivr flags list [--json]                          every flag, its effective value and source
ivr flags set NAME VALUE --reason R              on/off, a number, a word, a date, a,b,c or none
ivr flags reset NAME --reason R                  back to the default
ivr flags schedule NAME VALUE (--for 30m | --until ISO) [--start ISO] --reason R
ivr flags windows [--all]                        contingency windows
ivr flags cancel WINDOW_ID --reason R
ivr flags history [NAME] [--since ISO] [--until ISO] [--limit N] [--csv]
ivr incident on|off --reason R                   the incident switch
ivr ops token create NAME --role ROLE [--reason R]   prints the token (only) on stdout
ivr ops token list | revoke NAME --reason R
ivr ops serve                                    only the ops API and console
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ivr.ops.flags import FlagRegistry, FlagValueError, Role
from ivr.ops.service import Actor, FlagService, FlagView, OpsError, audit_csv
from ivr.ops.store import OpsStore, Window
from ivr.settings import Settings
from ivr.store import Database, StoreUnavailable

if TYPE_CHECKING:
    from ivr.chat.store import ConversationStore
    from ivr.ops.api import ApiExtension

logger = logging.getLogger(__name__)

SettingsFor = Callable[[argparse.Namespace], Settings]
# The line's flags for a deployment (its settings): given by the composition root
# (``ivr.cli``), since the platform knows no line.
RegistryFor = Callable[[Settings], FlagRegistry]
# The parts' API extensions for ``ivr ops serve``, given the settings, the database
# and the chats (the composition root's: ivr.ops imports no part).
ExtensionsFor = Callable[[Settings, Database, "ConversationStore"], "Sequence[ApiExtension]"]
DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class BadInput(Exception):
    """Input the command cannot use: one line on stderr, exit 2."""


def _default_settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "instance", None):
        settings = replace(settings, instance=args.instance)
    return settings


def cli_actor() -> Actor:
    """Whoever runs the command; database access is admin access."""
    return Actor(f"cli:{getpass.getuser()}", Role.ADMIN)


@contextlib.asynccontextmanager
async def open_service(settings: Settings, registry: FlagRegistry) -> AsyncIterator[FlagService]:
    """The flag service on ``settings``' database (migrated first), for ``registry``'s flags."""
    db = Database(settings.database_url)
    try:
        await db.migrate()
        yield FlagService(OpsStore(db), registry)
    finally:
        await db.close()


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1h30m``, ``1d`` → a timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    match = DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise BadInput(f"--for {text!r}: expected a duration like 90s, 30m, 2h or 1h30m")
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    duration = timedelta(days=d, hours=h, minutes=m, seconds=s)
    if duration <= timedelta(0):
        raise BadInput(f"--for {text!r}: the duration must be positive")
    return duration


def parse_instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(
            f"{option} {text!r}: expected ISO 8601, e.g. 2025-03-10T18:00-05:00"
        ) from None
    if value.tzinfo is None:
        raise BadInput(f"{option} {text!r}: give the UTC offset, e.g. 2025-03-10T18:00-05:00")
    return value


# --- output ------------------------------------------------------------------------
def _show(value: object) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _flag_line(view: FlagView) -> str:
    source = view.source
    if view.window is not None:
        source += f" until {view.window.ends_at.isoformat(timespec='seconds')}"
    changed = ""
    if view.updated_by:
        assert view.updated_at is not None
        changed = f"  ({view.updated_by}, {view.updated_at.isoformat(timespec='seconds')})"
    return f"{view.definition.name:<44} {_show(view.value):<22} {source}{changed}"


def _window_line(window: Window, now: datetime) -> str:
    return (
        f"{window.id}  {window.name}={_show(window.value)}  "
        f"{window.starts_at.isoformat(timespec='seconds')} → "
        f"{window.ends_at.isoformat(timespec='seconds')}  {window.state_at(now)}  "
        f"by {window.created_by}: {window.reason}"
    )


# --- commands ----------------------------------------------------------------------
def _run(args: argparse.Namespace, work: Callable[[FlagService, Actor], Awaitable[int]]) -> int:
    settings_for: SettingsFor = getattr(args, "settings_for", _default_settings)
    registry_for: RegistryFor = args.registry_for

    async def go() -> int:
        settings = settings_for(args)
        async with open_service(settings, registry_for(settings)) as service:
            return await work(service, cli_actor())

    try:
        return asyncio.run(go())
    except (BadInput, OpsError, FlagValueError) as exc:
        message = exc.message if isinstance(exc, OpsError) else str(exc)
        if isinstance(exc, OpsError):
            # The operator needs the why (the API sends it as details), not only "not valid".
            message += "".join(
                f"; {d['field']}: {d['message']}"
                for d in exc.details
                if d.get("message") and d["field"] != "reason" and d["message"] not in message
            )
            if any(d["field"] == "reason" for d in exc.details):
                message += " (--reason)"
        print(f"ivr {args.command}: {message}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"ivr {args.command}: {exc}", file=sys.stderr)
        return 1


def _value(service: FlagService, name: str, text: str) -> object:
    if name not in service.registry:
        raise BadInput(f"unknown flag {name!r} (see: ivr flags list)")
    return service.registry.get(name).parse_text(text)


def cmd_flags(args: argparse.Namespace) -> int:
    async def work(service: FlagService, actor: Actor) -> int:
        match args.flags_command:
            case "list":
                views = await service.flags()
                if args.json:
                    print(json.dumps([v.as_json() for v in views], indent=2, ensure_ascii=False))
                else:
                    print("\n".join(_flag_line(v) for v in views))
            case "set":
                value = _value(service, args.name, args.value)
                view = await service.set_flag(actor, args.name, value, args.reason)
                print(_flag_line(view))
            case "reset":
                print(_flag_line(await service.reset_flag(actor, args.name, args.reason)))
            case "schedule":
                await _schedule(service, actor, args)
            case "windows":
                now = service.clock()
                for window in await service.windows(include_past=args.all):
                    print(_window_line(window, now))
            case "cancel":
                window = await service.cancel_window(actor, args.window_id, args.reason)
                print(_window_line(window, service.clock()))
            case "history":
                await _history(service, args)
        return 0

    return _run(args, work)


async def _schedule(service: FlagService, actor: Actor, args: argparse.Namespace) -> None:
    value = _value(service, args.name, args.value)
    now = service.clock()
    starts_at = parse_instant(args.start, "--start") if args.start else now
    if args.until:
        ends_at = parse_instant(args.until, "--until")
    else:
        # --for counts from --start: a window that started in the past and is over
        # is refused by the service, not silently moved to start now.
        ends_at = starts_at + parse_duration(args.duration)
    window = await service.schedule(actor, args.name, value, starts_at, ends_at, args.reason)
    print(_window_line(window, service.clock()))


async def _history(service: FlagService, args: argparse.Namespace) -> None:
    if args.limit < 1:
        raise BadInput("--limit must be at least 1")
    entries = await service.history(
        name=args.name,
        since=parse_instant(args.since, "--since") if args.since else None,
        until=parse_instant(args.until, "--until") if args.until else None,
        limit=args.limit,
    )
    if args.csv:
        sys.stdout.write(audit_csv(entries))
        return
    for e in entries:
        target = f" {e.name}: {_show(e.old_value)} → {_show(e.new_value)}" if e.name else ""
        print(f"{e.at.isoformat(timespec='seconds')}  {e.actor} ({e.role})  {e.action}{target}  — {e.reason}")  # fmt: skip


def cmd_incident(args: argparse.Namespace) -> int:
    async def work(service: FlagService, actor: Actor) -> int:
        view = await service.set_incident(actor, args.state == "on", args.reason)
        print(f"incident mode {_show(view.value)}")
        return 0

    return _run(args, work)


def cmd_token(args: argparse.Namespace) -> int:
    async def work(service: FlagService, actor: Actor) -> int:
        match args.token_command:
            case "create":
                try:
                    role = Role.parse(args.role)
                except ValueError as exc:
                    raise BadInput(str(exc)) from None
                reason = args.reason or f"token {args.name} created from the command line"
                print(await service.create_token(actor, args.name, role, reason))
            case "list":
                for t in await service.store.tokens():
                    state = f"revoked {t.revoked_at.isoformat(timespec='seconds')}" if t.revoked_at else "active"  # fmt: skip
                    print(f"{t.name:<24} {t.role:<9} {state:<32} created {t.created_at.isoformat(timespec='seconds')} by {t.created_by}")  # fmt: skip
            case "revoke":
                await service.revoke_token(actor, args.name, args.reason)
                print(f"token {args.name} revoked")
        return 0

    return _run(args, work)


def cmd_serve(args: argparse.Namespace) -> int:
    settings_for: SettingsFor = getattr(args, "settings_for", _default_settings)
    settings = settings_for(args)
    registry_for: RegistryFor = args.registry_for
    extensions_for: ExtensionsFor | None = getattr(args, "extensions_for", None)
    try:
        asyncio.run(serve_ops(settings, registry_for(settings), extensions_for))
    except StoreUnavailable as exc:
        print(f"ivr ops serve: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve_ops(
    settings: Settings, registry: FlagRegistry, extensions_for: ExtensionsFor | None = None
) -> None:
    """Only the ops HTTP server (API + console) for ``registry``'s flags until SIGTERM or
    SIGINT, with the parts' routes and pages of ``extensions_for`` (the cases' back office)."""

    from ivr.chat.store import ConversationStore
    from ivr.ops.api import build_ops_app, start_ops_site
    from ivr.ops.metrics import Metrics
    from ivr.store.records import CallRecordStore

    async with open_service(settings, registry) as service:

        async def readiness() -> dict[str, bool]:
            try:
                await service.store.revision()
            except StoreUnavailable:
                return {"database": False}
            return {"database": True}

        # The chats (read, taken, released: never answered here, so no flow starts).
        chats = ConversationStore(service.store.db, flow="")
        # The call records (read only: the counts of the console's calls panel).
        calls = CallRecordStore(service.store.db)
        extensions = extensions_for(settings, service.store.db, chats) if extensions_for else ()
        app = build_ops_app(service, Metrics(), readiness=readiness, chats=chats, calls=calls,
                            extensions=extensions)  # fmt: skip
        runner = await start_ops_site(app, settings.host, settings.ports.ops_http)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await runner.cleanup()


# --- parsers ------------------------------------------------------------------------------
def add_parsers(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    registry_for: RegistryFor,
    settings_for: SettingsFor = _default_settings,
    extensions_for: ExtensionsFor | None = None,
) -> None:
    """Add ``flags``, ``incident`` and ``ops`` to the ``ivr`` command; ``registry_for``
    gives the line's flags for a deployment's settings, ``extensions_for`` the parts'
    API extensions ``ivr ops serve`` serves (both the composition root's)."""

    def common(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
        p.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
        p.set_defaults(func=func, settings_for=settings_for, registry_for=registry_for,
                       extensions_for=extensions_for)  # fmt: skip

    def reason(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--reason", default="", help="why (kept in the audit trail)"
                       + ("; required" if required else ""))  # fmt: skip

    flags = subparsers.add_parser("flags", help="operations flags (acts as admin on the database)")
    fsub = flags.add_subparsers(dest="flags_command", required=True)
    p = fsub.add_parser("list", help="every flag with its effective value")
    p.add_argument("--json", action="store_true")
    common(p, cmd_flags)
    p = fsub.add_parser("set", help="set a flag: on/off, a number, a word, a date, a,b or none")
    p.add_argument("name")
    p.add_argument("value")
    reason(p)
    common(p, cmd_flags)
    p = fsub.add_parser("reset", help="reset a flag to its default")
    p.add_argument("name")
    reason(p)
    common(p, cmd_flags)
    p = fsub.add_parser("schedule", help="a value for a window; reverts by itself at its end")
    p.add_argument("name")
    p.add_argument("value")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="duration", metavar="DURATION", help="90s, 30m, 2h, 1h30m")
    when.add_argument("--until", metavar="ISO", help="end, ISO 8601 with offset")
    p.add_argument("--start", metavar="ISO", help="start (default: now)")
    reason(p)
    common(p, cmd_flags)
    p = fsub.add_parser("windows", help="contingency windows not over yet")
    p.add_argument("--all", action="store_true", help="also the ended and cancelled ones")
    common(p, cmd_flags)
    p = fsub.add_parser("cancel", help="cancel a window (the flag reverts now)")
    p.add_argument("window_id")
    reason(p)
    common(p, cmd_flags)
    p = fsub.add_parser("history", help="the audit trail, newest first")
    p.add_argument("name", nargs="?")
    p.add_argument("--since", metavar="ISO")
    p.add_argument("--until", metavar="ISO")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--csv", action="store_true", help="CSV on stdout")
    common(p, cmd_flags)

    inc = subparsers.add_parser("incident", help="the incident switch: every caller to the agents")
    inc.add_argument("state", choices=("on", "off"))
    reason(inc)
    common(inc, cmd_incident)

    ops = subparsers.add_parser("ops", help="ops API tokens and server")
    osub = ops.add_subparsers(dest="ops_command", required=True)
    token = osub.add_parser("token", help="API tokens")
    tsub = token.add_subparsers(dest="token_command", required=True)
    p = tsub.add_parser("create", help="create a token; prints it (only) on stdout")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.label for r in Role])
    reason(p, required=False)
    common(p, cmd_token)
    p = tsub.add_parser("list", help="tokens (never their secret)")
    common(p, cmd_token)
    p = tsub.add_parser("revoke", help="revoke a token")
    p.add_argument("name")
    reason(p)
    common(p, cmd_token)
    p = osub.add_parser("serve", help="run only the ops HTTP server (API + console)")
    common(p, cmd_serve)
