"""The benchmark's matrix, ladders, CPU sums, ratios and port ranges (pure logic).

The runner itself is exercised by a real run (docs/perf/bench.md gives the
command); these pin the rules it applies.
"""

from __future__ import annotations

import itertools
import json
import resource
from pathlib import Path
from typing import Any

import pytest

from ivr.bench.cli import media_port_after, rtp_range
from ivr.bench.stats import (
    ProcessUsage,
    StepResult,
    cpu_ratio,
    first_failed,
    merge_counts,
    read_counts,
    summarize_line,
    versus_plain,
)
from ivr.bench.usage import tree_cpu_seconds
from ivr.bench.variants import (
    CITAS_LADDER,
    DEFAULT_LADDERS,
    QUICK_LADDER,
    SMOKE_LADDER,
    Variant,
    estimate_seconds,
    full_window,
    ladder_for,
    matrix,
    parse_controllers,
    parse_dbs,
    parse_nodes,
    placing_seconds,
    profile_step,
    ramp_seconds,
    rounds_for,
    step_seconds,
)
from ivr.sandbox.supervisor import nofile_limits


@pytest.mark.parametrize(
    ("variant", "name", "slug"),
    [
        (Variant("smoke-dialplan"), "smoke-dialplan", "smoke-dialplan"),
        (Variant("smoke-ari", 1, "sqlite"), "smoke-ari ×1", "smoke-ari-x1"),
        (Variant("smoke-ari", 2, "postgresql"), "smoke-ari ×2", "smoke-ari-x2"),
        (Variant("citas", 1, "sqlite"), "citas ×1 sqlite", "citas-x1-sqlite"),
        (Variant("citas", 2, "postgresql"), "citas ×2 pg", "citas-x2-pg"),
        (Variant("chat", 1, "sqlite"), "chat ×1", "chat-x1"),
        (Variant("citas", 1, "postgresql", nodes=2), "citas ×1 pg · 2 nodes", "citas-x1-pg-2nodes"),
        (
            Variant("smoke-ari", 1, "postgresql", nodes=1),
            "smoke-ari ×1 · 1 node",
            "smoke-ari-x1-1nodes",
        ),
    ],
)
def test_variant_names(variant: Variant, name: str, slug: str) -> None:
    assert variant.name == name
    assert variant.slug == slug
    assert variant.uses_controller == (variant.line != "smoke-dialplan")


@pytest.mark.parametrize(
    ("text", "cores", "expected"),
    [
        ("1,auto", 2, [1, 2]),
        ("1,auto", 1, [1]),  # one core: ×1 and ×N are the same variant
        ("auto", 8, [8]),
        ("4, 1,2", 2, [1, 2, 4]),
        ("1,,1", 2, [1]),
    ],
)
def test_parse_controllers(text: str, cores: int, expected: list[int]) -> None:
    assert parse_controllers(text, cores) == expected


@pytest.mark.parametrize("text", ["0", "-1", "two", "", " , "])
def test_parse_controllers_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_controllers(text, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sqlite,postgresql", ["sqlite", "postgresql"]),
        ("pg", ["postgresql"]),
        ("postgres, sqlite, pg", ["postgresql", "sqlite"]),
    ],
)
def test_parse_dbs(text: str, expected: list[str]) -> None:
    assert parse_dbs(text) == expected


@pytest.mark.parametrize("text", ["mysql", "", ","])
def test_parse_dbs_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_dbs(text)


def test_the_default_matrix_has_every_variant_of_the_issue_in_run_order() -> None:
    names = [
        v.name
        for v in matrix(
            ["smoke-dialplan", "smoke-ari", "citas", "chat"], [1, 2], ["sqlite", "postgresql"]
        )
    ]
    assert names == [
        "smoke-dialplan",
        "smoke-ari ×1",
        "smoke-ari ×2",
        "citas ×1 sqlite",
        "citas ×2 sqlite",
        "citas ×1 pg",
        "citas ×2 pg",
        "chat ×1",
    ]


@pytest.mark.parametrize(
    ("lines", "controllers", "dbs", "expected"),
    [
        (["citas"], [1], ["postgresql"], ["citas ×1 pg"]),
        (["smoke-ari"], [1, 2], ["postgresql", "sqlite"], ["smoke-ari ×1", "smoke-ari ×2"]),
        (["chat"], [2, 4], ["sqlite"], ["chat ×1"]),
        (["smoke-dialplan"], [1, 2], ["sqlite", "postgresql"], ["smoke-dialplan"]),
    ],
)
def test_matrix_rules(
    lines: list[str], controllers: list[int], dbs: list[str], expected: list[str]
) -> None:
    variants = matrix(lines, controllers, dbs)
    assert [v.name for v in variants] == expected
    assert len({v.name for v in variants}) == len(variants)  # names are unique


def test_cluster_variants_come_last_per_node_count_on_postgresql() -> None:
    # issue 14: each call line with a controller through Kamailio, one controller a
    # node, whatever --controllers and --db say; the plain line and chat are not.
    variants = matrix(["smoke-dialplan", "smoke-ari", "citas", "chat"], [1, 2], ["sqlite"], [2, 1])
    cluster = [v for v in variants if v.nodes]
    assert [v.name for v in cluster] == [
        "smoke-ari ×1 · 1 node", "citas ×1 pg · 1 node",
        "smoke-ari ×1 · 2 nodes", "citas ×1 pg · 2 nodes",
    ]  # fmt: skip
    assert variants[-len(cluster) :] == cluster
    assert {(v.controllers, v.db) for v in cluster} == {(1, "postgresql")}
    assert [v.name for v in variants if not v.nodes] == [
        v.name for v in matrix(["smoke-dialplan", "smoke-ari", "citas", "chat"], [1, 2], ["sqlite"])
    ]


@pytest.mark.parametrize(("text", "expected"), [("", []), ("1,2", [1, 2]), (" 2,1, 2", [1, 2])])
def test_parse_nodes(text: str, expected: list[int]) -> None:
    assert parse_nodes(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "two", "9", "1.5"])
def test_parse_nodes_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="from 1 to 8"):
        parse_nodes(text)


def test_smoke_ari_runs_on_the_first_database() -> None:
    (v,) = matrix(["smoke-ari"], [1], ["postgresql", "sqlite"])
    assert v.db == "postgresql"


@pytest.mark.parametrize(
    ("line", "steps", "quick", "max_calls", "expected"),
    [
        ("smoke-dialplan", None, False, 10**6, list(SMOKE_LADDER)),
        ("citas", None, False, 10**6, list(CITAS_LADDER)),
        ("citas", None, True, 10**6, list(QUICK_LADDER)),
        ("smoke-ari", [5, 10, 20], False, 10, [5, 10]),
        ("smoke-ari", None, False, 1000, [n for n in SMOKE_LADDER if n <= 1000]),
    ],
)
def test_ladder_for(
    line: str, steps: list[int] | None, quick: bool, max_calls: int, expected: list[int]
) -> None:
    assert ladder_for(line, steps, quick=quick, max_calls=max_calls) == expected


@pytest.mark.parametrize("ladder", list(DEFAULT_LADDERS.values()))
def test_default_ladders_increase(ladder: tuple[int, ...]) -> None:
    assert list(ladder) == sorted(set(ladder))


def test_one_ladder_for_every_call_line_fine_where_the_lines_stopped() -> None:
    # The ratios are read at the same steps; 1920 failed plain dialplan on 2 cores
    # before (docs/perf/bench.md): the ladder reaches past it, at most 20 % apart from
    # 400 on, so a capacity near the lines' limits is measured, not bounded.
    assert SMOKE_LADDER == CITAS_LADDER == DEFAULT_LADDERS["smoke-ari"]
    assert max(SMOKE_LADDER) > 1920
    near = [n for n in SMOKE_LADDER if n >= 400]
    assert all(b / a <= 1.2 for a, b in itertools.pairwise(near))


@pytest.mark.parametrize(
    ("ladder", "expected_capacity", "step"),
    [
        ([40, 320, 640, 960, 1280], 1280, 640),  # 60 % = 768: 640 is nearer than 960
        ([40, 320, 640, 960, 1280], 1600, 960),  # 960 exactly
        ([10, 20], 1000, 20),  # above the ladder: its top
        ([40, 160, 320, 480], None, 160),  # no expectation: the middle (lower) step
        ([100, 200], 250, 100),  # 150: a tie, the lower one
        ([], 1000, None),
    ],
)
def test_profile_step(ladder: list[int], expected_capacity: int | None, step: int | None) -> None:
    assert profile_step(ladder, expected_capacity) == step


@pytest.mark.parametrize(
    ("hold", "call", "rounds"),
    [(15.0, 9.2, 2), (15.0, 30.0, 1), (0.0, 9.2, 1), (20.0, 10.0, 2), (21.0, 10.0, 3)],
)
def test_rounds_for(hold: float, call: float, rounds: int) -> None:
    assert rounds_for(hold, call, "burst") == rounds
    # steady: one more call length, the one while the N calls come up
    assert rounds_for(hold, call, "steady") == rounds_for(hold, call) == rounds + 1


def test_step_seconds_is_settle_ramp_calls_drain() -> None:
    # burst, smoke on 2 cores: 9.2 s calls, hold 15 → 2 rounds: 3 + 4.6 + 18.4 + 4
    assert step_seconds(9.2, 15.0, load="burst") == pytest.approx(30.0)
    # burst, citas: 30 s calls, 1 round, the ramp capped at 10 s
    assert step_seconds(30.0, 15.0, load="burst") == pytest.approx(47.0)
    # steady, smoke: 3 rounds placed at N per 9.2 s, the last call, 3 + 27.6 + 9.2 + 4
    assert step_seconds(9.2, 15.0) == pytest.approx(43.8)
    # steady, citas: 2 rounds of 30 s placed, the last call: 3 + 60 + 30 + 4
    assert step_seconds(30.0, 15.0, load="steady") == pytest.approx(97.0)
    # the profiled step samples sipp's part alone, for the rounds it was given
    assert placing_seconds(30.0, 2) == pytest.approx(90.0)
    assert placing_seconds(9.2, 2, "burst") == pytest.approx(4.6 + 18.4)


@pytest.mark.parametrize("call", [1.0, 9.2, 31.0, 60.0])
@pytest.mark.parametrize("hold", [0.0, 15.0, 45.0])
def test_a_steady_step_is_judged_while_n_are_up(call: float, hold: float) -> None:
    """N calls are up from one call length after the first (N per call length) to the
    last call placed; that window is at least the hold and at least one call long."""
    rounds = rounds_for(hold, call, "steady")
    start, end = full_window(1000.0, call, rounds, "steady")
    assert start == pytest.approx(1000.0 + call)
    assert end is not None
    assert end - start >= max(hold, call) - 1e-9
    # placing N × rounds calls at N per call length ends exactly there
    assert end == pytest.approx(1000.0 + rounds * ramp_seconds(call, "steady"))
    # a burst is judged whole, as before
    assert full_window(1000.0, call, rounds, "burst") == (1000.0, None)


def test_the_default_run_fits_in_under_an_hour_on_2_cores() -> None:
    """Where each variant stopped on 2 cores under steady load (docs/PERFORMANCE.md,
    run b47: 33.8 min, estimated 35.5): the default run must stay under an hour."""
    variants = matrix(
        ["smoke-dialplan", "smoke-ari", "citas", "chat"], [1, 2], ["sqlite", "postgresql"]
    )
    expected = {  # b47
        "smoke-dialplan": 480,
        "smoke-ari ×1": 320,
        "smoke-ari ×2": 320,
        "citas ×1 sqlite": 320,
        "citas ×2 sqlite": 320,
        "citas ×1 pg": 320,
        "citas ×2 pg": 320,
        "chat ×1": 20,
    }
    minutes = estimate_seconds(variants, DEFAULT_LADDERS, 15.0, expected) / 60
    assert 30 <= minutes <= 55, minutes
    # a burst (the shape before) places the calls in less time
    assert estimate_seconds(variants, DEFAULT_LADDERS, 15.0, expected, load="burst") < 60 * minutes
    # and every ladder climbed to its top (nothing failing) is the worst case
    assert estimate_seconds(variants, DEFAULT_LADDERS, 15.0) / 60 > minutes
    # --repeat 3 runs every step three times: the steps triple, the warm-ups and starts do not
    thrice = estimate_seconds(variants, DEFAULT_LADDERS, 15.0, expected, repeat=3) / 60
    assert 2 * minutes < thrice < 3 * minutes, (minutes, thrice)


def test_quick_run_is_a_few_minutes() -> None:
    variants = matrix(["smoke-dialplan", "smoke-ari", "citas", "chat"], [2], ["sqlite"])
    ladders = {v.line: QUICK_LADDER for v in variants}
    assert estimate_seconds(variants, ladders, 0.0) / 60 <= 10


@pytest.mark.parametrize(
    ("start", "last", "cpu"),
    [
        ({}, {}, 0.0),
        ({(1, 0.0): 2.0}, {(1, 0.0): 3.5}, 1.5),  # one process
        # a worker started during the window counts whole
        ({(1, 0.0): 2.0}, {(1, 0.0): 3.0, (7, 50.0): 0.75}, 1.75),
        # a worker that died: up to its last sample
        ({(1, 0.0): 2.0, (7, 50.0): 1.0}, {(1, 0.0): 3.0, (7, 50.0): 1.5}, 1.5),
        # the pid reused by a new process (another start time) is another process
        ({(7, 50.0): 4.0}, {(7, 50.0): 4.0, (7, 90.0): 0.25}, 0.25),
        # a process seen at the start and never again adds nothing
        ({(1, 0.0): 2.0, (9, 1.0): 8.0}, {(1, 0.0): 2.5}, 0.5),
    ],
)
def test_tree_cpu_seconds(
    start: dict[tuple[int, float], float], last: dict[tuple[int, float], float], cpu: float
) -> None:
    assert tree_cpu_seconds(start, last) == pytest.approx(cpu)


def test_tree_meter_sums_a_real_process_and_its_child() -> None:
    import subprocess
    import sys

    import psutil

    from ivr.bench.usage import UsageMeter

    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys\n"
            f"c=subprocess.Popen([sys.executable,'-c',{burn!r}])\n"
            f"exec({burn!r})\nc.wait()\nimport time; time.sleep(1)\n",
        ]
    )
    try:
        meter = UsageMeter(
            {"controller": psutil.Process(parent.pid)}, trees=frozenset({"controller"})
        )
        deadline = 50
        while parent.poll() is None and deadline:
            meter.sample()
            import time

            time.sleep(0.1)
            deadline -= 1
        use = meter.result()["controller"]
    finally:
        parent.wait(timeout=20)
    # parent and child each burnt 0.3 s; the child's CPU is counted though it ended
    assert use.cpu_s >= 0.5
    assert use.processes_peak == 2


@pytest.mark.parametrize(
    ("soft", "hard", "root", "expected"),
    [
        (1024, 4096, False, (4096, 4096)),
        (1024, 4096, True, (65536, 65536)),
        (20000, 20000, True, (65536, 65536)),
        (100000, 100000, True, (100000, 100000)),  # never lowered
        (1024, resource.RLIM_INFINITY, False, (65536, resource.RLIM_INFINITY)),
    ],
)
def test_nofile_limits(soft: int, hard: int, root: bool, expected: tuple[int, int]) -> None:
    assert nofile_limits(soft, hard, can_raise_hard=root) == expected


@pytest.mark.parametrize(
    ("start", "calls", "expected"),
    [(16000, 2560, (16000, 22999)), (37000, 10, (37000, 37999)), (16000, 640, (16000, 17999))],
)
def test_rtp_range_holds_two_ports_a_call_and_a_quarter_more(
    start: int, calls: int, expected: tuple[int, int]
) -> None:
    lo, hi = rtp_range(start, calls)
    assert (lo, hi) == expected
    assert (hi - lo + 1) >= 2 * calls * 1.25


def test_rtp_range_and_media_port_refuse_to_pass_65535() -> None:
    with pytest.raises(ValueError):
        rtp_range(60000, 5000)
    with pytest.raises(ValueError):
        media_port_after(60000)


@pytest.mark.parametrize("rtp_end", [10999, 22999, 37999, 43999])
def test_callers_media_ports_never_meet_the_rtp_range(rtp_end: int) -> None:
    port = media_port_after(rtp_end)
    assert port > rtp_end
    assert port % 1000 == 0


def _step(
    variant: str, line: str, n: int, *, failed: int = 0, cpu: dict[str, float] | None = None
) -> StepResult:
    usage = {
        k: ProcessUsage(cpu_s=v, rss_peak_mb=1.0, window_s=10.0) for k, v in (cpu or {}).items()
    }
    return StepResult(
        line=line, concurrency=n, placed=100, completed=100 - failed, failed=failed,
        duration_s=10.0, rate_cps=10.0, max_concurrent_seen=n, usage=usage, variant=variant,
    )  # fmt: skip


def test_first_failed() -> None:
    assert first_failed([_step("a", "citas", 10), _step("a", "citas", 20, failed=50)]) == 20
    assert first_failed([_step("a", "citas", 10)]) is None


def test_versus_plain_every_controller_variant_with_postgres_cpu_counted() -> None:
    plain = [
        _step("smoke-dialplan", "smoke-dialplan", 1280, cpu={"asterisk": 1.5}),
        _step("smoke-dialplan", "smoke-dialplan", 1920, failed=30, cpu={"asterisk": 3.0}),
    ]
    ari = [
        _step("smoke-ari ×2", "smoke-ari", 640, cpu={"asterisk": 2.0, "controller": 1.0}),
        _step("smoke-ari ×2", "smoke-ari", 1280, failed=20, cpu={"asterisk": 2.0}),
    ]
    citas = [
        _step(
            "citas ×2 pg", "citas", 640, cpu={"asterisk": 2.0, "controller": 1.0, "postgres": 0.5}
        )
    ]
    summaries = {s[0].variant: summarize_line(s[0].variant, "", s) for s in (plain, ari, citas)}
    lines = {
        "smoke-dialplan": "smoke-dialplan",
        "smoke-ari ×2": "smoke-ari",
        "citas ×2 pg": "citas",
    }
    out = versus_plain(summaries, lines)
    assert set(out) == {"smoke-ari ×2", "citas ×2 pg"}
    assert out["smoke-ari ×2"]["capacity"] == {"ratio": 0.5, "bound": "exact"}
    # (10 + 20) ms / 15 ms; with PostgreSQL's 5 ms: 35 / 15
    assert out["smoke-ari ×2"]["cpu_per_call"] == 2.0
    assert out["citas ×2 pg"]["cpu_per_call"] == pytest.approx(2.33)
    assert out["citas ×2 pg"]["capacity"]["bound"] == "at least"
    # plain passed 1280, not 640: no step of plain at the variants' N
    assert out["smoke-ari ×2"]["cpu_per_call_same_n"] is None
    assert versus_plain({k: v for k, v in summaries.items() if k != "smoke-dialplan"}, lines) == {}


def test_versus_plain_also_compares_the_cpu_with_plain_at_the_variant_s_capacity() -> None:
    # Plain's CPU per call moves with the load: 15 ms a call at 640 up, 10 ms at 1280.
    plain = [
        _step("smoke-dialplan", "smoke-dialplan", 640, cpu={"asterisk": 1.5}),
        _step("smoke-dialplan", "smoke-dialplan", 1280, cpu={"asterisk": 1.0}),
        _step("smoke-dialplan", "smoke-dialplan", 1920, failed=30, cpu={"asterisk": 3.0}),
    ]
    ari = [
        _step("smoke-ari ×1", "smoke-ari", 640, cpu={"asterisk": 1.6, "controller": 0.3}),
        _step("smoke-ari ×1", "smoke-ari", 960, failed=20, cpu={"asterisk": 2.0}),
    ]
    summaries = {s[0].variant: summarize_line(s[0].variant, "", s) for s in (plain, ari)}
    lines = {"smoke-dialplan": "smoke-dialplan", "smoke-ari ×1": "smoke-ari"}
    out = versus_plain(summaries, lines)["smoke-ari ×1"]
    assert out["cpu_per_call"] == 1.9  # 19 ms against plain's 10 at its own 1280
    assert out["cpu_per_call_same_n"] == {"n": 640, "ratio": 1.27}  # 19 against 15 at 640


@pytest.mark.parametrize(
    ("ari", "plain", "ratio"),
    [
        ({"controller_cpu_ms_per_call": 10.0, "asterisk_cpu_ms_per_call": 20.0}, 15.0, 2.0),
        (
            {
                "controller_cpu_ms_per_call": 5.0,
                "asterisk_cpu_ms_per_call": 10.0,
                "postgres_cpu_ms_per_call": 4.5,
            },
            15.0,
            1.3,
        ),
        ({"asterisk_cpu_ms_per_call": 15.0, "controller_cpu_ms_per_call": None}, 15.0, 1.0),
        ({"asterisk_cpu_ms_per_call": 15.0}, 0.0, None),
    ],
)
def test_cpu_ratio_sums_the_whole_path(
    ari: dict[str, float | None], plain: float, ratio: float | None
) -> None:
    assert cpu_ratio(ari, {"asterisk_cpu_ms_per_call": plain}) == ratio


def test_total_cpu_per_call_is_controller_asterisk_and_postgres_not_sipp() -> None:
    step = _step(
        "citas ×1 pg", "citas", 10,
        cpu={"controller": 1.0, "asterisk": 2.0, "postgres": 0.5, "sipp": 9.0},
    )  # fmt: skip
    assert step.summary()["total_cpu_ms_per_call"] == pytest.approx(35.0)
    assert step.summary()["postgres_cpu_ms_per_call"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("snapshots", "calls", "per_call", "by_route"),
    [
        ([], None, None, None),
        # one process: as ivr.ari.counters computes it
        (
            [{"calls": 10, "events": {"StasisStart": 10, "ChannelDtmfReceived": 20},
              "requests": {"POST /channels/{id}/play/{id}": 30}}],
            10,
            {"events": 3.0, "requests": 3.0, "processes": 1},
            {"POST /channels/{id}/play/{id}": 3.0},
        ),
        # two controller processes (CITAS_CONTROLLERS=2): summed, then divided
        (
            [{"calls": 6, "events": {"StasisStart": 6}, "requests": {"POST /a": 12}},
             {"calls": 4, "events": {"StasisStart": 4}, "requests": {"POST /a": 3, "DELETE /b": 5}}],
            10,
            {"events": 1.0, "requests": 2.0, "processes": 2},
            {"DELETE /b": 0.5, "POST /a": 1.5},
        ),
        # a process that took no call: counted, nothing divided by zero
        (
            [{"calls": 0, "events": {}, "requests": {"PUT /applications/{id}/eventFilter": 1}}],
            0,
            {"events": None, "requests": None, "processes": 1},
            {"PUT /applications/{id}/eventFilter": None},
        ),
        # what is not a count is left out
        (
            [{"calls": 2, "events": {"StasisStart": 2, "x": "y", "flag": True}, "requests": {}}],
            2,
            {"events": 1.0, "requests": 0.0, "processes": 1},
            {},
        ),
    ],
)  # fmt: skip
def test_merge_counts(
    snapshots: list[dict[str, Any]],
    calls: int | None,
    per_call: dict[str, Any] | None,
    by_route: dict[str, Any] | None,
) -> None:
    merged = merge_counts(snapshots)
    if calls is None:
        assert merged is None
        return
    assert merged is not None
    assert merged["calls"] == calls
    assert merged["per_call"] == per_call
    assert merged["per_call_by_route"] == by_route


def test_read_counts_reads_every_process_file_and_skips_broken_ones(tmp_path: Path) -> None:
    (tmp_path / "ari-counts-v-1.json").write_text(json.dumps({"calls": 1}), encoding="utf-8")
    (tmp_path / "ari-counts-v-2.json").write_text(json.dumps({"calls": 2}), encoding="utf-8")
    (tmp_path / "ari-counts-v-3.json").write_text("{cut short", encoding="utf-8")
    (tmp_path / "ari-counts-v-4.json").write_text("[1, 2]", encoding="utf-8")
    got = read_counts(tmp_path.glob("ari-counts-v-*.json"))
    assert [g["calls"] for g in got] == [1, 2]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (None, ""),
        (b"", ""),
        (b"plain", "plain"),
        ("Sí".encode(), "Sí"),
        # the observed instance: sipp's stderr with a 0x80 byte crashed a whole run
        (b"warning: \x80\x81 received", "warning: \ufffd\ufffd received"),
        (b"\xff", "\ufffd"),
    ],
)
def test_decode_output_never_raises_on_what_a_child_writes(data: bytes | None, text: str) -> None:
    from ivr.bench.runner import decode_output

    assert decode_output(data) == text


def test_raise_nofile_lifts_the_soft_limit_even_where_the_hard_one_may_not_rise() -> None:
    """The observed instance: in this container root may not raise the hard limit
    ("not allowed to raise maximum limit"); the soft one must still reach it."""
    import subprocess
    import sys

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))\n"
        "from ivr.sandbox.supervisor import raise_nofile\n"
        "print(*raise_nofile(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, errors="replace", check=True
    )
    told_soft, told_hard, soft, new_hard = (int(x) for x in out.stdout.split())
    assert (told_soft, told_hard) == (soft, new_hard)  # it says what it set
    assert soft == new_hard >= hard  # soft up to the hard limit, the hard one never lowered


@pytest.mark.parametrize(
    ("text", "pid"),
    [("4321\n/var/lib/data\n1732000000\n", 4321), ("", None), ("not a pid\n", None)],
)
def test_postmaster_pid(tmp_path: Path, text: str, pid: int | None) -> None:
    from ivr.sandbox.postgres import postmaster_pid

    (tmp_path / "postmaster.pid").write_text(text, encoding="utf-8")
    assert postmaster_pid(tmp_path) == pid
    assert postmaster_pid(tmp_path / "absent") is None


def test_postgres_runs_as_its_own_user_when_we_are_root() -> None:
    import os

    from ivr.sandbox.postgres import as_server_user

    cmd = ["/usr/lib/postgresql/15/bin/initdb", "-D", "x"]
    wrapped = as_server_user(cmd)
    assert wrapped[-3:] == cmd
    assert (wrapped[:4] == ["runuser", "-u", "postgres", "--"]) == (os.geteuid() == 0)
