"""QueueControl: agents' login, logout, pause and status, logged to desk_presence.

The AMI side is an in-process model of app_queue's membership (pure logic: the
real AMI text is tests/unit/test_desk_ami.py's, the real Asterisk
tests/e2e/test_desk_queues.py's); the presence log is the real DeskStore on SQLite
(and PostgreSQL when CITAS_TEST_PG_URL is set).

The kind of fault: the desk's idea of an agent drifting from Asterisk's or from
its log — a login that misses a queue of the profile, a logout that leaves the
agent in a queue, a pause that is not a pause everywhere or has no reason, a
refused or failed action that is logged anyway, a status that counts the tester's
static member as an agent. Checked over every agent and profile of desk.yaml and
every device state app_queue reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from ivr.ami import AmiActionFailed, AmiConnectionError, AmiTimeout
from ivr.desk.ami import (
    DEVICE_STATES,
    IN_CALL_STATES,
    DeskAmiUnavailable,
    NotLoggedIn,
    QueueControl,
    UnknownPauseReason,
)
from ivr.desk.config import DeskConfig, load_desk_config
from ivr.desk.errors import UnknownAgent
from ivr.desk.store import DeskStore
from ivr.store.db import Database

CONFIG = load_desk_config()


@dataclass
class Member:
    name: str
    interface: str
    state: str
    penalty: int = 0
    static: bool = False
    paused: bool = False
    reason: str = ""
    status: str = "1"
    in_call: bool = False


@dataclass
class FakeAppQueue:
    """app_queue's members per queue, answering QueueAdd/Remove/Pause/Status as Asterisk 22
    does (messages as the sandbox gave them). ``down``: every action fails as AMI lost."""

    queues: dict[str, dict[str, Member]] = field(default_factory=dict)
    sent: list[dict[str, str]] = field(default_factory=list)
    down: type[AmiConnectionError] | None = None

    def __post_init__(self) -> None:
        for q in CONFIG.queues.values():
            self.queues[q.id] = {}
            if q.level == 1:
                self.queues[q.id]["PJSIP/agent"] = Member("Probador (sipp)", "PJSIP/agent",
                                                          "PJSIP/agent", 100, static=True)  # fmt: skip

    async def action(self, fields: Mapping[str, str]) -> dict[str, str]:
        self.sent.append(dict(fields))
        if self.down is not None:
            raise self.down("AMI 127.0.0.1:5038: connection lost")
        name, iface = fields["Action"], fields.get("Interface", "")
        if name == "QueueAdd":
            members = self.queues[fields["Queue"]]
            if iface in members:
                raise AmiActionFailed(name, {"Response": "Error",
                                             "Message": "Unable to add interface: Already there"})  # fmt: skip
            members[iface] = Member(fields["MemberName"], iface, fields["StateInterface"],
                                    int(fields["Penalty"]))  # fmt: skip
            return {"Response": "Success", "Message": "Added interface to queue"}
        if name == "QueueRemove":
            if self.queues[fields["Queue"]].pop(iface, None) is None:
                raise AmiActionFailed(name, {"Response": "Error",
                                             "Message": "Unable to remove interface: Not there"})  # fmt: skip
            return {"Response": "Success", "Message": "Removed interface from queue"}
        if name == "QueuePause":
            found = [m[iface] for m in self.queues.values() if iface in m]
            if not found:
                raise AmiActionFailed(name, {"Response": "Error", "Message": "Interface not found"})
            for member in found:
                member.paused = fields["Paused"] == "true"
                member.reason = fields.get("Reason", "") if member.paused else ""
            return {"Response": "Success", "Message": "Interface paused successfully"}
        raise AssertionError(f"unexpected action {fields}")

    async def action_list(self, fields: Mapping[str, str]) -> list[dict[str, str]]:
        self.sent.append(dict(fields))
        if self.down is not None:
            raise self.down("AMI 127.0.0.1:5038: no response in 5.0s")
        assert fields == {"Action": "QueueStatus"}
        events = [{"Event": "QueueParams", "Queue": "l1_general"}]
        for queue, members in self.queues.items():
            for m in members.values():
                events.append({
                    "Event": "QueueMember", "Queue": queue, "Name": m.name, "Location": m.interface,
                    "StateInterface": m.state, "Membership": "static" if m.static else "dynamic",
                    "Penalty": str(m.penalty), "InCall": "1" if m.in_call else "0",
                    "Status": m.status, "Paused": "1" if m.paused else "0", "PausedReason": m.reason,
                })  # fmt: skip
        return events

    def member_of(self, interface: str) -> list[str]:
        return [q for q, members in self.queues.items() if interface in members]

    def status_order(self) -> None:
        """Asterisk lists queues in its own (hash) order, not desk.yaml's."""
        self.queues = dict(sorted(self.queues.items()))


@pytest.fixture
def ami() -> FakeAppQueue:
    return FakeAppQueue()


@pytest.fixture
def store(db: Database) -> DeskStore:
    return DeskStore(db)


@pytest.fixture
def control(ami: FakeAppQueue, store: DeskStore) -> QueueControl:
    return QueueControl(ami, CONFIG, store, CONFIG.pause_reasons)


async def log_of(store: DeskStore, agent: str) -> list[tuple[str, tuple[str, ...], str | None, str]]:
    return [(p.event, p.queues, p.reason, p.actor)
            for p in reversed(await store.presence_log(agent=agent))]  # fmt: skip


@pytest.mark.parametrize("extension", sorted(CONFIG.agents))
async def test_login_puts_the_agent_in_every_queue_of_its_profile_then_logout_takes_it_out(
    extension: str, control: QueueControl, ami: FakeAppQueue, store: DeskStore
) -> None:
    agent = CONFIG.agent(extension)
    profile_queues = tuple(CONFIG.profile(agent.profile).queues)

    status = await control.login(extension, actor=agent.user)

    assert ami.member_of(agent.interface) == list(profile_queues)
    for queue in profile_queues:
        member = ami.queues[queue][agent.interface]
        assert (member.name, member.state, member.penalty) == (agent.name, agent.interface, 0)
    assert (status.logged_in, status.paused, status.queues) == (True, False, profile_queues)

    status = await control.logout(extension, actor="admin")

    assert ami.member_of(agent.interface) == [] and not status.logged_in
    assert await log_of(store, extension) == [
        ("login", profile_queues, None, agent.user), ("logout", profile_queues, None, "admin"),
    ]


async def test_login_twice_is_harmless(control: QueueControl, ami: FakeAppQueue) -> None:
    await control.login("7001", actor="ana")
    ami.status_order()  # and the queues are still given in desk.yaml's order
    status = await control.login("7001", actor="ana")

    assert status.queues == ("l1_general", "incidentes")
    assert sorted(ami.member_of("PJSIP/7001")) == ["incidentes", "l1_general"]


async def test_logout_leaves_every_desk_queue_even_one_the_profile_no_longer_lists(
    control: QueueControl, ami: FakeAppQueue, store: DeskStore
) -> None:
    await control.login("7001", actor="ana")
    ami.queues["l2_clinico"]["PJSIP/7001"] = Member("Ana Gómez", "PJSIP/7001", "PJSIP/7001")

    await control.logout("7001", actor="ana")

    assert ami.member_of("PJSIP/7001") == []
    assert (await log_of(store, "7001"))[-1] == (
        "logout", ("l1_general", "incidentes", "l2_clinico"), None, "ana")


@pytest.mark.parametrize("reason", sorted(CONFIG.pause_reasons))
async def test_a_pause_with_each_reason_holds_in_every_queue_and_unpause_ends_it(
    reason: str, control: QueueControl, ami: FakeAppQueue, store: DeskStore
) -> None:
    await control.login("7001", actor="ana")

    status = await control.pause("7001", reason, actor="ana")

    label = CONFIG.pause_reasons[reason]
    assert all(ami.queues[q]["PJSIP/7001"].paused for q in ("l1_general", "incidentes"))
    assert all(ami.queues[q]["PJSIP/7001"].reason == label for q in ("l1_general", "incidentes"))
    assert (status.paused, status.pause_reason) == (True, label)
    assert not ami.queues["l1_general"]["PJSIP/agent"].paused  # the tester is not touched

    status = await control.unpause("7001", actor="ana")

    assert (status.paused, status.pause_reason) == (False, None)
    assert [e[:3] for e in await log_of(store, "7001")] == [
        ("login", ("l1_general", "incidentes"), None),
        ("pause", ("l1_general", "incidentes"), reason),
        ("unpause", ("l1_general", "incidentes"), None),
    ]


@pytest.mark.parametrize("reason", ["", "siesta", "Almuerzo", "almuerzo "])
async def test_an_unknown_pause_reason_is_refused_before_anything_is_done(
    reason: str, control: QueueControl, ami: FakeAppQueue, store: DeskStore
) -> None:
    await control.login("7001", actor="ana")
    sent = len(ami.sent)

    with pytest.raises(UnknownPauseReason, match="Motivo de pausa desconocido"):
        await control.pause("7001", reason, actor="ana")

    assert len(ami.sent) == sent
    assert [e[0] for e in await log_of(store, "7001")] == ["login"]


@pytest.mark.parametrize("act", ["pause", "unpause"])
async def test_pausing_an_agent_who_is_not_logged_in_is_refused(
    act: str, control: QueueControl, store: DeskStore
) -> None:
    with pytest.raises(NotLoggedIn, match="no ha iniciado sesión"):
        if act == "pause":
            await control.pause("7002", "almuerzo", actor="bruno")
        else:
            await control.unpause("7002", actor="bruno")

    assert await log_of(store, "7002") == []


@pytest.mark.parametrize("act", ["login", "logout", "pause", "unpause", "agent_status"])
async def test_an_extension_that_is_no_agent_is_refused(act: str, control: QueueControl) -> None:
    with pytest.raises(UnknownAgent):
        if act == "pause":
            await control.pause("7999", "almuerzo", actor="x")
        elif act == "agent_status":
            await control.agent_status("7999")
        else:
            await getattr(control, act)("7999", actor="x")


@pytest.mark.parametrize("lost", [AmiConnectionError, AmiTimeout])
@pytest.mark.parametrize("act", ["login", "logout", "pause", "unpause", "status"])
async def test_when_asterisk_does_not_answer_nothing_is_logged(
    act: str, lost: type[AmiConnectionError], control: QueueControl, ami: FakeAppQueue,
    store: DeskStore,
) -> None:  # fmt: skip
    await control.login("7001", actor="ana")
    ami.down = lost

    with pytest.raises(DeskAmiUnavailable, match="La central telefónica no responde"):
        if act == "pause":
            await control.pause("7001", "almuerzo", actor="ana")
        elif act == "status":
            await control.status()
        else:
            await getattr(control, act)("7001", actor="ana")

    assert [e[0] for e in await log_of(store, "7001")] == ["login"]


@pytest.mark.parametrize(("code", "device"), sorted(DEVICE_STATES.items()))
async def test_status_reports_every_device_state_and_whether_the_agent_is_in_a_call(
    code: str, device: str, control: QueueControl, ami: FakeAppQueue
) -> None:
    await control.login("7003", actor="carla")
    ami.queues["l2_clinico"]["PJSIP/7003"].status = code

    (carla,) = [s for s in await control.status() if s.extension == "7003"]

    assert carla.device == device
    assert carla.in_call == (device in IN_CALL_STATES)
    assert carla.as_json()["device_label"]


async def test_status_lists_every_agent_and_never_the_testers_static_member(
    control: QueueControl, ami: FakeAppQueue
) -> None:
    await control.login("7001", actor="ana")
    ami.queues["l1_general"]["PJSIP/7001"].in_call = True

    status = await control.status()

    assert [s.extension for s in status] == sorted(CONFIG.agents)
    ana, bruno = status[0], status[1]
    assert (ana.logged_in, ana.in_call, ana.queues) == (True, True, ("l1_general", "incidentes"))
    assert (bruno.logged_in, bruno.queues, bruno.device) == (False, (), "unknown")
    assert all("agent" not in s.extension for s in status)


def test_the_shipped_pause_reasons_are_spanish_labels() -> None:
    config: DeskConfig = CONFIG
    assert {"almuerzo", "capacitacion", "pausa_activa", "backoffice"} <= set(config.pause_reasons)
    assert config.pause_reasons["capacitacion"] == "Capacitación"
