"""``ivr cases list`` and ``ivr cases show NUMBER``: the case queue for operators, in Spanish.

Read-only views on the deployment's database (migrated first, like ``ivr
flags``) and its ``cases.yaml`` (``<config>/citas/cases.yaml``). Documents and
phones are masked (``ivr.masking``); instants are shown in the cases' time zone
(America/Bogota). ``--json`` prints the API's shapes (``Case.as_json``) instead.
Exit status: 0, or 1 when ``show`` finds no such case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.cases.config import CasesConfig, load_cases_config
from ivr.cases.model import STATES, Case, CaseEvent
from ivr.cases.number import invalid_reason, normalise
from ivr.cases.sla import case_clocks
from ivr.cases.store import CaseStore, utcnow
from ivr.masking import mask_number
from ivr.settings import Settings
from ivr.store.db import Database

SettingsFor = Callable[[argparse.Namespace], Settings]

STATE_NAMES = {
    "open": "abierto",
    "assigned": "asignado",
    "answered": "respondido",
    "closed": "cerrado",
}
PRIORITY_NAMES = {"normal": "normal", "high": "alta"}
CLOCK_NAMES = {"first_response": "Primera respuesta", "resolution": "Resolución"}
CHANNEL_NAMES = {"voice": "teléfono", "chat": "WhatsApp"}


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], settings_for: SettingsFor
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``cases list`` and ``cases show`` to the ``ivr`` command; returns the
    ``cases`` subcommands, where other parts add theirs (``clock``, ``phone``)."""
    cases = subparsers.add_parser("cases", help="casos radicados (solo lectura)")
    sub = cases.add_subparsers(dest="cases_command", required=True)
    p = sub.add_parser("list", help="la cola de casos, el más próximo a vencer primero")
    p.add_argument("--state", choices=STATES, action="append", help="solo este estado (repetible)")
    p.add_argument("--site", help="solo esta sede (site id)")
    p.add_argument("--service", help="solo este servicio (service id)")
    p.add_argument("--group", help="solo este grupo de soporte")
    p.add_argument("--assignee", help="solo los asignados a esta persona")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
    p.set_defaults(func=cmd_cases, settings_for=settings_for)
    p = sub.add_parser("show", help="un caso con su historia y sus relojes de SLA")
    p.add_argument("number", help="el número de radicado (7 dígitos)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
    p.set_defaults(func=cmd_cases, settings_for=settings_for)
    return sub


def cmd_cases(args: argparse.Namespace) -> int:
    settings: Settings = args.settings_for(args)
    config = load_cases_config(settings.citas_dir / "cases.yaml")
    return asyncio.run(_run(args, settings, config))


async def _run(args: argparse.Namespace, settings: Settings, config: CasesConfig) -> int:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        store = CaseStore(db, config.calendar_for, config)
        if args.cases_command == "list":
            found = await store.list(state=args.state, site_id=args.site, service_id=args.service,
                                     group=args.group, assignee=args.assignee, limit=args.limit)  # fmt: skip
            if args.json:
                print(
                    json.dumps(
                        {"cases": [c.as_json() for c in found]}, ensure_ascii=False, indent=2
                    )
                )
            else:
                print(render_list(found, ZoneInfo(config.timezone)))
            return 0
        number = normalise(args.number)
        reason = invalid_reason(number)
        case = await store.get(number) if reason is None else None
        if case is None:
            why = "" if reason is None else f" ({reason})"
            print(f"No existe el caso {args.number}{why}.", file=sys.stderr)
            return 1
        events = await store.events(number)
        if args.json:
            print(json.dumps({"case": case.as_json(), "events": [e.as_json() for e in events]},
                             ensure_ascii=False, indent=2))  # fmt: skip
        else:
            print(render_case(case, events, config, utcnow()))
        return 0
    finally:
        await db.close()


def _when(instant: datetime | None, tz: ZoneInfo) -> str:
    return "—" if instant is None else instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def render_list(cases: list[Case], tz: ZoneInfo) -> str:
    """The queue as a fixed-width table (Spanish headings)."""
    if not cases:
        return "No hay casos que cumplan el filtro."
    rows = [
        ("Número", "Estado", "Prioridad", "Especialidad", "Sede", "Radicado", "Vence", "Asignado")
    ]
    for c in cases:
        rows.append((c.number, STATE_NAMES[c.state], PRIORITY_NAMES.get(c.priority, c.priority),
                     c.specialty, c.site_id, _when(c.filed_at, tz), _when(c.due_at, tz),
                     c.assignee or "—"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"{len(cases)} caso(s).")
    return "\n".join(lines)


def render_case(case: Case, events: list[CaseEvent], config: CasesConfig, now: datetime) -> str:
    """One case: its data (masked), its SLA clocks at ``now`` and its history."""
    tz = ZoneInfo(config.timezone)
    group = config.groups.get(case.group)
    lines = [
        f"Caso {case.number} — {STATE_NAMES[case.state]}, prioridad {PRIORITY_NAMES.get(case.priority, case.priority)}"
        + (f" ({case.priority_reason})" if case.priority_reason else ""),
        f"  Afiliado (documento): {mask_number(case.affiliate_id)}",
        f"  Servicio: {case.service_id} (CUPS {case.cups}), especialidad {case.specialty}, sede {case.site_id}",
        f"  Canal: {CHANNEL_NAMES.get(case.channel, case.channel)}"
        + (f", WhatsApp {mask_number(case.wa_id)}" if case.wa_id else ""),
        f"  Contacto: {case.contact_email or 'sin correo'}, teléfono {mask_number(case.contact_phone)}, "
        f"consentimiento {'sí' if case.consent else 'no'}",
        f"  Grupo: {group.name if group else case.group}; asignado a: {case.assignee or 'nadie'}",
        f"  Radicado: {_when(case.filed_at, tz)}; respuesta prometida a más tardar: {_when(case.due_at, tz)}",
        f"  Solicitud: {case.summary}",
    ]  # fmt: skip
    if case.resolution:
        lines.append(
            f"  Resolución: {case.resolution} ({case.closed_by}, {_when(case.closed_at, tz)})"
        )
    lines.append("Relojes de SLA (tiempo hábil):")
    calendar = config.calendar_for(case.group) if case.group in config.groups else None
    if calendar is not None:
        for name, state in case_clocks(case, calendar, now).items():
            status = ("cumplido" if state.met else "incumplido" if state.breached
                      else "en curso" if state.running else "detenido")  # fmt: skip
            lines.append(f"  {CLOCK_NAMES[name]}: vence {_when(state.due_at, tz)}, "
                         f"{state.percent:.0f} % consumido, {status}")  # fmt: skip
    lines.append("Historia:")
    for e in events:
        detail = f": {e.detail}" if e.detail else ""
        lines.append(f"  {_when(e.at, tz)}  {e.action} por {e.actor} ({e.role}){detail}")
    return "\n".join(lines)
