"""Sentiment, keywords and incident reports end to end, in the real controller (``ivr serve``
against the sandbox): an admin adds a keyword through the controller's ops API, a case
is filed into the instance's database, and the controller's own analysis worker raises
its priority ("palabra clave: tutela"), seen with ``ivr cases show``; an operator files
an incident report while the incident switch is on and exports it (issue 11 §5, §6).

The call that files a case is the filing part's e2e test; here the case is filed with
the store, as the call's action does, so this test is about what the controller runs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.cases.model import NewCase
from ivr.cases.setup import case_store
from ivr.settings import REPO_ROOT
from ivr.store.db import Database
from tests.e2e.conftest import ControllerProcess, Sandbox, wait_until
from tests.e2e.ops_peers import OpsApi, create_token

pytestmark = pytest.mark.e2e


def file_case(sandbox: Sandbox, affiliate: str, summary: str) -> str:
    """A case in the instance's database, as the filing action writes it; its number."""

    async def work() -> str:
        db = Database(sandbox.settings.database_url, timeout=10)
        try:
            case = await case_store(sandbox.settings, db).file(NewCase(
                affiliate_id=affiliate, specialty="general", service_id="mg_first",
                cups="890201", site_id="norte", channel="voice", summary=summary,
                consent=True, contact_email="paciente@example.org",
            ))  # fmt: skip
            return case.number
        finally:
            await db.close()

    return asyncio.run(work())


def show_case(sandbox: Sandbox, number: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "ivr.cli", "cases", "show", number, "--json"],
        capture_output=True, text=True, errors="replace", env=sandbox.env, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def test_a_keyword_raises_a_filed_case_and_a_report_is_filed_and_exported(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    admin = OpsApi(sandbox.settings.ports.ops_http, create_token(sandbox.env, "e2e-sent-admin", "admin"))  # fmt: skip
    operator = OpsApi(sandbox.settings.ports.ops_http, create_token(sandbox.env, "e2e-sent-op", "operator"))  # fmt: skip
    legal = admin.ok("POST", "/api/keyword-lists", {"name": "Jurídico e2e", "reason": "e2e"})
    admin.ok("POST", f"/api/keyword-lists/{legal['id']}/keywords",
             {"phrase": "tutela", "raises_priority": True, "reason": "e2e"})  # fmt: skip

    angry = file_case(
        sandbox, "e2e-sent-1", "Nadie responde; si no me dan la cita pongo una TUTELA"
    )
    calm = file_case(sandbox, "e2e-sent-2", "Necesito una cita de control, gracias")
    wait_until(lambda: show_case(sandbox, angry)["case"]["priority"] == "high", 60,
               "the controller's worker to raise the case")  # fmt: skip
    shown = show_case(sandbox, angry)
    assert shown["case"]["priority_reason"] == "palabra clave: tutela"
    assert [e["actor"] for e in shown["events"] if e["action"] == "priority_raised"] == ["sistema"]
    assert show_case(sandbox, calm)["case"]["priority"] == "normal"

    # the incident report, linked to the switch and to the case
    operator.ok("POST", "/api/incident", {"active": True, "reason": "e2e: caída del agendador"})
    try:
        report = operator.ok("POST", "/api/incident-reports", {
            "occurred_at": datetime.now(UTC).isoformat(), "channels": ["telefono"],
            "description": "El afiliado no pudo agendar", "error_message": "=ERROR 503",
            "consent": False, "case_numbers": [angry],
        })  # fmt: skip
    finally:
        operator.ok("POST", "/api/incident", {"active": False, "reason": "e2e: fin"})
    assert report["incident"]["active"] is True and report["case_numbers"] == [angry]
    detail = operator.ok("GET", f"/api/incident-reports/{report['id']}")
    assert detail["incident"]["audit"]["reason"] == "e2e: caída del agendador"

    req = urllib.request.Request(
        f"{operator.base}/api/incident-reports?format=csv&case={angry}",
        headers={"Authorization": f"Bearer {operator.token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        rows = list(csv.DictReader(io.StringIO(resp.read().decode(), newline="")))
    assert [(r["Reporte"], r["Mensaje de error"], r["Casos"]) for r in rows] == [
        (str(report["id"]), "'=ERROR 503", angry)
    ]
    # the pages are linked from the console
    pages = operator.ok("GET", "/api/console/pages")["pages"]
    assert {"Palabras clave", "Reportes de incidente"} <= {p["title"] for p in pages}
