"""``ConversationStore.summary`` (the console's counts and the active-chats metric)
on SQLite and PostgreSQL: every state and outcome a conversation can hold,
counted once per contact; what counts as active (with an agent, or the bot mid-flow)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.chat.store import ConversationStore, InboundMessage
from tests.unit.databases import BACKENDS, migrated_database

# (state, node, outcome, active?) per contact: the range a conversation can be in.
CASES = [
    ("bot", None, None, False),  # wrote, never answered (or released, waiting)
    ("bot", "main_menu", None, True),  # mid-flow
    ("bot", "offer_slot", None, True),
    ("agent", None, "handed_off", True),  # queued for a person
    ("closed", None, "booked", False),
    ("closed", None, "booked", False),
    ("closed", None, "appointment_cancelled", False),
    ("closed", None, "rescheduled", False),
    ("bot", None, "expired", False),  # reset for being idle
]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_summary_counts_every_state_and_outcome_once_per_contact(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path) as db:
        store = ConversationStore(db, flow="citas")
        assert (await store.summary()).as_json() == {"active": 0, "by_state": {}, "by_outcome": {}}
        now = datetime.now(UTC).replace(microsecond=0)
        for n, (state, node, outcome, _) in enumerate(CASES):
            wa_id = f"57300000{n:04d}"
            for k in range(2):  # two messages, one conversation
                await store.receive(InboundMessage(f"wamid.{n}.{k}", wa_id, "text", now, "Hola"))
            async with store.turn(wa_id) as turn:
                turn.conversation.node, turn.conversation.outcome = node, outcome
                if state == "agent":
                    turn.hand_to_agent("asked", {})
                else:
                    turn.conversation.state = state

        summary = await store.summary()

        assert summary.active == sum(active for *_, active in CASES) == 3
        assert summary.active == len(await store.conversations(active=True))
        assert summary.by_state == {"bot": 4, "agent": 1, "closed": 4}
        assert summary.by_outcome == {
            "handed_off": 1, "booked": 2, "appointment_cancelled": 1, "rescheduled": 1,
            "expired": 1,
        }  # fmt: skip
