"""Operations end to end: flags switched through the ops API change what the next
sipp call does in the real Asterisk; windows revert; the incident switch; the
booking-service breaker; refused requests change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ControllerProcess, Sandbox, call_past_eligibility, ok, wait_until
from tests.e2e.ops_peers import BookingPeer, OpsApi, create_token

pytestmark = pytest.mark.e2e

TOUCHED = (
    "self_service_booking", "incident_mode",
    "booking_breaker.failure_threshold", "booking_breaker.open_seconds",
)  # fmt: skip


def flag_decisions(record: dict[str, Any], flag: str) -> list[str]:
    return [s["value"] for s in record["path"] if s["kind"] == "decision" and s.get("flag") == flag]


@pytest.fixture(scope="module")
def tokens(sandbox: Sandbox, controller: ControllerProcess) -> dict[str, str]:
    return {role: create_token(sandbox.env, f"e2e-{role}", role)
            for role in ("viewer", "operator", "admin")}  # fmt: skip


@pytest.fixture
def api(sandbox: Sandbox, tokens: dict[str, str]) -> Iterator[OpsApi]:
    client = OpsApi(sandbox.settings.ports.ops_http, tokens["admin"])
    yield client
    for name in TOUCHED:  # every test starts from the defaults
        if client.ok("GET", f"/api/flags/{name}")["source"] == "set":
            client.ok("DELETE", f"/api/flags/{name}", {"reason": "e2e: back to default"})
    for window in client.ok("GET", "/api/windows")["windows"]:
        if window["state"] in ("scheduled", "active"):
            client.ok("DELETE", f"/api/windows/{window['id']}", {"reason": "e2e: clean up"})


def applied_by_controller(api: OpsApi, before: float, within: float = 1.0) -> float:
    """Seconds until the controller's live flags moved past revision ``before``."""
    started = time.monotonic()
    wait_until(lambda: api.metric("citas_flags_revision") > before, within,
               "the controller to load the change")  # fmt: skip
    return time.monotonic() - started


def test_self_service_switched_off_while_calls_run_takes_the_next_call_to_the_agents(
    sandbox: Sandbox, controller: ControllerProcess, api: OpsApi, tokens: dict[str, str]
) -> None:
    operator = OpsApi(sandbox.settings.ports.ops_http, tokens["operator"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(sandbox.call, "target-booked")
        wait_until(
            lambda: call_past_eligibility(sandbox), 60, "the running call to pass eligibility"
        )
        before = api.metric("citas_flags_revision")
        operator.ok("PUT", "/api/flags/self_service_booking",
                    {"value": False, "reason": "e2e: booking web service incident"})  # fmt: skip
        applied = applied_by_controller(api, before, within=1.0)

        (record,) = ok(sandbox.call("self-service-off-agent"))["records"]
        assert flag_decisions(record, "self_service_booking") == ["false"]
        # The call already past its decision keeps its path.
        (kept,) = ok(running.result(timeout=180))["records"]
        assert kept["outcome"] == "booked"
        assert flag_decisions(kept, "self_service_booking") == ["true"]
    assert applied < 1.0

    entry = api.ok("GET", "/api/audit?name=self_service_booking&limit=1")["entries"][0]
    assert (entry["actor"], entry["old_value"], entry["new_value"]) == (
        "token:e2e-operator", True, False,
    )  # fmt: skip


def test_the_incident_switch_sends_callers_to_the_incident_queue_and_back(
    sandbox: Sandbox, controller: ControllerProcess, api: OpsApi
) -> None:
    before = api.metric("citas_flags_revision")
    api.ok("POST", "/api/incident", {"active": True, "reason": "e2e: outage drill"})
    applied_by_controller(api, before)
    (record,) = ok(sandbox.call("incident-agent"))["records"]
    assert flag_decisions(record, "incident_mode") == ["true"]

    before = api.metric("citas_flags_revision")
    api.ok("POST", "/api/incident", {"active": False, "reason": "e2e: drill over"})
    applied_by_controller(api, before)
    (record,) = ok(sandbox.call("hangup-midflow"))["records"]  # the normal menu again
    assert flag_decisions(record, "incident_mode") == ["false"]

    actions = [e["action"] for e in api.ok("GET", "/api/audit?name=incident_mode")["entries"]]
    assert actions[:2] == ["incident_off", "incident_on"]


def test_a_window_applies_and_reverts_on_time_by_itself(
    sandbox: Sandbox, controller: ControllerProcess, api: OpsApi
) -> None:
    starts = datetime.now(UTC)
    ends = starts + timedelta(seconds=40)
    window = api.ok("POST", "/api/windows", {
        "name": "incident_mode", "value": True, "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(), "reason": "e2e: planned maintenance window",
    })  # fmt: skip
    ok(sandbox.call("incident-agent"))

    def reverted() -> bool:
        value = api.ok("GET", "/api/flags/incident_mode")["value"]
        now = datetime.now(UTC)
        assert value is True or now >= ends, "reverted before the end of the window"
        return value is False

    assert datetime.now(UTC) < ends, "the call outlasted the window; make the window longer"
    wait_until(reverted, (ends - datetime.now(UTC)).total_seconds() + 5, "the window to end")
    assert datetime.now(UTC) - ends < timedelta(seconds=1)

    (record,) = ok(sandbox.call("hangup-midflow"))["records"]
    assert flag_decisions(record, "incident_mode") == ["false"]
    wait_until(
        lambda: any(e["action"] == "window_ended" and e["window_id"] == window["id"]
                    for e in api.ok("GET", "/api/audit?name=incident_mode")["entries"]),
        5, "the window's end in the audit",
    )  # fmt: skip


def test_refused_requests_change_nothing(
    sandbox: Sandbox, controller: ControllerProcess, api: OpsApi, tokens: dict[str, str]
) -> None:
    audit_before = api.ok("GET", "/api/audit?limit=1000")["entries"]
    flag = "/api/flags/self_service_booking"
    body = {"value": False, "reason": "should not happen"}
    assert api.request("PUT", flag, body, token="")[0] == 401
    assert api.request("PUT", flag, body, token="not-a-token")[0] == 401
    assert api.request("PUT", flag, body, token=tokens["viewer"])[0] == 403
    assert api.request("PUT", "/api/flags/eligibility.age_min", {"value": 5, "reason": "x"},
                       token=tokens["operator"])[0] == 403  # fmt: skip
    for bad in ({"value": "no", "reason": "x"}, {"value": False}, {"value": False, "reason": ""},
                {"value": False, "reason": "x", "extra": 1}):  # fmt: skip
        status, answer = api.request("PUT", flag, bad)
        assert status == 422 and answer["error"], (bad, answer)
    assert api.request("PUT", flag, raw=b"{not json")[0] == 422
    assert api.request("POST", "/api/windows", {"name": "incident_mode", "value": True,
        "ends_at": "2020-01-01T00:00:00+00:00", "reason": "past"})[0] == 422  # fmt: skip

    assert api.ok("GET", flag)["source"] == "default"
    assert api.ok("GET", "/api/audit?limit=1000")["entries"] == audit_before


@pytest.mark.timeout(240)  # three calls of about 35 s each, one after the other, and a restart
def test_the_breaker_opens_on_a_failing_booking_service_and_closes_after_recovery(
    sandbox: Sandbox, controller: ControllerProcess, api: OpsApi, tmp_path: Any
) -> None:
    peer = BookingPeer(tmp_path / "booking-service.db", sandbox.settings.ports.ops_http + 50)
    peer.start()
    controller.stop()
    guarded = ControllerProcess(
        Sandbox(sandbox.settings, {**sandbox.env, "CITAS_BOOKING_URL": peer.url}),
        tmp_path / "serve-with-booking-service.log",
    )
    try:
        guarded.start()
        api.ok("PUT", "/api/flags/booking_breaker.failure_threshold", {"value": 1, "reason": "e2e"})
        api.ok("PUT", "/api/flags/booking_breaker.open_seconds", {"value": 2, "reason": "e2e"})
        wait_until(lambda: api.ok("GET", "/api/breaker")["threshold"] == 1, 2, "the threshold")

        peer.mode = "fail"
        ok(sandbox.call("booking-down-whatsapp"))  # the failure routes the caller safely
        assert api.ok("GET", "/api/breaker")["state"] in ("open", "half_open")
        alerts = api.ok("GET", "/api/alerts?open=true")["alerts"]
        assert [a["kind"] for a in alerts] == ["booking_breaker_open"]
        rejected = api.metric('citas_booking_errors_total{kind="rejected"}', default=0.0)
        ok(sandbox.call("booking-down-whatsapp"))  # open: not even tried
        assert api.metric('citas_booking_errors_total{kind="rejected"}') > rejected

        peer.mode = "ok"
        wait_until(lambda: api.ok("GET", "/api/breaker")["state"] == "closed", 10,
                   "the breaker to close after a good probe")  # fmt: skip
        # The breaker closes in memory, then resolves its alert in the database
        # (OpsRuntime._breaker_moved): a read between the two saw it open (CI).
        wait_until(lambda: api.ok("GET", "/api/alerts?open=true")["alerts"] == [], 5,
                   "the breaker's alert resolved after it closed")  # fmt: skip
        (record,) = ok(sandbox.call("target-booked"))["records"]
        assert record["variables"]["booking_id"]
        actions = [e["action"] for e in api.ok("GET", "/api/audit?limit=20")["entries"]]
        assert "breaker_open" in actions and "breaker_closed" in actions
    finally:
        guarded.stop()
        peer.stop()
        controller.start()
