"""A ``play`` whose next node is a ``hangup``: one media list on a call (one ARI
playback and one request fewer), and everything else as two nodes always were."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ivr.channel import CallerHungUp, ChannelKind
from ivr.flow.model import PromptPart
from ivr.flow.nodes import HangupNode, PlayNode
from tests.unit.test_flow_engine import ScriptedChannel, engine, prompt, state_for, steps

CONFIRM = prompt("slot_confirmed")
BYE_PROMPT = prompt("goodbye")


def play(barge_in: bool = False, parts: tuple[PromptPart, ...] = CONFIRM) -> PlayNode:
    return PlayNode("confirm", 1, parts, "end", barge_in)


def hangup(parts: tuple[PromptPart, ...] = BYE_PROMPT, **kw: object) -> HangupNode:
    return HangupNode("end", 2, "completed", parts, **kw)  # type: ignore[arg-type]


async def test_the_play_and_the_goodbye_are_one_playback_and_recorded_once() -> None:
    channel = ScriptedChannel()
    state = state_for(channel, "confirm", play(), hangup())

    await engine().run(state)

    assert channel.log == [
        ("answer",),
        ("play-no-barge", "sound:citas/slot_confirmed", "sound:citas/goodbye"),
        ("hangup",),
    ]
    assert steps(state, "prompt") == [
        {"media": ["sound:citas/slot_confirmed", "sound:citas/goodbye"]}
    ]
    kinds = [s.kind for s in state.record.path]
    assert kinds == ["answer", "node", "prompt", "node", "hangup"]
    assert state.record.outcome == "completed" and state.said_ahead is None


@pytest.mark.parametrize(
    ("first", "last", "playbacks", "why"),
    [
        (play(barge_in=True), hangup(), 2, "a key may stop the play: the goodbye must not be"),
        (play(), hangup(parts=()), 1, "the hang-up says nothing"),
        (play(), hangup(channels=("chat",), skip_to="bye"), 2, "the hang-up is not a call's"),
    ],
)
async def test_the_play_alone_where_it_cannot_join_the_goodbye(
    first: PlayNode, last: HangupNode, playbacks: int, why: str
) -> None:
    channel = ScriptedChannel()
    state = state_for(channel, "confirm", first, last)

    await engine().run(state)

    plays = [entry for entry in channel.log if entry[0].startswith("play")]
    assert plays[0][1:] == ("sound:citas/slot_confirmed",), why
    assert len(plays) == playbacks, why  # the hang-up's (or BYE's, past the skipped node)
    assert state.said_ahead is None


class ChatLike(ScriptedChannel):
    @property
    def kind(self) -> ChannelKind:
        return "chat"


async def test_a_chat_gets_its_two_messages() -> None:
    channel = ChatLike()
    state = state_for(channel, "confirm", play(), hangup())

    await engine().run(state)

    plays = [entry[1:] for entry in channel.log if entry[0].startswith("play")]
    assert plays == [("sound:citas/slot_confirmed",), ("sound:citas/goodbye",)]


class LeavesDuringTheGoodbye(ScriptedChannel):
    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        await super().play(media, barge_in=barge_in)
        if "sound:citas/goodbye" in media:
            raise CallerHungUp(self.call_id)
        return False


async def test_a_caller_who_leaves_during_the_joined_goodbye_did_not_complete() -> None:
    channel = LeavesDuringTheGoodbye()
    state = state_for(channel, "confirm", play(), hangup())

    with pytest.raises(CallerHungUp):
        await engine().run(state)

    assert state.record.outcome is None  # abandoned, as when the hang-up said it
    assert ("hangup",) not in channel.log
