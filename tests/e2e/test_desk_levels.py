"""Service levels through the real Asterisk (issue 12 §5, docs/desk/levels.md).

A non-target caller transferred by the IVR is answered by sipp agent 7001 (level 1,
Recepción); Ana escalates it to the clinical area over the ops API; the caller hears
the announcement and waits in queue ``l2_clinico``; sipp agent 7003 (Carla, level 2)
answers with the same X-Citas-* context. The journey has two chained hops with the
time at each level, and the escalation is ``answered``.

The second test escalates to an area nobody staffs: the caller hears the announcement
and then ``agents_unavailable`` (never silence), and the escalation is ``unanswered``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.ami.manager import AmiConnection
from ivr.scenarios.deskagent import DeskAgentPhone
from ivr.scenarios.spec import SCENARIO_DIR
from ivr.settings import Settings
from tests.e2e.conftest import ControllerProcess, Sandbox, ok, wait_until
from tests.e2e.ops_peers import agent_token

pytestmark = pytest.mark.e2e

CONTEXT_HEADERS = ("X-Citas-Segment", "X-Citas-Reason", "X-Citas-Affiliate", "X-Citas-Cups",
                   "X-Citas-Call-Id")  # fmt: skip


class OpsClient:
    """The controller's ops API as a token's holder uses it."""

    def __init__(self, settings: Settings, token: str) -> None:
        self.base = f"http://{settings.host}:{settings.ports.ops_http}"
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, method=method, data=data, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        assert status == 200, (method, path, status, answer)
        return answer


def token(sandbox: Sandbox, name: str) -> str:
    """Desk agent ``name``'s token on this sandbox (shared by every desk test file)."""
    return agent_token(sandbox.env, name)


class Caller(threading.Thread):
    """The desk scenario's sipp caller, placed in the background (it lasts until an
    agent or the dialplan hangs up)."""

    def __init__(self, sandbox: Sandbox, scenario: str) -> None:
        super().__init__(daemon=True)
        self.sandbox, self.scenario = sandbox, scenario
        self.report: dict[str, Any] | None = None

    def run(self) -> None:
        self.report = self.sandbox.call(self.scenario)

    def result(self, timeout: float) -> dict[str, Any]:
        self.join(timeout)
        assert self.report is not None, f"the caller did not finish in {timeout}s"
        return self.report


def desk_scenario(tmp_path: Path) -> str:
    path = tmp_path / "desk-non-target.yaml"
    shutil.copy(SCENARIO_DIR / "desk-non-target.yaml", path)
    return str(path)


@pytest.fixture
def phones(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, DeskAgentPhone]]:
    """Agent 7001 stays on the line until the escalation hangs its leg up; 7003 talks 3 s."""
    made: dict[str, DeskAgentPhone] = {}
    try:
        made["7001"] = DeskAgentPhone(sandbox.settings, "7001", tmp_path / "a7001", talk_s=100,
                                      calls=1, timeout_s=240)  # fmt: skip
        made["7003"] = DeskAgentPhone(sandbox.settings, "7003", tmp_path / "a7003", talk_s=3,
                                      calls=1, timeout_s=240)  # fmt: skip
        yield made
    finally:
        for phone in made.values():
            phone.stop()


def poll(fetch: Any, timeout: float, what: str) -> Any:
    """The first truthy value ``fetch()`` gives within ``timeout`` seconds."""
    found: list[Any] = []
    wait_until(lambda: bool(found.append(fetch()) or found[-1]), timeout, what)
    return found[-1]


class AmiWatch:
    """AMI events of the sandbox, collected in a thread of their own while a test runs."""

    def __init__(self, settings: Settings, pattern: str = "Newexten") -> None:
        self.events: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.ami = AmiConnection(settings.host, settings.ports.ami, settings.ami_user,
                                 settings.ami_password, timeout=10)  # fmt: skip

        async def record(event: Any) -> None:
            self.events.append(dict(event))

        self.ami.on_event(pattern, record)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._run(self.ami.connect())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def played(self, uniqueid: str) -> list[str]:
        """What the channel ``uniqueid`` played (``Playback`` data), in order."""
        return [e.get("AppData", "") for e in list(self.events)
                if e.get("Uniqueid") == uniqueid and e.get("Application") == "Playback"]  # fmt: skip

    def close(self) -> None:
        self._run(self.ami.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def without_vdn(context: dict[str, Any]) -> dict[str, Any]:
    return {**context, "facts": [f for f in context.get("facts", []) if f.get("label") != "VDN"]}


def current_contact(api: OpsClient, *, not_id: str | None = None) -> dict[str, Any] | None:
    """The agent's active voice contact, other than ``not_id`` (the one it had before
    this test's call: another test file on the same sandbox, e.g. the chat hand-off the
    pop test takes as Ana, leaves its own contact active, and a test that took it for
    its call's contact read another journey)."""
    status, answer = api.request("GET", "/api/desk/current")
    if status != 200 or not answer.get("contact"):
        return None
    contact: dict[str, Any] = answer["contact"]
    mine = contact["state"] == "active" and contact["kind"] == "voice" and contact["id"] != not_id
    return contact if mine else None


def contact_id_now(api: OpsClient) -> str | None:
    """The id of the agent's current contact before a test's call, if any."""
    status, answer = api.request("GET", "/api/desk/current")
    contact = answer.get("contact") if status == 200 else None
    return str(contact["id"]) if contact else None


@pytest.mark.timeout(300)  # a call answered at level 1, moved, answered at level 2: about 60 s, slower under load
def test_an_escalated_call_reaches_level_two_with_the_same_context(
    sandbox: Sandbox, controller: ControllerProcess, phones: dict[str, DeskAgentPhone],
    tmp_path: Path,
) -> None:  # fmt: skip
    ana = OpsClient(sandbox.settings, token(sandbox, "ana"))
    carla = OpsClient(sandbox.settings, token(sandbox, "carla"))
    ana.ok("POST", "/api/desk/agents/7001/login", {})
    carla.ok("POST", "/api/desk/agents/7003/login", {})
    watch = AmiWatch(sandbox.settings)
    caller = Caller(sandbox, desk_scenario(tmp_path))
    before = contact_id_now(ana)
    caller.start()
    try:
        first = poll(lambda: current_contact(ana, not_id=before), 120, "agent 7001's contact (the IVR transfer answered)")
        assert (first["agent"], first["level"]) == ("7001", 1)
        options = ana.ok("GET", f"/api/desk/contacts/{first['id']}/escalation")
        assert {t["area"] for t in options["targets"]} == {"tecnico", "clinico", "comercial"}
        done = ana.ok("POST", f"/api/desk/contacts/{first['id']}/escalate",
                      {"area": "clinico", "reason": "Pregunta por un resultado de laboratorio"})  # fmt: skip
        assert done["contact"]["state"] == "escalated"
        assert done["escalation"]["to_queue"] == "l2_clinico"
        report = ok(caller.result(200))
    finally:
        carla.request("POST", "/api/desk/agents/7003/logout", {})
        ana.request("POST", "/api/desk/agents/7001/logout", {})
        watch.close()
    # The caller (the journey key is its Uniqueid) heard where it was going.
    assert "citas/desk_escalate_l2_clinico" in watch.played(first["journey_key"])
    assert phones["7001"].wait(30).ok and phones["7003"].wait(30).ok
    (level1,) = phones["7001"].invite_headers()
    (level2,) = phones["7003"].invite_headers()
    assert {h: level2.get(h) for h in CONTEXT_HEADERS} == {h: level1.get(h) for h in CONTEXT_HEADERS}
    assert level1["X-Citas-Call-Id"].startswith(report["call_id_prefix"])
    assert (level1["X-Citas-Vdn"], level2["X-Citas-Vdn"]) == ("5550001", "5550022")

    def journey() -> dict[str, Any]:
        answer: dict[str, Any] = ana.ok("GET", f"/api/desk/journeys/{first['journey_key']}")
        return answer

    wait_until(lambda: len(journey()["hops"]) == 2 and journey()["hops"][1]["seconds_at_level"]
               is not None, 30, "the level-2 hop, ended")  # fmt: skip
    hops = journey()["hops"]
    one, two = hops[0]["contact"], hops[1]["contact"]
    assert (one["id"], one["state"], one["level"]) == (first["id"], "escalated", 1)
    assert (two["previous_contact_id"], two["agent"], two["level"], two["queue"]) == (
        one["id"], "7003", 2, "l2_clinico",
    )  # fmt: skip
    # The same screen pop, but for the VDN the caller reached (the level-2 queue's).
    assert without_vdn(two["context"]) == without_vdn(one["context"])
    assert {"label": "VDN", "value": "5550022"} in two["context"]["facts"]
    assert hops[0]["seconds_at_level"] > 0 and hops[1]["seconds_at_level"] > 0
    assert hops[1]["queued_seconds"] is not None
    (escalation,) = hops[0]["escalations"]
    assert (escalation["outcome"], escalation["next_contact_id"]) == ("answered", two["id"])
    assert 0 < escalation["queued_seconds"] < 60


@pytest.mark.timeout(300)  # a call, an escalation to an empty queue, the message: about 50 s
def test_an_escalation_nobody_takes_is_said_and_recorded_unanswered(
    sandbox: Sandbox, controller: ControllerProcess, phones: dict[str, DeskAgentPhone],
    tmp_path: Path,
) -> None:  # fmt: skip
    ana = OpsClient(sandbox.settings, token(sandbox, "ana"))
    ana.ok("POST", "/api/desk/agents/7001/login", {})
    watch = AmiWatch(sandbox.settings)
    caller = Caller(sandbox, desk_scenario(tmp_path))
    before = contact_id_now(ana)
    caller.start()
    try:
        first = poll(lambda: current_contact(ana, not_id=before), 120, "agent 7001's contact")
        # Nobody is logged into l2_tecnico: the queue refuses the caller (joinempty).
        ana.ok("POST", f"/api/desk/contacts/{first['id']}/escalate",
               {"area": "tecnico", "reason": "Falla de la aplicación"})  # fmt: skip
        report = ok(caller.result(120))  # the dialplan hung up after agents_unavailable
    finally:
        ana.request("POST", "/api/desk/agents/7001/logout", {})
        watch.close()
    assert report["exit_code"] == 0
    assert phones["7001"].wait(30).ok  # its leg ended by the move
    # Never silence: the announcement, then the queue's refusal said to the caller.
    played = watch.played(first["journey_key"])
    assert played[-2:] == ["citas/desk_escalate_l2_tecnico", "citas/agents_unavailable"], played

    def escalation() -> dict[str, Any]:
        hops = ana.ok("GET", f"/api/desk/journeys/{first['journey_key']}")["hops"]
        found_escalation: dict[str, Any] = hops[0]["escalations"][0]
        return found_escalation

    wait_until(lambda: escalation()["outcome"] != "pending", 30, "the escalation's outcome")
    assert escalation()["outcome"] == "unanswered"
    assert escalation()["queued_seconds"] > 3  # the announcement and agents_unavailable were said
