"""The dashboard end to end: a sipp call through the real Asterisk and controller is
counted by the migration funnel the controller's ops API serves (the funnel reads the
call record the controller really writes: its flow, ``segment`` and ``site_id``
variables, its outcome), and the controller serves the Tablero page and the XLSX."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from ivr.xlsx_export import read_back
from tests.e2e.conftest import ControllerProcess, Sandbox, ok, wait_until
from tests.e2e.ops_peers import OpsApi, create_token

pytestmark = pytest.mark.e2e

ANA_SITE = "norte"  # config/citas/affiliates.yaml: Ana (caller ID 3001234567) is at Norte


def norte(api: OpsApi) -> dict[str, Any]:
    funnel = api.ok("GET", "/api/reports/funnel")  # the last 7 days, today included
    counts: dict[str, Any] = funnel["by_site"].get(ANA_SITE, {"target": 0, "booked_phone": 0})
    return counts


def test_a_booked_target_call_is_in_the_funnel_and_the_export(
    sandbox: Sandbox, controller: ControllerProcess
) -> None:
    api = OpsApi(
        sandbox.settings.ports.ops_http, create_token(sandbox.env, "e2e-tablero", "viewer")
    )
    before = norte(api)

    (record,) = ok(sandbox.call("target-booked"))["records"]

    assert record["outcome"] == "booked" and record["variables"]["site_id"] == ANA_SITE
    wait_until(lambda: norte(api)["target"] == before["target"] + 1, 10, "the call in the funnel")
    after = norte(api)
    assert after["booked_phone"] == before["booked_phone"] + 1
    assert after["redirected"] == before.get("redirected", 0)

    status, page = api.request("GET", "/console/tablero.html", token="")
    assert status == 200 and "Tablero" in page
    status, _ = api.request("GET", "/api/reports/export", token="")
    assert status == 401
    request = urllib.request.Request(api.base + "/api/reports/export?site=norte",
                                     headers={"Authorization": f"Bearer {api.token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        workbook = response.read()
    sheet = read_back(workbook)["Embudo por sede"]
    assert sheet[0][:3] == ["Sede", "Llamantes objetivo", "Agendaron por teléfono"]
    assert sheet[1][:3] == [ANA_SITE, after["target"], after["booked_phone"]]

