"""The next level's contact, as the screen pop opens it (ivr.desk.screen), resumes the
previous level's script and chain (docs/desk/levels.md "Records"): voice from
``CITAS_DESK_PREV`` on the AgentConnect, chat from the re-queued hand-off's context.
The kind: a hop that loses its chain, journey or script place, over both channels."""

from __future__ import annotations

import pytest

from ivr.desk.escalations import EscalationLog
from ivr.desk.levels import HandoffRequeue, Levels
from ivr.desk.pop import ChatKeys
from ivr.store.db import Database
from tests.unit.test_desk_levels import CONFIG, PROMPTS, T0
from tests.unit.test_desk_pop_screen import ami, screen_on


@pytest.mark.parametrize("kind", ["voice", "chat"])
async def test_the_next_levels_contact_resumes_the_script_and_the_chain(db: Database, kind: str) -> None:
    screen = screen_on(db)
    if kind == "voice":
        first = await screen.connected(ami("AgentConnect"))  # type: ignore[arg-type]
    else:
        first = await screen.chat_taken(agent="7001", handoff_id=5, queued_at=T0, keys=ChatKeys(
            conversation_id="conv-1", wa_id="573001234567", journey_id=None, reason="asked",
            context={"motivo": "cita"}))  # fmt: skip
    assert first is not None
    await screen.store.set_script(first.id, version=2, node_id="agendamiento/no_objetivo/buscar",
                                  call_type="agendamiento")  # fmt: skip
    levels = Levels(CONFIG, screen.store, EscalationLog(db), chats=HandoffRequeue(db), prompts=PROMPTS)
    await screen.store.escalate(first.id, reason="Requiere médico", to_queue="l2_clinico", agent="7001")
    if kind == "voice":
        second = await screen.connected(ami(  # type: ignore[arg-type]
            "AgentConnect", "1764500000.10", "PJSIP/7003", Queue="l2_clinico", MemberName="Carla Ruiz",
            ChanVariable=f"CITAS_CALL_ID=sip-1\nCITAS_DESK_PREV={first.id}", DestUniqueid="1764500000.20",
        ))  # fmt: skip
    else:
        second = await screen.chat_taken(agent="7003", handoff_id=5, queued_at=T0, keys=ChatKeys(
            conversation_id="conv-1", wa_id="573001234567", journey_id=None, reason="asked",
            context={"motivo": "cita", "desk_queue": "l2_clinico", "desk_level": 2,
                     "desk_prev": first.id, "desk_area": "clinico"}))  # fmt: skip
    assert second is not None
    assert (second.previous_contact_id, second.journey_key) == (first.id, first.journey_key)
    assert (second.queue, second.level) == ("l2_clinico", 2)
    assert (second.script_version, second.script_node, second.call_type) == (
        2, "agendamiento/no_objetivo/buscar", "agendamiento",
    )  # fmt: skip
    assert [h.contact.id for h in await levels.journey(first.journey_key)] == [first.id, second.id]
