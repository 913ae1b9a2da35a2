"""The ``ivr`` command.

ivr sandbox up | down | status    a real Asterisk 22 in a chroot
ivr compose up | down | status    the 2-node cluster in containers built here (docker/)
ivr serve                         the controller, in the foreground
ivr call SCENARIO|FILE | --list   place a tester scenario (bundled name or YAML file) with sipp
ivr flow check FILE               validate a flow file without starting anything
ivr config check [DIR]            validate every configuration file (flows, tables, prompts)
ivr db upgrade                    apply database migrations
ivr prompts build                 synthesize the prompts' audio
ivr bench [--quick]               capacity and reaction-time benchmark (docs/PERFORMANCE.md)
ivr flags | incident | ops        operations flags, incident switch, API tokens, ops server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.settings import Settings, SettingsError

if TYPE_CHECKING:
    from ivr.chat.store import ConversationStore
    from ivr.ops.api import ApiExtension
    from ivr.ops.flags import FlagRegistry
    from ivr.scenarios.spec import Scenario
    from ivr.store import Database

logger = logging.getLogger("ivr")
CONFIG_ERROR = 2  # exit status when a file the product reads is invalid


def _base_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with ``--instance`` applied; for a cluster or
    one of its nodes, on the cluster's database (docs/cluster.md); for a compose
    stack, on its database, host and ports (docker/README.md)."""
    from ivr.sandbox.cluster import with_cluster_database
    from ivr.sandbox.compose import with_stack

    settings = Settings.from_env()
    if getattr(args, "instance", None):
        settings = replace(settings, instance=args.instance)
    if getattr(args, "func", None) is not cmd_compose:  # `ivr compose up` lays it out anew
        settings = with_stack(settings)
    return with_cluster_database(settings)


def _settings(args: argparse.Namespace) -> Settings:
    return _with_sandbox_ports(_base_settings(args))


def _with_sandbox_ports(settings: Settings) -> Settings:
    """Use the ports the running sandbox was started with, when there is one; for
    a cluster (``ivr sandbox up --nodes N``), the ports it was started with (its
    front SIP port is Kamailio's) and its database."""
    from ivr.sandbox.cluster import as_started, load_state
    from ivr.sandbox.instance import InstancePaths

    cluster = load_state(settings)
    if cluster is not None:  # its database: _base_settings gave it already
        return as_started(settings, cluster)
    state = InstancePaths(settings).load()
    if state is None:
        return settings
    return replace(settings, ports=state.settings_ports(), host=state.host)


def _cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    """``ivr sandbox up --nodes N`` and the cluster's ``status`` and ``down``
    (ivr/sandbox/cluster.py). Exit status: ``status`` 3 when not serving."""
    from dataclasses import asdict

    from ivr.sandbox import cluster

    if args.action == "up":
        running = cluster.load_state(settings)
        nodes = args.nodes if args.nodes is not None else len(running.nodes) if running else 2
        result = cluster.up(settings, nodes, say=print)
        print("\n".join(result.lines()))
        print(
            f"  call it: ivr call smoke --instance {settings.instance}   (or a softphone: {result.front})"
        )
        return 0
    if args.action == "down":
        cluster.down(settings)
        print(f"cluster {settings.instance}: stopped")
        return 0
    if args.action != "status":
        print(f"ivr sandbox {args.action}: not for a cluster", file=sys.stderr)
        return 2
    found = cluster.status(settings)
    if found is None:
        print(f"cluster {settings.instance}: not running")
        return 3
    print(json.dumps(asdict(found), indent=2) if args.json else "\n".join(found.lines()))
    return 0 if found.serving else 3


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ivr.sandbox import cluster, manager

    settings = _base_settings(args)
    if args.action == "render":
        from ivr.sandbox.render import render_all, template_values

        if not args.target:
            print("ivr sandbox render: give the output directory", file=sys.stderr)
            return 2
        written = render_all(Path(args.target), template_values(settings, args.inst))
        print(f"rendered {len(written)} files into {args.target}")
        return 0
    if args.action == "prepare":
        root = manager.prepare(settings)
        print(f"sandbox root ready: {root.path} ({root.asterisk_version})")
        return 0
    if (args.action == "up" and args.nodes is not None) or cluster.load_state(settings) is not None:
        return _cmd_cluster(args, settings)
    if args.nodes is not None:
        print(
            f"ivr sandbox {args.action}: --nodes is for up; {settings.instance} is no cluster",
            file=sys.stderr,
        )
        return 2
    if args.action == "up":
        result = manager.up(settings)
    elif args.action == "down":
        result = manager.down(settings)
    else:
        result = manager.status(settings)
        if args.json:
            print(manager.status_json(settings))
            return 0 if result.running else 3
    print("\n".join(result.lines()))
    if args.action == "up":
        from ivr.citas.reference import load_line

        number = load_line(settings.citas_dir / "line.yaml").number
        print(
            f"  call it: ivr call smoke   (or a softphone: sip:{number}@{settings.host}:{result.ports['sip']})"
        )
    if args.action == "status":
        return 0 if result.running and result.ari_ready else 3
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.controller import serve
    from ivr.eventloop import run

    settings = _settings(args)
    if args.voice_worker:  # a child of `ivr serve` (CITAS_CONTROLLERS > 1)
        from ivr.controller import serve_voice_worker

        run(serve_voice_worker(settings))  # on uvloop (ivr.eventloop)
        return 0
    run(serve(settings))  # on uvloop (ivr.eventloop)
    return 0


def is_scenario_file(arg: str) -> bool:
    """``ivr call ARG``: a tester's own file when ARG ends in .yaml/.yml or has
    a ``/``; otherwise the name of a bundled scenario.

    >>> [is_scenario_file(a) for a in ("smoke", "mine.yaml", "x.YML", "./smoke", "a/b")]
    [False, True, True, True, True]
    """
    return arg.lower().endswith((".yaml", ".yml")) or "/" in arg


def find_scenario(arg: str) -> Scenario:
    """The scenario ``ivr call ARG`` places.

    Raises ``ScenarioNotFound`` (a missing file or an unknown name) and
    ``ConfigError`` (the file is not a valid scenario: file, line and field).
    """
    from ivr.scenarios.spec import list_scenarios, load_scenario

    if is_scenario_file(arg):
        path = Path(arg)
        if not path.is_file():
            raise ScenarioNotFound(
                f"no scenario file {arg!r} (bundled scenarios go by name: ivr call --list)"
            )
        return load_scenario(path)
    scenario = list_scenarios().get(arg)
    if scenario is None:
        raise ScenarioNotFound(
            f"no scenario {arg!r}; try: ivr call --list, or give a file (NAME.yaml or a path)"
        )
    return scenario


class ScenarioNotFound(LookupError):
    """``ivr call`` was given a name or file that does not exist."""


def cmd_compose(args: argparse.Namespace) -> int:
    """``ivr compose up | down | status | build`` (ivr/sandbox/compose.py, docker/README.md).
    Exit status: ``status`` 3 when not serving."""
    from dataclasses import asdict

    from ivr.sandbox import compose
    from ivr.sandbox.dockerd import DockerDaemon
    from ivr.sandbox.images import build_images

    settings = _base_settings(args)
    checkout = Path(args.checkout).resolve()
    if args.action == "build":
        daemon = DockerDaemon(settings.cache_dir)
        daemon.start()
        try:
            images = build_images(daemon, checkout, settings.cache_dir)
        finally:
            daemon.stop()
        print("\n".join(f"{role}: {tag}" for role, tag in asdict(images).items()))
        return 0
    if args.action == "up":
        compose.up(settings, checkout, say=print)
    elif args.action == "down":
        compose.down(settings)
        print(f"stack {settings.instance}: down")
        return 0
    found = compose.status(settings)
    if found is None:
        print(f"stack {settings.instance}: not running")
        return 3
    print(json.dumps(asdict(found), indent=2) if args.json else "\n".join(found.lines()))
    if args.action == "up":
        print(
            f"  call it: ivr call smoke --instance {settings.instance}   (or a softphone: {found.front})"
        )
    return 0 if found.serving else 3


def cmd_call(args: argparse.Namespace) -> int:
    from ivr.scenarios.runner import run_scenario
    from ivr.scenarios.spec import list_scenarios
    from ivr.yamlsrc import ConfigError

    if args.list or not args.scenario:
        scenarios = list_scenarios()
        width = max(len(n) for n in scenarios)
        for name, sc in scenarios.items():
            print(f"{name:<{width}}  {sc.description}")
        return 0
    try:
        scenario = find_scenario(args.scenario)
    except ScenarioNotFound as exc:
        print(f"ivr call: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:  # a scenario that cannot run is not a failed call (exit 1)
        print(f"ivr call: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    keep = Path(args.keep) if args.keep else None
    report = run_scenario(scenario, settings, keep)
    if args.json:
        print(json.dumps(report.__dict__ | {"ok": report.ok}, indent=2, default=str))
    else:
        print_transcript(report, settings)
    return 0 if report.ok else 1


def print_transcript(report: object, settings: Settings | None = None) -> None:
    from ivr.prompts import load_prompt_texts
    from ivr.scenarios.runner import CallReport

    assert isinstance(report, CallReport)
    settings = settings or Settings.from_env()
    texts = {k: v.text for k, v in load_prompt_texts(settings.prompts_file).items()}
    print(f"scenario {report.scenario}  (SIP Call-ID {report.call_id_prefix}-*)")
    for record in report.records:
        print(f"  call {record['sip_call_id']}  flow={record['flow']}")
        for step in record["path"]:
            print("    " + describe_step(step, texts))
        print(f"    => outcome {record['outcome']} ({record['end_reason']})")
    if report.agent_headers:
        print("  agent received: " + ", ".join(f"{k}={v}" for k, v in report.agent_headers.items()))
    print(
        f"  sipp caller exit {report.sipp_rc}"
        + (f", agent exit {report.agent_rc}" if report.agent_rc is not None else "")
    )
    if report.ok:
        print("RESULT: PASS")
    else:
        for failure in report.failures:
            print(f"  FAIL: {failure}")
        if report.sipp_rc != 0:
            print(
                "  sipp said:\n"
                + "\n".join("    " + line for line in report.sipp_tail.splitlines()[-12:])
            )
        print("RESULT: FAIL")


def describe_step(step: dict[str, object], texts: dict[str, str]) -> str:
    at = f"[{float(str(step.get('at', 0))):6.2f}s]"
    kind = step.get("kind")
    if kind == "prompt":
        spoken = []
        for media in step.get("media", []):  # type: ignore[attr-defined]
            m = str(media)
            if m.startswith("sound:citas/"):
                spoken.append(f"«{texts.get(m.removeprefix('sound:citas/'), m)}»")
            else:
                spoken.append(f"<{m}>")
        return f"{at} IVR says: " + " ".join(spoken)
    if kind == "digits":
        return (
            f"{at} caller keys: {step.get('digits') or '(none)'} (ended by {step.get('ended_by')})"
        )
    if kind == "node":
        return f"{at} -> {step.get('node')}"
    rest = {k: v for k, v in step.items() if k not in ("at", "kind")}
    return f"{at} {kind} " + " ".join(f"{k}={v}" for k, v in rest.items())


def cmd_flow(args: argparse.Namespace) -> int:
    from ivr.controller import flow_loader
    from ivr.yamlsrc import ConfigError

    loader = flow_loader(settings=Settings.from_env())
    status = 0
    for file in args.files:
        try:
            flow = loader.load(Path(file))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = CONFIG_ERROR
            continue
        print(f"{file}: flow {flow.name!r} ok ({len(flow.nodes)} nodes, starts at {flow.start})")
    return status


def cmd_config(args: argparse.Namespace) -> int:
    from datetime import date

    from ivr.citas.config import check_config_dir

    settings = Settings.from_env()
    directory = Path(args.dir) if args.dir else settings.config_dir
    prompts = Path(args.prompts) if args.prompts else settings.prompts_file
    checks = check_config_dir(directory, prompts, date.today())
    for check in checks:
        if check.error is not None:
            print(f"error: {check.error}", file=sys.stderr)
        elif not check.ok:
            print(f"{check.file}: {check.note}", file=sys.stderr)
        else:
            print(f"{check.file}: ok ({check.note})")
    return 0 if all(check.ok for check in checks) else CONFIG_ERROR


def cmd_db(args: argparse.Namespace) -> int:
    from ivr.store import Database

    settings = _settings(args)

    async def upgrade() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(upgrade())
    print(f"database at head: {settings.database_url}")
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from ivr.prompts import build_prompts, load_prompt_texts

    settings = Settings.from_env()
    texts = load_prompt_texts(settings.prompts_file)
    out = Path(args.out) if args.out else settings.prompts_build_dir
    report = build_prompts(texts, out, recorded_dir=settings.recorded_dir)
    print(report)
    return 0


def _line_flags(settings: Settings) -> FlagRegistry:
    """The citas line's flags for ``settings`` (``ivr flags``, ``ivr ops serve``)."""
    from ivr.controller import load_line

    return load_line(settings).flag_registry()


def _ops_extensions(
    settings: Settings, db: Database, chats: ConversationStore
) -> list[ApiExtension]:
    """The parts' routes and console pages ``ivr ops serve`` serves: the cases' back
    office (its answers are queued here and sent by ``ivr serve``'s mail worker), the
    dashboard, the keyword lists and the incident reports (``ivr.controller.ops_extensions``)."""
    from ivr.controller import build_backoffice, desk_pop, ops_extensions, reports_extension

    desk = desk_pop(settings, db)  # the desktop page, without AMI (docs/desk/pop.md)
    return [
        build_backoffice(settings, db, chats).extension,
        reports_extension(settings, db),
        *ops_extensions(settings, db),
        *([desk.extension] if desk is not None else []),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Citas IVR on Asterisk ARI")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser(
        "sandbox",
        help="the Asterisk sandbox: prepare (build the root) | up | down | status | render",
    )
    sb.add_argument("action", choices=("prepare", "up", "down", "status", "render"))
    sb.add_argument("target", nargs="?", help="render: output directory")
    sb.add_argument(
        "--inst", default="/srv/citas/docker", help="render: instance directory inside the image"
    )
    sb.add_argument("--instance", help="instance name (default: CITAS_INSTANCE or 'default')")
    sb.add_argument("--json", action="store_true", help="status as JSON")
    sb.add_argument(
        "--nodes", type=int,
        help="up: a cluster of N Asterisk nodes behind Kamailio, a controller each, "
        "one PostgreSQL (docs/cluster.md); status and down find it by its instance",
    )  # fmt: skip
    sb.set_defaults(func=cmd_sandbox)

    dc = sub.add_parser(
        "compose",
        help="the 2-node cluster in containers built here, no registry (docker/README.md): "
        "up (build and start) | down | status | build",
    )
    dc.add_argument("action", choices=("up", "down", "status", "build"))
    dc.add_argument("--instance", help="the stack's instance (default: CITAS_INSTANCE)")
    dc.add_argument(
        "--checkout", default=".", help="the checkout whose docker/ builds and runs (default: .)"
    )
    dc.add_argument("--json", action="store_true", help="status as JSON")
    dc.set_defaults(func=cmd_compose)

    sv = sub.add_parser("serve", help="run the controller in the foreground")
    sv.add_argument("--instance")
    sv.add_argument(
        "--voice-worker", action="store_true",
        help="one more controller process for a free slot (ivr serve starts these itself)",
    )  # fmt: skip
    sv.set_defaults(func=cmd_serve)

    call = sub.add_parser("call", help="place a tester scenario with sipp against the sandbox")
    call.add_argument(
        "scenario",
        nargs="?",
        help="a bundled scenario's name (--list) or a scenario file (*.yaml, *.yml, or a path)",
    )
    call.add_argument("--list", action="store_true", help="list the scenarios")
    call.add_argument("--instance")
    call.add_argument("--json", action="store_true", help="machine-readable report")
    call.add_argument("--keep", metavar="DIR", help="keep sipp files and logs in DIR")
    call.set_defaults(func=cmd_call)

    flow = sub.add_parser("flow", help="flow files")
    flow_sub = flow.add_subparsers(dest="flow_command", required=True)
    check = flow_sub.add_parser("check", help="validate flow files")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=cmd_flow)

    cfg = sub.add_parser("config", help="configuration files")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    cfg_check = cfg_sub.add_parser(
        "check",
        help="validate a configuration directory (citas/*.yaml, flows/*.yaml) and the prompts",
    )
    cfg_check.add_argument("dir", nargs="?", help="default: the directory ivr serve reads")
    cfg_check.add_argument("--prompts", help="the prompts file (default: the one ivr serve reads)")
    cfg_check.set_defaults(func=cmd_config)

    db = sub.add_parser("db", help="database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("--instance")
    up.set_defaults(func=cmd_db)

    pr = sub.add_parser("prompts", help="prompt audio")
    pr_sub = pr.add_subparsers(dest="prompts_command", required=True)
    build = pr_sub.add_parser(
        "build", help="synthesize prompt audio from prompts.yaml (CITAS_PROMPTS_DIR)"
    )
    build.add_argument("--out", help="output directory (default: <prompts dir>/build)")
    build.set_defaults(func=cmd_prompts)

    from ivr.scenarios.chatcli import add_parser as add_chat_parser

    add_chat_parser(sub)
    from ivr.bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)  # ivr bench: capacity and reaction-time benchmark

    from ivr.cases.cli import add_parser as add_cases_parser

    cases_sub = add_cases_parser(sub, _base_settings)  # ivr cases list|show (docs/cases/core.md)
    from ivr.scenarios.casescli import add_parsers as add_escalation_parsers

    add_escalation_parsers(cases_sub, _settings)  # ivr cases clock|phone (docs/cases/escalation.md)
    from ivr.desk.cli import add_parser as add_desk_parser

    desk_sub = add_desk_parser(sub, _base_settings)  # ivr desk contacts|... (docs/desk/core.md)
    from ivr.desk.seed_cli import add_seed_parser

    add_seed_parser(desk_sub, _base_settings)  # ivr desk seed (docs/desk/reports.md)
    from ivr.scenarios.deskcli import add_parsers as add_desk_agent_parsers

    add_desk_agent_parsers(desk_sub, _settings)  # ivr desk agent (docs/desk/queues.md)
    from ivr.desk.agents_cli import add_parsers as add_desk_presence_parsers

    add_desk_presence_parsers(desk_sub, _settings)  # ivr desk login|pause|... (docs/desk/queues.md)
    from ivr.ops.cli import add_parsers as add_ops_parsers

    # ivr flags | incident | ops (docs/operations.md), on the line's flags.
    add_ops_parsers(sub, _line_flags, _base_settings, _ops_extensions)
    return parser


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends a command as Ctrl-C does, so its ``finally`` and ``KeyboardInterrupt``
    paths stop what it started (the sipp phones of ``ivr desk agent`` / ``ivr cases
    phone``, whose default SIGTERM death left sipp holding the port). ``ivr serve``
    installs its own handler on its event loop."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _run(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # panoramisk logs whole AMI messages (caller numbers) at DEBUG.
    logging.getLogger("panoramisk").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"ivr: bad setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from ivr.sandbox.errors import SandboxError
        from ivr.yamlsrc import ConfigError

        if isinstance(exc, ConfigError):
            print(f"ivr: {exc}", file=sys.stderr)
            return CONFIG_ERROR
        if isinstance(exc, SandboxError):
            print(f"ivr: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
