"""The pure half of the benchmark: percentiles, the stop rule, one step's
figures, a line's capacity and the ARI/dialplan ratio, and the files.

Nothing here starts a process; ``ivr.bench.runner`` feeds it what it measured.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ivr.csv_export import write_csv


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([5.0], 99)
    5.0
    """
    if not values:
        return None
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} is not in 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def failure_ratio(placed: int, failed: int) -> float:
    return failed / placed if placed else 1.0


def step_passes(placed: int, failed: int, threshold: float) -> bool:
    """A step holds when it placed calls and at most ``threshold`` of them failed."""
    return placed > 0 and failure_ratio(placed, failed) <= threshold


def next_step(steps: Sequence[int], done: Sequence[StepResult], max_calls: int) -> int | None:
    """The next concurrency to try, or None: stop after a failed step or at the top."""
    if done and not done[-1].passed:
        return None
    for n in steps:
        if n > max_calls:
            return None
        if all(r.concurrency != n for r in done):
            return n
    return None


def parse_steps(text: str) -> list[int]:
    """``"5,10,20"`` → [5, 10, 20]; increasing positive integers.

    >>> parse_steps("5, 10,20")
    [5, 10, 20]
    """
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"steps must be integers separated by commas, got {text!r}") from None
    if not steps or any(n <= 0 for n in steps):
        raise ValueError(f"steps must be positive, got {text!r}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps must increase, got {text!r}")
    return steps


@dataclass(frozen=True)
class ProcessUsage:
    """One process over one step: CPU seconds used and the largest RSS seen."""

    cpu_s: float
    rss_peak_mb: float
    window_s: float = 0.0  # how long the CPU was counted
    # Peaks over the step's samples, summed over the process tree (ivr.bench.usage).
    threads_peak: int = 0
    fds_peak: int = 0
    processes_peak: int = 0
    # Its threads' run-queue wait over the step, summed (s; None: not measured),
    # and in the step's busiest window: cores used, run-queue wait in ms per
    # second (ivr.bench.usage.busiest).
    runqueue_wait_s: float | None = None
    peak_cores: float | None = None
    peak_wait_ms_per_s: float | None = None


@dataclass
class StepResult:
    line: str
    concurrency: int  # the simultaneous calls this step aims at (sipp -l)
    placed: int
    completed: int
    failed: int
    duration_s: float
    rate_cps: float
    max_concurrent_seen: int  # sipp's own count of calls up at once
    reaction_ms: list[float] = field(default_factory=list, repr=False)
    response_ms: list[float] = field(default_factory=list, repr=False)
    from_asterisk_ms: list[float] = field(default_factory=list, repr=False)
    # The caller's side, every line: the last key sent → the IVR's BYE received, ms, per
    # completed call (sipp's clock), and the same on the line's warm-up call (None: the
    # warm-up itself, or a scenario without both). ``late_ms`` is their difference.
    key_to_bye_ms: list[float] = field(default_factory=list, repr=False)
    nominal_key_to_bye_ms: float | None = None
    usage: dict[str, ProcessUsage] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # why calls failed
    threshold: float = 0.05
    call_seconds: float = 0.0  # sipp's average call length (successful calls)
    # Each process's CPU with no call up (ms per second), taken off the per-call figure.
    idle_ms_per_s: dict[str, float] = field(default_factory=dict)
    host_cpu_pct: float | None = None  # the whole machine's CPU busy over the step (all cores)
    # ... and in the step's busiest window (ivr.bench.usage.PEAK_WINDOW_S).
    host_cpu_peak_pct: float | None = None
    # The step also fails when the response p99 (key → next prompt) is above this (0: off),
    max_response_p99_ms: float = 0.0
    # ... or the callers' lateness p99 (``late_ms``) above this (0: off).
    max_late_p99_ms: float = 0.0
    # The calls up while the step was judged (sipp's rows, once a second): mean and fewest
    # (None: no row in that window). sipp places no call while N are up and does not
    # catch up afterwards, so where calls take longer fewer than N are up.
    up_mean: float | None = None
    up_min: int | None = None
    # The chat line: messages answered per second over the step (None on the call lines).
    achieved_rate: float | None = None
    # The variant (ivr.bench.variants): its name, controller processes and database.
    variant: str = ""
    controllers: int = 0
    db: str = ""
    # py-spy sampled the controller during this step: its CPU figures include the pauses.
    profiled: bool = False
    # Where the callers waited (``path_waits`` of the step's call records), ms.
    waits_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # ``ivr bench --repeat K``: every run of this N (summary rows, in the order run) and the
    # majority's verdict; this result is the median run (``combine_runs``). Empty: one run.
    runs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    majority_passed: bool | None = None
    # ``--repeat K``: each process's CPU per call, (process, net) -> ms, as the median over
    # the runs that agree with the verdict (``combine_runs``). Empty: this run's own.
    cpu_medians: dict[tuple[str, bool], float | None] = field(default_factory=dict, repr=False)

    @property
    def failure_ratio(self) -> float:
        return failure_ratio(self.placed, self.failed)

    @property
    def late_ms(self) -> list[float]:
        """How much longer than on the warm-up call each caller waited from the last key
        to the IVR's BYE, ms (negative: sooner): every response and prompt after the key,
        as the caller lives it, on every line, plain dialplan's included."""
        if self.nominal_key_to_bye_ms is None:
            return []
        return [ms - self.nominal_key_to_bye_ms for ms in self.key_to_bye_ms]

    @property
    def too_slow(self) -> bool:
        """The response p99 (key → next prompt, the controller's lines) above
        ``max_response_p99_ms``, or the callers' lateness p99 (``late_ms``, every line)
        above ``max_late_p99_ms`` (either limit 0: that rule off)."""
        rules = (
            (percentile(self.response_ms, 99), self.max_response_p99_ms),
            (percentile(self.late_ms, 99), self.max_late_p99_ms),
        )
        return any(limit and p99 is not None and p99 > limit for p99, limit in rules)

    @property
    def passed(self) -> bool:
        """This run held; for a repeated step (``runs``), more than half of its runs held."""
        if self.majority_passed is not None:
            return self.majority_passed
        return self.run_passed

    @property
    def run_passed(self) -> bool:
        """This one run held: few enough failed calls and a response p99 under the limit."""
        return step_passes(self.placed, self.failed, self.threshold) and not self.too_slow

    def cpu_ms_per_call(self, process: str, *, net: bool = True) -> float | None:
        """CPU per completed call; ``net``: less what the process burns when idle. A
        repeated step's is the median over its agreeing runs (``cpu_medians``)."""
        if (process, net) in self.cpu_medians:
            return self.cpu_medians[(process, net)]
        use = self.usage.get(process)
        if use is None or self.completed == 0:
            return None
        cpu_ms = use.cpu_s * 1000
        if net:
            cpu_ms = max(0.0, cpu_ms - self.idle_ms_per_s.get(process, 0.0) * use.window_s)
        return cpu_ms / self.completed

    def total_cpu_ms_per_call(self) -> float | None:
        """What a call costs the system under test: controller + Asterisk + PostgreSQL,
        and Kamailio in front of a cluster (whichever were watched; sipp and the chat
        simulator are the load, not counted)."""
        parts = [
            self.cpu_ms_per_call(p) for p in ("controller", "asterisk", "postgres", "kamailio")
        ]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None

    def _peak(self, process: str, what: str) -> int | None:
        use = self.usage.get(process)
        return int(getattr(use, what)) if use else None

    def _usage(self, process: str, what: str) -> float | None:
        use = self.usage.get(process)
        value = getattr(use, what) if use else None
        return float(value) if value is not None else None

    def _wait_ms_per_s(self, process: str) -> float | None:
        """``process``'s threads' run-queue wait over the step, ms per second."""
        use = self.usage.get(process)
        if use is None or use.runqueue_wait_s is None or not use.window_s:
            return None
        return use.runqueue_wait_s * 1000 / use.window_s

    def rss_peak_mb(self, process: str) -> float | None:
        use = self.usage.get(process)
        return use.rss_peak_mb if use else None

    def summary(self) -> dict[str, Any]:
        """One flat row: what the CSV holds and the plot reads."""
        return {
            "variant": self.variant or self.line,
            "line": self.line,
            "controllers": self.controllers,
            "db": self.db,
            "concurrency": self.concurrency,
            "placed": self.placed,
            "completed": self.completed,
            "failed": self.failed,
            "failure_ratio": round(self.failure_ratio, 4),
            "passed": self.passed,
            "too_slow": self.too_slow,
            "max_concurrent_seen": self.max_concurrent_seen,
            "up_mean": _r(self.up_mean, 1),
            "up_min": self.up_min,
            "rate_cps": round(self.rate_cps, 2),
            "duration_s": round(self.duration_s, 1),
            "call_seconds": round(self.call_seconds, 2),
            "reaction_samples": len(self.reaction_ms),
            "reaction_p50_ms": _r(percentile(self.reaction_ms, 50)),
            "reaction_p99_ms": _r(percentile(self.reaction_ms, 99)),
            "response_p50_ms": _r(percentile(self.response_ms, 50)),
            "response_p99_ms": _r(percentile(self.response_ms, 99)),
            "from_asterisk_p50_ms": _r(percentile(self.from_asterisk_ms, 50)),
            "from_asterisk_p99_ms": _r(percentile(self.from_asterisk_ms, 99)),
            "key_to_bye_nominal_ms": _r(self.nominal_key_to_bye_ms),
            "late_samples": len(self.late_ms),
            "late_p50_ms": _r(percentile(self.late_ms, 50)),
            "late_p99_ms": _r(percentile(self.late_ms, 99)),
            "controller_cpu_ms_per_call": _r(self.cpu_ms_per_call("controller")),
            "asterisk_cpu_ms_per_call": _r(self.cpu_ms_per_call("asterisk")),
            "controller_cpu_gross_ms_per_call": _r(self.cpu_ms_per_call("controller", net=False)),
            "asterisk_cpu_gross_ms_per_call": _r(self.cpu_ms_per_call("asterisk", net=False)),
            "postgres_cpu_ms_per_call": _r(self.cpu_ms_per_call("postgres")),
            "postgres_cpu_gross_ms_per_call": _r(self.cpu_ms_per_call("postgres", net=False)),
            "kamailio_cpu_ms_per_call": _r(self.cpu_ms_per_call("kamailio")),
            "total_cpu_ms_per_call": _r(self.total_cpu_ms_per_call()),
            "sipp_cpu_ms_per_call": _r(self.cpu_ms_per_call("sipp")),
            # The chat line's load generator (the bench process: simulator and contacts).
            "simulator_cpu_ms_per_call": _r(self.cpu_ms_per_call("simulator")),
            "controller_rss_peak_mb": _r(self.rss_peak_mb("controller")),
            "asterisk_rss_peak_mb": _r(self.rss_peak_mb("asterisk")),
            "postgres_rss_peak_mb": _r(self.rss_peak_mb("postgres")),
            "controller_processes": self._peak("controller", "processes_peak"),
            "asterisk_threads_peak": self._peak("asterisk", "threads_peak"),
            "asterisk_fds_peak": self._peak("asterisk", "fds_peak"),
            "host_cpu_pct": _r(self.host_cpu_pct, 1),
            "host_cpu_peak_pct": _r(self.host_cpu_peak_pct, 1),
            "controller_runqueue_wait_ms_per_s": _r(self._wait_ms_per_s("controller")),
            "controller_peak_runqueue_wait_ms_per_s": _r(
                self._usage("controller", "peak_wait_ms_per_s")
            ),
            "controller_peak_cores": _r(self._usage("controller", "peak_cores"), 2),
            "asterisk_peak_cores": _r(self._usage("asterisk", "peak_cores"), 2),
            "achieved_per_s": _r(self.achieved_rate),
            "controller_per_cpu_s": _r(per_cpu_second(self.cpu_ms_per_call("controller"))),
            "failures": ";".join(f"{k}={v}" for k, v in sorted(self.failures.items())),
            "profiled": self.profiled,
            "slowest_waits_ms": slowest_waits(self.waits_ms),
            "runs": len(self.runs) or 1,
            "runs_passed": (
                sum(bool(r["run_passed"]) for r in self.runs) if self.runs else int(self.run_passed)
            ),
            "run_passed": self.run_passed,
            # Every run's p99 and failure share, in the order run ("" for one run).
            "response_p99_ms_runs": " / ".join(_fmt(r["response_p99_ms"]) for r in self.runs),
            "late_p99_ms_runs": " / ".join(_fmt(r.get("late_p99_ms")) for r in self.runs),
            "failure_ratio_runs": " / ".join(f"{r['failure_ratio']:.3f}" for r in self.runs),
        }


def majority_decided(passed: Sequence[bool], repeat: int) -> bool:
    """Whether the runs so far (``passed``: each run's own verdict, in order) already
    fix the majority verdict of ``repeat`` runs (``combine_runs``: more than half
    passed), whatever the runs left would give: with 3, two passes or two failures.

    ``ivr bench --repeat K`` stops a step there: a third run after two that agree
    changes neither the verdict nor which runs the figures come from, only which
    of them is the median. Raises ``ValueError`` for ``repeat`` < 1 or more runs
    than ``repeat``.
    """
    if repeat < 1 or len(passed) > repeat:
        raise ValueError(f"{len(passed)} runs of a step repeated {repeat} times")
    passes = sum(passed)
    left = repeat - len(passed)
    return passes * 2 > repeat or (passes + left) * 2 <= repeat


def combine_runs(runs: Sequence[StepResult]) -> StepResult:
    """One step from ``K`` runs of the same N (``ivr bench --repeat K``).

    The verdict is the majority's: the step passes when more than half of its
    runs passed (2 of 3; with an even K, 1 of 2 is not more than half), so one
    unlucky run neither makes nor breaks a capacity. The figures are those of
    the median run (the lower middle one of an even count) among the runs
    that agree with the verdict, ordered by response p99 (lines without the
    controller: the callers' lateness p99; a run without samples last): a passing
    step never shows a failed run's figures, nor a failing step a passing run's.
    Its CPU per call, though, is each process's median over those same runs
    (``statistics.median``: of two, their mean), not the median-latency run's own:
    a run's CPU and its p99 do not rank alike, and the CPU goal reads the CPU.
    ``runs`` keeps every run's summary row, so a report shows the spread. One run
    is returned as it is.
    Raises ``ValueError`` for no runs or runs of different N.
    """
    if not runs:
        raise ValueError("combine_runs needs at least one run")
    if len({r.concurrency for r in runs}) != 1:
        raise ValueError(f"runs of different N: {sorted({r.concurrency for r in runs})}")
    if len(runs) == 1:
        return runs[0]

    def p99_order(run: StepResult) -> tuple[bool, float]:
        # the response p99 on the controller's lines, the callers' lateness on the others
        p99 = percentile(run.response_ms, 99)
        if p99 is None:
            p99 = percentile(run.late_ms, 99)
        return (p99 is None, p99 or 0.0)

    majority = sum(r.run_passed for r in runs) * 2 > len(runs)
    agreeing = sorted((r for r in runs if r.run_passed == majority), key=p99_order)
    median = agreeing[(len(agreeing) - 1) // 2]
    cpu_medians: dict[tuple[str, bool], float | None] = {}
    for process in sorted({p for r in agreeing for p in r.usage}):
        for net in (True, False):
            values = [v for r in agreeing if (v := r.cpu_ms_per_call(process, net=net)) is not None]
            cpu_medians[(process, net)] = statistics.median(values) if values else None
    return replace(
        median,
        cpu_medians=cpu_medians,
        runs=[r.summary() for r in runs],
        majority_passed=majority,
        profiled=any(r.profiled for r in runs),  # py-spy ran in one of them: the CPU may show it
    )


def per_cpu_second(cpu_ms_per_unit: float | None) -> float | None:
    """Calls (or messages) one core-second of CPU serves: 1000 / CPU ms per unit.

    >>> per_cpu_second(4.0), per_cpu_second(0.0), per_cpu_second(None)
    (250.0, None, None)
    """
    if not cpu_ms_per_unit:
        return None
    return 1000.0 / cpu_ms_per_unit


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class LineSummary:
    line: str
    title: str
    capacity: int  # the largest concurrency whose step passed (0: none did)
    capped: bool  # True when no step failed: the capacity is at least ``capacity``
    best: dict[str, Any] | None  # the summary row of the step at capacity
    steps: int = 0  # how many steps ran (0: the line did not run, e.g. its warm-up failed)
    # the summary row of every step that passed, by its N (cpu_ratio at one load)
    passed: dict[int, dict[str, Any]] = field(default_factory=dict)

    def capacity_text(self) -> str:
        return f"≥{self.capacity}" if self.capped else str(self.capacity)


def summarize_line(line: str, title: str, steps: Sequence[StepResult]) -> LineSummary:
    passed = [s for s in steps if s.passed]
    best = max(passed, key=lambda s: s.concurrency) if passed else None
    failed_any = any(not s.passed for s in steps)
    return LineSummary(
        line=line,
        title=title,
        capacity=best.concurrency if best else 0,
        capped=bool(steps) and not failed_any,
        best=best.summary() if best else None,
        steps=len(steps),
        passed={s.concurrency: s.summary() for s in passed},
    )


def capacity_ratio(ari: LineSummary, plain: LineSummary) -> dict[str, Any]:
    """ARI capacity over plain-dialplan capacity, with how sure that figure is.

    When a line never failed its capacity is a lower bound, so the ratio is
    only bounded: ``bound`` says which way ("exact", "at least", "at most",
    "unknown").
    """
    if plain.capacity == 0 or not ari.steps:
        return {"ratio": None, "bound": "unknown"}
    ratio = ari.capacity / plain.capacity
    if ari.capped and plain.capped:
        bound = "unknown"  # both hit the top of the steps: only "≥" on each side
    elif ari.capped:
        bound = "at least"
    elif plain.capped:
        bound = "at most"
    else:
        bound = "exact"
    return {"ratio": round(ratio, 3), "bound": bound}


def cpu_ratio(ari_best: dict[str, Any] | None, plain_best: dict[str, Any] | None) -> float | None:
    """CPU per call of the whole ARI path (controller + Asterisk [+ PostgreSQL]) over
    plain dialplan Asterisk's (the issue's "CPU per call ≤ 1.3× plain")."""
    if not ari_best or not plain_best:
        return None
    ari = sum(
        ari_best.get(key) or 0.0
        for key in (
            "controller_cpu_ms_per_call",
            "asterisk_cpu_ms_per_call",
            "postgres_cpu_ms_per_call",
        )
    )
    plain = plain_best.get("asterisk_cpu_ms_per_call") or 0.0
    if plain <= 0:
        return None
    return round(ari / plain, 2)


def window(samples: Iterable[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """The reaction-log samples written between ``start`` and ``end`` (epoch seconds)."""
    return [s for s in samples if start <= float(s.get("t", 0.0)) <= end]


def split_samples(
    samples: Iterable[dict[str, Any]],
) -> tuple[list[float], list[float], list[float]]:
    """(reaction ms, response ms, reaction ms counted from Asterisk's event stamp)."""
    reaction: list[float] = []
    response: list[float] = []
    from_asterisk: list[float] = []
    for s in samples:
        ms = float(s["ms"])
        if s.get("kind") == "reaction":
            reaction.append(ms)
            if s.get("from_asterisk_ms") is not None:
                from_asterisk.append(float(s["from_asterisk_ms"]))
        elif s.get("kind") == "response":
            response.append(ms)
    return reaction, response, from_asterisk


def path_waits(paths: Iterable[Sequence[dict[str, Any]]]) -> dict[str, list[float]]:
    """Where the callers waited, from their call records' paths (``CallRecord.step``):
    ``{name: [ms, ...]}``, one sample per occurrence.

    - ``<node>``: a node's action (its ``node`` step to the ``action`` step that
      follows: the database reads, the booking, the SMS enqueue, REST requests an
      action makes);
    - ``key@<node>``: a key taken at ``node`` (its ``digits`` step) to the next
      ``prompt`` step (what the caller hears next is sent).

    Steps carry ``at`` (seconds from the call's start, ms resolution); paths with
    other steps in between are read the same way. Nodes without an action (menus,
    decisions) give no sample.
    """
    waits: dict[str, list[float]] = {}
    for path in paths:
        for i, step in enumerate(path):
            kind = step.get("kind")
            if kind == "node" and i + 1 < len(path) and path[i + 1].get("kind") == "action":
                name = str(step.get("node"))
                waits.setdefault(name, []).append((path[i + 1]["at"] - step["at"]) * 1000)
            elif kind == "digits":
                heard = next((s for s in path[i + 1 :] if s.get("kind") == "prompt"), None)
                if heard is not None:
                    name = f"key@{step.get('node')}"
                    waits.setdefault(name, []).append((heard["at"] - step["at"]) * 1000)
    return waits


def slowest_waits(waits: dict[str, list[float]], top: int = 4) -> str:
    """``"open_case_check 91/1245; find_slot 81/1215"``: the ``top`` waits by p99
    (ms, p50/p99), for a step's row; empty without samples."""
    ranked = sorted(
        ((percentile(v, 99) or 0.0, percentile(v, 50) or 0.0, k) for k, v in waits.items() if v),
        reverse=True,
    )
    return "; ".join(f"{k} {p50:.0f}/{p99:.0f}" for p99, p50, k in ranked[:top])


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The controller's reaction log (``CITAS_REACTION_LOG``); bad lines are skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            sample = json.loads(line)
        except ValueError:
            continue  # a line cut short by the writer
        if isinstance(sample, dict) and "ms" in sample:
            out.append(sample)
    return out


def write_results(out_dir: Path, results: dict[str, Any], steps: Sequence[StepResult]) -> None:
    """results.json (``results`` with every step's row under "steps" and, for ``--repeat``,
    every run's row under "step_runs"), results.csv (the steps) and runs.csv (every run:
    the step's own row when it ran once)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [s.summary() for s in steps]
    runs = [run for s, row in zip(steps, rows, strict=True) for run in (s.runs or [row])]
    (out_dir / "results.json").write_text(
        json.dumps(results | {"steps": rows, "step_runs": runs}, indent=2, default=_json_default)
        + "\n",
        encoding="utf-8",
    )
    for name, table_rows in (("results.csv", rows), ("runs.csv", runs)):
        header = list(table_rows[0]) if table_rows else []
        write_csv(out_dir / name, header, [[row[k] for k in header] for row in table_rows])


def _json_default(value: object) -> object:
    if isinstance(value, ProcessUsage):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def table(lines: Sequence[LineSummary]) -> str:
    """The human summary: one row per line, at its capacity (latencies in ms)."""
    head = (
        f"{'variant':<15} {'capacity':>8} {'done/placed':>11} {'react p50':>9} {'p99':>6} "
        f"{'from-ast p50':>12} {'p99':>6} {'resp p50':>8} {'p99':>6} "
        f"{'CPU ms/call ctl':>15} {'ast':>6} {'RSS MB ctl':>10} {'ast':>6}"
    )
    out = [head, "-" * len(head)]
    for s in lines:
        b = s.best or {}
        done = f"{b.get('completed', 0)}/{b.get('placed', 0)}" if b else "-"
        out.append(
            f"{s.line:<15} {s.capacity_text():>8} {done:>11} "
            f"{_fmt(b.get('reaction_p50_ms')):>9} {_fmt(b.get('reaction_p99_ms')):>6} "
            f"{_fmt(b.get('from_asterisk_p50_ms')):>12} {_fmt(b.get('from_asterisk_p99_ms')):>6} "
            f"{_fmt(b.get('response_p50_ms')):>8} {_fmt(b.get('response_p99_ms')):>6} "
            f"{_fmt(b.get('controller_cpu_ms_per_call')):>15} "
            f"{_fmt(b.get('asterisk_cpu_ms_per_call')):>6} "
            f"{_fmt(b.get('controller_rss_peak_mb')):>10} "
            f"{_fmt(b.get('asterisk_rss_peak_mb')):>6}"
        )
    return "\n".join(out)


def step_line(step: StepResult, run: str = "") -> str:
    """One progress line per step, printed as the run goes; ``run`` ("2/3") names one run
    of a repeated step."""
    s = step.summary()
    if step.runs:
        verdict = "ok" if step.passed else "FAIL"
        return (
            f"  {step.variant or step.line:<15} N={step.concurrency:<4} {verdict:<4} "
            f"{s['runs_passed']} of {s['runs']} runs passed; response p99 per run "
            f"{s['response_p99_ms_runs']} ms; late p99 per run {s['late_p99_ms_runs']} ms; "
            f"failed share per run {s['failure_ratio_runs']}; "
            f"median run: resp p50/p99 {_fmt(s['response_p50_ms'])}/{_fmt(s['response_p99_ms'])} ms"
        )
    verdict = "ok" if step.passed else ("SLOW" if step.too_slow else "FAIL")
    why = f" ({s['failures']})" if s["failures"] else ""
    return (
        f"  {step.variant or step.line:<15} N={step.concurrency:<4} "
        + (f"run {run} " if run else "")
        + f"{verdict:<4} {step.completed}/{step.placed} done, {step.failed} failed{why}; "
        f"up at once {step.max_concurrent_seen}"
        + (
            f" (judged while {_fmt(s['up_mean'])} up on average, {s['up_min']} at the fewest)"
            if step.up_mean is not None
            else ""
        )
        + "; "
        f"react p50/p99 {_fmt(s['reaction_p50_ms'])}/{_fmt(s['reaction_p99_ms'])} ms "
        f"(from Asterisk {_fmt(s['from_asterisk_p50_ms'])}/{_fmt(s['from_asterisk_p99_ms'])}); "
        f"resp p50/p99 {_fmt(s['response_p50_ms'])}/{_fmt(s['response_p99_ms'])} ms; "
        f"late p50/p99 {_fmt(s['late_p50_ms'])}/{_fmt(s['late_p99_ms'])} ms; "
        f"CPU/call ctl {_fmt(s['controller_cpu_ms_per_call'])} ms, "
        f"ast {_fmt(s['asterisk_cpu_ms_per_call'])} ms"
        + (f", pg {_fmt(s['postgres_cpu_ms_per_call'])} ms" if step.db == "postgresql" else "")
        + (
            f", kam {_fmt(s['kamailio_cpu_ms_per_call'])} ms"
            if s["kamailio_cpu_ms_per_call"] is not None
            else ""
        )
        + "; "
        f"RSS ctl {_fmt(s['controller_rss_peak_mb'])} MB; machine CPU {_fmt(s['host_cpu_pct'])}%"
        + (
            f" (busiest 2 s {_fmt(s['host_cpu_peak_pct'])}%: ast {_fmt(s['asterisk_peak_cores'])}"
            f" / ctl {_fmt(s['controller_peak_cores'])} cores, ctl run-queue wait "
            f"{_fmt(s['controller_peak_runqueue_wait_ms_per_s'])} ms/s)"
            if s["host_cpu_peak_pct"] is not None
            else ""
        )
    )


def first_failed(steps: Sequence[StepResult]) -> int | None:
    """The N of the first step that failed (None: none did, the capacity is a bound)."""
    return next((s.concurrency for s in steps if not s.passed), None)


def versus_plain(summaries: dict[str, LineSummary], lines: dict[str, str]) -> dict[str, Any]:
    """Every controller variant against the plain-dialplan line (the issue's goals).

    ``summaries``: variant name → its summary; ``lines``: variant name → its line.
    For each variant other than ``smoke-dialplan``: ``capacity`` (its capacity over
    plain's, with the bound of ``capacity_ratio``), ``cpu_per_call`` (its CPU per
    call — controller + Asterisk + PostgreSQL — over plain dialplan Asterisk's,
    each at its own capacity step) and ``cpu_per_call_same_n`` (``{"n": N,
    "ratio": r}``: the same ratio with both lines at the variant's capacity N, the
    same number of callers up; None when plain dialplan did not pass that step).
    Plain dialplan's capacity step carries more callers than the variant's, and
    Asterisk's CPU per call moves with the load, so the same-N figure compares one
    workload (docs/perf/bench.md, "What is measured per step"). Empty when plain dialplan did
    not run.
    """
    plain = next((s for n, s in summaries.items() if lines.get(n) == "smoke-dialplan"), None)
    if plain is None:
        return {}
    return {
        name: {
            "capacity": capacity_ratio(s, plain),
            "cpu_per_call": cpu_ratio(s.best, plain.best),
            "cpu_per_call_same_n": _same_n_ratio(s, plain),
        }
        for name, s in summaries.items()
        if lines.get(name) not in ("smoke-dialplan", "chat")
    }


def _same_n_ratio(variant: LineSummary, plain: LineSummary) -> dict[str, Any] | None:
    """``cpu_ratio`` with plain dialplan's step at the variant's capacity N, or None."""
    at = plain.passed.get(variant.capacity)
    ratio = cpu_ratio(variant.best, at) if at is not None else None
    return None if ratio is None else {"n": variant.capacity, "ratio": ratio}


def read_counts(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The controller processes' ``CITAS_ARI_COUNTS`` snapshots (ivr/ari/counters.py:
    one JSON file per process, ``{pid}`` in the name); unreadable files are skipped."""
    out = []
    for path in sorted(paths):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def merge_counts(snapshots: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One variant's ARI counts: the snapshots of all its controller processes summed
    (``calls``, ``events`` by type, ``requests`` by route), and per call (over the
    ``StasisStart`` calls, as ivr.ari.counters does for one process): ``per_call``
    totals and ``per_call_by_type``/``per_call_by_route``. None without snapshots.

    >>> merge_counts([{"calls": 2, "events": {"StasisStart": 2}, "requests": {"POST /x": 4}},
    ...               {"calls": 2, "events": {"StasisStart": 2}, "requests": {"POST /x": 2}}])["per_call"]
    {'events': 1.0, 'requests': 1.5, 'processes': 2}
    """
    if not snapshots:
        return None
    calls = 0
    events: dict[str, int] = {}
    requests: dict[str, int] = {}
    for snap in snapshots:
        calls += int(snap.get("calls") or 0)
        for key, table in (("events", events), ("requests", requests)):
            for name, n in (snap.get(key) or {}).items():
                if isinstance(n, int | float) and not isinstance(n, bool):
                    table[str(name)] = table.get(str(name), 0) + int(n)

    def per(n: int) -> float | None:
        return round(n / calls, 3) if calls else None

    return {
        "calls": calls,
        "events": dict(sorted(events.items())),
        "requests": dict(sorted(requests.items())),
        "per_call": {
            "events": per(sum(events.values())),
            "requests": per(sum(requests.values())),
            "processes": len(snapshots),
        },
        "per_call_by_type": {k: per(v) for k, v in sorted(events.items())},
        "per_call_by_route": {k: per(v) for k, v in sorted(requests.items())},
    }
