"""``ivr desk``: the agent desktop from the command line, in Spanish.

``ivr desk contacts [--agent 7001] [--state wrapup] [--limit N] [--json]``: the
desk's contacts, newest first, read from the deployment's database (migrated first,
like ``ivr cases``). Caller numbers are masked (``Contact.as_json``: ``ivr.masking``);
instants in desk.yaml's ``timezone`` (America/Bogota). ``--json`` prints the API's
shapes. Other parts add their subcommands to the group :func:`add_parser` returns
(``agent``, ``login``, ``report``...). Exit status 0, or 2 for an unknown agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.desk.config import FILE_NAME, DeskConfig, load_desk_config
from ivr.desk.errors import UnknownAgent
from ivr.desk.model import CHAT, STATE_LABELS, STATES, Contact
from ivr.desk.store import DeskStore, ScriptStore
from ivr.settings import Settings
from ivr.store.db import Database

SettingsFor = Callable[[argparse.Namespace], Settings]
KIND_NAMES = {"voice": "llamada", "chat": "WhatsApp"}


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], settings_for: SettingsFor
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``desk contacts`` to the ``ivr`` command; returns the ``desk`` subcommands,
    where other parts add theirs."""
    desk = subparsers.add_parser("desk", help="escritorio de asesores (colas, contactos, guiones)")
    sub = desk.add_subparsers(dest="desk_command", required=True)
    p = sub.add_parser(
        "contacts", help="los contactos atendidos por los asesores, recientes primero"
    )
    p.add_argument("--agent", help="solo los de este asesor (extensión, p. ej. 7001)")
    p.add_argument("--state", choices=STATES, help="solo este estado")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
    p.set_defaults(func=cmd_contacts, settings_for=settings_for)
    return sub


def cmd_contacts(args: argparse.Namespace) -> int:
    settings: Settings = args.settings_for(args)
    config = load_desk_config(settings.citas_dir / FILE_NAME)
    if args.agent is not None:
        try:
            config.agent(args.agent)
        except UnknownAgent as exc:
            known = ", ".join(sorted(config.agents))
            print(f"{exc} (asesores: {known}).", file=sys.stderr)
            return 2
    return asyncio.run(_contacts(args, settings, config))


async def _contacts(args: argparse.Namespace, settings: Settings, config: DeskConfig) -> int:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        found = await DeskStore(db).contacts(agent=args.agent, state=args.state, limit=args.limit)
        labels = await disposition_labels(ScriptStore(db, validate=_read_only), found)
    finally:
        await db.close()
    if args.json:
        print(json.dumps({"contacts": [c.as_json() for c in found]}, ensure_ascii=False, indent=2))
    else:
        print(render_contacts(found, config, labels))
    return 0


def _read_only(tree: Mapping[str, object]) -> None:
    raise AssertionError("ivr desk contacts writes no script")  # pragma: no cover


async def disposition_labels(scripts: ScriptStore, contacts: list[Contact]) -> dict[int, dict[str, str]]:
    """Script version -> {disposition id: its label}, for the versions the contacts
    followed (the operator reads "Cita agendada por el asesor", not ``agendado``)."""
    out: dict[int, dict[str, str]] = {}
    for version in {c.script_version for c in contacts if c.script_version is not None}:
        found = await scripts.get(version)
        raw = found.tree.get("dispositions") if found is not None else None
        out[version] = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return out


def _when(instant: datetime | None, tz: ZoneInfo) -> str:
    return "—" if instant is None else instant.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def render_contacts(
    contacts: list[Contact], config: DeskConfig,
    dispositions: Mapping[int, Mapping[str, str]] | None = None,
) -> str:
    """The contacts as a fixed-width table (Spanish headings); numbers masked;
    a disposition by its label in the contact's script version (``dispositions``:
    version -> id -> label, from :func:`disposition_labels`), else its id."""
    if not contacts:
        return "No hay contactos que cumplan el filtro."
    tz = ZoneInfo(config.timezone)
    rows = [("Atendido", "Asesor", "Cola", "Nivel", "Canal", "Llamante", "Estado",
             "Tipificación", "Motivo IVR")]  # fmt: skip
    for c in contacts:
        shown = c.as_json()
        queue = config.queues[c.queue].name if c.queue in config.queues else c.queue
        caller = shown["wa_id"] if c.kind == CHAT else shown["channel"]
        rows.append((_when(c.answered_at, tz), f"{c.agent} {c.agent_name}", queue, str(c.level),
                     KIND_NAMES.get(c.kind, c.kind), caller or "—", STATE_LABELS[c.state],
                     _disposition(c, dispositions or {}), c.ivr_reason or "—"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"{len(contacts)} contacto(s).")
    return "\n".join(lines)


def _disposition(contact: Contact, labels: Mapping[int, Mapping[str, str]]) -> str:
    if not contact.disposition:
        return "—"
    version = contact.script_version
    return (labels.get(version, {}) if version is not None else {}).get(contact.disposition, contact.disposition)
