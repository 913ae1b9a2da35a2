"""Faults through the real Asterisk: the controller killed, the ARI websocket
cut, Asterisk restarted, the database locked, the booking service slow, the SMS
provider failing. Each test injects one fault around a sipp call and checks that
the caller was never left in silence and nothing was lost or sent twice.

Every test runs its own controller (``ivr serve``, a child process ended by its
pid), so the session's controller is stopped for this module and started again
after it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.controller import sms_log_path
from ivr.sandbox import manager
from tests.e2e.conftest import ControllerProcess, Sandbox, call_past_eligibility, ok, wait_until
from tests.e2e.fault_peers import (
    RecordRow,
    SmsProviderPeer,
    TcpProxy,
    call_records,
    database_locked,
    sms_status,
)
from tests.e2e.ops_peers import BookingPeer, OpsApi

pytestmark = pytest.mark.e2e

# The rescue message (citas/service_unavailable_agent) lasts about 6 s; the
# caller hears it, then the agents' ringback.
RESCUE_PROMPT_S = 6.0
PROMO_S = 8.2  # citas/promo_digital_channels, the first prompt of the citas line


@pytest.fixture(scope="module")
def own_controllers(sandbox: Sandbox, controller: ControllerProcess) -> Iterator[None]:
    """One Stasis app, one ops port: the session's controller steps aside."""
    controller.stop()
    try:
        yield
    finally:
        controller.start()


def db_file(sandbox: Sandbox) -> Path:
    return sandbox.settings.state_dir / sandbox.settings.instance / "citas.db"


def started(sandbox: Sandbox, env: dict[str, str], log: Path) -> ControllerProcess:
    proc = ControllerProcess(Sandbox(sandbox.settings, env), log)
    proc.start()
    return proc


def place(pool: ThreadPoolExecutor, sandbox: Sandbox, scenario: str) -> Future[dict[str, Any]]:
    return pool.submit(sandbox.call, scenario)


def records_since(sandbox: Sandbox, since: datetime, scenario: str) -> list[RecordRow]:
    rows = call_records(db_file(sandbox), f"citas-{scenario}-")
    return [r for r in rows if r.started_at >= since]


def flag_decisions(record: dict[str, Any], flag: str) -> list[str]:
    return [s["value"] for s in record["path"] if s["kind"] == "decision" and s.get("flag") == flag]


def step_at_node(record: dict[str, Any], node: str) -> float:
    return float(next(s["at"] for s in record["path"] if s.get("node") == node))


def step_at(record: RecordRow, kind: str) -> float:
    """Seconds after the record started when its first ``kind`` step happened."""
    return float(next(s["at"] for s in record.path if s["kind"] == kind))


def test_controller_killed_mid_call_the_restarted_one_sends_the_caller_to_agents(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    since = datetime.now(UTC)
    first = started(sandbox, sandbox.env, tmp_path / "serve-killed.log")
    second = ControllerProcess(sandbox, tmp_path / "serve-restarted.log")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = place(pool, sandbox, "controller-killed-agent")
            wait_until(lambda: records_since(sandbox, since, "controller-killed-agent"), 30,
                       "the call to reach the controller")  # fmt: skip
            assert first.proc is not None
            killed_at = time.time()
            os.kill(first.proc.pid, signal.SIGKILL)  # no grace, no cleanup: a crash
            first.proc.wait(timeout=10)
            # At once, as systemd's Restart=always would. Asterisk keeps listing the
            # app while channels are in it, so "registered" is the new websocket.
            second.start()
            wait_until(lambda: ari_connected(sandbox), 15, "the new controller's websocket")
            registered = time.time() - killed_at
            report = running.result(timeout=110)
    finally:
        second.stop()
        first.stop()

    assert report["sipp_rc"] == 0 and report["agent_rc"] == 0, report
    assert report["agent_headers"]["X-Citas-Reason"] == "ivr-restarted", report
    assert report["agent_headers"]["X-Citas-Call-Id"].startswith(report["call_id_prefix"])
    killed, adopted = records_since(sandbox, since, "controller-killed-agent")
    # Whoever adopts a call closes the record its dead controller left open (issue 13).
    assert (killed.outcome, killed.end_reason) == ("interrupted", "controller_lost"), killed
    assert killed.ended_at is not None and killed.ended_at.timestamp() > killed_at
    assert report["failures"] == [], report
    # The new controller wrote its own record, under the same SIP Call-ID.
    assert adopted.sip_call_id == killed.sip_call_id and adopted.flow == "citas"
    assert adopted.outcome == "transferred" and adopted.ended_at is not None
    assert [s["kind"] for s in adopted.path] == ["resumed_after_reconnect", "transfer"]
    assert adopted.path[0]["adopted"] is False and adopted.path[0]["interrupted"] == 1
    assert adopted.path[-1]["reason"] == "ivr-restarted"

    adopted_at = adopted.started_at.timestamp() + step_at(adopted, "resumed_after_reconnect")
    transfer_at = adopted.started_at.timestamp() + step_at(adopted, "transfer")
    silence = adopted_at - killed_at  # nobody drove the call: restart + reconcile
    print(
        f"\ncontroller killed: new one registered after {registered:.2f}s, call adopted "
        f"(rescue message starts) {silence:.2f}s after the kill, "
        f"{adopted_at - killed_at - registered:+.2f}s from registration; "
        f"transferred {transfer_at - adopted_at:.2f}s later"
    )
    assert adopted_at - killed_at - registered < 2.0
    assert silence < 10.0
    # The dead controller's promo keeps playing; the rescue message is queued after it.
    assert transfer_at - adopted_at < PROMO_S + RESCUE_PROMPT_S + 2.0


def test_controller_killed_after_eligibility_the_rescue_keeps_its_context(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    """The agents get the segment, affiliate and CUPS eligibility found before the
    controller died, from the channel (before: a rescue always said segment
    ``unknown``; the scenario's expectations are the headers)."""
    first = started(sandbox, sandbox.env, tmp_path / "serve-killed.log")
    second = ControllerProcess(sandbox, tmp_path / "serve-restarted.log")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = place(pool, sandbox, "controller-killed-after-eligibility")
            wait_until(lambda: call_past_eligibility(sandbox), 40, "eligibility's context")
            assert first.proc is not None
            os.kill(first.proc.pid, signal.SIGKILL)  # a crash, mid-offer
            first.proc.wait(timeout=10)
            second.start()
            report = running.result(timeout=110)
    finally:
        second.stop()
        first.stop()

    ok(report)
    headers = report["agent_headers"]
    assert (headers["X-Citas-Reason"], headers["X-Citas-Segment"]) == ("ivr-restarted", "target")
    assert (headers["X-Citas-Affiliate"], headers["X-Citas-Cups"]) == ("1010101010", "890201")


def ops(sandbox: Sandbox) -> OpsApi:
    return OpsApi(sandbox.settings.ports.ops_http)


def readiness(sandbox: Sandbox) -> tuple[int, dict[str, Any]]:
    """/health/ready of the running controller; (0, {}) while nothing listens."""
    try:
        status, body = ops(sandbox).request("GET", "/health/ready", token="")
    except OSError:
        return 0, {}
    return status, body if isinstance(body, dict) else {}


def channel_ids(sandbox: Sandbox) -> set[str]:
    return {c["id"] for c in sandbox.ari_get("/channels")}


def ari_connected(sandbox: Sandbox) -> bool:
    return bool(readiness(sandbox)[1].get("checks", {}).get("ari"))


def test_ari_websocket_cut_and_restored_mid_call_routes_the_caller_and_the_next_call_works(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    proxy = TcpProxy(sandbox.settings.ports.ops_http + 60, sandbox.settings.ports.http)
    proxy.start()
    # Only the controller goes through the proxy. `ivr serve` takes its ports from
    # a running sandbox's state, so it runs as another instance (no sandbox) and
    # is pointed at this sandbox's database by URL.
    env = {
        **sandbox.env,
        "CITAS_INSTANCE": f"{sandbox.settings.instance}-proxied",
        "CITAS_DB_URL": sandbox.settings.database_url,
        "CITAS_HTTP_PORT": str(proxy.port),
    }
    since = datetime.now(UTC)
    controller = started(sandbox, env, tmp_path / "serve-behind-proxy.log")
    try:
        wait_until(lambda: ari_connected(sandbox), 10, "the controller's ARI websocket")
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = place(pool, sandbox, "controller-killed-agent")
            wait_until(lambda: records_since(sandbox, since, "controller-killed-agent"), 30,
                       "the call to reach the controller")  # fmt: skip
            proxy.cut()
            wait_until(lambda: not ari_connected(sandbox), 5, "the controller to see the cut")
            proxy.restore()
            restored_at = time.time()
            wait_until(lambda: ari_connected(sandbox), 15, "the websocket to reconnect")
            reconnected = time.time() - restored_at
            report = running.result(timeout=100)
        assert report["sipp_rc"] == 0 and report["agent_rc"] == 0, report
        assert report["agent_headers"]["X-Citas-Reason"] == "ivr-restarted", report
        # The call lived through the gap in the same controller: it may have missed a
        # PlaybackFinished or a key, so it goes to the agents at once (no orphan here).
        (record,) = records_since(sandbox, since, "controller-killed-agent")
        assert record.outcome == "transferred", record
        assert [s["kind"] for s in record.path][-2:] == ["events_lost", "transfer"]
        rescued = record.started_at.timestamp() + step_at(record, "events_lost") - restored_at
        print(f"\nwebsocket cut: reconnected {reconnected:.2f}s after the port reopened, "
              f"caller rescued {rescued:.2f}s after it")  # fmt: skip
        assert rescued < reconnected + 1.0
        (after,) = ok(sandbox.call("smoke"))["records"]
        assert after["outcome"] == "completed"
    finally:
        controller.stop()
        proxy.stop()


def test_asterisk_restarted_under_the_controller_it_reconnects_and_the_next_call_works(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    controller = started(sandbox, sandbox.env, tmp_path / "serve-asterisk-restart.log")
    try:
        wait_until(lambda: readiness(sandbox)[0] == 200, 10, "the controller to be ready")
        killed_at = time.time()
        manager.restart_asterisk(sandbox.settings)
        seen: list[tuple[int, dict[str, Any]]] = []
        wait_until(lambda: seen.append(readiness(sandbox)) or seen[-1][0] == 503, 10,
                   "/health/ready to report ARI down")  # fmt: skip
        assert seen[-1][1]["checks"]["ari"] is False, seen[-1]
        wait_until(lambda: readiness(sandbox)[0] == 200, 60, "/health/ready to recover")
        recovered = time.time() - killed_at
        print(f"\nasterisk restarted: controller ready again {recovered:.2f}s after the kill")
        (record,) = ok(sandbox.call("smoke"))["records"]
        assert record["outcome"] == "completed"
    finally:
        controller.stop()


def test_database_locked_during_a_call_the_record_is_written_when_it_comes_back(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    # promo-hangup reads two flags (incident_mode, promo_audio) and hangs up in the
    # promo: no slots, no SMS. Another connection holds the database's write lock
    # for the whole call. SQLite runs in WAL mode (ivr.store.db), so reads go on:
    # the controller stays ready and the call takes exactly its normal path; its
    # record's writes fail, are buffered, and land once the lock is released.
    env = {**sandbox.env, "CITAS_REQUEST_TIMEOUT": "1"}
    since = datetime.now(UTC)
    controller = started(sandbox, env, tmp_path / "serve-db-locked.log")
    try:
        wait_until(lambda: readiness(sandbox)[0] == 200, 10, "the controller to be ready")
        before = channel_ids(sandbox)
        with ThreadPoolExecutor(max_workers=1) as pool:
            with database_locked(db_file(sandbox)):
                locked_at = time.time()
                running = place(pool, sandbox, "promo-hangup")
                wait_until(lambda: channel_ids(sandbox) - before, 10, "the call to start")
                ours = channel_ids(sandbox) - before
                wait_until(lambda: not channel_ids(sandbox) & ours, 60, "the call to end")
                # WAL: readers are not locked out by a writer (the point of the mode).
                status, body = readiness(sandbox)
                assert (status, body.get("checks", {}).get("database")) == (200, True)
                # Nothing of the call reached the file while the writes were locked.
                assert not any(r.ended_at for r in records_since(sandbox, since, "promo-hangup"))
                released_at = time.time()
            wait_until(lambda: any(r.ended_at for r in records_since(sandbox, since, "promo-hangup")),
                       10, "the buffered record to be written")  # fmt: skip
            written_after = time.time() - released_at
            report = running.result(timeout=60)
        (record,) = ok(report)["records"]
        assert flag_decisions(record, "incident_mode") == ["false"]
        assert flag_decisions(record, "promo_audio") == ["true"]
        assert record["end_reason"] == "caller_hangup"
        (row,) = call_records(db_file(sandbox), report["call_id_prefix"])
        # Closed (in memory) while the lock was held, written after it.
        assert row.ended_at is not None and row.ended_at.timestamp() < released_at
        print(f"\ndatabase write-locked {released_at - locked_at:.1f}s for the whole call; record "
              f"written {written_after:.2f}s after the release, complete ({len(row.path)} steps)")  # fmt: skip
        assert written_after < 6.0  # the flusher's backoff is capped at 5 s
    finally:
        controller.stop()


def test_booking_service_slow_the_caller_is_routed_within_the_timeout(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    peer = BookingPeer(tmp_path / "booking-service.db", sandbox.settings.ports.ops_http + 50)
    peer.start()
    env = {**sandbox.env, "CITAS_BOOKING_URL": peer.url, "CITAS_REQUEST_TIMEOUT": "2"}
    controller = started(sandbox, env, tmp_path / "serve-slow-booking.log")
    try:
        api = ops(sandbox)
        timeouts = api.metric('citas_booking_errors_total{kind="timeout"}', default=0.0)
        peer.mode = "slow"
        (record,) = ok(sandbox.call("booking-down-whatsapp"))["records"]
        assert api.metric('citas_booking_errors_total{kind="timeout"}') == timeouts + 1
        # From the lookup starting to the caller hearing the next prompt.
        asked = step_at_node(record, "find_slot")
        heard = next(s["at"] for s in record["path"] if s["kind"] == "prompt" and s["at"] > asked)
        print(f"\nbooking service slow: caller waited {heard - asked:.2f}s (timeout 2s)")
        assert heard - asked < 2.0 + 1.0
    finally:
        controller.stop()
        peer.mode = "ok"
        peer.stop()


def test_sms_provider_failing_the_outbox_retries_and_sends_once(
    sandbox: Sandbox, own_controllers: None, tmp_path: Path
) -> None:
    provider = SmsProviderPeer(sandbox.settings.ports.ops_http + 70, fail_first=3)
    provider.start()
    env = {**sandbox.env, "CITAS_SMS_URL": provider.url, "CITAS_SMS_RETRY_S": "0.5"}
    controller = started(sandbox, env, tmp_path / "serve-sms-provider.log")
    try:
        (record,) = ok(sandbox.call("sms-provider-whatsapp"))["records"]
        sms_id = record["variables"]["sms_id"]
        wait_until(lambda: sms_status(db_file(sandbox), sms_id) == "sent", 30, "the SMS to be sent")
        print(f"\nsms provider failing: {len(provider.attempts)} attempts, "
              f"{[a.status for a in provider.attempts]}, delivered once")  # fmt: skip
        attempts = [a.status for a in provider.attempts]
        assert attempts == [503, 503, 503, 200]
        assert {a.idempotency_key for a in provider.attempts} == {sms_id}
        assert list(provider.delivered) == [sms_id]
        assert "https://wa.me/" in provider.delivered[sms_id].text
        assert not sms_log_path(sandbox.settings).is_file() or sms_id not in (
            sms_log_path(sandbox.settings).read_text()
        )
    finally:
        controller.stop()
        provider.stop()
