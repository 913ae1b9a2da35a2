"""``ivr desk seed``: demo data for the desk reports, from the command line, in Spanish.

``ivr desk seed --contacts N [--days D] [--seed S]`` writes N contacts (hops
included) over the last D days of desk.yaml's ``timezone`` (Bogotá), today
excluded (default 14), with their
steps, dispositions and the agents' presence (``ivr.desk.seed``), into the
deployment's database (migrated first). Seeding again replaces the previous seed
(and only it). The same ``--seed`` gives the same data. Exit status 0, or 2 for
a count or a number of days out of range.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.desk.config import FILE_NAME, load_desk_config
from ivr.desk.seed import DeskSeed, generate, write
from ivr.settings import Settings
from ivr.store.db import Database

SettingsFor = Callable[[argparse.Namespace], Settings]
MAX_CONTACTS = 100_000


def add_seed_parser(
    desk: argparse._SubParsersAction[argparse.ArgumentParser], settings_for: SettingsFor
) -> None:
    """Add ``seed`` to the ``ivr desk`` subcommands (``ivr.desk.cli.add_parser``'s)."""
    p = desk.add_parser("seed", help="datos de demostración para los reportes del escritorio")
    p.add_argument("--contacts", type=int, required=True, help="contactos a crear (con sus saltos)")
    p.add_argument("--days", type=int, default=14, help="días hacia atrás, sin contar hoy (14)")
    p.add_argument("--seed", type=int, default=12, help="semilla: la misma da los mismos datos")
    p.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
    p.set_defaults(func=cmd_seed, settings_for=settings_for)


def cmd_seed(args: argparse.Namespace) -> int:
    if not 0 <= args.contacts <= MAX_CONTACTS or not 1 <= args.days <= 366:
        print(f"--contacts va de 0 a {MAX_CONTACTS} y --days de 1 a 366.", file=sys.stderr)
        return 2
    settings: Settings = args.settings_for(args)
    tz = ZoneInfo(load_desk_config(settings.citas_dir / FILE_NAME).timezone)  # desk.yaml's days
    today = datetime.now(UTC).astimezone(tz).date()
    first = today - timedelta(days=args.days)
    plan = generate(args.contacts, first_day=first, days=args.days, tz=tz, seed=args.seed)
    written = asyncio.run(_write(settings, plan))
    journeys = len({c.journey_key for c in plan.contacts})
    print(f"{written} contactos ({journeys} llamadas y chats) y {len(plan.presence)} eventos de "
          f"presencia de los asesores, del {first} al {today - timedelta(days=1)}.")  # fmt: skip
    return 0


async def _write(settings: Settings, plan: DeskSeed) -> int:
    db = Database(settings.database_url, timeout=30.0)
    try:
        await db.migrate()
        return await write(db, plan)
    finally:
        await db.close()
