"""``ivr call SCENARIO``: place a scenario with sipp and judge what happened.

The verdict comes from two sides: sipp's own (the SIP dialogue went as
scripted) and the controller's call record in the database, found by the
SIP Call-ID we gave the call (the dialplan hands it to the Stasis app). For
agent scenarios, the headers the agent's INVITE carried are checked too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from ivr.scenarios.sippxml import agent_xml, caller_xml
from ivr.scenarios.spec import Scenario
from ivr.settings import Settings
from ivr.store import CallRecordStore, Database
from ivr.store.models import CallRecordRow

RECORD_WAIT_S = 15.0


@dataclass
class CallReport:
    scenario: str
    call_id_prefix: str
    sipp_rc: int
    sipp_tail: str = ""
    agent_rc: int | None = None
    agent_headers: dict[str, str] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 the kernel just gave us (free now, not reserved)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_media_port(attempts: int = 64) -> int:
    """An even UDP port ``p`` with ``p`` to ``p + 3`` free now: sipp's ``-mp``.

    Asterisk sends RTP to the port in the SDP and RTCP to the next one (RFC 3550
    §11), and sipp binds ``p`` (audio echo) and ``p + 2`` (video echo). A media
    port taken alone could sit just below another sipp's SIP port, whose socket
    then received RTCP reports it echoed into its stderr as bytes that are not
    UTF-8 (seen in CI, 2026-11-30). Raises ``OSError`` when no free block is
    found in ``attempts`` tries.
    """
    for _ in range(attempts):
        port = free_udp_port() & ~1
        with contextlib.ExitStack() as held:
            try:
                for p in range(port, port + 4):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", p))
            except OSError:
                continue
            return port
    raise OSError(f"no four free UDP ports from an even one on 127.0.0.1 in {attempts} tries")


def _sipp_base(workdir: Path, name: str, port: int) -> list[str]:
    return [
        "sipp", "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1", "-nostdin",
        "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"),
        "-trace_msg", "-message_file", str(workdir / f"{name}_messages.log"),
    ]  # fmt: skip


def place(scenario: Scenario, settings: Settings, workdir: Path) -> CallReport:
    prefix = f"citas-{scenario.name}-{uuid.uuid4().hex[:12]}"
    caller_file = workdir / "caller.xml"
    caller_file.write_text(caller_xml(scenario, workdir), encoding="utf-8")
    inject: list[str] = []
    if len(scenario.caller_ids) > 1:
        (workdir / "callers.csv").write_text(
            "SEQUENTIAL\n" + "".join(f"{c};\n" for c in scenario.caller_ids)
        )
        inject = ["-inf", str(workdir / "callers.csv")]
    agent_proc = None
    if scenario.agent:
        (workdir / "agent.xml").write_text(agent_xml(), encoding="utf-8")
        cmd = _sipp_base(workdir, "agent", settings.ports.agent_sip) + [
            "-sf", str(workdir / "agent.xml"), "-m", str(scenario.calls),
            "-mp", str(free_media_port()), "-timeout", f"{int(scenario.timeout) + 30}s", "-timeout_error",
        ]  # fmt: skip
        agent_proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir
        )
    cmd = _sipp_base(workdir, "caller", free_udp_port()) + [
        "-sf", str(caller_file), "-s", scenario.dial, "-m", str(scenario.calls), "-l", str(scenario.calls),
        "-r", str(scenario.calls), "-mp", str(free_media_port()), "-cid_str", f"{prefix}-%u@%s",
        "-timeout", f"{int(scenario.timeout)}s", "-timeout_error", *inject,
        f"{settings.host}:{settings.ports.sip}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True, errors="replace",
            timeout=scenario.timeout + 30,
            cwd=workdir,
            check=False,
        )
        rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        rc, tail = -9, "sipp did not finish in time"
    report = CallReport(scenario.name, prefix, rc, tail)
    if agent_proc is not None:
        try:
            agent_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent_proc.terminate()
            agent_proc.wait(timeout=10)
        if agent_proc.stdout is not None:
            agent_proc.stdout.close()
        report.agent_rc = agent_proc.returncode
        report.agent_headers = agent_invite_headers(workdir / "agent_messages.log")
    return report


def agent_invite_headers(message_file: Path) -> dict[str, str]:
    """The X-Citas-* headers of the first INVITE the agent received."""
    found = invite_headers(message_file)
    return found[0] if found else {}


_INVITE = re.compile(r"received[^\n]*\n+(INVITE .*?)(?:\n\s*\n)", re.S)


def invite_headers(message_file: Path) -> list[dict[str, str]]:
    """The X-Citas-* headers of every INVITE in a sipp message log (``-trace_msg``), in order."""
    if not message_file.is_file():
        return []
    text = message_file.read_text(errors="replace")
    found = []
    for match in _INVITE.finditer(text):
        headers = {}
        for line in match.group(1).splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip().lower().startswith("x-citas-"):
                headers[name.strip()] = value.strip()
        found.append(headers)
    return found


async def fetch_records(
    settings: Settings, prefix: str, expected: int, wait: float
) -> list[CallRecordRow]:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        store = CallRecordStore(db)
        deadline = time.monotonic() + wait
        while True:
            rows = [r for r in await store.recent(200) if (r.sip_call_id or "").startswith(prefix)]
            done = [r for r in rows if r.ended_at is not None]
            if len(done) >= expected or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.2)
    finally:
        await db.close()


SEEDS = ("agenda", "race", "appointments", "cases", "case_open")
# The ``appointments`` seed: Ana (config/citas/affiliates.yaml) holds these two.
SEED_PATIENT, SEED_SITE = "1010101010", "norte"
SEED_SERVICES = ("890201", "890301")  # medicina general primera vez, then control
# The case scenarios' affiliates (Lucía by phone, Mateo by chat; site sur, no
# slots) and the specialty they file for (medicina general primera vez).
CASE_AFFILIATES = ("1313131313", "1414141414", "1515151515")  # Lucía, Mateo, Nora
CASE_SERVICE = ("general", "mg_first", "890201", "sur")


async def seed(settings: Settings, name: str) -> None:
    """Reset demo data a scenario depends on (the sandbox's database only).

    ``agenda``: every booking is released, so the demo patients hold no
    appointment (a patient cannot book twice for one service, nor at
    overlapping times). ``race``: the same, plus one fresh slot at the race site.
    ``appointments``: the same, then Ana holds two pending appointments (the
    first free slot of each of ``SEED_SERVICES`` at her site, the second after
    the first ends), to list, cancel or reschedule (issue 10 §2).
    ``cases``: the same as ``agenda``, and the case affiliates'
    (``CASE_AFFILIATES``) open cases closed, so they may file one (issue 11).
    ``case_open``: the same as ``agenda``, and each case affiliate holds an open
    case for ``CASE_SERVICE``'s specialty (one is filed when none is).
    """
    from ivr.booking.db import DbSlotSource
    from ivr.booking.seed import race_slot

    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; known: {', '.join(SEEDS)}")
    db = Database(settings.database_url)
    try:
        await db.migrate()
        slots = DbSlotSource(db, timeout=settings.request_timeout)
        await slots.release_bookings()
        if name == "race":
            slot = race_slot(date.today())
            await slots.delete_free_slots(slot.site_id)
            await slots.seed_slots([slot])
        if name == "appointments":
            after = None
            for cups in SEED_SERVICES:
                [free] = await slots.find(site_id=SEED_SITE, cups=cups, after=after, limit=1)
                await slots.book(free.id, affiliate_id=SEED_PATIENT, call_id=f"seed-{cups}")
                after = free.ends_at
        if name in ("cases", "case_open"):
            await seed_cases(settings, db, keep_open=name == "case_open")
    finally:
        await db.close()


async def seed_cases(settings: Settings, db: Database, *, keep_open: bool) -> None:
    """The case affiliates' cases for the ``cases`` / ``case_open`` seeds."""
    from datetime import UTC, datetime

    from ivr.cases.model import SYSTEM, NewCase
    from ivr.cases.setup import case_store
    from ivr.citas.cases import TIME_BANDS, evidence_entry

    store = case_store(settings, db)
    specialty, service_id, cups, site_id = CASE_SERVICE
    for affiliate_id in CASE_AFFILIATES:
        case = await store.open_for(affiliate_id, specialty)
        if case is not None and not keep_open:
            await store.close(case.number, resolution="Datos de prueba reiniciados", actor=SYSTEM)
        if case is None and keep_open:
            now = datetime.now(UTC)
            await store.file(
                NewCase(
                    affiliate_id=affiliate_id, specialty=specialty, service_id=service_id,
                    cups=cups, site_id=site_id, channel="voice",
                    summary="Caso de prueba (semilla case_open de los escenarios)",
                    consent=True, consent_at=now,
                    search_evidence=[evidence_entry(b, None, 0, now) for b in TIME_BANDS],
                )
            )  # fmt: skip


def sms_logs(settings: Settings) -> list[Path]:
    """The file gateways' logs an SMS of a call placed with ``settings`` may be in:
    its instance's, or for a cluster or one of its nodes every node's (their SMS
    outbox is the cluster's database: any node's worker may send a message)."""
    from ivr.controller import sms_log_path
    from ivr.sandbox.cluster import cluster_of

    state = cluster_of(settings)
    instances = state.nodes if state is not None else [settings.instance]
    return [sms_log_path(replace(settings, instance=name)) for name in instances]


async def fetch_sms(
    settings: Settings, rows: list[CallRecordRow], wait: float
) -> list[dict[str, Any]]:
    """The SMS these calls queued, once the worker has dealt with them."""
    from ivr.sms.outbox import SmsOutbox

    ids = [str(r.variables["sms_id"]) for r in rows if r.variables.get("sms_id")]
    if not ids:
        return []
    db = Database(settings.database_url)
    try:
        outbox = SmsOutbox(db, timeout=settings.request_timeout)
        deadline = time.monotonic() + wait
        while True:
            messages = [await outbox.get(i) for i in ids]
            settled = all(m is not None and m.status in ("sent", "failed") for m in messages)
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await db.close()
    lines = [
        line
        for log in sms_logs(settings)
        if log.is_file()
        for line in log.read_text(encoding="utf-8").splitlines()
    ]
    out = []
    for message_id, message in zip(ids, messages, strict=True):
        sent_lines = sum(1 for line in lines if json.loads(line).get("id") == message_id)
        out.append({
            "id": message_id, "status": message.status if message else None,
            "attempts": message.attempts if message else None, "gateway_lines": sent_lines,
            "text": message.text if message else None,
        })  # fmt: skip
    return out


def judge(scenario: Scenario, report: CallReport, rows: list[CallRecordRow]) -> None:
    exp = scenario.expect
    if report.sipp_rc != 0:
        report.failures.append(f"sipp caller failed (exit {report.sipp_rc})")
    if scenario.agent:
        if report.agent_rc != 0:
            report.failures.append(f"sipp agent failed (exit {report.agent_rc})")
        for name, value in exp.agent_headers.items():
            got = report.agent_headers.get(name)
            if got != value:
                report.failures.append(f"agent header {name}: expected {value!r}, got {got!r}")
    report.records = [_row_json(r) for r in rows]
    if not exp.record:
        if rows:
            report.failures.append(f"expected no call record, found {len(rows)}")
        return
    if len(rows) < scenario.calls:
        report.failures.append(f"expected {scenario.calls} call record(s), found {len(rows)}")
        return
    if exp.outcomes and sorted(r.outcome or "" for r in rows) != sorted(exp.outcomes):
        report.failures.append(
            f"outcomes: expected {sorted(exp.outcomes)}, got {sorted(str(r.outcome) for r in rows)}"
        )
    if exp.sms_sent is not None:
        sent = [m for m in report.sms if m["status"] == "sent" and m["gateway_lines"] == 1]
        if len(sent) != exp.sms_sent or len(report.sms) != exp.sms_sent:
            report.failures.append(
                f"SMS: expected {exp.sms_sent} sent exactly once, got {report.sms}"
            )
    for row in rows:
        if row.ended_at is None:
            report.failures.append(f"record {row.id} was never closed")
        if exp.outcome and row.outcome != exp.outcome:
            report.failures.append(f"outcome: expected {exp.outcome!r}, got {row.outcome!r}")
        visited = [s.get("node") for s in row.path if s.get("kind") == "node"]
        missing = [n for n in exp.nodes if n not in visited]
        if missing:
            report.failures.append(f"nodes never visited: {missing} (path: {visited})")
        typed = [s.get("digits") for s in row.path if s.get("kind") == "digits"]
        if exp.digits and typed[: len(exp.digits)] != list(exp.digits):
            report.failures.append(f"digits: expected {list(exp.digits)}, got {typed}")
        for name, value in exp.variables.items():
            if str(row.variables.get(name)) != value:
                report.failures.append(
                    f"variable {name}: expected {value!r}, got {row.variables.get(name)!r}"
                )


def _row_json(row: CallRecordRow) -> dict[str, Any]:
    return {
        "id": row.id, "channel_id": row.channel_id, "sip_call_id": row.sip_call_id,
        "flow": row.flow, "outcome": row.outcome,
        "end_reason": row.end_reason, "path": row.path, "variables": row.variables,
    }  # fmt: skip


def run_scenario(
    scenario: Scenario, settings: Settings, keep_dir: Path | None = None
) -> CallReport:
    with tempfile.TemporaryDirectory(prefix=f"ivr-call-{scenario.name}-") as tmp:
        workdir = keep_dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if scenario.seed:
            asyncio.run(seed(settings, scenario.seed))
        report = place(scenario, settings, workdir)
        wait = RECORD_WAIT_S if scenario.expect.record else 1.0
        rows = asyncio.run(fetch_records(settings, report.call_id_prefix, scenario.calls, wait))
        if scenario.expect.sms_sent is not None:
            report.sms = asyncio.run(fetch_sms(settings, rows, RECORD_WAIT_S))
        judge(scenario, report, rows)
        return report
