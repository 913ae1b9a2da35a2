"""Escalation by phone call, through the real Asterisk to sipp support extensions (issue 11 §3, §8).

A controller runs with a cases.yaml of the test's own (first response in 1
business hour, every day a working day, no quiet hours, ladder waits of 3
seconds; its own group, so cases other tests left open in the sandbox's
database are not this monitor's). A case is filed in the sandbox's database; the tester's command
``ivr cases clock advance 10d`` moves the SLA monitor's test clock past the
first-response clock; the monitor warns (50, 75, 100 %) and calls the first
person of the ladder through Asterisk (ARI originate to ``PJSIP/6001``), whose
extension is a sipp UAS (``ivr cases phone``'s ``SupportPhone``):

1. 6001 answers, hears the summary and presses 1 (RFC 4733): the attempt is
   ``acknowledged`` in the database, the case history says so, and nobody
   else is called;
2. 6001 refuses (480): its attempt is ``no_answer``, and after the step's wait
   6002 is called, answers and presses 1.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.cases.config import load_cases_config
from ivr.cases.model import SYSTEM, NewCase
from ivr.cases.store import CaseStore
from ivr.scenarios.support import SupportPhone
from ivr.settings import DEFAULT_CONFIG_DIR, REPO_ROOT
from ivr.store import Database
from tests.e2e.conftest import ControllerProcess, Sandbox, wait_until

pytestmark = pytest.mark.e2e

WAIT_S = 3
CASES_YAML = f"""
answer_within_business_days: 5
default_group: e2e_escalation
timezone: America/Bogota
business_days: mon-sun
groups:
  e2e_escalation:
    name: Escalamiento (prueba)
    working_hours: {{mon-sun: ["00:00-24:00"]}}
    sla: {{first_response: 1h, resolution: 200d}}
    quiet_hours: []
    warnings: [50, 75, 100]
    ladder:
      - {{person: lider_citas, wait: {WAIT_S}s}}
      - {{person: coordinadora, wait: {WAIT_S}s}}
people:
  lider_citas: {{name: Líder de citas, extension: "6001"}}
  coordinadora: {{name: Coordinadora, extension: "6002"}}
"""


@pytest.fixture
def escalating(
    sandbox: Sandbox, no_session_controller: None, tmp_path: Path
) -> Iterator[tuple[Sandbox, Path]]:
    """A controller on a config dir with the test's cases.yaml; the test clock
    reset before and after (it is the instance's, shared with other tests)."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    (config / "citas" / "cases.yaml").write_text(CASES_YAML, encoding="utf-8")
    own = Sandbox(sandbox.settings, {**sandbox.env, "CITAS_CONFIG_DIR": str(config)})
    clock(own, "reset")
    proc = ControllerProcess(own, tmp_path / "serve.log")
    proc.start()
    try:
        yield own, config / "citas" / "cases.yaml"
    finally:
        proc.stop()
        clock(own, "reset")
        print((tmp_path / "serve.log").read_text()[-4000:])


def clock(sandbox: Sandbox, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "cases", "clock", *args], capture_output=True,
        text=True, errors="replace", env=sandbox.env, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def store_of(sandbox: Sandbox, cases_yaml: Path) -> tuple[Database, CaseStore]:
    config = load_cases_config(cases_yaml)
    db = Database(sandbox.settings.database_url)
    return db, CaseStore(db, config.calendar_for, config)


def file_case(sandbox: Sandbox, cases_yaml: Path) -> str:
    async def go() -> str:
        db, store = store_of(sandbox, cases_yaml)
        try:
            case = await store.file(NewCase(
                affiliate_id=f"9{uuid.uuid4().int % 10**9:09d}", specialty="general",
                service_id="general_first", cups="890201", site_id="norte", channel="voice",
                summary="Sin cita de medicina general tras cambiar franja y médico.",
            ))  # fmt: skip
            return case.number
        finally:
            await db.close()

    return asyncio.run(go())


def close_case(sandbox: Sandbox, cases_yaml: Path, number: str) -> None:
    async def go() -> None:
        db, store = store_of(sandbox, cases_yaml)
        try:
            await store.close(number, resolution="prueba terminada", actor=SYSTEM)
        finally:
            await db.close()

    asyncio.run(go())


def rows(sandbox: Sandbox, query: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(sandbox.settings.database_url.split("///", 1)[1], timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def attempts(sandbox: Sandbox, number: str) -> list[sqlite3.Row]:
    return rows(sandbox, """
        SELECT a.* FROM escalation_attempts a JOIN cases c ON c.id = a.case_id
        WHERE c.number = ? AND a.kind = 'call' ORDER BY a.step""", number)  # fmt: skip


def events(sandbox: Sandbox, number: str) -> list[str]:
    found = rows(sandbox, """
        SELECT e.action FROM case_events e JOIN cases c ON c.id = e.case_id
        WHERE c.number = ? ORDER BY e.id""", number)  # fmt: skip
    return [r["action"] for r in found]


def finished(sandbox: Sandbox, number: str, count: int) -> bool:
    found = attempts(sandbox, number)
    return len(found) >= count and all(a["result"] is not None for a in found)


# Two controller restarts (the session's steps aside for the test's own), the CLI
# processes and one or two calls: about 60 s, twice that on a loaded machine.
@pytest.mark.timeout(240)
def test_the_first_person_answers_and_presses_1(escalating: tuple[Sandbox, Path]) -> None:
    """The tester's path: ``ivr cases phone 6001`` answers, ``ivr cases clock advance``."""
    sandbox, cases_yaml = escalating
    number = file_case(sandbox, cases_yaml)
    phone = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "cases", "phone", "6001", "--timeout", "150"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=sandbox.env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert phone.stdout is not None
        started = [phone.stdout.readline() for _ in range(1)]
        while started[-1] and "waiting for an escalation call" not in started[-1]:
            started.append(phone.stdout.readline())  # log lines first, if any
        assert "waiting for an escalation call" in started[-1], started
        assert "test clock: +10 days" in clock(sandbox, "advance", "10d")
        wait_until(lambda: finished(sandbox, number, 1), 120, "the escalation call to end")
        out, _ = phone.communicate(timeout=60)
    finally:
        if phone.poll() is None:
            phone.kill()  # ours, by its pid
            phone.communicate(timeout=10)
        close_case(sandbox, cases_yaml, number)

    assert phone.returncode == 0 and "ok: sipp exit 0, 1 call(s) received" in out, out
    [attempt] = attempts(sandbox, number)
    assert (attempt["step"], attempt["person"], attempt["extension"], attempt["result"]) == (
        0, "lider_citas", "6001", "acknowledged")
    assert attempt["answered_at"] is not None and attempt["acknowledged_at"] is not None
    history = events(sandbox, number)
    assert history.count("sla_warning") == 3  # 50, 75 and 100 % of the first response, once each
    assert history.index("escalation_call") < history.index("escalation_acknowledged")
    alerts = rows(sandbox, "SELECT kind FROM ops_alerts WHERE source = ?", f"case:{number}:first_response")
    assert [a["kind"] for a in alerts] == ["sla_overrun"]


@pytest.mark.timeout(240)
def test_no_answer_moves_the_ladder_to_the_next_person(
    escalating: tuple[Sandbox, Path], tmp_path: Path
) -> None:
    sandbox, cases_yaml = escalating
    number = file_case(sandbox, cases_yaml)
    first = SupportPhone(sandbox.settings, "6001", tmp_path / "6001", answer=False, timeout_s=150)
    second = SupportPhone(sandbox.settings, "6002", tmp_path / "6002", answer=True, timeout_s=150)
    try:
        clock(sandbox, "advance", "10d")
        wait_until(lambda: finished(sandbox, number, 2), 150, "the ladder's second call to end")
        reports = first.wait(60), second.wait(60)
    finally:
        first.stop()
        second.stop()
        close_case(sandbox, cases_yaml, number)

    assert all(r.ok for r in reports), reports
    no_answer, acknowledged = attempts(sandbox, number)
    assert (no_answer["person"], no_answer["result"]) == ("lider_citas", "no_answer")
    assert no_answer["answered_at"] is None and "19" in no_answer["detail"]
    assert (acknowledged["person"], acknowledged["result"]) == ("coordinadora", "acknowledged")
    gap = _instant(acknowledged["started_at"]) - _instant(no_answer["started_at"])
    assert gap >= timedelta(seconds=WAIT_S)


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)
