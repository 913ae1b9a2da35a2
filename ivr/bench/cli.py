"""``ivr bench``: its arguments, and the run; ``ivr bench report DIR``: the markdown.

``make bench`` runs ``ivr bench`` with these defaults (every line, 1 and N
controllers, SQLite and PostgreSQL, one ladder for every call line, steady load:
about 35 min on 2 cores); ``ivr bench --quick`` is the short version (steps 10,40,
N controllers, SQLite) for a check in about 9 minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_HOLD_S = 15.0
QUICK_HOLD_S = 0.0
DEFAULT_INSTANCE = "bench"
DEFAULT_PORT_OFFSET = "3000"
DEFAULT_CONTROLLERS = "1,auto"
QUICK_CONTROLLERS = "auto"
DEFAULT_DBS = "sqlite,postgresql"
QUICK_DBS = "sqlite"
RTP_PORTS_PER_CALL = 2  # Asterisk: one RTP and one RTCP port per call (rtp.conf range)
SIPP_MEDIA_SPAN = 10_000  # sipp's [auto_media_port]: media_port + (4 × (call - 1)) % 10000


def rtp_range(start: int, max_calls: int) -> tuple[int, int]:
    """The sandbox's RTP range for a run up to ``max_calls`` at once: from the
    instance's own start, 2 ports a call and a quarter more (Asterisk picks ports at
    random and skips busy ones), at least the sandbox default of 1000, in 1000s.

    >>> rtp_range(16000, 2560)
    (16000, 22999)
    >>> rtp_range(37000, 40)
    (37000, 37999)
    """
    width = max(1000, RTP_PORTS_PER_CALL * max_calls * 5 // 4)
    width = -(-width // 1000) * 1000
    end = start + width - 1
    if end > 65535:
        raise ValueError(f"RTP range {start}-{end} for {max_calls} calls passes port 65535")
    return start, end


def media_port_after(rtp_end: int) -> int:
    """The callers' first media port: the next 1000 above the RTP range plus 1000,
    so caller and Asterisk ports never meet (sipp spans 10000 ports from it).

    >>> media_port_after(22999)
    24000
    """
    port = (rtp_end // 1000 + 2) * 1000
    if port + SIPP_MEDIA_SPAN > 65535:
        raise ValueError(f"no room for the callers' media ports above {rtp_end}")
    return port


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ivr.bench.lines import ALL_LINES
    from ivr.bench.variants import DEFAULT_LADDERS, LOADS, QUICK_LADDER

    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="capacity and reaction-time benchmark: sipp callers, N at once, against the sandbox",
        description=(
            "Place N simultaneous sipp calls on each line (plain-dialplan smoke menu, the same "
            "menu over ARI, the citas flow) in every variant (1 and N controller processes, "
            "SQLite and PostgreSQL), stepping N up each line's ladder until more than "
            "--threshold of a step's calls fail. Prints capacity, reaction time p50/p99, CPU "
            "per call (controller, Asterisk, PostgreSQL) and peak RSS, and each variant "
            "against plain dialplan; writes results.json, results.csv and bench.png "
            "(`ivr bench report DIR` renders them as markdown). Uses its own sandbox instance "
            "(CITAS_INSTANCE, default 'bench'; CITAS_PORT_OFFSET, default 3000), restarts the "
            "controller for each variant, and stops everything at the end."
        ),
    )
    p.add_argument(
        "what",
        nargs="*",
        metavar="report DIR",
        help="`ivr bench report DIR`: print the markdown tables of DIR/results.json "
        "(for docs/PERFORMANCE.md); without it, run the benchmark",
    )
    ladders = "; ".join(f"{k} {','.join(map(str, v))}" for k, v in DEFAULT_LADDERS.items())
    p.add_argument(
        "--steps",
        help=f"concurrency steps for every line (default: each line's ladder: {ladders}; "
        f"--quick {','.join(map(str, QUICK_LADDER))})",
    )
    p.add_argument(
        "--max-calls",
        type=int,
        help="never step above this N (default: the top of the ladders)",
    )
    p.add_argument(
        "--controllers",
        help="controller processes (CITAS_CONTROLLERS) for the ARI lines, comma-separated; "
        f"auto = one per core (default {DEFAULT_CONTROLLERS}; --quick {QUICK_CONTROLLERS})",
    )
    p.add_argument(
        "--db",
        help="databases for the citas line (sqlite, postgresql: a throwaway server in the "
        f"results dir); smoke-ari and chat use the first (default {DEFAULT_DBS}; "
        f"--quick {QUICK_DBS})",
    )
    p.add_argument(
        "--nodes",
        help="also each call line through Kamailio in front of this many Asterisk nodes, "
        "a controller each, on PostgreSQL (ivr sandbox up --nodes K, docs/cluster.md); "
        "comma-separated counts, e.g. 1,2 (default: none)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy flame graph of the controller over one step per ARI variant "
        "(the step nearest 60%% of plain dialplan's capacity), kept in the results dir",
    )
    p.add_argument("--profile-at", type=int, metavar="N", help="profile the step N instead")
    p.add_argument(
        "--hold",
        type=float,
        help=f"seconds each step keeps N calls up; at least one round of calls "
        f"(default {DEFAULT_HOLD_S:g}; --quick {QUICK_HOLD_S:g})",
    )
    p.add_argument(
        "--load",
        choices=LOADS,
        default=LOADS[0],
        help="how a step places its calls: steady (N per call length, so N are up at once, "
        "each at its own point of the call; judged while N are up) or burst (the first N "
        "within half a call, at most 10 s, the calls then in step: a surge) (default steady)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="run every step up to K times; a step passes when more than half of its runs "
        "pass (it stops once the runs so far decide that: 2 of 3 agreeing), its figures are "
        "the median run (by response p99) of the runs that agree with that verdict, and the "
        "report shows every run's p99 (default 1; 3 for a capacity worth quoting)",
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
        help="a step also fails when the response p99 (key → next prompt, the controller's "
        "lines) is above this many ms; 0: off (default 1000)",
    )
    p.add_argument(
        "--max-late-p99-ms",
        type=float,
        default=1000.0,
        help="a step also fails when the callers' lateness p99 (every line: the last key → "
        "the IVR's BYE, less the warm-up call's; every response and prompt after the key "
        "together) is above this many ms; 0: off (default 1000)",
    )
    p.add_argument(
        "--lines",
        default=",".join(ALL_LINES),
        help=f"which lines, in order (default {','.join(ALL_LINES)})",
    )
    p.add_argument(
        "--out", metavar="DIR", help="results directory (default ./bench-results/<time>)"
    )
    p.add_argument("--quick", action="store_true", help="a short run (about 9 minutes)")
    p.add_argument(
        "--media-port",
        type=int,
        help="sipp -mp: first caller RTP port (default: 1000 above the sandbox's RTP range)",
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
    if args.what:
        return report(args.what)
    from ivr.bench.lines import ALL_LINES
    from ivr.bench.runner import Bench, BenchConfig, BenchError
    from ivr.bench.stats import parse_steps
    from ivr.bench.variants import cores, ladder_for, parse_controllers, parse_dbs, parse_nodes
    from ivr.settings import Settings, SettingsError

    # Our own sandbox unless told otherwise: never the demo's (0) or the e2e tests' (2000).
    os.environ.setdefault("CITAS_INSTANCE", DEFAULT_INSTANCE)
    os.environ.setdefault("CITAS_PORT_OFFSET", DEFAULT_PORT_OFFSET)
    try:
        steps = parse_steps(args.steps) if args.steps else []
        controllers = parse_controllers(
            args.controllers or (QUICK_CONTROLLERS if args.quick else DEFAULT_CONTROLLERS), cores()
        )
        dbs = parse_dbs(args.db or (QUICK_DBS if args.quick else DEFAULT_DBS))
        nodes = parse_nodes(args.nodes or "")
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
    if args.repeat < 1:
        print("ivr bench: --repeat must be 1 or more", file=sys.stderr)
        return 2
    if not 0 <= args.threshold < 1:
        print("ivr bench: --threshold must be in [0, 1)", file=sys.stderr)
        return 2
    top = max(max(ladder_for(line, steps, quick=args.quick, max_calls=10**9)) for line in lines)
    max_calls = args.max_calls or top
    try:
        # The RTP range must hold the largest step's calls (2 ports each): widened
        # from the instance's own start unless CITAS_RTP_START/END say otherwise.
        base = Settings.from_env()
        if "CITAS_RTP_START" not in os.environ and "CITAS_RTP_END" not in os.environ:
            start, end = rtp_range(base.ports.rtp_start, min(max_calls, top))
            os.environ["CITAS_RTP_START"], os.environ["CITAS_RTP_END"] = str(start), str(end)
        settings = Settings.from_env()
        media_port = args.media_port or media_port_after(settings.ports.rtp_end)
    except (ValueError, SettingsError) as exc:
        print(f"ivr bench: {exc}", file=sys.stderr)
        return 2
    hold = args.hold if args.hold is not None else (QUICK_HOLD_S if args.quick else DEFAULT_HOLD_S)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path.cwd() / "bench-results" / stamp
    if getattr(args, "instance", None):
        settings = replace(settings, instance=args.instance)
    config = BenchConfig(
        steps=steps,
        max_calls=max_calls,
        hold=hold,
        threshold=args.threshold,
        max_response_p99_ms=max(0.0, args.max_p99_ms),
        max_late_p99_ms=max(0.0, args.max_late_p99_ms),
        lines=lines,
        out_dir=out.resolve(),
        media_port=media_port,
        keep_sandbox=args.keep_sandbox,
        quick=args.quick,
        chat_interval=args.chat_interval,
        chat_reply_timeout=args.chat_reply_timeout,
        controllers=controllers,
        dbs=dbs,
        nodes=nodes,
        profile=args.profile or args.profile_at is not None,
        profile_at=args.profile_at,
        command=" ".join(["ivr", *sys.argv[1:]]) if sys.argv else "ivr bench",
        repeat=args.repeat,
        load=args.load,
    )
    # Its controller runs in a session of its own (ivr.bench.runner): a hang-up or a
    # SIGTERM to the bench no longer reaches it, so they end the bench the way
    # Ctrl-C does, through its cleanup (controller, sandbox, PostgreSQL stopped).
    previous = {sig: signal.signal(sig, _exit_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        results = Bench(config, settings).run()
    except BenchError as exc:
        print(f"ivr bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    broken = [name for name, v in results["variants"].items() if v["error"]]
    return 1 if broken else 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def report(what: list[str]) -> int:
    """``ivr bench report DIR``: the markdown on stdout; 2 on a bad call or file."""
    from ivr.bench.report import load, render

    if len(what) != 2 or what[0] != "report":
        print("ivr bench: usage: ivr bench report <results dir>", file=sys.stderr)
        return 2
    try:
        results = load(Path(what[1]))
    except (OSError, ValueError) as exc:
        print(f"ivr bench report: {exc}", file=sys.stderr)
        return 2
    print(render(results))
    return 0
