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
import base64
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
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
    rounds_for,
    wa_id,
    write_config,
)
from ivr.bench.lines import CHAT, LINES, Line
from ivr.bench.stats import (
    LineSummary,
    ProcessUsage,
    StepResult,
    capacity_ratio,
    cpu_ratio,
    next_step,
    read_samples,
    split_samples,
    step_line,
    summarize_line,
    table,
    window,
    write_results,
)
from ivr.reaction import ENV_VAR as REACTION_ENV
from ivr.sandbox.instance import InstancePaths
from ivr.scenarios.runner import free_udp_port
from ivr.scenarios.sippxml import caller_xml
from ivr.settings import Settings

OK_MARK = "BENCH-OK"
CONTROLLER_READY_S = 45.0
RECORDS_WAIT_S = 30.0
SAMPLE_EVERY_S = 0.5


@dataclass
class BenchConfig:
    steps: list[int]
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


@dataclass
class LineRun:
    line: Line
    call_seconds: float = 0.0  # the warm-up call, start to BYE
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None


Say = Callable[[str], None]


class Bench:
    def __init__(self, config: BenchConfig, settings: Settings, say: Say = print) -> None:
        self.config = config
        # Its own SQLite file unless CITAS_DB_URL names a database (e.g. PostgreSQL).
        own_db = f"sqlite+aiosqlite:///{config.out_dir / 'citas.db'}"
        self.settings = replace(settings, db_url=settings.db_url or own_db)
        self.say = say
        self.reaction_log = config.out_dir / "reaction.jsonl"
        self.controller: subprocess.Popen[bytes] | None = None
        self.runs: dict[str, LineRun] = {}
        self.idle: dict[str, float] = {}
        self.chat: ChatDriver | None = None
        self.chat_contacts: list[str] = []  # wa_ids not used yet, in order
        self.controller_env: dict[str, str] = {}

    # -- the whole run ---------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from ivr.sandbox import manager

        out = self.config.out_dir
        out.mkdir(parents=True, exist_ok=True)
        started = time.time()
        facts = machine_facts()
        self.say(
            f"ivr bench: instance {self.settings.instance}, SIP port {self.settings.ports.sip}, "
            f"results in {out}"
        )
        self.say(
            f"  machine: {facts['cpu_model']}, {facts['cores']} cores, {facts['os']}, "
            f"load average {' '.join(map(str, facts['load_avg']))}"
        )
        try:
            sandbox = manager.up(self.settings)
            facts["asterisk"] = sandbox.asterisk_version
            self.settings = replace(self.settings, ports=_ports_of(self.settings))
            facts["idle_cpu_ms_per_s"] = self.idle
            self._measure_idle("asterisk", self._watched()["asterisk"])
            if CHAT_LINE in self.config.lines:
                self._start_chat()
            for name in self.config.lines:
                line = CHAT if name == CHAT_LINE else LINES[name]
                # Started for the first ARI line only: plain-dialplan steps run without it.
                if line.uses_controller and self.controller is None:
                    self._start_controller()
                    self._measure_idle("controller", self._watched()["controller"])
                run = self._run_chat() if name == CHAT_LINE else self._run_line(line)
                self.runs[line.name] = run
        finally:
            self._stop_controller()
            if self.chat is not None:
                self.chat.stop()
            if not self.config.keep_sandbox:
                manager.down(self.settings)
                self.say(f"  sandbox {self.settings.instance} stopped")
        return self._finish(facts, started)

    def _finish(self, facts: dict[str, Any], started: float) -> dict[str, Any]:
        from ivr.bench.plot import plot

        summaries = {
            name: summarize_line(name, run.line.title, run.steps) for name, run in self.runs.items()
        }
        ratio: dict[str, Any] = {"ratio": None, "bound": "unknown"}
        cpu: float | None = None
        if "smoke-ari" in summaries and "smoke-dialplan" in summaries:
            ratio = capacity_ratio(summaries["smoke-ari"], summaries["smoke-dialplan"])
            cpu = cpu_ratio(summaries["smoke-ari"].best, summaries["smoke-dialplan"].best)
        all_steps = [s for run in self.runs.values() for s in run.steps]
        results: dict[str, Any] = {
            "started_at": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            "wall_s": round(time.time() - started, 1),
            "machine": facts,
            "config": {
                "steps": self.config.steps,
                "max_calls": self.config.max_calls,
                "hold_s": self.config.hold,
                "threshold": self.config.threshold,
                "max_response_p99_ms": self.config.max_response_p99_ms,
                "lines": self.config.lines,
                "media_port": self.config.media_port,
                "quick": self.config.quick,
            },
            "lines": {
                name: {
                    "title": run.line.title,
                    "dial": run.line.dial,
                    "call_seconds": round(run.call_seconds, 2),
                    "error": run.error,
                    "capacity": summaries[name].capacity,
                    "capacity_is_lower_bound": summaries[name].capped,
                    "at_capacity": summaries[name].best,
                }
                for name, run in self.runs.items()
            },
            "ari_over_dialplan": {"capacity": ratio, "cpu_per_call": cpu},
        }
        write_results(self.config.out_dir, results, all_steps)
        headline = self._headline(summaries, ratio, cpu, facts)
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
        self.say(f"results: {self.config.out_dir}/results.json, results.csv, bench.png")
        return results

    def _headline(
        self,
        summaries: dict[str, LineSummary],
        ratio: dict[str, Any],
        cpu: float | None,
        facts: dict[str, Any],
    ) -> str:
        parts = [f"{name} capacity {s.capacity_text()}" for name, s in summaries.items()]
        text = "; ".join(parts)
        if ratio["ratio"] is not None:
            bound = "" if ratio["bound"] == "exact" else f" ({ratio['bound']})"
            text += f"\nARI/plain-dialplan capacity ratio {ratio['ratio']:.2f}{bound}"
            if cpu is not None:
                text += f"; CPU per call ARI/plain {cpu:.1f}×"
        text += f"\n{facts['cpu_model']}, {facts['cores']} cores, {facts['date']}"
        return text

    # -- one line --------------------------------------------------------------

    def _run_line(self, line: Line) -> LineRun:
        run = LineRun(line)
        self.say(f"{line.name}: {line.title}")
        warm = self._step(line, 1, rounds=1, warmup=True)
        if not warm.passed:
            run.error = (
                f"the warm-up call failed ({warm.failures or 'see sipp logs'}); line skipped"
            )
            self.say(f"  {run.error}")
            return run
        run.call_seconds = warm.call_seconds or warm.duration_s
        self.say(f"  warm-up call: {run.call_seconds:.1f} s")
        while (n := next_step(self.config.steps, run.steps, self.config.max_calls)) is not None:
            rounds = max(1, math.ceil(self.config.hold / max(run.call_seconds, 1.0)))
            if line.uses_controller and not self._controller_alive():
                run.error = "the controller exited; see controller.log"
                self.say(f"  {run.error}")
                break
            step = self._step(line, n, rounds=rounds, call_seconds=run.call_seconds)
            run.steps.append(step)
            self.say(step_line(step))
        return run

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
        rounds = rounds_for(self.config.hold, self.config.chat_interval, len(contact_script()))
        phones = contact_phones(contacts_needed(self.config.steps, self.config.max_calls, rounds))
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

    def _run_chat(self) -> LineRun:
        run = LineRun(CHAT)
        self.say(f"{CHAT_LINE}: {CHAT.title}")
        script = contact_script()
        warm = self._chat_step(1, 1, script, warmup=True)
        if not warm.passed:
            run.error = f"the warm-up conversation failed ({warm.failures}); see chat-warmup.txt"
            self.say(f"  {run.error}")
            return run
        run.call_seconds = warm.duration_s
        self.say(f"  warm-up conversation: {run.call_seconds:.1f} s")
        rounds = rounds_for(self.config.hold, self.config.chat_interval, len(script))
        while (n := next_step(self.config.steps, run.steps, self.config.max_calls)) is not None:
            if not self._controller_alive():
                run.error = "the controller exited; see controller.log"
                self.say(f"  {run.error}")
                break
            step = self._chat_step(n, rounds, script)
            run.steps.append(step)
            self.say(step_line(step))
        return run

    def _chat_step(
        self, n: int, rounds: int, script: Sequence[ChatMove], *, warmup: bool = False
    ) -> StepResult:
        assert self.chat is not None
        time.sleep(self.config.settle_s)
        contacts = self._take_contacts(n, rounds)
        # This process plays Meta and the contacts: its CPU is the load generator's.
        procs = {**self._watched(), "simulator": psutil.Process(os.getpid())}
        usage = UsageMeter(procs)
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
        label = "warmup" if warmup else f"n{n:04d}"
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
            max_response_p99_ms=0.0 if warmup else self.config.max_response_p99_ms,
            threshold=self.config.threshold,
            achieved_rate=outcome.achieved_rate,
        )

    def _step(
        self, line: Line, n: int, *, rounds: int, call_seconds: float = 0.0, warmup: bool = False
    ) -> StepResult:
        time.sleep(self.config.settle_s)
        label = "warmup" if warmup else f"n{n:04d}"
        workdir = self.config.out_dir / "sipp" / f"{line.name}-{label}"
        workdir.mkdir(parents=True, exist_ok=True)
        xml = caller_xml(line.scenario(), workdir)
        (workdir / "caller.xml").write_text(mark_success(xml), encoding="utf-8")
        prefix = f"bench-{line.name}-{label}-{uuid.uuid4().hex[:8]}"
        calls = n * rounds
        call_s = call_seconds or line.nominal_seconds()
        ramp = 1.0 if warmup else ramp_seconds(call_s)
        limit = ramp * rounds + call_s * rounds + 60.0
        cmd = sipp_command(
            self.settings, line, workdir, prefix, n, calls, ramp, self.config.media_port, limit
        )
        procs = self._watched()
        t0 = time.time()
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        procs["sipp"] = _proc(proc.pid)
        usage = UsageMeter(procs)
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
        _, stderr = proc.communicate()
        sipp_s = time.time() - t0
        ok_ids = read_ok_ids(workdir / "bench.log")
        stat = read_stat(workdir / "stat.csv")
        failures = dict(stat.failures)
        if proc.returncode not in (0, 1):
            failures[f"sipp_exit_{proc.returncode}"] = 1
            (workdir / "sipp-stderr.txt").write_text(stderr or "", encoding="utf-8")
        completed_ids = ok_ids
        if line.uses_controller:
            good = self._good_records(prefix, line.outcome, expected=len(ok_ids))
            wrong = ok_ids - good
            if wrong:
                failures["wrong_outcome"] = len(wrong)
            completed_ids = ok_ids & good
        usage.sample()
        t1 = time.time()
        reaction, response, from_asterisk = split_samples(
            window(read_samples(self.reaction_log), t0, t1)
        )
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
            reaction_ms=reaction,
            response_ms=response,
            from_asterisk_ms=from_asterisk,
            usage=usage.result(),
            failures=failures,
            call_seconds=stat.call_length_s,
            idle_ms_per_s=dict(self.idle),
            host_cpu_pct=host_cpu,
            max_response_p99_ms=0.0 if warmup else self.config.max_response_p99_ms,
            threshold=self.config.threshold,
        )

    # -- processes -------------------------------------------------------------

    def _watched(self) -> dict[str, psutil.Process | None]:
        state = InstancePaths(self.settings).load()
        asterisk = _proc(state.asterisk_pid if state else None)
        controller = _proc(self.controller.pid) if self.controller is not None else None
        return {"controller": controller, "asterisk": asterisk}

    def _start_controller(self) -> None:
        env = {
            **os.environ,
            "CITAS_INSTANCE": self.settings.instance,
            "CITAS_DB_URL": self.settings.db_url,
            REACTION_ENV: str(self.reaction_log),
            **self.controller_env,
        }
        log = (self.config.out_dir / "controller.log").open("ab")
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + CONTROLLER_READY_S
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                raise BenchError(
                    f"the controller exited with {self.controller.returncode}; "
                    f"see {self.config.out_dir / 'controller.log'}"
                )
            if app_registered(self.settings):
                self.say(f"  controller up (pid {self.controller.pid})")
                return
            time.sleep(0.25)
        raise BenchError(f"the controller did not register with ARI in {CONTROLLER_READY_S:.0f}s")

    def _measure_idle(self, name: str, proc: psutil.Process | None, seconds: float = 5.0) -> None:
        """A process's CPU with no call up (ms per second): its background work."""
        if proc is None:
            return
        meter = UsageMeter({name: proc})
        time.sleep(seconds)
        meter.sample()
        use = meter.result().get(name)
        if use is None or use.window_s <= 0:
            return
        self.idle[name] = round(use.cpu_s * 1000 / use.window_s, 2)
        self.say(f"  {name} idle: {self.idle[name]:.1f} ms CPU per second (taken off per call)")

    def _controller_alive(self) -> bool:
        return self.controller is not None and self.controller.poll() is None

    def _stop_controller(self) -> None:
        proc = self.controller
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # our own child, by its pid
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _good_records(self, prefix: str, outcome: str | None, expected: int) -> set[str]:
        """SIP Call-IDs whose record is closed with ``outcome`` (waits for stragglers)."""
        return asyncio.run(_good_records(self.settings, prefix, outcome, expected))


class BenchError(RuntimeError):
    """The benchmark cannot go on (the message says why)."""


# -- helpers (pure or nearly) ----------------------------------------------------


def ramp_seconds(call_seconds: float) -> float:
    """How long a step takes to start its first N calls: half a call, 1–10 s."""
    return min(10.0, max(1.0, call_seconds / 2))


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


def mark_success(xml: str) -> str:
    """Log the Call-ID of every call that reaches the end of the caller scenario."""
    mark = f'<nop><action><log message="{OK_MARK} [call_id]"/></action></nop>\n'
    anchor = "<ResponseTimeRepartition"
    if anchor not in xml:
        raise ValueError("caller XML without ResponseTimeRepartition: cannot mark success")
    return xml.replace(anchor, mark + anchor, 1)


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


class UsageMeter:
    """CPU seconds over the step and peak RSS, per watched process."""

    def __init__(self, procs: dict[str, psutil.Process | None]) -> None:
        self.procs = {k: p for k, p in procs.items() if p is not None}
        self.cpu0: dict[str, float] = {}
        self.cpu1: dict[str, float] = {}
        self.rss: dict[str, int] = {}
        self.t0 = self.t1 = time.monotonic()
        self.sample()
        self.cpu0 = dict(self.cpu1)

    def sample(self) -> None:
        self.t1 = time.monotonic()
        for name, proc in self.procs.items():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
            except psutil.Error:
                continue
            self.cpu1[name] = times.user + times.system
            self.rss[name] = max(self.rss.get(name, 0), rss)

    def result(self) -> dict[str, ProcessUsage]:
        return {
            name: ProcessUsage(
                cpu_s=round(self.cpu1[name] - self.cpu0.get(name, self.cpu1[name]), 3),
                rss_peak_mb=round(self.rss.get(name, 0) / 2**20, 1),
                window_s=round(self.t1 - self.t0, 3),
            )
            for name in self.cpu1
        }


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


def app_registered(settings: Settings) -> bool:
    url = f"http://{settings.host}:{settings.ports.http}/ari/applications"
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            apps = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(isinstance(a, dict) and a.get("name") == settings.app_name for a in apps)


async def _good_records(
    settings: Settings, prefix: str, outcome: str | None, expected: int
) -> set[str]:
    from sqlalchemy import select

    from ivr.store import Database
    from ivr.store.models import CallRecordRow

    db = Database(settings.database_url)
    deadline = time.monotonic() + RECORDS_WAIT_S
    try:
        while True:
            async with db.sessions() as session:
                rows = (
                    await session.execute(
                        select(CallRecordRow.sip_call_id, CallRecordRow.outcome).where(
                            CallRecordRow.sip_call_id.like(prefix + "-%"),
                            CallRecordRow.ended_at.is_not(None),
                        )
                    )
                ).all()
            good = {str(cid) for cid, got in rows if got == outcome}
            if len(rows) >= expected or time.monotonic() > deadline:
                return good
            await asyncio.sleep(0.5)
    finally:
        await db.close()


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
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10)
        sipp = next(
            (ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "SIPp" in ln), ""
        )
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
