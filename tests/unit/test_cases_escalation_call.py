"""The escalation call's outcome (``ivr.escalation.call``) over a fake ARI client.

The kind of fault: an outcome recorded wrong — an unanswered call taken for
answered, a busy person for a failure, an acknowledgement missed or invented, a
call whose end never reaches the ladder. Each way a call can end is one row;
the real Asterisk and sipp cases are tests/e2e/test_cases_escalation.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ivr.ari import AriServerError, CallContext, Channel, Event, parse_event
from ivr.escalation import call as call_module
from ivr.escalation.call import AriEscalationCalls, result_for_cause
from ivr.escalation.order import CallOrder, CallOutcome
from ivr.escalation.summary import Summary
from ivr.escalation.tables import ACKNOWLEDGED, BUSY, FAILED, NO_ANSWER, NOT_ACKNOWLEDGED
from tests.unit.lines import CITAS_VOICE

NOW = datetime(2026, 12, 9, 15, tzinfo=UTC)
ORDER = CallOrder("attempt-1", "0123456", "resolution", 0, "lider_citas", "6001",
                  Summary("0123456", "norte", "resolution", timedelta(hours=2)))  # fmt: skip
CHANNEL_ID = ORDER.channel_id


def message(type_: str, **fields: Any) -> Event:
    return parse_event({"type": type_, "application": "citas-ivr",
                        "timestamp": "2026-12-09T10:00:01.123-0500", **fields})  # fmt: skip


CHANNEL = {"id": CHANNEL_ID, "name": "PJSIP/6001-00000001", "state": "Up",
           "caller": {"name": "", "number": "6001"}, "connected": {"name": "", "number": ""},
           "dialplan": {"context": "default", "exten": "s", "priority": 1}, "language": "es"}  # fmt: skip


def destroyed(cause: int, text: str = "x") -> Event:
    return message("ChannelDestroyed", cause=cause, cause_txt=text, channel=CHANNEL)


def finished(playback_id: str) -> Event:
    return message("PlaybackFinished", playback={
        "id": playback_id, "media_uri": "sound:citas/x", "target_uri": f"channel:{CHANNEL_ID}",
        "language": "es", "state": "done"})  # fmt: skip


def dtmf(digit: str) -> Event:
    return message("ChannelDtmfReceived", digit=digit, duration_ms=120, channel=CHANNEL)


class FakeAri:
    """Records the calls; ``answer`` scripts the person: None leaves the call
    unanswered (``cause``), else each play gets ``answer(n)`` events (n: the
    play's index)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.escalation: AriEscalationCalls | None = None
        self.cause: int | None = 19
        self.answer: Callable[[int, str], list[Event]] | None = None
        self.refuse = False
        self.ctx: CallContext | None = None
        self.plays = 0

    async def originate(self, channel_id: str, **kw: Any) -> None:
        self.calls.append(("originate", channel_id, kw["endpoint"], kw["app_args"], kw["timeout_s"]))
        if self.refuse:
            raise AriServerError(500, "POST", "/channels/x", "Allocation failed")
        assert self.escalation is not None
        if self.answer is None:
            if self.cause is not None:
                await self.escalation.on_event(destroyed(self.cause))
            return
        self.ctx = CallContext(Channel.from_json(CHANNEL), ("escalation", "attempt-1"), self)  # type: ignore[arg-type]
        assert AriEscalationCalls.handles(self.ctx)
        asyncio.get_running_loop().create_task(self.escalation.handle(self.ctx))

    async def play(self, channel_id: str, media: list[str], *, playback_id: str, lang: str) -> None:
        self.calls.append(("play", tuple(media)))
        assert self.answer is not None and self.ctx is not None
        for ev in self.answer(self.plays, playback_id):
            self.ctx.events.put_nowait(ev)
        self.plays += 1

    async def stop_playback(self, playback_id: str) -> None:
        self.calls.append(("stop_playback",))

    async def hangup(self, channel_id: str) -> None:
        self.calls.append(("hangup", channel_id))


def calls_over(ari: FakeAri) -> AriEscalationCalls:
    escalation = AriEscalationCalls(
        ari, "citas-ivr", CITAS_VOICE, {"site_norte"},  # type: ignore[arg-type]
        answer_timeout_s=0.05, clock=lambda: NOW,
    )  # fmt: skip
    ari.escalation = escalation
    return escalation


async def place(ari: FakeAri) -> CallOutcome:
    return await asyncio.wait_for(calls_over(ari).place(ORDER), 5)


@pytest.mark.parametrize(
    ("cause", "result"),
    [(17, BUSY), (21, BUSY), (19, NO_ANSWER), (18, NO_ANSWER), (16, NO_ANSWER), (0, NO_ANSWER),
     (1, FAILED), (3, FAILED), (20, FAILED), (27, FAILED), (34, FAILED), (38, FAILED), (127, FAILED)],
)  # fmt: skip
async def test_an_unanswered_call_ends_by_its_cause(cause: int, result: str) -> None:
    ari = FakeAri()
    ari.cause = cause

    outcome = await place(ari)

    assert outcome.result == result == result_for_cause(cause)
    assert outcome.answered_at is None and outcome.acknowledged_at is None
    assert ari.calls == [("originate", CHANNEL_ID, "PJSIP/6001", ("escalation", "attempt-1"), 30)]


async def test_a_refused_originate_is_a_failed_call() -> None:
    ari = FakeAri()
    ari.refuse = True

    outcome = await place(ari)

    assert outcome.result == FAILED and "Allocation failed" in outcome.detail


def played(ari: FakeAri) -> list[tuple[str, ...]]:
    return [c[1] for c in ari.calls if c[0] == "play"]


async def test_pressing_1_during_the_summary_acknowledges() -> None:
    ari = FakeAri()
    ari.answer = lambda n, pid: [dtmf("1")] if n == 0 else [finished(pid)]

    outcome = await place(ari)

    assert outcome == CallOutcome(ACKNOWLEDGED, NOW, NOW, "Marcó 1.")
    assert played(ari)[-1] == ("sound:citas/escalation_thanks",)
    assert ari.calls[-1] == ("hangup", CHANNEL_ID)


async def test_the_summary_is_said_twice_then_the_next_person_is_announced() -> None:
    ari = FakeAri()
    ari.answer = lambda n, pid: [finished(pid)]

    outcome = await place(ari)

    assert outcome.result == NOT_ACKNOWLEDGED and outcome.answered_at == NOW
    assert outcome.acknowledged_at is None
    summaries = played(ari)[:2]
    assert summaries[0] == summaries[1] and "digits:0123456" in summaries[0]
    assert played(ari)[2:] == [("sound:citas/escalation_goodbye",)]


async def test_another_key_then_1_on_the_repeat_acknowledges() -> None:
    ari = FakeAri()
    ari.answer = lambda n, pid: [dtmf("2")] if n == 0 else [dtmf("1")] if n == 1 else [finished(pid)]

    outcome = await place(ari)

    assert outcome.result == ACKNOWLEDGED and len(played(ari)) == 3


async def test_hanging_up_without_pressing_is_not_acknowledged() -> None:
    ari = FakeAri()
    ari.answer = lambda n, pid: [message("StasisEnd", channel=CHANNEL)]

    outcome = await place(ari)

    assert outcome.result == NOT_ACKNOWLEDGED and "Colgó" in outcome.detail


async def test_a_call_this_controller_did_not_place_is_hung_up() -> None:
    ari = FakeAri()
    escalation = calls_over(ari)
    ctx = CallContext(Channel.from_json(CHANNEL), ("escalation", "attempt-9"), ari)  # type: ignore[arg-type]

    await escalation.handle(ctx)

    assert ari.calls == [("hangup", CHANNEL_ID)]


async def test_a_call_with_no_news_fails_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    ari = FakeAri()
    ari.cause = None  # originated, then nothing at all arrives
    monkeypatch.setattr(call_module, "DIALOGUE_SAFETY_S", 0.05)
    escalation = calls_over(ari)
    escalation.ring_timeout_s = 0

    outcome = await asyncio.wait_for(escalation.place(ORDER), 5)

    assert outcome.result == FAILED and ari.calls[-1] == ("hangup", CHANNEL_ID)
