"""Desk agents in app_queue queues through the real Asterisk (issue 12 §1, docs/desk/queues.md).

A sipp agent (``ivr.scenarios.deskagent``: REGISTER, then answer) is logged into
its profile's queues; a non-target caller transferred by the IVR waits in queue
``l1_general`` (VDN 5550001) and the agent answers with the IVR's X-Citas-*
headers. The tester agent (``PJSIP/agent``, a static member with a high penalty)
is rung only when no desk agent can take the call.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ivr.ami import AmiActionFailed, AmiConnection
from ivr.scenarios.deskagent import DeskAgentPhone
from ivr.scenarios.spec import SCENARIO_DIR
from ivr.settings import Settings
from tests.e2e.conftest import ControllerProcess, Sandbox, ok

pytestmark = pytest.mark.e2e

AGENT = "7001"
QUEUES = ("l1_general", "incidentes")  # profile recepcion (config/citas/desk.yaml)


def ami(settings: Settings, *actions: Mapping[str, str]) -> list[Any]:
    """Run AMI actions in order; each one's response, or its AmiActionFailed."""

    async def run() -> list[Any]:
        conn = AmiConnection(settings.host, settings.ports.ami, settings.ami_user,
                             settings.ami_password, timeout=10)  # fmt: skip
        await conn.connect()
        try:
            out: list[Any] = []
            for fields in actions:
                try:
                    out.append(await conn.action(fields))
                except AmiActionFailed as exc:
                    out.append(exc)
            return out
        finally:
            await conn.close()

    return asyncio.run(run())


def login(settings: Settings, extension: str) -> None:
    for answer in ami(settings, *({
        "Action": "QueueAdd", "Queue": q, "Interface": f"PJSIP/{extension}",
        "MemberName": "Ana Gómez", "StateInterface": f"PJSIP/{extension}", "Penalty": "0",
    } for q in QUEUES)):  # fmt: skip
        assert not isinstance(answer, Exception), answer


def logout(settings: Settings, extension: str) -> None:
    # "Not there" is fine: the test may have failed before its login.
    ami(settings, *({"Action": "QueueRemove", "Queue": q, "Interface": f"PJSIP/{extension}"}
                    for q in QUEUES))  # fmt: skip


@pytest.fixture
def agent_phone(sandbox: Sandbox, tmp_path: Path) -> Iterator[DeskAgentPhone]:
    logout(sandbox.settings, AGENT)  # a previous run's membership (persistentmembers)
    phone = DeskAgentPhone(sandbox.settings, AGENT, tmp_path / "agent", talk_s=2, calls=1,
                           timeout_s=200)  # fmt: skip
    try:
        yield phone
    finally:
        phone.stop()
        logout(sandbox.settings, AGENT)


def desk_scenario(tmp_path: Path) -> str:
    """The bundled desk scenario as a file (``ivr call FILE``)."""
    path = tmp_path / "desk-non-target.yaml"
    shutil.copy(SCENARIO_DIR / "desk-non-target.yaml", path)
    return str(path)


def test_a_logged_in_desk_agent_answers_a_non_target_call_with_the_ivr_context(
    sandbox: Sandbox, controller: ControllerProcess, agent_phone: DeskAgentPhone, tmp_path: Path
) -> None:
    login(sandbox.settings, AGENT)

    report = ok(sandbox.call(desk_scenario(tmp_path)))
    phone = agent_phone.wait(60)

    assert phone.ok, phone
    (headers,) = agent_phone.invite_headers()
    assert {k: headers.get(k) for k in ("X-Citas-Segment", "X-Citas-Reason", "X-Citas-Vdn",
                                         "X-Citas-Affiliate")} == {
        "X-Citas-Segment": "non_target", "X-Citas-Reason": "non-target",
        "X-Citas-Vdn": "5550001", "X-Citas-Affiliate": "2020202020",
    }  # fmt: skip
    assert headers["X-Citas-Call-Id"].startswith(report["call_id_prefix"])
