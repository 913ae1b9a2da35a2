"""The pure parts of ``ivr bench``: percentiles, the stop rule, aggregation, files."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ivr.bench.lines import CITAS, LINES, SMOKE_ARI, SMOKE_DIALPLAN
from ivr.bench.runner import (
    judged_key_to_bye,
    mark_key_to_bye,
    mark_success,
    ramp_seconds,
    read_key_to_bye,
    read_ok_ids,
    read_stat,
    sipp_duration,
)
from ivr.bench.stats import (
    ProcessUsage,
    StepResult,
    capacity_ratio,
    cpu_ratio,
    next_step,
    parse_steps,
    percentile,
    read_samples,
    split_samples,
    step_line,
    step_passes,
    summarize_line,
    table,
    window,
    write_results,
)
from ivr.scenarios.sippxml import caller_xml


def step(n: int, placed: int, failed: int, line: str = "smoke-ari", **kw: object) -> StepResult:
    return StepResult(
        line=line,
        concurrency=n,
        placed=placed,
        completed=placed - failed,
        failed=failed,
        duration_s=10.0,
        rate_cps=1.0,
        max_concurrent_seen=n,
        **kw,  # type: ignore[arg-type]
    )


# -- percentiles ------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    values = [10.0, 1.0, 4.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 90) == pytest.approx(7.6)
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)


def test_percentile_of_nothing_is_none_and_bad_pct_raises() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# -- the stop rule -----------------------------------------------------------------


def test_step_passes_at_the_threshold_and_not_above() -> None:
    assert step_passes(100, 5, 0.05)
    assert not step_passes(100, 6, 0.05)
    assert not step_passes(0, 0, 0.05)  # nothing placed proves nothing


def test_next_step_walks_up_then_stops_after_a_failure() -> None:
    steps = [5, 10, 20, 40]
    done: list[StepResult] = []
    assert next_step(steps, done, 100) == 5
    done.append(step(5, 5, 0))
    assert next_step(steps, done, 100) == 10
    done.append(step(10, 10, 1))  # 10% failed
    assert next_step(steps, done, 100) is None


def test_next_step_stops_at_max_calls_and_at_the_last_step() -> None:
    assert next_step([5, 10, 20], [step(5, 5, 0), step(10, 10, 0)], 15) is None
    assert next_step([5], [step(5, 5, 0)], 100) is None


def test_parse_steps() -> None:
    assert parse_steps("5,10, 20") == [5, 10, 20]
    for bad in ("", "5,x", "10,5", "0,5", "5,5"):
        with pytest.raises(ValueError):
            parse_steps(bad)


# -- aggregation -------------------------------------------------------------------


def test_step_summary_figures() -> None:
    s = step(
        10,
        20,
        1,
        reaction_ms=[1.0, 2.0, 3.0],
        response_ms=[10.0],
        usage={
            "controller": ProcessUsage(cpu_s=1.9, rss_peak_mb=80.0),
            "asterisk": ProcessUsage(cpu_s=0.95, rss_peak_mb=90.5),
        },
    )
    row = s.summary()
    assert row["completed"] == 19 and row["failure_ratio"] == 0.05 and row["passed"]
    assert row["reaction_p50_ms"] == 2.0 and row["reaction_samples"] == 3
    assert row["response_p99_ms"] == 10.0
    assert row["from_asterisk_p50_ms"] is None
    assert row["controller_cpu_ms_per_call"] == 100.0
    assert row["asterisk_cpu_ms_per_call"] == 50.0
    assert row["controller_rss_peak_mb"] == 80.0
    assert row["sipp_cpu_ms_per_call"] is None


def test_a_cluster_step_bills_kamailio_in_the_total() -> None:
    s = step(10, 10, 0, usage={
        "controller": ProcessUsage(cpu_s=0.5, rss_peak_mb=1.0),
        "asterisk": ProcessUsage(cpu_s=1.0, rss_peak_mb=1.0),
        "kamailio": ProcessUsage(cpu_s=0.05, rss_peak_mb=1.0),
    })  # fmt: skip
    row = s.summary()
    assert row["kamailio_cpu_ms_per_call"] == 5.0
    assert row["total_cpu_ms_per_call"] == 155.0
    assert step(10, 10, 0).summary()["kamailio_cpu_ms_per_call"] is None
    assert ", kam 5.0 ms" in step_line(s) and "kam" not in step_line(step(10, 10, 0))


def test_cpu_per_call_is_none_without_completed_calls() -> None:
    s = step(5, 5, 5, usage={"controller": ProcessUsage(1.0, 1.0)})
    assert s.cpu_ms_per_call("controller") is None


def test_capacity_is_the_largest_passing_step() -> None:
    steps = [step(5, 5, 0), step(10, 10, 0), step(20, 20, 2)]
    summary = summarize_line("smoke-ari", "t", steps)
    assert summary.capacity == 10 and not summary.capped
    assert summary.capacity_text() == "10"
    assert summary.best is not None and summary.best["concurrency"] == 10


def test_capacity_is_a_lower_bound_when_nothing_failed() -> None:
    summary = summarize_line("x", "t", [step(5, 5, 0), step(10, 10, 0)])
    assert summary.capacity == 10 and summary.capped and summary.capacity_text() == "≥10"
    none = summarize_line("x", "t", [step(5, 5, 5)])
    assert none.capacity == 0 and not none.capped and none.best is None


def test_capacity_ratio_and_its_bound() -> None:
    exact_ari = summarize_line("a", "t", [step(5, 5, 0), step(10, 10, 5)])
    exact_plain = summarize_line("p", "t", [step(10, 10, 0), step(20, 20, 10)])
    assert capacity_ratio(exact_ari, exact_plain) == {"ratio": 0.5, "bound": "exact"}
    capped_plain = summarize_line("p", "t", [step(10, 10, 0)])
    assert capacity_ratio(exact_ari, capped_plain)["bound"] == "at most"
    capped_ari = summarize_line("a", "t", [step(5, 5, 0)])
    assert capacity_ratio(capped_ari, exact_plain)["bound"] == "at least"
    assert capacity_ratio(capped_ari, capped_plain)["bound"] == "unknown"
    nothing = summarize_line("p", "t", [step(5, 5, 5)])
    assert capacity_ratio(exact_ari, nothing) == {"ratio": None, "bound": "unknown"}


def test_cpu_ratio() -> None:
    ari = {"controller_cpu_ms_per_call": 30.0, "asterisk_cpu_ms_per_call": 30.0}
    plain = {"controller_cpu_ms_per_call": None, "asterisk_cpu_ms_per_call": 20.0}
    assert cpu_ratio(ari, plain) == 3.0
    assert cpu_ratio(ari, None) is None
    assert cpu_ratio(ari, {"asterisk_cpu_ms_per_call": 0.0}) is None


def test_samples_by_window_and_kind(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    log.write_text(
        "\n".join(
            [
                json.dumps({"t": 1.0, "kind": "reaction", "ms": 1.0, "from_asterisk_ms": 2.0}),
                json.dumps({"t": 2.0, "kind": "response", "ms": 9.0}),
                json.dumps({"t": 2.5, "kind": "reaction", "ms": 3.0}),
                json.dumps({"t": 5.0, "kind": "reaction", "ms": 99.0}),
                '{"t": 6.0, "kind": "reac',  # cut short
            ]
        )
    )
    samples = read_samples(log)
    assert len(samples) == 4
    assert split_samples(window(samples, 0.5, 3.0)) == ([1.0, 3.0], [9.0], [2.0])
    assert read_samples(tmp_path / "missing.jsonl") == []


def test_results_files_and_table(tmp_path: Path) -> None:
    steps = [step(5, 5, 0, reaction_ms=[1.0]), step(10, 10, 3)]
    write_results(tmp_path, {"machine": {"cores": 2}}, steps)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["machine"]["cores"] == 2 and len(data["steps"]) == 2
    with (tmp_path / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["concurrency"] for r in rows] == ["5", "10"]
    text = table([summarize_line("smoke-ari", "t", steps)])
    assert "smoke-ari" in text and "5/5" in text


# -- sipp glue -----------------------------------------------------------------------


def test_mark_success_logs_the_call_id_before_the_end(tmp_path: Path) -> None:
    xml = mark_success(caller_xml(SMOKE_ARI.scenario(), tmp_path))
    root = ET.fromstring(xml)
    logs = [el.get("message") for el in root.iter("log")]
    assert logs == ["BENCH-OK [call_id]"]
    children = list(root)
    # after the last scripted message (the 200 OK to the IVR's BYE)
    assert children[-2].tag == "nop" and children[-3].tag == "send"
    with pytest.raises(ValueError):
        mark_success("<scenario/>")


def test_each_line_scenario_waits_for_the_bye_in_time(tmp_path: Path) -> None:
    for line in LINES.values():
        root = ET.fromstring(caller_xml(line.scenario(), tmp_path))
        bye = [el for el in root.iter("recv") if el.get("request") == "BYE"]
        assert bye and bye[0].get("timeout") == str(int(line.bye_within * 1000))
        assert list(root.iter("exec")), "DTMF goes as RTP (play_pcap_audio)"
    assert CITAS.outcome == "redirected_whatsapp" and CITAS.uses_controller
    assert not SMOKE_DIALPLAN.uses_controller
    assert SMOKE_DIALPLAN.steps == SMOKE_ARI.steps


@pytest.mark.parametrize("line", list(LINES.values()), ids=lambda line: line.name)
def test_every_line_logs_its_last_key_and_the_ivrs_bye(line: Any, tmp_path: Path) -> None:
    """The caller's side of the response, on every line (plain dialplan's included):
    sipp's clock when the last key starts playing and when the IVR's BYE arrives."""
    xml = mark_success(mark_key_to_bye(caller_xml(line.scenario(), tmp_path)))
    root = ET.fromstring(xml)
    children = list(root)
    plays = [i for i, el in enumerate(children) if el.find("action/exec") is not None]
    marks = {
        el.find("action/log").get("message"): i  # type: ignore[union-attr]
        for i, el in enumerate(children)
        if el.find("action/log") is not None
    }
    assert set(marks) == {
        "BENCH-KEY [call_id] [clock_tick]",
        "BENCH-BYE [call_id] [clock_tick]",
        "BENCH-OK [call_id]",
    }
    key, bye = marks["BENCH-KEY [call_id] [clock_tick]"], marks["BENCH-BYE [call_id] [clock_tick]"]
    assert key == plays[-1] + 1, "right after the last key, not an earlier one"
    assert children[bye - 1].tag == "recv" and children[bye - 1].get("request") == "BYE"
    assert key < bye < marks["BENCH-OK [call_id]"]


def test_a_scenario_without_a_key_or_the_ivrs_bye_is_left_alone() -> None:
    hangs_up = '<scenario><nop><action><exec play_pcap_audio="k.pcap"/></action></nop></scenario>'
    assert mark_key_to_bye(hangs_up) == hangs_up
    no_key = '<scenario><recv request="BYE" timeout="1000"/></scenario>'
    assert mark_key_to_bye(no_key) == no_key


def test_read_key_to_bye(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    log.write_text(
        "BENCH-KEY a-1@h 3100\nBENCH-KEY a-2@h 3150\nnoise here\nBENCH-BYE a-1@h 7352\n"
        "BENCH-OK a-1@h\nBENCH-KEY a-3@h x\nBENCH-BYE a-3@h 9000\n"
    )
    # a-2 never got its BYE, a-3's key line is garbled: neither gives a sample
    assert read_key_to_bye(log) == {"a-1@h": (3.1, 4252.0)}
    assert read_key_to_bye(tmp_path / "none.log") == {}


def test_only_waits_wholly_inside_the_judged_window_count() -> None:
    t0 = 1000.0
    timings = {
        "in": (40.0, 4000.0),  # key at 1040, BYE at 1044
        "ends-after": (58.0, 4000.0),  # BYE at 1062: answered while N went down
        "starts-before": (9.0, 2000.0),  # key at 1009, during the ramp
        "failed": (40.0, 100.0),  # not a completed call
        "edge": (31.0, 29000.0),  # key at the start, BYE exactly at the end
    }
    completed = {"in", "ends-after", "starts-before", "edge"}
    assert sorted(judged_key_to_bye(timings, completed, t0, 1031.0, 1060.0)) == [4000.0, 29000.0]
    # a burst is judged whole: every completed call's wait counts
    assert len(judged_key_to_bye(timings, completed, t0, t0, 1e12)) == 4


def test_the_console_line_says_how_many_were_up_while_judged() -> None:
    judged = step(400, 800, 13, up_mean=388.46, up_min=361)
    assert judged.summary()["up_mean"] == 388.5 and judged.summary()["up_min"] == 361
    assert "up at once 400 (judged while 388.5 up on average, 361 at the fewest);" in (
        step_line(judged)
    )
    assert "judged while" not in step_line(step(400, 800, 13))  # no sipp row in the window


def test_the_callers_lateness_judges_every_line() -> None:
    """Plain dialplan has no response samples; its callers' wait after the key past the
    warm-up call's fails it as the response p99 fails the controller's lines."""
    nominal = 4200.0
    late = step(
        10, 100, 0, key_to_bye_ms=[nominal + 20] * 98 + [nominal + 1500] * 2,
        nominal_key_to_bye_ms=nominal, max_late_p99_ms=1000.0,
    )  # fmt: skip
    assert late.late_ms[0] == pytest.approx(20.0)
    assert late.too_slow and not late.passed
    row = late.summary()
    assert row["late_samples"] == 100 and row["key_to_bye_nominal_ms"] == nominal
    assert row["late_p50_ms"] == pytest.approx(20.0) and row["late_p99_ms"] > 1000
    on_time = step(
        10, 100, 0, key_to_bye_ms=[nominal - 5, nominal + 900], nominal_key_to_bye_ms=nominal,
        max_late_p99_ms=1000.0,
    )  # fmt: skip
    assert on_time.passed and on_time.late_ms == pytest.approx([-5.0, 900.0])
    # the warm-up call (no nominal yet) and the rule off (0) judge nothing
    assert step(10, 10, 0, key_to_bye_ms=[9e9], max_late_p99_ms=1000.0).passed
    assert step(10, 10, 0, key_to_bye_ms=[9e9], nominal_key_to_bye_ms=0.0).passed
    assert step(10, 10, 0, key_to_bye_ms=[9e9], nominal_key_to_bye_ms=0.0).late_ms == [9e9]
    # each rule has its own limit: a total budget after the key, a per-key response
    both = {"key_to_bye_ms": [nominal + 1500], "nominal_key_to_bye_ms": nominal,
            "response_ms": [700.0]}  # fmt: skip
    assert step(10, 10, 0, **both, max_response_p99_ms=1000.0, max_late_p99_ms=2000.0).passed
    assert not step(10, 10, 0, **both, max_response_p99_ms=500.0, max_late_p99_ms=2000.0).passed
    assert not step(10, 10, 0, **both, max_response_p99_ms=1000.0, max_late_p99_ms=1000.0).passed


def test_read_ok_ids(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    log.write_text("BENCH-OK a-1@127.0.0.1\nnoise\nBENCH-OK a-2@127.0.0.1\n")
    assert read_ok_ids(log) == {"a-1@127.0.0.1", "a-2@127.0.0.1"}
    assert read_ok_ids(tmp_path / "none.log") == set()


def test_read_stat(tmp_path: Path) -> None:
    head = "StartTime;TotalCallCreated;CurrentCall;SuccessfulCall(C);FailedCall(C);FailedTimeoutOnRecv(C);FailedCallRejected(C);CallLength(C)"
    rows = [
        head,
        "x;5;5;0;0;0;0;00:00:00:000000",
        "x;10;8;6;2;2;0;00:00:09:500000",
        "x;10;0;8;2;2;0;00:00:09:250000",
    ]
    stat_file = tmp_path / "stat.csv"
    stat_file.write_text("\n".join(rows) + "\n")
    stat = read_stat(stat_file)
    assert (stat.created, stat.successful, stat.failed, stat.max_current) == (10, 8, 2, 8)
    assert stat.failures == {"TimeoutOnRecv": 2}
    assert stat.call_length_s == pytest.approx(9.25)
    assert read_stat(tmp_path / "missing.csv").created == 0


def test_the_calls_up_while_judged_come_from_sipps_rows(tmp_path: Path) -> None:
    head = "StartTime;LastResetTime;CurrentTime;TotalCallCreated;CurrentCall"
    rows = [
        f"2026-12-01\t17:38:53.9\t1000.9;x;2026-12-01\t17:38:{s}.0\t{t};{n};{n}"
        for s, t, n in [(53, 1000.0, 0), (54, 1001.0, 40), (55, 1002.0, 38), (56, 1003.0, 37)]
    ]
    path = tmp_path / "stat.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    stat = read_stat(path)
    assert stat.up == ((1000.0, 0), (1001.0, 40), (1002.0, 38), (1003.0, 37))
    assert stat.up_within(1001.0, 1002.0) == (39.0, 38)
    assert stat.up_within(1001.0, None) == (pytest.approx(115 / 3), 37)
    assert stat.up_within(2000.0, None) is None
    # a row whose time cannot be read is left out, not guessed
    path.write_text(head + "\n" + "a;b;garbled;1;1\n")
    assert read_stat(path).up == ()


def test_sipp_duration_and_ramp() -> None:
    assert sipp_duration("00:00:09:168000") == pytest.approx(9.168)
    assert sipp_duration("garbage") == 0.0
    assert ramp_seconds(28.0, "burst") == 10.0
    assert ramp_seconds(9.0, "burst") == 4.5
    assert ramp_seconds(0.5, "burst") == 1.0
    # steady: N per call length, whatever the length (citas' 31 s calls are not capped)
    assert ramp_seconds(31.0) == ramp_seconds(31.0, "steady") == 31.0
    assert ramp_seconds(9.0, "steady") == 9.0
    assert ramp_seconds(0.5, "steady") == 1.0
    with pytest.raises(ValueError, match="unknown load 'surge'"):
        ramp_seconds(9.0, "surge")


def test_cpu_per_call_takes_off_idle_background() -> None:
    s = step(
        10,
        10,
        0,
        usage={"controller": ProcessUsage(cpu_s=1.5, rss_peak_mb=80.0, window_s=50.0)},
        idle_ms_per_s={"controller": 10.0},  # 0.5 s of the 1.5 s is background
    )
    assert s.cpu_ms_per_call("controller") == pytest.approx(100.0)
    assert s.cpu_ms_per_call("controller", net=False) == pytest.approx(150.0)
    row = s.summary()
    assert row["controller_cpu_ms_per_call"] == 100.0
    assert row["controller_cpu_gross_ms_per_call"] == 150.0
    busy_idle = step(1, 1, 0, usage={"x": ProcessUsage(0.1, 1.0, 60.0)}, idle_ms_per_s={"x": 5.0})
    assert busy_idle.cpu_ms_per_call("x") == 0.0  # never below zero


def test_a_step_with_slow_responses_fails_even_if_every_call_completed() -> None:
    slow = step(10, 10, 0, response_ms=[5.0] * 98 + [3000.0, 4000.0], max_response_p99_ms=1000.0)
    assert slow.too_slow and not slow.passed
    assert slow.summary()["too_slow"] is True
    fast = step(10, 10, 0, response_ms=[5.0, 9.0], max_response_p99_ms=1000.0)
    assert fast.passed and not fast.too_slow
    unchecked = step(10, 10, 0, response_ms=[4000.0])  # 0: no latency rule
    assert unchecked.passed
    no_samples = step(10, 10, 0, max_response_p99_ms=1000.0)  # plain dialplan: no samples
    assert no_samples.passed
    assert summarize_line("x", "t", [fast, slow]).capacity == 10


# --- where the callers waited (issue 13: the citas wait at 400) ------------------------
# A citas call of `make bench` (bench-results/20261130-152655, citas ×2 SQLite at 400),
# trimmed to the steps around its keys: the open-case read took 118 ms.
CITAS_PATH = [
    {"at": 10.146, "kind": "digits", "node": "main_menu", "digits": "1"},
    {"at": 10.147, "kind": "node", "node": "ask_service"},
    {"at": 10.147, "kind": "prompt", "media": ["sound:citas/ask_service"]},
    {"at": 12.464, "kind": "digits", "node": "ask_service", "digits": "1"},
    {"at": 12.464, "kind": "node", "node": "select_service"},
    {"at": 12.464, "kind": "action", "action": "select_service", "outcome": "ok"},
    {"at": 12.464, "kind": "node", "node": "eligibility"},
    {"at": 12.476, "kind": "action", "action": "evaluate_eligibility", "outcome": "target"},
    {"at": 12.476, "kind": "node", "node": "self_service_gate"},
    {"at": 12.476, "kind": "decision", "flag": "self_service_booking", "value": "true"},
    {"at": 12.476, "kind": "node", "node": "open_case_check"},
    {"at": 12.594, "kind": "action", "action": "open_case_check", "outcome": "none"},
    {"at": 12.594, "kind": "node", "node": "find_slot"},
    {"at": 12.63, "kind": "action", "action": "find_slot", "outcome": "found"},
    {"at": 12.63, "kind": "node", "node": "offer_slot"},
    {"at": 12.63, "kind": "prompt", "media": ["sound:citas/slot_offer_intro"]},
    {"at": 15.789, "kind": "digits", "node": "offer_slot", "digits": "0"},
    {"at": 30.724, "kind": "hangup", "outcome": "redirected_whatsapp"},
]


def test_path_waits_splits_a_citas_call_into_its_actions_and_keys() -> None:
    from ivr.bench.stats import path_waits

    waits = {k: [round(x) for x in v] for k, v in path_waits([CITAS_PATH]).items()}
    assert waits == {
        "key@main_menu": [1],
        "key@ask_service": [166],  # the key to the slot offer: every action between
        "select_service": [0],
        "eligibility": [12],
        "open_case_check": [118],
        "find_slot": [36],
    }  # the last key has no prompt after it (hung up): no sample; decisions give none


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], {}),
        ([[]], {}),
        ([[{"at": 1.0, "kind": "node", "node": "a"}]], {}),  # a node cut short
        ([[{"at": 1.0, "kind": "digits", "node": "m"}, {"at": 1.5, "kind": "hangup"}]], {}),
        (
            [[{"at": 1.0, "kind": "node", "node": "a"}, {"at": 1.25, "kind": "action"}]] * 3,
            {"a": [250.0, 250.0, 250.0]},
        ),
    ],
)
def test_path_waits_over_short_and_repeated_paths(
    paths: list[list[dict[str, Any]]], expected: dict[str, list[float]]
) -> None:
    from ivr.bench.stats import path_waits

    assert path_waits(paths) == expected


def test_slowest_waits_ranks_by_p99_and_keeps_the_top() -> None:
    from ivr.bench.stats import slowest_waits

    waits = {
        "fast": [1.0] * 100,
        "slow": [10.0] * 90 + [900.0] * 10,
        "mid": [50.0] * 100,
        "none": [],
    }
    assert slowest_waits(waits, top=2) == "slow 10/900; mid 50/50"
    assert slowest_waits({}) == ""


# -- --repeat: a step from several runs ----------------------------------------------


def _run(n: int, p99: float, failed: int = 0, placed: int = 100) -> StepResult:
    """One run whose response p99 is ``p99`` ms (100 samples, the top one at p99's height)."""
    return step(n, placed, failed, response_ms=[10.0] * 98 + [p99, p99], max_response_p99_ms=1000.0)


@pytest.mark.parametrize(
    ("p99s", "failed", "verdict", "median_p99"),
    [
        ((610.0, 1070.0, 720.0), (0, 0, 0), True, 610.0),  # one slow run does not fail the step
        ((1200.0, 700.0, 1500.0), (0, 0, 0), False, 1200.0),  # one good run does not pass it
        ((100.0, 100.0, 100.0), (0, 9, 8), False, 100.0),  # failed calls count per run
        ((100.0, 200.0), (0, 0), True, 100.0),  # 2 of 2
        (
            (100.0, 2000.0),
            (0, 0),
            False,
            2000.0,
        ),  # 1 of 2 is not more than half: a failed run's figures
        (
            (600.0, 700.0, 800.0),
            (0, 20, 0),
            True,
            600.0,
        ),  # the failed run (700) is never the figures
        ((600.0, 700.0, 800.0), (0, 20, 20), False, 700.0),
        ((300.0, 100.0, 200.0, 400.0, 1500.0), (0, 0, 0, 0, 0), True, 200.0),  # lower middle of 4
    ],
)
def test_a_repeated_step_passes_on_the_majority_with_the_median_runs_figures(
    p99s: tuple[float, ...], failed: tuple[int, ...], verdict: bool, median_p99: float
) -> None:
    from ivr.bench.stats import combine_runs

    runs = [_run(480, p, f) for p, f in zip(p99s, failed, strict=True)]
    combined = combine_runs(runs)
    assert combined.passed is verdict
    assert percentile(combined.response_ms, 99) == pytest.approx(median_p99)
    row = combined.summary()
    assert row["runs"] == len(runs)
    assert row["runs_passed"] == sum(r.run_passed for r in runs)
    assert row["response_p99_ms_runs"] == " / ".join(f"{p:.1f}" for p in p99s)  # in run order
    assert row["passed"] is verdict
    # The stop rule and the capacity read the verdict, not the median run's own.
    assert (next_step([480, 560], [combined], 10_000) == 560) is verdict
    assert summarize_line("citas", "t", [combined]).capacity == (480 if verdict else 0)


@pytest.mark.parametrize(
    ("runs", "controller_ms", "asterisk_ms"),
    [
        # (p99 ms, failed, controller CPU s, Asterisk CPU s) per run of 100 placed calls
        # The median-latency run (720) has the highest controller CPU and the lowest
        # Asterisk CPU; each median is another run's.
        ([(610.0, 0, 0.5, 5.0), (900.0, 0, 0.7, 4.0), (720.0, 0, 0.9, 3.0)], 7.0, 40.0),
        # The failed run's CPU is left out with its figures: of the two left, the mean.
        ([(600.0, 0, 0.6, 4.0), (700.0, 20, 9.0, 90.0), (800.0, 0, 0.8, 5.0)], 7.0, 45.0),
    ],
)
def test_a_repeated_step_s_cpu_per_call_is_the_median_of_its_agreeing_runs(
    runs: list[tuple[float, int, float, float]], controller_ms: float, asterisk_ms: float
) -> None:
    """Not the median-latency run's own CPU: a run's CPU and its p99 do not rank alike."""
    from ivr.bench.stats import combine_runs

    made = []
    for p99, failed, controller_s, asterisk_s in runs:
        run = _run(480, p99, failed)
        made.append(replace(run, completed=100, usage={
            "controller": ProcessUsage(cpu_s=controller_s, rss_peak_mb=1.0, window_s=10.0),
            "asterisk": ProcessUsage(cpu_s=asterisk_s, rss_peak_mb=1.0, window_s=10.0),
        }, idle_ms_per_s={"controller": 2.0}))  # fmt: skip
    combined = combine_runs(made)

    # net: less 2 ms/s idle over the 10 s window, per 100 calls (0.2 ms a call)
    assert combined.cpu_ms_per_call("controller") == pytest.approx(controller_ms - 0.2)
    assert combined.cpu_ms_per_call("controller", net=False) == pytest.approx(controller_ms)
    assert combined.cpu_ms_per_call("asterisk") == pytest.approx(asterisk_ms)
    row = combined.summary()
    assert row["controller_cpu_ms_per_call"] == pytest.approx(controller_ms - 0.2, abs=0.01)
    assert row["total_cpu_ms_per_call"] == pytest.approx(
        controller_ms - 0.2 + asterisk_ms, abs=0.01
    )
    # Each run's own row keeps its own CPU.
    own = [r["controller_cpu_gross_ms_per_call"] for r in combined.runs]
    assert own == pytest.approx([c * 10 for _, _, c, _ in runs])


def test_one_run_is_returned_as_it_is_and_bad_calls_raise() -> None:
    from ivr.bench.stats import combine_runs

    alone = _run(80, 50.0)
    assert combine_runs([alone]) is alone
    assert alone.summary()["runs"] == 1 and alone.summary()["response_p99_ms_runs"] == ""
    with pytest.raises(ValueError, match="at least one"):
        combine_runs([])
    with pytest.raises(ValueError, match="different N"):
        combine_runs([_run(80, 50.0), _run(160, 50.0)])


def test_a_run_without_samples_is_ordered_last() -> None:
    from ivr.bench.stats import combine_runs

    empty = step(80, 100, 0, max_response_p99_ms=1000.0)  # passed, but no response measured
    combined = combine_runs([empty, _run(80, 40.0), _run(80, 60.0)])
    assert percentile(combined.response_ms, 99) == pytest.approx(60.0)
    assert combined.summary()["response_p99_ms_runs"] == "- / 40.0 / 60.0"


def test_every_run_is_in_the_files(tmp_path: Path) -> None:
    from ivr.bench.stats import combine_runs

    steps = [combine_runs([_run(80, 40.0), _run(80, 60.0), _run(80, 1500.0)]), _run(160, 70.0)]
    write_results(tmp_path, {}, steps)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["concurrency"] for r in data["step_runs"]] == [80, 80, 80, 160]
    assert [r["run_passed"] for r in data["step_runs"]] == [True, True, False, True]
    with (tmp_path / "runs.csv").open() as f:
        assert [r["response_p99_ms"] for r in csv.DictReader(f)] == [
            "40.0",
            "60.0",
            "1500.0",
            "70.0",
        ]
    with (tmp_path / "results.csv").open() as f:
        assert [r["runs_passed"] for r in csv.DictReader(f)] == ["2", "1"]


@pytest.mark.parametrize(
    ("repeat", "alive", "failed", "calls"),
    [
        (1, True, (0,), [1]),
        (3, True, (0, 0, 0), [1, 2]),  # two passes decide 3
        (3, True, (20, 20, 0), [1, 2]),  # two failures too
        (3, True, (0, 20, 0), [1, 2, 3]),  # split: the third decides
        (3, True, (20, 0, 20), [1, 2, 3]),
        (5, True, (0, 20, 0, 0, 20), [1, 2, 3, 4]),
        (3, False, (0, 20, 0), [1]),
    ],
)
def test_the_bench_runs_a_step_until_its_majority_is_decided_or_the_controller_has_exited(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    repeat: int,
    alive: bool,
    failed: tuple[int, ...],
    calls: list[int],
) -> None:
    from ivr.bench.runner import Bench, BenchConfig
    from ivr.settings import Settings

    config = BenchConfig(
        steps=[80], max_calls=80, hold=10.0, threshold=0.05, max_response_p99_ms=1000.0,
        lines=["citas"], out_dir=tmp_path, repeat=repeat,
    )  # fmt: skip
    said: list[str] = []
    bench = Bench(config, Settings.from_env(), say=said.append)
    monkeypatch.setattr(bench, "_controller_alive", lambda: alive)
    ran: list[int] = []

    def one(k: int) -> StepResult:
        ran.append(k)
        return _run(80, 100.0 * k, failed[k - 1])

    combined = bench._repeated(80, one)
    assert ran == calls
    assert combined.summary()["runs"] == len(calls)
    expected = sum(f == 0 for f in failed[: len(calls)]) * 2 > len(calls)
    if alive:  # what ran decides what all K would have
        assert combined.passed is (sum(f == 0 for f in failed) * 2 > repeat) is expected
    runs_said = [line for line in said if "N=80   run " in line]
    assert len(runs_said) == (len(calls) if repeat > 1 else 0)
    assert said[-1].lstrip().startswith("smoke-ari")  # the step's own line last
    # Without a controller (plain dialplan) the runs stop on the majority alone.
    ran.clear()
    bench._repeated(80, one, controller=False)
    assert ran == (calls if alive else [1, 2, 3][:repeat])


@pytest.mark.parametrize("repeat", [1, 2, 3, 4, 5, 7])
def test_a_majority_is_decided_exactly_when_no_remaining_runs_can_change_it(repeat: int) -> None:
    """Over every sequence of run verdicts up to ``repeat``: decided iff every way of
    finishing the runs gives the same majority (``combine_runs``' rule)."""
    from itertools import product

    from ivr.bench.stats import majority_decided

    def verdict(runs: tuple[bool, ...]) -> bool:
        return sum(runs) * 2 > repeat

    for done in range(repeat + 1):
        for so_far in product((True, False), repeat=done):
            endings = {
                verdict(so_far + rest) for rest in product((True, False), repeat=repeat - done)
            }
            assert majority_decided(list(so_far), repeat) is (len(endings) == 1), so_far
    with pytest.raises(ValueError):
        majority_decided([True] * (repeat + 1), repeat)
    with pytest.raises(ValueError):
        majority_decided([], 0)
