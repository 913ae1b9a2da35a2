"""Meta's statuses for a reply that arrive before our send call has its answer.

Observed (the e2e suite on two sandboxes, under load): the simulator, like Meta,
posts ``sent``, ``delivered`` and ``read`` as soon as it accepts a reply; they all
reached the webhook before ``mark_sent`` had stored the reply's wamid, so
``record_status`` found no reply and each was lost: the reply never showed as
read (tests/e2e/test_chat.py::test_statuses_are_recorded_and_never_go_backwards).
Here every reply of a conversation is held back until all three of its statuses
have been answered 200, which is that race every time; and the kind's range:
statuses arriving early, late, or some of each.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from datetime import UTC, datetime

import pytest

from ivr.chat.runner import EARLY_STATUS_MAX, EARLY_STATUS_TTL_S, ChatRunner
from tests.unit.eventually import eventually
from tests.unit.test_chat_runner import ANA, Chat, chat  # noqa: F401 (the fixture)

STATUSES = ("sent", "delivered", "read")


@pytest.mark.parametrize("early", [3, 1, 0], ids=["all-early", "sent-early", "none-early"])
async def test_statuses_before_the_send_returns_are_applied_once_it_does(
    chat: Chat,  # noqa: F811
    early: int,
) -> None:
    chat.simulator.statuses = STATUSES
    seen: defaultdict[str, list[str]] = defaultdict(list)
    record_status, mark_sent = chat.store.record_status, chat.store.mark_sent

    async def recording(wamid, status, at, error=None):  # type: ignore[no-untyped-def]
        seen[wamid].append(status)
        return await record_status(wamid, status, at, error)

    async def held_back(id: int, wamid: str) -> None:
        await eventually(lambda: len(seen[wamid]) >= early, within=10)
        await mark_sent(id, wamid)

    chat.store.record_status = recording  # type: ignore[method-assign]
    chat.store.mark_sent = held_back  # type: ignore[method-assign]
    await chat.says(ANA, "Hola")
    await chat.sees(ANA, "cita")
    conv = await chat.store.conversation(ANA)
    assert conv is not None

    async with asyncio.timeout(15):  # a deadline on the event, not a sleep
        while True:
            replies = await chat.store.outbound_of(conv.id)
            # Every status's time kept (the early ones are applied by the sender,
            # after mark_sent, possibly after the later ones), and the status read.
            if replies and all(
                r.status == "read" and r.sent_at and r.delivered_at and r.read_at
                for r in replies
            ):
                break
            await asyncio.sleep(0.01)
    for reply in await chat.store.outbound_of(conv.id):
        assert set(seen[reply.wamid or ""]) == set(STATUSES)
    assert chat.runner._early == {}  # nothing kept once applied


def test_kept_statuses_are_bounded_in_time_and_number(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = ChatRunner.__new__(ChatRunner)  # only the keeping of statuses
    runner._early = OrderedDict()
    now = [1000.0]
    monkeypatch.setattr("ivr.chat.runner.time.monotonic", lambda: now[0])
    at = datetime(2026, 11, 30, tzinfo=UTC)
    runner.remember_status("wamid.old", "sent", at)
    now[0] += EARLY_STATUS_TTL_S + 1
    runner.remember_status("wamid.new", "sent", at)
    runner.remember_status("wamid.new", "read", at)
    assert list(runner._early) == ["wamid.new"]
    assert runner._early["wamid.new"][1] == [("sent", at, None), ("read", at, None)]
    for n in range(EARLY_STATUS_MAX + 5):
        runner.remember_status(f"wamid.{n}", "sent", at)
    assert len(runner._early) == EARLY_STATUS_MAX
    assert "wamid.new" not in runner._early and f"wamid.{EARLY_STATUS_MAX + 4}" in runner._early
