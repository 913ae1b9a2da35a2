"""The ARI counters through the real Asterisk: one smoke call counted on /metrics
and in the CITAS_ARI_COUNTS snapshot the controller writes when it stops."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.ari.counters import route_template
from ivr.settings import Settings
from tests.e2e.conftest import ControllerProcess, Sandbox
from tests.e2e.ops_peers import OpsApi

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SAMPLE = re.compile(r"^citas_ari_(events|requests)_total\{(.*)\} ([0-9.e+-]+)$", re.MULTILINE)


def counted(ops: OpsApi) -> tuple[dict[str, float], dict[str, float]]:
    """Events by type and requests by "METHOD route", as /metrics prints them."""
    status, text = ops.request("GET", "/metrics", token="")
    assert status == 200, text
    events: dict[str, float] = {}
    requests: dict[str, float] = {}
    for kind, labels, value in SAMPLE.findall(str(text)):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if kind == "events":
            events[fields["type"]] = float(value)
        else:
            requests[f"{fields['method']} {fields['route']}"] = float(value)
    return events, requests


@pytest.fixture
def own_controller(
    sandbox: Sandbox, no_session_controller: None, tmp_path: Path
) -> Iterator[tuple[ControllerProcess, Path]]:
    snapshot = tmp_path / "ari-counts-{pid}.json"
    ours = replace(sandbox, env={**sandbox.env, "CITAS_ARI_COUNTS": str(snapshot)})
    proc = ControllerProcess(ours, tmp_path / "serve.log")
    proc.start()
    try:
        yield proc, snapshot
    finally:
        proc.stop()


def test_one_smoke_call_is_counted(
    sandbox: Sandbox, own_controller: tuple[ControllerProcess, Path]
) -> None:
    proc, snapshot = own_controller
    ops = OpsApi(Settings.from_env(sandbox.env).ports.ops_http)
    before_events, _ = counted(ops)
    assert before_events.get("StasisStart", 0) == 0  # a fresh controller

    report = sandbox.call("smoke")
    assert report["failures"] == [] and report["exit_code"] == 0, report

    events, requests = counted(ops)
    # One call: one StasisStart, the one key pressed. The dialplan answered it before
    # Stasis(): no answer request. Two plays over POST /channels/{id}/play/{id} (the
    # route, not the ids): the welcome, then the confirmation with the goodbye in one
    # media list; the barge-in stop and the hang-up.
    assert events["StasisStart"] == 1
    assert events["ChannelDtmfReceived"] == 1
    assert "ChannelHangupRequest" not in events  # filtered: its StasisEnd says it
    assert "POST /channels/{id}/answer" not in requests
    assert requests["POST /channels/{id}/play/{id}"] == 2
    per_call = {r: n for r, n in requests.items() if "/channels/" in r or "/playbacks/" in r}
    assert per_call == {
        "POST /channels/{id}/play/{id}": 2,
        "DELETE /playbacks/{id}": 1,
        "DELETE /channels/{id}": 1,
    }, requests  # the rest is the controller's own at connect (event filter, slots)
    # Labels are templates already: no channel or playback id made its own route.
    assert all(route_template(r.split(" ", 1)[1]) == r.split(" ", 1)[1] for r in requests)
    assert sum(events.values()) >= 4  # at least start, DTMF, playback finished, end

    assert proc.proc is not None
    pid = proc.proc.pid
    proc.stop()  # SIGTERM: the snapshot is written on the way out
    written = Path(str(snapshot).replace("{pid}", str(pid)))
    data = json.loads(written.read_text())
    assert data["pid"] == pid and data["calls"] == 1
    assert data["events"] == {k: int(v) for k, v in events.items()}
    assert data["requests"] == {k: int(v) for k, v in requests.items()}
    assert data["per_call"]["events"] == sum(events.values())
    # The call's own requests went on the event websocket (ivr.ari.wsrest): the
    # connection's filter was set before the call came.
    assert data["requests_over_websocket"] >= sum(per_call.values()), data
