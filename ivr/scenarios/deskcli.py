"""``ivr desk agent 7001 …``: be a sandbox desk agent's phone with sipp (docs/desk/queues.md).

The phone REGISTERs as PJSIP/7001 and answers the calls app_queue sends it,
printing each call's X-Citas-* headers; it unregisters when it ends (after
``--calls`` calls, or Ctrl-C). Logging the agent into the queues is a separate
act (``ivr desk login 7001``, the desktop, the API): a registered phone that is
not logged in receives no queue call.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ivr.settings import Settings

SettingsOf = Callable[[argparse.Namespace], Settings]


def add_parsers(
    desk_sub: argparse._SubParsersAction[argparse.ArgumentParser], settings_of: SettingsOf
) -> None:
    """Add ``agent`` to ``ivr desk``."""
    agent = desk_sub.add_parser(
        "agent", help="be a desk agent's phone with sipp: register, answer queue calls"
    )
    agent.add_argument("extension", help="the agent's extension in desk.yaml, e.g. 7001")
    agent.add_argument(
        "--answer-after", type=float, default=0.0, metavar="S", help="seconds it rings first (0)"
    )
    agent.add_argument(
        "--talk", type=float, default=30.0, metavar="S", help="seconds before hanging up (30)"
    )
    agent.add_argument(
        "--calls", type=int, default=0, metavar="N", help="calls to answer, then end (0: until Ctrl-C)"
    )
    agent.set_defaults(func=lambda a: cmd_agent(a, settings_of(a)))


def cmd_agent(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.scenarios.deskagent import DeskAgentPhone, RegistrationFailed

    if args.calls < 0 or args.talk < 0 or args.answer_after < 0:
        print("ivr: --calls, --talk and --answer-after must not be negative")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix=f"citas-desk-{args.extension}-"))
    try:
        phone = DeskAgentPhone(
            settings, args.extension, workdir, answer_after_s=args.answer_after,
            talk_s=args.talk, calls=args.calls, timeout_s=None,
        )  # fmt: skip
    except RegistrationFailed as exc:
        print(f"ivr: {exc}")
        return 1
    print(
        f"desk agent {args.extension}: registered (sip:{args.extension}@{settings.host}:"
        f"{phone.port}), answering queue calls; Ctrl-C ends. SIP log: {phone.messages}"
    )
    shown = 0
    try:
        while phone.phone.proc.poll() is None:
            shown = _show_new_calls(phone.invite_headers(), shown)
            time.sleep(0.5)
    except KeyboardInterrupt:
        phone.stop()
        _show_new_calls(phone.invite_headers(), shown)
        print(f"desk agent {args.extension}: unregistered")
        return 0
    report = phone.wait()
    _show_new_calls(phone.invite_headers(), shown)
    verdict = "ok" if report.ok else "FAILED"
    print(f"{verdict}: sipp exit {report.rc}, {report.invites} call(s); unregistered")
    return 0 if report.ok else 1


# Headers carrying a person's number: masked on screen (ivr.masking).
_PERSONAL = frozenset({"X-Citas-Affiliate"})


def _show_new_calls(calls: list[dict[str, str]], shown: int) -> int:
    from ivr.masking import mask_number

    for number, headers in enumerate(calls[shown:], start=shown + 1):
        context = ", ".join(
            f"{k.removeprefix('X-Citas-')}={mask_number(v) if k in _PERSONAL else v}"
            for k, v in headers.items()
        )
        print(f"call {number}: {context or 'no X-Citas-* headers'}")
    return len(calls)
