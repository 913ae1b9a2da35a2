"""``ivr bench``: sipp callers against the sandbox, N at once, N stepping up.

One run: start this instance's sandbox (``bench``, port offset 3000 unless
the environment says otherwise) and a controller (``ivr serve`` as a child
process with its own SQLite file and ``CITAS_REACTION_LOG``), then for each
line (plain dialplan, ARI smoke, citas) place one warm-up call and step N up:
each step is one sipp run of ``N × rounds`` calls with at most N up at once
(``-l N``), started N per ramp period. Every call announces its own RTP port
in its SDP (``[auto_media_port]``: ``-mp`` + 4 per call) and plays its own
RFC 4733 capture from that port to its own Asterisk channel.

A call is completed when sipp's scenario reached its end (every key sent, the
IVR's BYE within ``bye_within`` seconds, answered) and, on the ARI lines, the
controller's call record for that SIP Call-ID has the expected outcome.
Stepping stops after the first step with more than ``threshold`` failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from ivr.bench.chat import (
    CHAT_LINE,
    ChatDriver,
    ChatMove,
    contact_phones,
    contact_script,
    contacts_needed,
    offered_rate,
    wa_id,
    write_config,
)
from ivr.bench.chat import rounds_for as chat_rounds_for
from ivr.bench.lines import CHAT, LINES, Line
from ivr.bench.report import headline_text
from ivr.bench.stats import (
    StepResult,
    combine_runs,
    first_failed,
    majority_decided,
    merge_counts,
    next_step,
    path_waits,
    read_counts,
    read_samples,
    split_samples,
    step_line,
    summarize_line,
    table,
    versus_plain,
    window,
    write_results,
)
from ivr.bench.usage import UsageMeter
from ivr.bench.variants import (
    Variant,
    estimate_seconds,
    full_window,
    ladder_for,
    matrix,
    placing_seconds,
    profile_step,
    ramp_seconds,
    rounds_for,
)
from ivr.reaction import ENV_VAR as REACTION_ENV
from ivr.sandbox.errors import SandboxError
from ivr.sandbox.instance import InstancePaths
from ivr.sandbox.manager import registered_apps
from ivr.sandbox.postgres import PostgresError, ThrowawayPostgres
from ivr.scenarios.runner import free_udp_port
from ivr.scenarios.sippxml import caller_xml
from ivr.settings import Settings

OK_MARK = "BENCH-OK"
KEY_MARK = "BENCH-KEY"  # the last key's RFC 4733 capture starts: "BENCH-KEY <call-id> <ms>"
BYE_MARK = "BENCH-BYE"  # the IVR's BYE received: "BENCH-BYE <call-id> <ms>" (sipp's clock)
# The first start synthesizes the prompts (espeak-ng): over 45 s on a busy machine.
CONTROLLER_READY_S = 120.0
# A cluster variant's ports (``Variant.nodes``, docs/cluster.md) above the bench
# sandbox's offset: its nodes' RTP ranges (1000 ports each, 500 calls) then lie above
# the callers' media ports (``media_port`` + 10000 at most: cli.media_port_after).
CLUSTER_PORT_STEP = 10_000
RECORDS_WAIT_S = 30.0
SAMPLE_EVERY_S = 0.5
# Watched with their children: ivr serve and its voice workers, PostgreSQL's backends.
TREES = frozenset({"controller", "postgres", "kamailio"})
# Whose threads' run-queue wait a step reads (ivr.bench.usage): the controllers'.
WAITS = frozenset({"controller"})

__all__ = ["Bench", "BenchConfig", "BenchError", "ramp_seconds"]


@dataclass
class BenchConfig:
    steps: list[int]  # --steps for every variant; empty: each line's ladder (ivr.bench.variants)
    max_calls: int
    hold: float  # seconds each step keeps N calls up (at least one round of calls)
    threshold: float  # the failure ratio above which a step fails
    max_response_p99_ms: float  # a step also fails when key → next prompt p99 is above (0: off)
    lines: list[str]
    out_dir: Path
    media_port: int = 20000  # sipp -mp: call k announces media_port + 4(k-1)
    settle_s: float = 3.0
    keep_sandbox: bool = False
    quick: bool = False
    chat_interval: float = 2.0  # seconds between one chat contact's messages
    chat_reply_timeout: float = 10.0  # a chat message not answered in this is failed
    controllers: list[int] = field(default_factory=lambda: [1])  # CITAS_CONTROLLERS values
    dbs: list[str] = field(default_factory=lambda: ["sqlite"])  # "sqlite", "postgresql"
    nodes: list[int] = field(default_factory=list)  # --nodes: cluster variants (Variant.nodes)
    profile: bool = False  # py-spy around one step per ARI variant (ivr.bench.profile)
    profile_at: int | None = None  # that step's N; None: nearest 60 % of expected capacity
    command: str = ""  # the command line, kept in results.json
    repeat: int = 1  # runs of every step; the step's verdict is the majority's (combine_runs)
    load: str = "steady"  # how a step places its calls: "steady" or "burst" (variants.LOADS)
    # ... or when the callers' lateness p99 (last key → the IVR's BYE past the warm-up's) is
    max_late_p99_ms: float = 1000.0

    def ladder(self, line: str) -> list[int]:
        return ladder_for(line, self.steps, quick=self.quick, max_calls=self.max_calls)


@dataclass
class LineRun:
    line: Line
    variant: Variant
    call_seconds: float = 0.0  # the warm-up call, start to BYE
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    ari_counts: dict[str, Any] | None = None  # the controller's CITAS_ARI_COUNTS snapshot
    profile: str | None = None  # the flame graph file (results dir relative) or why none


Say = Callable[[str], None]


class Bench:
    def __init__(self, config: BenchConfig, settings: Settings, say: Say = print) -> None:
        self.config = config
        self.settings = settings
        self.sqlite_url = f"sqlite+aiosqlite:///{config.out_dir / 'citas.db'}"
        self.say = say
        self.reaction_log = config.out_dir / "reaction.jsonl"
        self.controller: subprocess.Popen[bytes] | None = None
        self.variant: Variant | None = None  # the variant the controller serves
        self.runs: dict[str, LineRun] = {}
        self.idle: dict[str, float] = {}
        # Variant name → its warm-up call's last key → BYE, ms: the callers' lateness is
        # counted from it (StepResult.late_ms).
        self.key_to_bye_nominal: dict[str, float] = {}
        self.chat: ChatDriver | None = None
        self.chat_contacts: list[str] = []  # wa_ids not used yet, in order
        self.controller_env: dict[str, str] = {}
        self.postgres: ThrowawayPostgres | None = None
        self.cluster: Settings | None = None  # the front's, while a cluster variant runs
        self._cluster_env: dict[str, str | None] = {}  # os.environ's values it replaced

    # -- the whole run ---------------------------------------------------------

    def variants(self) -> list[Variant]:
        return matrix(
            self.config.lines, self.config.controllers, self.config.dbs, self.config.nodes
        )

    def run(self) -> dict[str, Any]:
        from ivr.sandbox import manager

        out = self.config.out_dir
        out.mkdir(parents=True, exist_ok=True)
        started = time.time()
        facts = machine_facts()
        variants = self.variants()
        ladders = {v.line: self.config.ladder(v.line) for v in variants}
        estimate = estimate_seconds(
            variants, ladders, self.config.hold, repeat=self.config.repeat, load=self.config.load
        )
        self.say(
            f"ivr bench: instance {self.settings.instance}, SIP port {self.settings.ports.sip}, "
            f"RTP {self.settings.ports.rtp_start}-{self.settings.ports.rtp_end}, "
            f"caller media from {self.config.media_port}, results in {out}"
        )
        self.say(
            f"  machine: {facts['cpu_model']}, {facts['cores']} cores, {facts['os']}, "
            f"load average {' '.join(map(str, facts['load_avg']))}"
        )
        self.say(
            f"  {len(variants)} variants: {', '.join(v.name for v in variants)}; "
            f"at most {estimate / 60:.0f} min if every ladder is climbed to its top; "
            f"{self.config.load} load"
        )
        try:
            sandbox = manager.up(self.settings)
            facts["asterisk"] = sandbox.asterisk_version
            self.settings = replace(self.settings, ports=_ports_of(self.settings))
            ports = self.settings.ports
            facts["rtp_range"] = [ports.rtp_start, ports.rtp_end]
            top = max(max(self.config.ladder(v.line), default=0) for v in variants)
            if (ports.rtp_end - ports.rtp_start + 1) // 2 < top:
                self.say(
                    f"  WARNING: the running sandbox's RTP range {ports.rtp_start}-"
                    f"{ports.rtp_end} holds fewer calls than the top step {top}: "
                    "`ivr sandbox down` it first so the bench starts it with a wider one"
                )
            facts["idle_cpu_ms_per_s"] = self.idle
            asterisk = (
                _proc(state.asterisk_pid)
                if (state := InstancePaths(self.settings).load())
                else None
            )
            facts["asterisk_nofile_limit"] = _nofile_limit(asterisk)
            self._measure_idle({"asterisk": asterisk})
            for variant in variants:
                try:
                    self.runs[variant.name] = self._run_variant(variant)
                except Exception as exc:  # one variant's crash must not lose the others
                    line = CHAT if variant.line == CHAT_LINE else LINES[variant.line]
                    error = f"the bench failed in this variant: {exc!r}"
                    self.say(f"  {error}\n{traceback.format_exc()}")
                    self.runs[variant.name] = LineRun(line, variant, error=error)
        finally:
            self._stop_controller()
            self._stop_cluster()
            if self.chat is not None:
                self.chat.stop()
            if self.postgres is not None:
                self.postgres.stop()
                self.say("  PostgreSQL stopped")
            if not self.config.keep_sandbox:
                manager.down(self.settings)
                self.say(f"  sandbox {self.settings.instance} stopped")
        return self._finish(facts, started)

    def _run_variant(self, variant: Variant) -> LineRun:
        line = CHAT if variant.line == CHAT_LINE else LINES[variant.line]
        self.say(f"{variant.name}: {line.title}")
        self._stop_controller()
        if variant.nodes:
            return self._run_cluster_variant(line, variant)
        if variant.uses_controller:
            try:
                db_url = self._db_url(variant.db)
                if variant.line == CHAT_LINE:
                    self._start_chat()
                self._start_controller(variant, db_url)
            except (BenchError, PostgresError) as exc:
                self.say(f"  {exc}")
                return LineRun(line, variant, error=str(exc))
        run = (
            self._run_chat(variant) if variant.line == CHAT_LINE else self._run_line(line, variant)
        )
        if variant.uses_controller:
            self._stop_controller()
            run.ari_counts = merge_counts(
                read_counts(self.config.out_dir.glob(f"ari-counts-{variant.slug}-*.json"))
            )
        return run

    def _run_cluster_variant(self, line: Line, variant: Variant) -> LineRun:
        """``line`` through Kamailio in front of ``variant.nodes`` nodes, started for
        this variant alone (fresh controllers, as every variant gets) and stopped after."""
        try:
            self._start_cluster(variant)
        except (BenchError, PostgresError, SandboxError) as exc:
            self.say(f"  {exc}")
            self._stop_cluster()
            return LineRun(line, variant, error=str(exc))
        try:
            run = self._run_line(line, variant)
        finally:
            self._stop_cluster()
        run.ari_counts = merge_counts(
            read_counts(self.config.out_dir.glob(f"ari-counts-{variant.slug}-*.json"))
        )
        return run

    def _start_cluster(self, variant: Variant) -> None:
        """``ivr sandbox up --nodes K`` (ivr.sandbox.cluster) at ``CLUSTER_PORT_STEP``
        above the bench's ports, on the bench's PostgreSQL, a controller per node with
        the variant's count, reaction log and ARI counts. The bench's own sandbox is
        stopped first (unless ``keep_sandbox``): its idle Asterisk is not the cluster's."""
        from ivr.sandbox import cluster, manager

        if not self.config.keep_sandbox and manager.status(self.settings).running:
            manager.down(self.settings)
            self.say(f"  sandbox {self.settings.instance} stopped: the cluster's turn")
        db_url = self._db_url(variant.db)
        # Its controllers are `ivr serve` children of this process (cluster.start_controller).
        own = {
            "CITAS_CONTROLLERS": str(variant.controllers),
            "CITAS_ARI_COUNTS": str(self._counts_file(variant)),
            REACTION_ENV: str(self.reaction_log),
        }
        for name, value in own.items():
            self._cluster_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        # The nodes' RTP ranges move 1000 ports a node: the bench's widened range
        # (CITAS_RTP_START/END) would make them overlap.
        env = {k: v for k, v in os.environ.items() if k not in ("CITAS_RTP_START", "CITAS_RTP_END")}
        offset = self.settings.ports.sip - Settings().ports.sip + CLUSTER_PORT_STEP
        front = Settings.from_env({
            **env, "CITAS_INSTANCE": f"{self.settings.instance}-cl",
            "CITAS_PORT_OFFSET": str(offset), "CITAS_DB_URL": db_url,
        })  # fmt: skip
        self.cluster, self.variant = front, variant
        self.say(
            f"  cluster {front.instance}: Kamailio on {front.ports.sip}, {variant.nodes} node(s)"
        )
        cluster.up(front, variant.nodes, say=lambda text: self.say(f"  {text}"))

    def _stop_cluster(self) -> None:
        from ivr.sandbox import cluster

        front, self.cluster = self.cluster, None
        if front is not None:
            self.variant = None
            cluster.down(front)
            self.say(f"  cluster {front.instance} stopped")
        for name, value in self._cluster_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._cluster_env = {}

    def _cluster_nodes(self) -> list[Settings]:
        from ivr.sandbox import cluster

        front = self.cluster
        if front is None:
            return []
        state = cluster.load_state(front)
        count = len(state.nodes) if state is not None else 0
        return [cluster.node_settings(front, i) for i in range(1, count + 1)]

    def _target(self) -> Settings:
        """Where sipp calls: the cluster's Kamailio during a cluster variant, else the sandbox."""
        return self.cluster or self.settings

    def _db_url(self, db: str) -> str:
        if db == "sqlite":
            return self.sqlite_url
        if self.settings.db_url.startswith("postgresql"):
            # CITAS_DB_URL names a PostgreSQL of the operator's: used as it is; its
            # server's CPU is not measured (its processes are not ours to find).
            return self.settings.db_url
        if self.postgres is None:
            self.postgres = ThrowawayPostgres(self.config.out_dir / "postgres")
            url = self.postgres.start()
            self.say(f"  PostgreSQL up (port {self.postgres.port}, pid {self.postgres.pid()})")
            return url
        return self.postgres.url

    def _finish(self, facts: dict[str, Any], started: float) -> dict[str, Any]:
        from ivr.bench.plot import plot

        summaries = {
            name: summarize_line(name, run.line.title, run.steps) for name, run in self.runs.items()
        }
        vs_plain = versus_plain(summaries, {n: r.variant.line for n, r in self.runs.items()})
        all_steps = [s for run in self.runs.values() for s in run.steps]
        results: dict[str, Any] = {
            "started_at": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            "wall_s": round(time.time() - started, 1),
            "machine": facts,
            "config": {
                "command": self.config.command,
                "steps": self.config.steps,
                "ladders": {v.line: self.config.ladder(v.line) for v in self.variants()},
                "max_calls": self.config.max_calls,
                "hold_s": self.config.hold,
                "threshold": self.config.threshold,
                "max_response_p99_ms": self.config.max_response_p99_ms,
                "max_late_p99_ms": self.config.max_late_p99_ms,
                "lines": self.config.lines,
                "controllers": self.config.controllers,
                "dbs": self.config.dbs,
                "media_port": self.config.media_port,
                "rtp_range": [self.settings.ports.rtp_start, self.settings.ports.rtp_end],
                "quick": self.config.quick,
                "profile": self.config.profile,
                "repeat": self.config.repeat,
                "load": self.config.load,
                # Since b3d90bb the controller runs in a session of its own (before: in
                # the bench's, with sipp); the kernel's autogroup setting says whether
                # that changes its share of the CPU (docs/perf/bench.md).
                "controller_session": "own",
                "sched_autogroup": _autogroup(),
            },
            "variants": {
                name: {
                    "line": run.variant.line,
                    "controllers": run.variant.controllers,
                    "db": run.variant.db,
                    "title": run.line.title,
                    "dial": run.line.dial,
                    "call_seconds": round(run.call_seconds, 2),
                    "error": run.error,
                    "capacity": summaries[name].capacity,
                    "capacity_is_lower_bound": summaries[name].capped,
                    "first_failed_step": first_failed(run.steps),
                    "at_capacity": summaries[name].best,
                    "versus_plain": vs_plain.get(name),
                    "ari_counts": run.ari_counts,
                    "profile": run.profile,
                }
                for name, run in self.runs.items()
            },
        }
        write_results(self.config.out_dir, results, all_steps)
        headline = headline_text(results)
        try:
            plot([s.summary() for s in all_steps], headline, self.config.out_dir / "bench.png")
        except Exception as exc:  # the figures are in the files already
            self.say(f"  plot failed: {exc!r}")
        self.say("")
        self.say(table(list(summaries.values())))
        self.say("")
        self.say(headline)
        for name, run in self.runs.items():
            if run.error:
                self.say(f"  {name}: {run.error}")
        self.say(f"results: {self.config.out_dir}/results.json, results.csv, runs.csv, bench.png")
        self.say(f"report:  ivr bench report {self.config.out_dir}")
        return results

    # -- one line --------------------------------------------------------------

    def _expected_capacity(self) -> int | None:
        """For --profile: the plain line's capacity if it ran (every ARI line's target)."""
        plain = self.runs.get("smoke-dialplan")
        if plain is None:
            return None
        return summarize_line(plain.variant.name, plain.line.title, plain.steps).capacity or None

    def _run_line(self, line: Line, variant: Variant) -> LineRun:
        run = LineRun(line, variant)
        warm = self._step(line, variant, 1, rounds=1, warmup=True)
        if not warm.passed:
            run.error = (
                f"the warm-up call failed ({warm.failures or 'see sipp logs'}); variant skipped"
            )
            self.say(f"  {run.error}")
            return run
        run.call_seconds = warm.call_seconds or warm.duration_s
        if warm.key_to_bye_ms:
            self.key_to_bye_nominal[variant.name] = min(warm.key_to_bye_ms)
        else:  # every call line's caller keys and waits for the IVR's BYE: say it loudly
            self.say("  no lateness baseline: the warm-up call logged no key → BYE; its steps "
                     "are judged without the callers' lateness")  # fmt: skip
        self.say(f"  warm-up call: {run.call_seconds:.1f} s")
        self._measure_variant_idle()
        ladder = self.config.ladder(line.name)
        profile_n = None
        if self.config.profile and variant.uses_controller and not variant.nodes:
            profile_n = self.config.profile_at or profile_step(ladder, self._expected_capacity())
        while (n := next_step(ladder, run.steps, self.config.max_calls)) is not None:
            rounds = rounds_for(self.config.hold, run.call_seconds, self.config.load)
            if line.uses_controller and not self._controller_alive():
                run.error = "the controller exited; see controller.log"
                self.say(f"  {run.error}")
                break

            def one(k: int, n: int = n, rounds: int = rounds) -> StepResult:
                if n == profile_n and k == 1:  # one flame graph per variant: the first run
                    step, run.profile = self._profiled_step(
                        line, variant, n, rounds, run.call_seconds, attempt=self._attempt(k)
                    )
                    return step
                return self._step(
                    line, variant, n, rounds=rounds, call_seconds=run.call_seconds,
                    attempt=self._attempt(k),
                )  # fmt: skip

            run.steps.append(self._repeated(n, one, controller=line.uses_controller))
        return run

    def _attempt(self, k: int) -> int:
        """The run number in file names: 0 (none) when every step runs once."""
        return k if self.config.repeat > 1 else 0

    def _repeated(
        self, n: int, one: Callable[[int], StepResult], *, controller: bool = True
    ) -> StepResult:
        """Step N run up to ``config.repeat`` times (``one(k)``, k = 1..K), combined by
        ``combine_runs``: stops once the runs so far decide the majority
        (``majority_decided``: 2 of 3 agreeing), and with a ``controller`` when it has
        exited (what ran counts; the next step's check reports it)."""
        runs: list[StepResult] = []
        for k in range(1, self.config.repeat + 1):
            if k > 1 and majority_decided([r.run_passed for r in runs], self.config.repeat):
                break
            if k > 1 and controller and not self._controller_alive():
                break
            runs.append(one(k))
            if self.config.repeat > 1:
                self.say(step_line(runs[-1], run=f"{k}/{self.config.repeat}"))
        step = combine_runs(runs)
        self.say(step_line(step))
        return step

    def _profiled_step(
        self, line: Line, variant: Variant, n: int, rounds: int, call_s: float, attempt: int = 0
    ) -> tuple[StepResult, str]:
        from ivr.bench.profile import profiling

        assert self.controller is not None
        seconds = placing_seconds(call_s, rounds, self.config.load)
        out = self.config.out_dir / f"flame-{variant.slug}-{n}.svg"
        step: StepResult | None = None
        try:
            with profiling(self.controller.pid, out, seconds):
                step = self._step(
                    line, variant, n, rounds=rounds, call_seconds=call_s, attempt=attempt
                )
        except Exception as exc:  # a profile that fails must not cost the step
            self.say(f"  profile at N={n} failed: {exc}")
            if step is None:
                step = self._step(
                    line, variant, n, rounds=rounds, call_seconds=call_s, attempt=attempt
                )
            return step, f"failed: {exc}"
        self.say(f"  flame graph: {out.name}")
        step.profiled = True
        return step, out.name

    # -- the chat line -----------------------------------------------------------

    def _start_chat(self) -> None:
        """The simulator (in this process) and the contacts' directory, before the
        controller starts: it sends to the simulator and loads that directory."""
        from ivr.chat.service import (
            SANDBOX_APP_SECRET,
            SANDBOX_PHONE_NUMBER_ID,
            SANDBOX_TOKEN,
            SANDBOX_VERIFY_TOKEN,
            webhook_url,
        )

        if self.controller is not None:
            raise BenchError("the chat line must be set up before the controller starts")
        rounds = chat_rounds_for(self.config.hold, self.config.chat_interval, len(contact_script()))
        ladder = self.config.ladder(CHAT_LINE)
        phones = contact_phones(
            contacts_needed(ladder, self.config.max_calls, rounds, repeat=self.config.repeat)
        )
        config_dir = write_config(
            self.settings.config_dir, self.config.out_dir / "chat-config", phones
        )
        self.chat_contacts = [wa_id(p) for p in phones]
        self.chat = ChatDriver(
            app_secret=SANDBOX_APP_SECRET, phone_number_id=SANDBOX_PHONE_NUMBER_ID,
            token=SANDBOX_TOKEN,
        )  # fmt: skip
        port = self.chat.start()
        self.chat.set_webhook(webhook_url(self.settings))
        # As a configured Cloud API number (README "Connecting a real WhatsApp Business
        # number"), whose API base is this simulator: `ivr serve` takes the sandbox's
        # ports from the instance state, so the simulator port cannot be passed as one.
        self.controller_env = {
            "CITAS_CONFIG_DIR": str(config_dir),
            "CITAS_CHAT": "1",
            "CITAS_WHATSAPP_API_BASE": f"http://127.0.0.1:{port}",
            "CITAS_WHATSAPP_PHONE_NUMBER_ID": SANDBOX_PHONE_NUMBER_ID,
            "CITAS_WHATSAPP_TOKEN": SANDBOX_TOKEN,
            "CITAS_WHATSAPP_APP_SECRET": SANDBOX_APP_SECRET,
            "CITAS_WHATSAPP_VERIFY_TOKEN": SANDBOX_VERIFY_TOKEN,
        }
        self.say(
            f"  chat: simulator on port {port}, {len(phones)} contacts in {config_dir}, "
            f"webhook {webhook_url(self.settings)}"
        )

    def _take_contacts(self, n: int, rounds: int) -> list[list[str]]:
        """``n`` slots of ``rounds`` fresh contacts each (raises when none are left)."""
        need = n * rounds
        if need > len(self.chat_contacts):
            raise BenchError(f"chat: {need} contacts wanted, {len(self.chat_contacts)} left")
        taken, self.chat_contacts = self.chat_contacts[:need], self.chat_contacts[need:]
        return [taken[k * rounds : (k + 1) * rounds] for k in range(n)]

    def _run_chat(self, variant: Variant) -> LineRun:
        run = LineRun(CHAT, variant)
        script = contact_script()
        warm = self._chat_step(variant, 1, 1, script, warmup=True)
        if not warm.passed:
            run.error = f"the warm-up conversation failed ({warm.failures}); see chat-warmup.txt"
            self.say(f"  {run.error}")
            return run
        run.call_seconds = warm.duration_s
        self.say(f"  warm-up conversation: {run.call_seconds:.1f} s")
        self._measure_variant_idle()
        rounds = chat_rounds_for(self.config.hold, self.config.chat_interval, len(script))
        ladder = self.config.ladder(CHAT_LINE)
        while (n := next_step(ladder, run.steps, self.config.max_calls)) is not None:
            if not self._controller_alive():
                run.error = "the controller exited; see controller.log"
                self.say(f"  {run.error}")
                break

            def one(k: int, n: int = n) -> StepResult:
                return self._chat_step(variant, n, rounds, script, attempt=self._attempt(k))

            run.steps.append(self._repeated(n, one))
        return run

    def _chat_step(
        self,
        variant: Variant,
        n: int,
        rounds: int,
        script: Sequence[ChatMove],
        *,
        warmup: bool = False,
        attempt: int = 0,
    ) -> StepResult:
        assert self.chat is not None
        time.sleep(self.config.settle_s)
        contacts = self._take_contacts(n, rounds)
        # This process plays Meta and the contacts: its CPU is the load generator's.
        procs = {**self._watched(), "simulator": psutil.Process(os.getpid())}
        usage = UsageMeter(procs, trees=TREES, waits=WAITS)
        psutil.cpu_percent(None)
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(SAMPLE_EVERY_S):
                usage.sample()

        sampler = threading.Thread(target=sample, name="bench-usage", daemon=True)
        sampler.start()
        t0 = time.time()
        try:
            outcome = self.chat.step(
                contacts, script, interval=self.config.chat_interval,
                reply_timeout=self.config.chat_reply_timeout, seed=n,
            )  # fmt: skip
        finally:
            sampling.set()
            sampler.join()
        usage.sample()
        host_cpu = psutil.cpu_percent(None)
        duration = time.time() - t0
        label = step_label(n, attempt, warmup=warmup)
        (self.config.out_dir / f"chat-{label}.txt").write_text(
            "\n\n".join(outcome.transcript) + "\n", encoding="utf-8"
        )
        return StepResult(
            line=CHAT_LINE,
            concurrency=n,
            placed=outcome.planned,
            completed=outcome.answered,
            failed=outcome.planned - outcome.answered,
            duration_s=duration,
            rate_cps=offered_rate(n, self.config.chat_interval),
            max_concurrent_seen=n,
            response_ms=outcome.latency_ms,
            usage=usage.result(),
            failures=outcome.failures,
            call_seconds=duration / rounds,
            idle_ms_per_s=dict(self.idle),
            host_cpu_pct=host_cpu,
            host_cpu_peak_pct=_peak_pct(usage),
            max_response_p99_ms=0.0 if warmup else self.config.max_response_p99_ms,
            threshold=self.config.threshold,
            achieved_rate=outcome.achieved_rate,
            variant=variant.name,
            controllers=variant.controllers,
            db=variant.db,
        )

    def _step(
        self,
        line: Line,
        variant: Variant,
        n: int,
        *,
        rounds: int,
        call_seconds: float = 0.0,
        warmup: bool = False,
        attempt: int = 0,
    ) -> StepResult:
        """One run of N calls; ``attempt`` (``--repeat``) names its sipp directory."""
        time.sleep(self.config.settle_s)
        label = step_label(n, attempt, warmup=warmup)
        workdir = self.config.out_dir / "sipp" / f"{variant.slug}-{label}"
        workdir.mkdir(parents=True, exist_ok=True)
        xml = caller_xml(line.scenario(), workdir)
        (workdir / "caller.xml").write_text(mark_success(mark_key_to_bye(xml)), encoding="utf-8")
        prefix = f"bench-{variant.slug}-{label}-{uuid.uuid4().hex[:8]}"
        calls = n * rounds
        call_s = call_seconds or line.nominal_seconds()
        ramp = 1.0 if warmup else ramp_seconds(call_s, self.config.load)
        limit = ramp * rounds + call_s * rounds + 60.0
        cmd = sipp_command(
            self._target(), line, workdir, prefix, n, calls, ramp, self.config.media_port, limit
        )
        procs = self._watched()
        t0 = time.time()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs["sipp"] = _proc(proc.pid)
        usage = UsageMeter(procs, trees=TREES, waits=WAITS)
        psutil.cpu_percent(None)  # starts the machine-wide count
        deadline = time.monotonic() + limit + 30.0
        while proc.poll() is None:
            usage.sample()
            if time.monotonic() > deadline:
                proc.kill()
                break
            time.sleep(SAMPLE_EVERY_S)
        usage.sample()
        host_cpu = psutil.cpu_percent(None)
        _, stderr_bytes = proc.communicate()
        stderr = decode_output(stderr_bytes)
        sipp_s = time.time() - t0
        ok_ids = read_ok_ids(workdir / "bench.log")
        stat = read_stat(workdir / "stat.csv")
        failures = dict(stat.failures)
        if proc.returncode not in (0, 1):
            failures[f"sipp_exit_{proc.returncode}"] = 1
            (workdir / "sipp-stderr.txt").write_text(stderr, encoding="utf-8")
        completed_ids = ok_ids
        waits: dict[str, list[float]] = {}
        if line.uses_controller:
            good, waits = self._good_records(variant.db, prefix, line.outcome, expected=len(ok_ids))
            wrong = ok_ids - good
            if wrong:
                failures["wrong_outcome"] = len(wrong)
            completed_ids = ok_ids & good
        usage.sample()
        t1 = time.time()
        # Judged while N were up: a steady step's first call length (N coming up) and
        # its tail (N going down) would dilute its p99 with lighter seconds.
        start, end = (t0, None) if warmup else full_window(t0, call_s, rounds, self.config.load)
        until = t1 if end is None else min(end, t1)
        reaction, response, from_asterisk = split_samples(
            window(read_samples(self.reaction_log), start, until)
        )
        key_to_bye = judged_key_to_bye(
            read_key_to_bye(workdir / "bench.log"), completed_ids, t0, start, until
        )
        up = stat.up_within(start, until)
        completed = len(completed_ids)
        not_created = max(0, calls - stat.created) if stat.created else 0
        if not_created:
            failures["not_placed"] = not_created
        return StepResult(
            line=line.name,
            concurrency=n,
            placed=calls,
            completed=completed,
            failed=calls - completed,
            duration_s=sipp_s,
            rate_cps=n / ramp,
            max_concurrent_seen=stat.max_current,
            up_mean=up[0] if up else None,
            up_min=up[1] if up else None,
            reaction_ms=reaction,
            response_ms=response,
            key_to_bye_ms=key_to_bye,
            nominal_key_to_bye_ms=None if warmup else self.key_to_bye_nominal.get(variant.name),
            from_asterisk_ms=from_asterisk,
            usage=usage.result(),
            failures=failures,
            call_seconds=stat.call_length_s,
            idle_ms_per_s=dict(self.idle),
            host_cpu_pct=host_cpu,
            host_cpu_peak_pct=_peak_pct(usage),
            max_response_p99_ms=0.0 if warmup else self.config.max_response_p99_ms,
            max_late_p99_ms=0.0 if warmup else self.config.max_late_p99_ms,
            threshold=self.config.threshold,
            variant=variant.name,
            controllers=variant.controllers,
            db=variant.db,
            waits_ms=waits,
        )

    # -- processes -------------------------------------------------------------

    def _watched(self) -> dict[str, psutil.Process | list[psutil.Process] | None]:
        if self.cluster is not None:
            return self._cluster_watched(self.cluster)
        state = InstancePaths(self.settings).load()
        asterisk = _proc(state.asterisk_pid if state else None)
        controller = _proc(self.controller.pid) if self.controller is not None else None
        watched: dict[str, psutil.Process | list[psutil.Process] | None] = {
            "controller": controller,
            "asterisk": asterisk,
        }
        if (
            self.postgres is not None
            and self.variant is not None
            and self.variant.db == "postgresql"
        ):
            watched["postgres"] = _proc(self.postgres.pid())
        return watched

    def _cluster_watched(
        self, front: Settings
    ) -> dict[str, psutil.Process | list[psutil.Process] | None]:
        """A cluster variant's parts: every node's Asterisk and controller (each summed
        as one part), Kamailio (its children: the SIP workers) and PostgreSQL."""
        from ivr.sandbox import cluster, kamailio

        nodes = self._cluster_nodes()
        asterisks = [InstancePaths(n).load() for n in nodes]
        return {
            "asterisk": [p for s in asterisks if s and (p := _proc(s.asterisk_pid))],
            "controller": [
                p for n in nodes if (p := _proc(cluster.controller_peer(n).running_pid(n)))
            ],
            "kamailio": _proc(kamailio.kamailio_peer(front).running_pid(front)),
            "postgres": _proc(self.postgres.pid()) if self.postgres is not None else None,
        }

    def _counts_file(self, variant: Variant) -> Path:
        # ivr/ari/counters.py: each controller process writes its own, {pid} replaced.
        return self.config.out_dir / f"ari-counts-{variant.slug}-{{pid}}.json"

    def _start_controller(self, variant: Variant, db_url: str) -> None:
        env = {
            **os.environ,
            "CITAS_INSTANCE": self.settings.instance,
            "CITAS_DB_URL": db_url,
            "CITAS_CONTROLLERS": str(variant.controllers),
            "CITAS_ARI_COUNTS": str(self._counts_file(variant)),
            REACTION_ENV: str(self.reaction_log),
            **(self.controller_env if variant.line == CHAT_LINE else {}),
        }
        log_path = self.config.out_dir / f"controller-{variant.slug}.log"
        log = log_path.open("ab")
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # A session of its own, as a service manager starts it: with the kernel's
            # autogroup scheduling a session shares the CPU with other sessions as one,
            # so the controllers compete with Asterisk's session, not inside the
            # bench's with sipp (docs/PERFORMANCE.md, runs t29-t36).
            start_new_session=True,
        )
        self.variant = variant
        log.close()
        apps = controller_apps(self.settings.app_name, variant.controllers)
        deadline = time.monotonic() + CONTROLLER_READY_S
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                raise BenchError(
                    f"the controller exited with {self.controller.returncode}; see {log_path}"
                )
            missing = apps - registered_apps(self.settings)
            if not missing:
                self.say(
                    f"  controller up (pid {self.controller.pid}, "
                    f"CITAS_CONTROLLERS={variant.controllers}, {variant.db or 'no db'})"
                )
                return
            time.sleep(0.25)
        self._stop_controller()
        raise BenchError(
            f"the controller did not register {sorted(missing)} with ARI in "
            f"{CONTROLLER_READY_S:.0f}s (CITAS_CONTROLLERS={variant.controllers}); see {log_path}"
        )

    def _measure_variant_idle(self) -> None:
        """Asterisk's, the controller's and PostgreSQL's idle CPU as this variant runs
        them, after its warm-up call. After a start the controller is still settling
        (56 ms/s measured then against 28 ms/s later on a busy machine), which made
        the net CPU per call 0. Asterisk's idle is measured again with the variant's
        controllers connected (their websockets and AMI sessions stay open with no
        call up). Runs t51-t56 (docs/PERFORMANCE.md) read it at 8-14 ms/s with or
        without them, within the 2 ms/s resolution of a 5 s window: this removes a
        doubt, not a measured error."""
        self._measure_idle(self._watched())

    def _measure_idle(
        self, procs: dict[str, psutil.Process | list[psutil.Process] | None], seconds: float = 5.0
    ) -> None:
        """Each process tree's CPU with no call up (ms per second): background work."""
        procs = {k: p for k, p in procs.items() if p is not None}
        if not procs:
            return
        meter = UsageMeter(procs, trees=TREES)
        time.sleep(seconds)
        meter.sample()
        for name, use in meter.result().items():
            if use.window_s <= 0:
                continue
            self.idle[name] = round(use.cpu_s * 1000 / use.window_s, 2)
            self.say(f"  {name} idle: {self.idle[name]:.1f} ms CPU per second (taken off per call)")

    def _controller_alive(self) -> bool:
        if self.cluster is not None:  # every node's
            from ivr.sandbox import cluster

            nodes = self._cluster_nodes()
            return bool(nodes) and all(cluster.controller_peer(n).running_pid(n) for n in nodes)
        return self.controller is not None and self.controller.poll() is None

    def _stop_controller(self) -> None:
        proc, self.controller = self.controller, None
        self.variant = None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # our own child, by its pid
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Its process group is its session (start_new_session): it and its voice
            # workers, nobody else's processes.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def _good_records(
        self, db: str, prefix: str, outcome: str | None, expected: int
    ) -> tuple[set[str], dict[str, list[float]]]:
        """SIP Call-IDs whose record is closed with ``outcome`` (waits for stragglers),
        and where the step's callers waited (``path_waits`` of every closed record)."""
        url = self.sqlite_url if db != "postgresql" else self._db_url(db)
        return asyncio.run(_good_records(url, prefix, outcome, expected))


def step_label(n: int, attempt: int = 0, *, warmup: bool = False) -> str:
    """A step's name in its files: ``warmup``, ``n0480``, ``n0480-r2`` (the 2nd of ``--repeat``)."""
    if warmup:
        return "warmup"
    return f"n{n:04d}" + (f"-r{attempt}" if attempt else "")


class BenchError(RuntimeError):
    """The benchmark cannot go on (the message says why)."""


# -- helpers (pure or nearly) ----------------------------------------------------


def sipp_command(
    settings: Settings,
    line: Line,
    workdir: Path,
    prefix: str,
    n: int,
    calls: int,
    ramp: float,
    media_port: int,
    limit: float,
) -> list[str]:
    return [
        "sipp", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
        "-mp", str(media_port), "-nostdin",
        "-sf", str(workdir / "caller.xml"), "-s", line.dial,
        "-m", str(calls), "-l", str(n), "-r", str(n), "-rp", str(int(ramp * 1000)),
        "-cid_str", f"{prefix}-%u@%s",
        "-timeout", f"{int(limit)}s",
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_logs", "-log_file", str(workdir / "bench.log"),
        f"{settings.host}:{settings.ports.sip}",
    ]  # fmt: skip


def decode_output(data: bytes | None) -> str:
    """A child's output as text, whatever it wrote: sipp's stderr can hold bytes that
    are not UTF-8 (a received packet echoed in a warning), which crashed a whole run
    when read with ``text=True``; undecodable bytes become U+FFFD.

    >>> decode_output(b"ok \x80 ok")
    'ok \ufffd ok'
    """
    return (data or b"").decode("utf-8", errors="replace")


def mark_success(xml: str) -> str:
    """Log the Call-ID of every call that reaches the end of the caller scenario."""
    mark = f'<nop><action><log message="{OK_MARK} [call_id]"/></action></nop>\n'
    anchor = "<ResponseTimeRepartition"
    if anchor not in xml:
        raise ValueError("caller XML without ResponseTimeRepartition: cannot mark success")
    return xml.replace(anchor, mark + anchor, 1)


def mark_key_to_bye(xml: str) -> str:
    """Log sipp's clock (``[clock_tick]``, ms since sipp started) when each call starts
    playing its last key and when it receives the IVR's BYE: the caller's side of the
    response (``read_key_to_bye``). A scenario without a played key or without the
    IVR's BYE (the caller hangs up) is returned as it is: its calls give no samples.
    """
    key = xml.rfind("play_pcap_audio=")
    bye = xml.find('<recv request="BYE"')
    if key < 0 or bye < key:
        return xml
    key_end = xml.index("</nop>", key) + len("</nop>")
    bye_end = xml.index("/>", bye) + len("/>")
    log = '\n<nop><action><log message="{mark} [call_id] [clock_tick]"/></action></nop>'
    return (
        xml[:key_end]
        + log.format(mark=KEY_MARK)
        + xml[key_end:bye_end]
        + log.format(mark=BYE_MARK)
        + xml[bye_end:]
    )


def read_key_to_bye(log_file: Path) -> dict[str, tuple[float, float]]:
    """Call-ID → (when its last key started, s from sipp's start; the key → the IVR's
    BYE, ms) for every call that logged both marks of ``mark_key_to_bye``."""
    if not log_file.is_file():
        return {}
    keys: dict[str, int] = {}
    byes: dict[str, int] = {}
    for line in log_file.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] not in (KEY_MARK, BYE_MARK) or not parts[2].isdigit():
            continue
        (keys if parts[0] == KEY_MARK else byes)[parts[1]] = int(parts[2])
    return {
        call_id: (keys[call_id] / 1000, float(byes[call_id] - keys[call_id]))
        for call_id in keys.keys() & byes.keys()
    }


def judged_key_to_bye(
    timings: dict[str, tuple[float, float]],
    completed: set[str],
    t0: float,
    start: float,
    end: float,
) -> list[float]:
    """The key → BYE ms (``read_key_to_bye``) of the completed calls whose whole wait
    fell between ``start`` and ``end`` (epoch s): a key near the window's end would be
    answered while the calls up go down. sipp's clock starts with its process, at
    ``t0`` (within a few ms)."""
    return [
        ms
        for call_id, (key_s, ms) in timings.items()
        if call_id in completed and start <= t0 + key_s and t0 + key_s + ms / 1000 <= end
    ]


def read_ok_ids(log_file: Path) -> set[str]:
    if not log_file.is_file():
        return set()
    ids = set()
    for line in log_file.read_text(errors="replace").splitlines():
        if line.startswith(OK_MARK + " "):
            ids.add(line.split(" ", 1)[1].strip())
    return ids


@dataclass(frozen=True)
class SippStat:
    created: int = 0
    successful: int = 0
    failed: int = 0
    max_current: int = 0
    call_length_s: float = 0.0  # the average length of the step's successful calls
    failures: dict[str, int] = field(default_factory=dict)
    # (epoch s, CurrentCall) of every row: the calls up, once a second (``-fd 1``)
    up: tuple[tuple[float, int], ...] = ()

    def up_within(self, start: float, end: float | None) -> tuple[float, int] | None:
        """The mean and the fewest calls up in sipp's rows from ``start`` to ``end``
        (epoch s; None: to the last row); None without a row there. sipp places no
        call while ``-l N`` are up and does not catch up afterwards (the step's calls
        are all placed, later), so calls that take longer under load leave fewer
        than N up."""
        counts = [n for t, n in self.up if t >= start and (end is None or t <= end)]
        if not counts:
            return None
        return sum(counts) / len(counts), min(counts)


def read_stat(path: Path) -> SippStat:
    """sipp's ``-trace_stat`` CSV: the last row's totals, the peak of CurrentCall."""
    if not path.is_file():
        return SippStat()
    rows = [r.split(";") for r in path.read_text(errors="replace").splitlines() if r.strip()]
    if len(rows) < 2:
        return SippStat()
    head, body = rows[0], rows[1:]

    def col(row: list[str], name: str) -> int:
        try:
            return int(row[head.index(name)])
        except (ValueError, IndexError):
            return 0

    def epoch(row: list[str]) -> float | None:
        # "2026-12-01\t17:38:54.960750\t1796146734.960750": the last field
        try:
            return float(row[head.index("CurrentTime")].split("\t")[-1])
        except (ValueError, IndexError):
            return None

    last = body[-1]
    failures = {}
    for name in head:
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)":
            count = col(last, name)
            if count:
                failures[name.removesuffix("(C)").removeprefix("Failed")] = count
    return SippStat(
        created=col(last, "TotalCallCreated"),
        successful=col(last, "SuccessfulCall(C)"),
        failed=col(last, "FailedCall(C)"),
        max_current=max(col(r, "CurrentCall") for r in body),
        call_length_s=sipp_duration(last[head.index("CallLength(C)")])
        if "CallLength(C)" in head and len(last) > head.index("CallLength(C)")
        else 0.0,
        failures=failures,
        up=tuple((t, col(r, "CurrentCall")) for r in body if (t := epoch(r)) is not None),
    )


def sipp_duration(text: str) -> float:
    """sipp's ``HH:MM:SS:micro`` (``00:00:09:168000``) in seconds; 0 if unreadable.

    >>> sipp_duration("00:01:09:500000")
    69.5
    """
    parts = text.strip().split(":")
    if len(parts) != 4:
        return 0.0
    try:
        h, m, sec, micro = (int(x) for x in parts)
    except ValueError:
        return 0.0
    return h * 3600 + m * 60 + sec + micro / 1_000_000


def _autogroup() -> bool | None:
    """The kernel's ``sched_autogroup_enabled`` (None: no such setting here)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def _peak_pct(usage: UsageMeter) -> float | None:
    peak = usage.peak()
    return peak.machine_pct if peak else None


def _proc(pid: int | None) -> psutil.Process | None:
    if not pid:
        return None
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _ports_of(settings: Settings) -> Any:
    state = InstancePaths(settings).load()
    return state.settings_ports() if state else settings.ports


def controller_apps(app_name: str, controllers: int) -> set[str]:
    """The Stasis apps N controllers register: slot 1 is ``app_name``, slot i ≥ 2
    ``app_name-i`` (CAP.md, part multi).

    >>> sorted(controller_apps("citas", 3))
    ['citas', 'citas-2', 'citas-3']
    """
    return {app_name} | {f"{app_name}-{i}" for i in range(2, controllers + 1)}


def app_registered(settings: Settings) -> bool:
    return settings.app_name in registered_apps(settings)


async def _good_records(
    db_url: str, prefix: str, outcome: str | None, expected: int
) -> tuple[set[str], dict[str, list[float]]]:
    from sqlalchemy import select

    from ivr.store import Database
    from ivr.store.models import CallRecordRow

    db = Database(db_url)
    deadline = time.monotonic() + RECORDS_WAIT_S
    try:
        while True:
            async with db.sessions() as session:
                rows = (
                    await session.execute(
                        select(
                            CallRecordRow.sip_call_id, CallRecordRow.outcome, CallRecordRow.path
                        ).where(
                            CallRecordRow.sip_call_id.like(prefix + "-%"),
                            CallRecordRow.ended_at.is_not(None),
                        )
                    )
                ).all()
            good = {str(cid) for cid, got, _ in rows if got == outcome}
            if len(rows) >= expected or time.monotonic() > deadline:
                return good, path_waits(path or [] for _, _, path in rows)
            await asyncio.sleep(0.5)
    finally:
        await db.close()


def _nofile_limit(proc: psutil.Process | None) -> list[int] | None:
    """A process's open-files limit (soft, hard): Asterisk needs about 4 per call."""
    if proc is None:
        return None
    try:
        soft, hard = proc.rlimit(psutil.RLIMIT_NOFILE)
    except (psutil.Error, AttributeError):
        return None
    return [int(soft), int(hard)]


def machine_facts() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    sipp = ""
    try:
        out = subprocess.run(["sipp", "-v"], capture_output=True, timeout=10)
        text = decode_output(out.stdout) + decode_output(out.stderr)
        sipp = next((ln.strip() for ln in text.splitlines() if "SIPp" in ln), "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu_model": model or platform.processor() or "unknown CPU",
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sipp": sipp,
        # Other work on the machine skews every figure: the 1, 5, 15-minute load average.
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
