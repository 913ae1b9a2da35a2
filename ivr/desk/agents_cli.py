"""``ivr desk agents | login | logout | pause | unpause``: agents' presence from the command line.

The same ``QueueControl`` as the ops API (``ivr.desk.agents_http``), over a
one-shot AMI session to the instance's Asterisk, writing ``desk_presence`` to
the deployment's database with the actor ``cli:<login name>`` (the shell's
user: whoever can run ``ivr`` on the server may act for any agent, like an
admin). Spanish output, exit status 0; 2 for an unknown agent or reason, or an
agent not logged in; 1 when Asterisk does not answer.

    ivr desk agents                     who is in the queues now
    ivr desk login 7001                 into every queue of 7001's profile
    ivr desk pause 7001 almuerzo        paused in all its queues (desk.yaml pause_reasons)
    ivr desk unpause 7001
    ivr desk logout 7001
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable

from ivr.settings import Settings

SettingsFor = Callable[[argparse.Namespace], Settings]


def add_parsers(
    desk_sub: argparse._SubParsersAction[argparse.ArgumentParser], settings_for: SettingsFor
) -> None:
    """Add ``agents``, ``login``, ``logout``, ``pause``, ``unpause`` to ``ivr desk``."""
    p = desk_sub.add_parser("agents", help="los asesores en las colas ahora (sesión, pausa, teléfono)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda a: run(a, settings_for(a)))
    for name, text in (("login", "iniciar sesión del asesor en las colas de su perfil"),
                       ("logout", "cerrar la sesión del asesor en todas las colas"),
                       ("unpause", "terminar la pausa del asesor")):  # fmt: skip
        p = desk_sub.add_parser(name, help=text)
        p.add_argument("extension", help="extensión del asesor, p. ej. 7001")
        p.set_defaults(func=lambda a: run(a, settings_for(a)))
    p = desk_sub.add_parser("pause", help="pausar al asesor con un motivo")
    p.add_argument("extension", help="extensión del asesor, p. ej. 7001")
    p.add_argument("reason", help="motivo (desk.yaml pause_reasons: almuerzo, capacitacion...)")
    p.set_defaults(func=lambda a: run(a, settings_for(a)))


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.ami import AmiConnection
    from ivr.desk.ami import AgentStatus, DeskAmiError, DeskAmiUnavailable, QueueControl
    from ivr.desk.config import FILE_NAME, load_desk_config
    from ivr.desk.errors import UnknownAgent
    from ivr.desk.store import DeskStore
    from ivr.store.db import Database

    config = load_desk_config(settings.citas_dir / FILE_NAME)
    ami = AmiConnection(settings.host, settings.ports.ami, settings.ami_user,
                        settings.ami_password, timeout=settings.request_timeout)  # fmt: skip
    db = Database(settings.database_url, timeout=settings.request_timeout)
    actor = f"cli:{getpass.getuser()}"
    try:
        await db.migrate()
        try:
            await ami.connect()
        except Exception as exc:
            print(f"ivr: la central telefónica no responde ({exc}).", file=sys.stderr)
            return 1
        control = QueueControl(ami, config, DeskStore(db), config.pause_reasons)
        command = args.desk_command
        try:
            if command == "agents":
                found = await control.status()
                if args.json:
                    print(json.dumps([s.as_json() for s in found], ensure_ascii=False, indent=2))
                else:
                    print("\n".join(_line(s) for s in found))
                return 0
            status: AgentStatus
            if command == "login":
                status = await control.login(args.extension, actor=actor)
            elif command == "logout":
                status = await control.logout(args.extension, actor=actor)
            elif command == "pause":
                status = await control.pause(args.extension, args.reason, actor=actor)
            else:
                status = await control.unpause(args.extension, actor=actor)
        except DeskAmiUnavailable as exc:
            print(f"ivr: {exc} ({exc.detail})", file=sys.stderr)
            return 1
        except (DeskAmiError, UnknownAgent) as exc:
            print(f"ivr: {exc}", file=sys.stderr)
            return 2
        print(_line(status))
        return 0
    finally:
        await ami.close()
        await db.close()


def _line(status: object) -> str:
    from ivr.desk.ami import DEVICE_LABELS, AgentStatus

    assert isinstance(status, AgentStatus)
    if not status.logged_in:
        state = "sin sesión"
    elif status.paused:
        state = f"en pausa ({status.pause_reason})"
    else:
        state = "disponible" if not status.in_call else "en llamada"
    queues = ", ".join(status.queues) or "—"
    device = DEVICE_LABELS.get(status.device, status.device)
    return f"{status.extension}  {status.name:<16} {state:<28} teléfono: {device:<14} colas: {queues}"
