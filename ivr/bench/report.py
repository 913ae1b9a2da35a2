"""``ivr bench report <results dir>``: the markdown for docs/PERFORMANCE.md, from
``results.json`` alone, so the figures in the docs are the run's.

Three parts: the headline (each variant's capacity, the ratios to plain
dialplan and the issue's three goals checked), the per-variant table at
capacity, and every step. Pure: ``render(results)`` takes the parsed JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The "done when" (issue 13): ARI smoke ≥ 0.95 × plain dialplan's capacity,
# citas ≥ ARI smoke's, CPU per call of the ARI path ≤ 1.3 × plain dialplan Asterisk's.
ARI_CAPACITY_GOAL = 0.95
CPU_GOAL = 1.3


def load(results_dir: Path) -> dict[str, Any]:
    """``results_dir/results.json`` parsed (a results.json path is accepted too).

    Raises FileNotFoundError or ValueError (not JSON, or not a bench result)."""
    path = results_dir / "results.json" if results_dir.is_dir() else results_dir
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "variants" not in data or "steps" not in data:
        raise ValueError(f"{path} is not the results.json of this ivr bench (no 'variants')")
    return data


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _times(ratio: Any) -> str:
    """``1.27×``, or ``–`` when there is no ratio."""
    return "–" if ratio is None else f"{_num(ratio, 2)}×"


def _pair(a: Any, b: Any, digits: int = 1) -> str:
    if a is None and b is None:
        return "–"
    return f"{_num(a, digits)} / {_num(b, digits)}"


def capacity_text(variant: dict[str, Any]) -> str:
    """``1280`` (measured: the next step failed), ``≥2560`` (no step failed), or the
    error when the variant did not run."""
    if variant.get("error") and not variant.get("at_capacity"):
        return "not measured"
    cap = int(variant.get("capacity") or 0)
    return f"≥{cap}" if variant.get("capacity_is_lower_bound") else str(cap)


def ratio_text(ratio: dict[str, Any] | None) -> str:
    """``0.97`` when exact, ``≥0.50`` / ``≤0.50`` when bounded one way, ``1.00
    (both ≥)`` when both capacities are lower bounds, ``–`` when not measured."""
    if not ratio or ratio.get("ratio") is None:
        return "–"
    value = f"{float(ratio['ratio']):.2f}"
    bound = str(ratio.get("bound"))
    if bound == "unknown":
        return f"{value} (both ≥)"
    return {"at least": "≥", "at most": "≤"}.get(bound, "") + value


def goal_checks(results: dict[str, Any]) -> list[str]:
    """The issue's three goals, each as one line: met, not met, or not decidable and
    why (a bounded capacity, a variant that did not run)."""
    variants: dict[str, dict[str, Any]] = results["variants"]
    out: list[str] = []
    plain = next((v for v in variants.values() if v["line"] == "smoke-dialplan"), None)
    smoke = {n: v for n, v in variants.items() if v["line"] == "smoke-ari"}
    citas = {n: v for n, v in variants.items() if v["line"] == "citas"}
    if plain is None or not smoke:
        return ["Goals: not checked (the run has no smoke-dialplan or no smoke-ari variant)."]
    if plain.get("capacity_is_lower_bound"):
        out.append(
            f"- ARI smoke ≥ {ARI_CAPACITY_GOAL} × plain: **not decidable**: plain dialplan "
            f"never failed (capacity ≥{plain['capacity']}); step it further."
        )
    for name, v in smoke.items():
        r = (v.get("versus_plain") or {}).get("capacity") or {}
        verdict = _verdict(r, ARI_CAPACITY_GOAL, higher_is_better=True)
        out.append(
            f"- {name} capacity / plain: {ratio_text(r)} (goal ≥ {ARI_CAPACITY_GOAL}): {verdict}"
        )
    for name, v in {**smoke, **citas}.items():
        vp = v.get("versus_plain") or {}
        cpu = vp.get("cpu_per_call")
        verdict = "–" if cpu is None else _cpu_verdict(cpu)
        same_n = vp.get("cpu_per_call_same_n") or {}
        at_n = same_n.get("ratio")
        if "cpu_per_call_same_n" not in vp:
            same_text = ""  # a results.json from before the figure
        elif at_n is None:
            same_text = (
                "; with plain dialplan at the same N: – (no step that both passed "
                "at the variant's capacity)"
            )
        else:
            same_text = (
                f"; with plain dialplan at the same N ({same_n.get('n')}): {_num(at_n, 2)}×, "
                + _cpu_verdict(at_n)
            )
        out.append(
            f"- {name} CPU per call / plain dialplan Asterisk's, each at its capacity: "
            f"{_num(cpu, 2)}× (goal ≤ {CPU_GOAL}×): {verdict}" + same_text
        )
    best_smoke = max(smoke.values(), key=lambda v: int(v.get("capacity") or 0))
    for name, v in citas.items():
        cap, target = int(v.get("capacity") or 0), int(best_smoke.get("capacity") or 0)
        if v.get("capacity_is_lower_bound") and cap < target:
            verdict = "not decidable (never failed below the target)"
        else:
            verdict = "met" if cap >= target else "**not met**"
        out.append(
            f"- {name} capacity {capacity_text(v)} ≥ best ARI smoke "
            f"{capacity_text(best_smoke)}: {verdict}"
        )
    return out


def _cpu_verdict(ratio: float) -> str:
    return "met" if ratio <= CPU_GOAL else "**not met**"


def _verdict(ratio: dict[str, Any], goal: float, *, higher_is_better: bool) -> str:
    value, bound = ratio.get("ratio"), ratio.get("bound")
    if value is None:
        return "not measured"
    ok = value >= goal if higher_is_better else value <= goal
    if bound == "exact":
        return "met" if ok else "**not met**"
    if bound == "at least" and ok:
        return "met (lower bound)"
    if bound == "at most" and not ok:
        return "**not met** (upper bound)"
    return "not decidable (bounded ratio)"


def headline_text(results: dict[str, Any]) -> str:
    """The few lines ``ivr bench`` prints at the end (plain text)."""
    variants: dict[str, dict[str, Any]] = results["variants"]
    parts = [f"{name} {capacity_text(v)}" for name, v in variants.items()]
    text = "capacity: " + "; ".join(parts)
    ratios = [
        f"{name} {ratio_text(v['versus_plain']['capacity'])}"
        f" (CPU/call {_times(v['versus_plain'].get('cpu_per_call'))}, at the same N "
        f"{_times((v['versus_plain'].get('cpu_per_call_same_n') or {}).get('ratio'))})"
        for name, v in variants.items()
        if v.get("versus_plain")
    ]
    if ratios:
        text += (
            "\nversus plain dialplan (capacity ratio; CPU per call ratio, each at its capacity"
            " and at the same N): " + "; ".join(ratios)
        )
    m = results.get("machine", {})
    text += f"\n{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {m.get('date', '?')}"
    return text


VARIANT_HEAD = (
    "| variant | capacity | first failed N | vs plain: capacity | CPU ms/call at capacity: "
    "controller / Asterisk / PostgreSQL (+ Kamailio) = total "
    "| vs plain: CPU/call, each at its capacity / at the same N "
    "| response p50 / p99 ms "
    "| late p99 ms | from Asterisk p99 ms | controller processes | ARI events / requests per call | note |"
)


def variant_table(results: dict[str, Any]) -> str:
    rows = [VARIANT_HEAD, "|" + " --- |" * 12]
    for name, v in results["variants"].items():
        b = v.get("at_capacity") or {}
        vp = v.get("versus_plain") or {}
        kamailio = b.get("kamailio_cpu_ms_per_call")
        cpu = (
            f"{_num(b.get('controller_cpu_ms_per_call'))} / {_num(b.get('asterisk_cpu_ms_per_call'))}"
            f" / {_num(b.get('postgres_cpu_ms_per_call'))}"
            + (f" + {_num(kamailio)}" if kamailio is not None else "")
            + f" = {_num(b.get('total_cpu_ms_per_call'))}"
            if b
            else "–"
        )
        per_call = (v.get("ari_counts") or {}).get("per_call") or {}
        counts = _pair(per_call.get("events"), per_call.get("requests"))
        note = v.get("error") or ""
        if v.get("profile"):
            note = (note + "; " if note else "") + f"profile: {v['profile']}"
        rows.append(
            f"| {name} | {capacity_text(v)} | {_num(v.get('first_failed_step'))} "
            f"| {ratio_text(vp.get('capacity'))} | {cpu} "
            f"| {_num(vp.get('cpu_per_call'), 2)} / "
            f"{_num((vp.get('cpu_per_call_same_n') or {}).get('ratio'), 2)} "
            f"| {_pair(b.get('response_p50_ms'), b.get('response_p99_ms'))} "
            f"| {_num(b.get('late_p99_ms'))} | {_num(b.get('from_asterisk_p99_ms'))} | {_num(b.get('controller_processes'))} "
            f"| {counts} | {note} |"
        )
    return "\n".join(rows)


STEP_HEAD = (
    "| variant | N | up while judged: mean / fewest | calls/s | done / placed | passed "
    "| response p50 / p99 ms "
    "| late p50 / p99 ms | from Asterisk p50 / p99 ms | CPU ms/call ctl | Asterisk | PostgreSQL | sipp "
    "| Asterisk threads / fds | machine CPU % step / busiest 2 s "
    "| busiest 2 s: cores Asterisk / ctl, ctl run-queue wait ms/s "
    "| failures | slowest waits p50/p99 ms | runs passed: p99 ms per run |"
)


def _runs(step: dict[str, Any]) -> str:
    """``--repeat``: "2 of 3: 610 / 720 / 1070" (a step run once, or an older file: empty)."""
    if int(step.get("runs") or 1) < 2:
        return ""
    p99s = step.get("response_p99_ms_runs", "")
    if not step.get("response_p99_ms") and step.get("late_p99_ms_runs"):
        p99s = f"late {step['late_p99_ms_runs']}"  # plain dialplan: the callers' lateness
    return f"{step.get('runs_passed')} of {step['runs']}: {p99s}"


def _busiest(step: dict[str, Any]) -> str:
    """``1.35 / 0.55, 612``: the cores Asterisk and the controllers used in the step's
    busiest 2 s, and how long the controllers' threads waited for a core then
    (ms per second, summed over their threads); empty for an older results.json."""
    wait = step.get("controller_peak_runqueue_wait_ms_per_s")
    cores = (step.get("asterisk_peak_cores"), step.get("controller_peak_cores"))
    if wait is None and cores == (None, None):
        return ""
    return f"{_pair(*cores, 2)}, {_num(wait, 0)}"


def step_table(steps: Sequence[dict[str, Any]]) -> str:
    rows = [STEP_HEAD, "|" + " --- |" * 19]
    for s in steps:
        passed = "yes" if s.get("passed") else ("no (p99)" if s.get("too_slow") else "no")
        if s.get("profiled"):
            passed += " (py-spy)"
        rows.append(
            f"| {s.get('variant') or s.get('line')} | {s['concurrency']} "
            f"| {_pair(s.get('up_mean'), s.get('up_min'))} | {_num(s.get('rate_cps'))} "
            f"| {s['completed']} / {s['placed']} | {passed} "
            f"| {_pair(s.get('response_p50_ms'), s.get('response_p99_ms'))} "
            f"| {_pair(s.get('late_p50_ms'), s.get('late_p99_ms'))} "
            f"| {_pair(s.get('from_asterisk_p50_ms'), s.get('from_asterisk_p99_ms'))} "
            f"| {_num(s.get('controller_cpu_ms_per_call'))} | {_num(s.get('asterisk_cpu_ms_per_call'))} "
            f"| {_num(s.get('postgres_cpu_ms_per_call'))} | {_num(s.get('sipp_cpu_ms_per_call'), 2)} "
            f"| {_pair(s.get('asterisk_threads_peak'), s.get('asterisk_fds_peak'), 0)} "
            f"| {_pair(s.get('host_cpu_pct'), s.get('host_cpu_peak_pct'), 0)} | {_busiest(s)} "
            f"| {s.get('failures') or ''} "
            f"| {s.get('slowest_waits_ms') or ''} | {_runs(s)} |"
        )
    return "\n".join(rows)


def _load_shape(load: object) -> str:
    """How the run's steps placed their calls (results.json ``config.load``; runs before
    it was recorded were bursts)."""
    if load == "steady":
        return "steady (N calls per call length, judged while N were up)"
    return "burst (the first N calls within half a call, at most 10 s)"


def render(results: dict[str, Any]) -> str:
    """The markdown: headline (facts, command, goals), variants, steps."""
    m = results.get("machine", {})
    c = results.get("config", {})
    wall = float(results.get("wall_s") or 0.0)
    load = " ".join(str(x) for x in m.get("load_avg", []))
    # The lateness rule came with the load; 25061c2 (b47) judged it on the response limit.
    late_limit = c.get("max_late_p99_ms", c.get("max_response_p99_ms") if c.get("load") else None)
    out = [
        f"Run of {results.get('started_at', '?')} ({m.get('date', '?')}): "
        f"`{c.get('command') or 'ivr bench'}`, {wall / 60:.1f} min wall time.",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gb', '?')} GB, {m.get('os', '?')}, kernel {m.get('kernel', '?')}, "
        f"Python {m.get('python', '?')}, {m.get('asterisk', 'Asterisk ?')}, {m.get('sipp', '?')}; "
        f"load average at the start {load or '?'} (1, 5, 15 min).",
        f"Load {_load_shape(c.get('load'))}; hold {_num(c.get('hold_s'))} s per step, "
        "a step fails above "
        f"{float(c.get('threshold', 0.05)) * 100:g} % failed calls, a response p99 above "
        f"{_num(c.get('max_response_p99_ms'), 0)} ms"
        + (f" or a lateness p99 above {_num(late_limit, 0)} ms" if late_limit is not None else "")
        + f"; RTP {c.get('rtp_range', '?')}.",
        "",
        "```",
        headline_text(results),
        "```",
        "",
        *goal_checks(results),
        "",
        variant_table(results),
        "",
        "Every step (late: the callers' wait from their last key to the IVR's BYE past "
        "the warm-up call's, sipp's clock, every line; "
        "CPU per completed call with each process's idle taken off; "
        "machine CPU: all processes, both cores, sipp included, over the step and in "
        "its busiest 2 s; run-queue wait: the controllers' threads runnable but not "
        "running, from the kernel's schedstat; *(py-spy)*: the "
        "profiled step, whose controller CPU includes the sampler's pauses):",
        "",
        step_table(results["steps"]),
        "",
    ]
    return "\n".join(out)
