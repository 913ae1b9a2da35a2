"""``ivr bench``: its arguments, and the run.

``make bench`` runs ``ivr bench`` with these defaults; ``ivr bench --quick``
is the short version (fewer, smaller steps) for a check in a few minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_STEPS = "10,40,80,160,320,480,640"
QUICK_STEPS = "10,40"
DEFAULT_HOLD_S = 15.0
QUICK_HOLD_S = 0.0
DEFAULT_INSTANCE = "bench"
DEFAULT_PORT_OFFSET = "3000"
# A wider RTP range than a sandbox's default 1000 ports (500 calls): the steps go
# past 500 calls. 16000-19999 overlaps neither the demo's nor the e2e tests' range,
# nor the callers' own ports (--media-port, 20000 up).
DEFAULT_RTP = ("16000", "19999")
DEFAULT_MAX_CALLS = 640


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ivr.bench.lines import ALL_LINES

    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="capacity and reaction-time benchmark: sipp callers, N at once, against the sandbox",
        description=(
            "Place N simultaneous sipp calls on each line (plain-dialplan smoke menu, the same "
            "menu over ARI, the citas flow), stepping N up until more than --threshold of a "
            "step's calls fail. Prints capacity, reaction time p50/p99, CPU per call and peak "
            "RSS, and the ARI/plain-dialplan ratio; writes results.json, results.csv and "
            "bench.png. Uses its own sandbox instance (CITAS_INSTANCE, default 'bench'; "
            "CITAS_PORT_OFFSET, default 3000) and stops it at the end."
        ),
    )
    p.add_argument(
        "--steps", help=f"concurrency steps (default {DEFAULT_STEPS}; --quick {QUICK_STEPS})"
    )
    p.add_argument(
        "--max-calls",
        type=int,
        default=DEFAULT_MAX_CALLS,
        help=f"never step above this N (default {DEFAULT_MAX_CALLS})",
    )
    p.add_argument(
        "--hold",
        type=float,
        help=f"seconds each step keeps N calls up; at least one round of calls "
        f"(default {DEFAULT_HOLD_S:g}; --quick {QUICK_HOLD_S:g})",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.05,
        help="a step fails when more than this share of its calls fail (default 0.05)",
    )
    p.add_argument(
        "--max-p99-ms",
        type=float,
        default=1000.0,
        help="a step also fails when the response p99 (key → next prompt) is above this many "
        "ms; 0: off (default 1000)",
    )
    p.add_argument(
        "--lines",
        default=",".join(ALL_LINES),
        help=f"which lines, in order (default {','.join(ALL_LINES)})",
    )
    p.add_argument(
        "--out", metavar="DIR", help="results directory (default ./bench-results/<time>)"
    )
    p.add_argument("--quick", action="store_true", help="a short run (about 4 minutes)")
    p.add_argument(
        "--media-port",
        type=int,
        default=20000,
        help="sipp -mp: first caller RTP port (default 20000)",
    )
    p.add_argument(
        "--chat-interval",
        type=float,
        default=2.0,
        help="chat line: seconds between one contact's messages; a step of N contacts "
        "offers N / this messages per second (default 2)",
    )
    p.add_argument(
        "--chat-reply-timeout",
        type=float,
        default=10.0,
        help="chat line: a message not answered within this many seconds fails (default 10)",
    )
    p.add_argument(
        "--keep-sandbox", action="store_true", help="leave the sandbox running at the end"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ivr.bench.lines import ALL_LINES
    from ivr.bench.runner import Bench, BenchConfig, BenchError
    from ivr.bench.stats import parse_steps
    from ivr.settings import Settings

    # Our own sandbox unless told otherwise: never the demo's (0) or the e2e tests' (2000).
    os.environ.setdefault("CITAS_INSTANCE", DEFAULT_INSTANCE)
    os.environ.setdefault("CITAS_PORT_OFFSET", DEFAULT_PORT_OFFSET)
    if os.environ["CITAS_PORT_OFFSET"] == DEFAULT_PORT_OFFSET:
        os.environ.setdefault("CITAS_RTP_START", DEFAULT_RTP[0])
        os.environ.setdefault("CITAS_RTP_END", DEFAULT_RTP[1])
    try:
        steps = parse_steps(args.steps or (QUICK_STEPS if args.quick else DEFAULT_STEPS))
    except ValueError as exc:
        print(f"ivr bench: {exc}", file=sys.stderr)
        return 2
    lines = [name.strip() for name in args.lines.split(",") if name.strip()]
    unknown = [name for name in lines if name not in ALL_LINES]
    if unknown or not lines:
        print(
            f"ivr bench: unknown lines {unknown}; choose from {', '.join(ALL_LINES)}",
            file=sys.stderr,
        )
        return 2
    if args.chat_interval <= 0 or args.chat_reply_timeout <= 0:
        print(
            "ivr bench: --chat-interval and --chat-reply-timeout must be positive", file=sys.stderr
        )
        return 2
    if not 0 <= args.threshold < 1:
        print("ivr bench: --threshold must be in [0, 1)", file=sys.stderr)
        return 2
    hold = args.hold if args.hold is not None else (QUICK_HOLD_S if args.quick else DEFAULT_HOLD_S)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path.cwd() / "bench-results" / stamp
    settings = Settings.from_env()
    if getattr(args, "instance", None):
        settings = replace(settings, instance=args.instance)
    config = BenchConfig(
        steps=steps,
        max_calls=args.max_calls,
        hold=hold,
        threshold=args.threshold,
        max_response_p99_ms=max(0.0, args.max_p99_ms),
        lines=lines,
        out_dir=out.resolve(),
        media_port=args.media_port,
        keep_sandbox=args.keep_sandbox,
        quick=args.quick,
        chat_interval=args.chat_interval,
        chat_reply_timeout=args.chat_reply_timeout,
    )
    try:
        results = Bench(config, settings).run()
    except BenchError as exc:
        print(f"ivr bench: {exc}", file=sys.stderr)
        return 1
    broken = [name for name, line in results["lines"].items() if line["error"]]
    return 1 if broken else 0
