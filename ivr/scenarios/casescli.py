"""``ivr cases clock …`` and ``ivr cases phone …``: the tester's tools for escalation.

- ``ivr cases clock show | advance 2d | reset``: the SLA monitor's test clock
  (``ivr.escalation.testclock``), in a sandbox instance only;
- ``ivr cases phone 6001 [--no-answer]``: be support extension 6001 with sipp
  for one escalation call (answer and press 1, or refuse with 480); exit 0
  when the call came and went as scripted.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from ivr.escalation.testclock import CLOCK_FILE, TestClock, parse_offset
from ivr.sandbox.instance import InstancePaths
from ivr.sandbox.render import SUPPORT_EXTENSIONS
from ivr.settings import Settings

SettingsOf = Callable[[argparse.Namespace], Settings]


def add_parsers(
    cases_sub: argparse._SubParsersAction[argparse.ArgumentParser], settings_of: SettingsOf
) -> None:
    """Add ``clock`` and ``phone`` to ``ivr cases`` (``ivr.cases.cli.add_parser``'s subcommands)."""
    clock = cases_sub.add_parser("clock", help="the SLA monitor's test clock (sandbox only)")
    clock.add_argument("action", choices=("show", "advance", "reset"))
    clock.add_argument("by", nargs="?", help="with advance: 90s, 15m, 8h, 2d (wall clock)")
    clock.set_defaults(func=lambda a: cmd_clock(a, settings_of(a)))
    phone = cases_sub.add_parser("phone", help="answer one escalation call as a support extension")
    phone.add_argument("extension", choices=SUPPORT_EXTENSIONS)
    phone.add_argument("--no-answer", action="store_true", help="refuse the call (480)")
    phone.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
    phone.set_defaults(func=lambda a: cmd_phone(a, settings_of(a)))


def cmd_clock(args: argparse.Namespace, settings: Settings) -> int:
    paths = InstancePaths(settings)
    if not paths.state_file.is_file():
        print(f"ivr: no sandbox instance {settings.instance!r} here: the test clock exists "
              "only in a sandbox (ivr sandbox up)")  # fmt: skip
        return 2
    clock = TestClock(paths.dir / CLOCK_FILE)
    if args.action == "advance":
        if not args.by:
            print("ivr: advance by how much? e.g. `ivr cases clock advance 2d`")
            return 2
        try:
            offset = clock.advance(parse_offset(args.by))
        except ValueError as exc:
            print(f"ivr: {exc}")
            return 2
        print(f"test clock: +{offset} ({clock.now().isoformat(timespec='seconds')})")
    elif args.action == "reset":
        clock.reset()
        print("test clock: real time")
    else:
        print(f"test clock: +{clock.offset()} ({clock.now().isoformat(timespec='seconds')})")
    return 0


def cmd_phone(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.scenarios.support import SupportPhone

    workdir = Path(tempfile.mkdtemp(prefix=f"citas-support-{args.extension}-"))
    phone: SupportPhone | None = None
    try:  # from sipp's start: a Ctrl-C or SIGTERM (ivr.cli) at any point never leaves it on the port
        phone = SupportPhone(
            settings, args.extension, workdir, answer=not args.no_answer, timeout_s=args.timeout
        )
        print(f"support extension {args.extension}: waiting for an escalation call "
              f"({'refusing it' if args.no_answer else 'answering and pressing 1'})", flush=True)  # fmt: skip
        report = phone.wait()
    except KeyboardInterrupt:
        if phone is not None:
            phone.stop()
        print(f"support extension {args.extension}: stopped", flush=True)
        return 130
    verdict = "ok" if report.ok else "FAILED"
    print(f"{verdict}: sipp exit {report.rc}, {report.invites} call(s) received; SIP log: {phone.messages}")
    return 0 if report.ok else 1
