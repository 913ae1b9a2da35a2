"""``ivr bench report``: the markdown for docs/PERFORMANCE.md, from results.json.

tests/data/bench-results-small.json is the results.json of a real small run
(docs/perf/bench.md gives its command): plain dialplan, smoke over ARI and
citas on SQLite and PostgreSQL, steps 5 and 10, one with a flame graph.
The goal checks are table-driven over copies of it with the capacities and
CPU figures a goal turns on.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ivr.bench.report import (
    capacity_text,
    goal_checks,
    headline_text,
    load,
    ratio_text,
    render,
    step_table,
    variant_table,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "bench-results-small.json"


@pytest.fixture
def results() -> dict[str, Any]:
    return load(FIXTURE)


def test_the_fixture_is_a_real_run_of_every_line(results: dict[str, Any]) -> None:
    lines = {v["line"] for v in results["variants"].values()}
    assert lines == {"smoke-dialplan", "smoke-ari", "citas"}
    assert {v["db"] for v in results["variants"].values() if v["line"] == "citas"} == {
        "sqlite",
        "postgresql",
    }
    assert results["machine"]["sipp"].startswith("SIPp")
    assert all(s["placed"] > 0 for s in results["steps"])


@pytest.mark.parametrize(
    ("config", "rules"),
    [
        ({}, "Load burst"),  # a run before the load was recorded: a burst, no lateness
        ({"load": "steady", "max_response_p99_ms": 800.0},  # 25061c2: one limit for both
         "a response p99 above 800 ms or a lateness p99 above 800 ms"),
        ({"load": "steady", "max_response_p99_ms": 800.0, "max_late_p99_ms": 1500.0},
         "a response p99 above 800 ms or a lateness p99 above 1500 ms"),
    ],
)  # fmt: skip
def test_the_header_says_the_load_and_every_rule_the_run_judged_on(
    results: dict[str, Any], config: dict[str, Any], rules: str
) -> None:
    kept = {k: v for k, v in results["config"].items() if "p99" not in k and k != "load"}
    md = render({**results, "config": {**kept, **config}})
    assert rules in md
    if "load" not in config:
        assert "lateness p99 above" not in md


def test_render_has_the_facts_the_headline_every_variant_and_every_step(
    results: dict[str, Any],
) -> None:
    md = render(results)
    assert results["config"]["command"] in md
    assert results["machine"]["cpu_model"] in md
    assert headline_text(results) in md
    for name, v in results["variants"].items():
        row = next(line for line in md.splitlines() if line.startswith(f"| {name} | "))
        assert f"| {capacity_text(v)} |" in row
    step_rows = [line for line in md.splitlines() if line.startswith("| ") and " | yes" in line]
    assert len(step_rows) == sum(1 for s in results["steps"] if s["passed"])


def test_every_step_row_carries_its_measured_figures(results: dict[str, Any]) -> None:
    table = step_table(results["steps"]).splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    assert len(table) == 2 + len(results["steps"])
    for row, step in zip(table[2:], results["steps"], strict=True):
        cells = dict(zip(head, (c.strip() for c in row.strip("|").split("|")), strict=True))
        assert cells["variant"] == step["variant"]
        assert cells["N"] == str(step["concurrency"])
        assert cells["done / placed"] == f"{step['completed']} / {step['placed']}"
        ast = step["asterisk_cpu_ms_per_call"]
        assert cells["Asterisk"] == (f"{ast:.1f}" if ast is not None else "–")
        pg = step["postgres_cpu_ms_per_call"]
        assert cells["PostgreSQL"] == (f"{pg:.1f}" if pg is not None else "–")


def test_postgres_cpu_is_shown_for_the_postgresql_variant_only(results: dict[str, Any]) -> None:
    rows = {r.split("|")[1].strip(): r for r in variant_table(results).splitlines()[2:]}
    pg_variant = next(n for n, v in results["variants"].items() if v["db"] == "postgresql")
    pg_cpu = results["variants"][pg_variant]["at_capacity"]["postgres_cpu_ms_per_call"]
    assert pg_cpu is not None
    assert f"/ {pg_cpu:.1f} =" in rows[pg_variant]
    sqlite_variant = next(n for n, v in results["variants"].items() if v["db"] == "sqlite")
    assert "/ – =" in rows[sqlite_variant]


@pytest.mark.parametrize(
    ("same_n", "cell", "headline"),
    [
        ({"n": 480, "ratio": 1.27}, "| 1.45 / 1.27 |", "(CPU/call 1.45×, at the same N 1.27×)"),
        (None, "| 1.45 / – |", "(CPU/call 1.45×, at the same N –)"),
    ],
)
def test_the_table_and_the_headline_give_the_cpu_ratio_both_ways(
    results: dict[str, Any], same_n: dict[str, Any] | None, cell: str, headline: str
) -> None:
    name = next(n for n, v in results["variants"].items() if v["line"] == "smoke-ari")
    vp = results["variants"][name]["versus_plain"]
    vp["cpu_per_call"], vp["cpu_per_call_same_n"] = 1.45, same_n
    rows = {r.split("|")[1].strip(): r for r in variant_table(results).splitlines()[2:]}
    assert cell in rows[name], rows[name]
    assert f"{name} " in headline_text(results)
    assert headline in headline_text(results).split(f"{name} ", 1)[1], headline_text(results)


def test_ari_events_and_requests_per_call_are_in_the_variant_table(
    results: dict[str, Any],
) -> None:
    rows = {r.split("|")[1].strip(): r for r in variant_table(results).splitlines()[2:]}
    counted = {
        n: v["ari_counts"]["per_call"]
        for n, v in results["variants"].items()
        if v.get("ari_counts")
    }
    assert counted  # every ARI variant of the fixture wrote its counts
    for name, per_call in counted.items():
        assert f"| {per_call['events']:.1f} / {per_call['requests']:.1f} |" in rows[name]
    assert "| – |" in rows["smoke-dialplan"]  # no controller, no counts


def test_the_flame_graph_is_named_in_the_variant_table(results: dict[str, Any]) -> None:
    profiled = {n: v["profile"] for n, v in results["variants"].items() if v.get("profile")}
    assert profiled
    table = variant_table(results)
    for profile in profiled.values():
        assert f"profile: {profile}" in table


@pytest.mark.parametrize(
    ("variant", "text"),
    [
        ({"capacity": 1280, "capacity_is_lower_bound": False, "at_capacity": {}}, "1280"),
        ({"capacity": 640, "capacity_is_lower_bound": True, "at_capacity": {}}, "≥640"),
        (
            {"capacity": 0, "capacity_is_lower_bound": False, "error": "x", "at_capacity": None},
            "not measured",
        ),
        ({"capacity": 0, "capacity_is_lower_bound": False, "at_capacity": None}, "0"),
    ],
)
def test_capacity_text(variant: dict[str, Any], text: str) -> None:
    assert capacity_text(variant) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        ({"ratio": 0.97, "bound": "exact"}, "0.97"),
        ({"ratio": 0.5, "bound": "at most"}, "≤0.50"),
        ({"ratio": 1.0, "bound": "at least"}, "≥1.00"),
        ({"ratio": 1.0, "bound": "unknown"}, "1.00 (both ≥)"),
        ({"ratio": None, "bound": "unknown"}, "–"),
        (None, "–"),
    ],
)
def test_ratio_text(ratio: dict[str, Any] | None, text: str) -> None:
    assert ratio_text(ratio) == text


def _with(
    results: dict[str, Any],
    *,
    plain: int,
    plain_bound: bool,
    smoke: int,
    smoke_bound: bool,
    citas: int,
    cpu: float,
) -> dict[str, Any]:
    """The fixture with the capacities and ratios a goal check turns on."""
    out = copy.deepcopy(results)
    for v in out["variants"].values():
        if v["line"] == "smoke-dialplan":
            v["capacity"], v["capacity_is_lower_bound"] = plain, plain_bound
        elif v["line"] == "smoke-ari":
            v["capacity"], v["capacity_is_lower_bound"] = smoke, smoke_bound
            bound = "at least" if smoke_bound and not plain_bound else "exact"
            bound = "unknown" if smoke_bound and plain_bound else bound
            bound = "at most" if plain_bound and not smoke_bound else bound
            v["versus_plain"] = {
                "capacity": {"ratio": round(smoke / plain, 3), "bound": bound},
                "cpu_per_call": cpu,
            }
        elif v["line"] == "citas":
            v["capacity"], v["capacity_is_lower_bound"] = citas, False
            v["versus_plain"] = {
                "capacity": {"ratio": citas / plain, "bound": "exact"},
                "cpu_per_call": cpu,
            }
    return out


@pytest.mark.parametrize(
    ("case", "expect", "refuse"),
    [
        (
            {
                "plain": 1600,
                "plain_bound": False,
                "smoke": 1600,
                "smoke_bound": False,
                "citas": 1600,
                "cpu": 1.2,
            },
            ["capacity / plain: 1.00 (goal ≥ 0.95): met", "(goal ≤ 1.3×): met", "ARI smoke"],
            ["not met", "not decidable"],
        ),
        (
            {
                "plain": 1600,
                "plain_bound": False,
                "smoke": 960,
                "smoke_bound": False,
                "citas": 480,
                "cpu": 2.3,
            },
            [
                "capacity / plain: 0.60 (goal ≥ 0.95): **not met**",
                "2.30× (goal ≤ 1.3×): **not met**",
                "capacity 480 ≥ best ARI smoke 960: **not met**",
            ],
            [": met"],
        ),
        (  # plain never failed: the ratio is bounded, the goal cannot be decided
            {
                "plain": 2560,
                "plain_bound": True,
                "smoke": 1280,
                "smoke_bound": False,
                "citas": 1280,
                "cpu": 1.1,
            },
            [
                "not decidable**: plain dialplan never failed",
                "≤0.50 (goal ≥ 0.95): **not met** (upper bound)",
            ],
            [],
        ),
        (  # ARI never failed, plain did: a lower bound above the goal is enough
            {
                "plain": 1280,
                "plain_bound": False,
                "smoke": 1280,
                "smoke_bound": True,
                "citas": 1280,
                "cpu": 1.3,
            },
            ["≥1.00 (goal ≥ 0.95): met (lower bound)", "(goal ≤ 1.3×): met"],
            ["not met"],
        ),
    ],
)
def test_goal_checks(
    results: dict[str, Any], case: dict[str, Any], expect: list[str], refuse: list[str]
) -> None:
    text = "\n".join(goal_checks(_with(results, **case)))
    for part in expect:
        assert part in text, text
    for part in refuse:
        assert part not in text, text


@pytest.mark.parametrize(
    ("same_n", "expect"),
    [
        ({"n": 480, "ratio": 1.25}, "with plain dialplan at the same N (480): 1.25×, met"),
        ({"n": 480, "ratio": 1.31}, "with plain dialplan at the same N (480): 1.31×, **not met**"),
        (
            None,
            "with plain dialplan at the same N: – (no step that both passed at the variant's capacity)",
        ),
        ("absent", "each at its capacity: 1.45× (goal ≤ 1.3×): **not met**"),
    ],
)
def test_goal_checks_give_the_cpu_ratio_at_the_same_n_beside_each_at_its_capacity(
    results: dict[str, Any], same_n: dict[str, Any] | str | None, expect: str
) -> None:
    case = {"plain": 640, "plain_bound": False, "smoke": 480, "smoke_bound": False}
    out = _with(results, **case, citas=480, cpu=1.45)
    smoke = next(v for v in out["variants"].values() if v["line"] == "smoke-ari")
    if same_n != "absent":  # a results.json from before the figure has no key
        smoke["versus_plain"]["cpu_per_call_same_n"] = same_n
    line = next(x for x in goal_checks(out) if x.startswith("- smoke-ari") and "CPU" in x)
    assert "each at its capacity: 1.45× (goal ≤ 1.3×): **not met**" in line, line
    assert line.endswith(expect), line


def test_goal_checks_without_the_plain_line() -> None:
    results = {"variants": {"citas ×1 sqlite": {"line": "citas"}}, "steps": []}
    assert goal_checks(results) == [
        "Goals: not checked (the run has no smoke-dialplan or no smoke-ari variant)."
    ]


def test_load_refuses_what_is_not_a_bench_result(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"lines": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"not the results\.json"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere")


def test_ivr_bench_report_prints_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results: dict[str, Any]
) -> None:
    from ivr.bench.cli import report

    (tmp_path / "results.json").write_text(FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    assert report(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == render(results).strip()
    assert report(["report", str(tmp_path / "missing")]) == 2
    assert report(["report"]) == 2
    assert report(["nonsense", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    ("changes", "cell"),
    [
        ({"passed": True, "profiled": False}, "yes"),
        ({"passed": True, "profiled": True}, "yes (py-spy)"),
        ({"passed": False, "too_slow": True}, "no (p99)"),
        ({"passed": False, "too_slow": False, "profiled": True}, "no (py-spy)"),
    ],
)
def test_the_passed_cell_says_why_and_marks_the_profiled_step(
    results: dict[str, Any], changes: dict[str, Any], cell: str
) -> None:
    step = {**results["steps"][0], **changes}
    row = step_table([step]).splitlines()[2]
    assert row.split("|")[6].strip() == cell


def test_a_repeated_step_shows_every_runs_p99(results: dict[str, Any]) -> None:
    step = {
        **results["steps"][0],
        "runs": 3,
        "runs_passed": 2,
        "response_p99_ms_runs": "610.0 / 1070.0 / 720.0",
    }
    once = {**results["steps"][0], "runs": 1}
    older = {
        k: v for k, v in results["steps"][0].items() if k != "runs"
    }  # a results.json of before
    plain = {
        **step, "response_p99_ms": None, "response_p99_ms_runs": "- / - / -",
        "late_p99_ms_runs": "776.0 / 1204.5 / 810.0",
    }  # fmt: skip
    rows = step_table([step, once, older, plain]).splitlines()[2:]
    assert [r.rstrip("|").split("|")[-1].strip() for r in rows] == [
        "2 of 3: 610.0 / 1070.0 / 720.0",
        "",
        "",
        "2 of 3: late 776.0 / 1204.5 / 810.0",  # plain dialplan: no response, its lateness
    ]


@pytest.mark.parametrize(
    ("figures", "machine", "busiest"),
    [
        (
            {"host_cpu_pct": 76.4, "host_cpu_peak_pct": 98.6, "asterisk_peak_cores": 1.35,
             "controller_peak_cores": 0.55, "controller_peak_runqueue_wait_ms_per_s": 612.4},
            "76 / 99",
            "1.35 / 0.55, 612",
        ),
        # plain dialplan: no controller, Asterisk's cores only
        (
            {"host_cpu_pct": 60.0, "host_cpu_peak_pct": 70.0, "asterisk_peak_cores": 1.2,
             "controller_peak_cores": None, "controller_peak_runqueue_wait_ms_per_s": None},
            "60 / 70",
            "1.20 / –, –",
        ),
        # a results.json from before the busiest window was kept
        ({"host_cpu_pct": 55.0}, "55 / –", ""),
    ],
)  # fmt: skip
def test_a_step_shows_the_machine_and_who_waited_in_its_busiest_seconds(
    results: dict[str, Any], figures: dict[str, Any], machine: str, busiest: str
) -> None:
    base = {
        k: v
        for k, v in results["steps"][0].items()
        if not k.startswith(("host_cpu", "asterisk_peak", "controller_peak"))
    }
    row = step_table([{**base, **figures}]).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    head = [c.strip() for c in step_table([]).splitlines()[0].strip("|").split("|")]
    assert len(cells) == len(head) == 19
    # the calls up while the step was judged (sipp's rows): "–" before they were kept
    up = head.index("up while judged: mean / fewest")
    assert "up_mean" not in base and cells[up] == "–"
    row = step_table([{**base, **figures, "up_mean": 388.46, "up_min": 361}])
    assert row.splitlines()[2].strip("|").split("|")[up].strip() == "388.5 / 361"
    # the callers' lateness (every line), "–" in a results.json from before it was kept
    late = head.index("late p50 / p99 ms")
    older = {k: v for k, v in base.items() if not k.startswith("late_")}
    row = step_table([{**older, **figures, "late_p50_ms": 12.5, "late_p99_ms": 840.04}])
    assert row.splitlines()[2].strip("|").split("|")[late].strip() == "12.5 / 840.0"
    row = step_table([{**older, **figures}])
    assert row.splitlines()[2].strip("|").split("|")[late].strip() == "–"
    assert cells[head.index("machine CPU % step / busiest 2 s")] == machine
    assert (
        cells[head.index("busiest 2 s: cores Asterisk / ctl, ctl run-queue wait ms/s")] == busiest
    )


def test_kamailio_cpu_is_added_for_a_cluster_variant_only(results: dict[str, Any]) -> None:
    # A cluster variant (issue 14) bills Kamailio beside the nodes' parts: "+ K".
    pg_variant = next(n for n, v in results["variants"].items() if v["db"] == "postgresql")
    cluster = copy.deepcopy(results["variants"][pg_variant])
    cluster["at_capacity"]["kamailio_cpu_ms_per_call"] = 1.5
    results["variants"]["citas ×1 pg · 2 nodes"] = cluster
    rows = {r.split("|")[1].strip(): r for r in variant_table(results).splitlines()[2:]}
    pg = cluster["at_capacity"]["postgres_cpu_ms_per_call"]
    assert f"/ {pg:.1f} + 1.5 =" in rows["citas ×1 pg · 2 nodes"]
    assert " + " not in rows[pg_variant].split("|")[5]


def test_the_plot_s_title_wraps_the_headline_s_long_line_and_keeps_every_figure(
    results: dict[str, Any],
) -> None:
    import doctest

    import ivr.bench.plot as plot_module

    assert doctest.testmod(plot_module).failed == 0
    headline = headline_text(results)
    title = plot_module.wrapped(headline)
    assert max(len(line) for line in title.splitlines()) <= plot_module.TITLE_WIDTH
    assert title.split() == headline.split()  # nothing dropped, only lines broken
