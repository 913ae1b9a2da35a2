"""After the ARI websocket comes back, running calls learn their events may be lost.

Asterisk does not replay what it sent while the websocket was down: a call
waiting for a PlaybackFinished sent in that gap would wait for its safety
timeout (minutes) in silence. The router tells every running call, and the
voice channel turns it into ``EventsLost`` (the controller sends the caller
to the agents).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivr.ari import AriClient, CallRouter, Channel, Event
from ivr.ari.router import EVENTS_LOST
from ivr.channel import ChannelError, EventsLost
from ivr.voice import VoiceChannel
from tests.unit.ari_samples import channel_json
from tests.unit.test_voice import FakeAri, ari, call, within

__all__ = ["ari", "call"]  # test_voice's fixtures, used here


@pytest.fixture
async def client() -> AsyncIterator[AriClient]:
    async with AriClient("http://127.0.0.1:9/ari", "citas", "s3cret") as ari:  # never reached
        yield ari


async def test_the_router_tells_every_running_call(client: AriClient) -> None:
    parked = asyncio.Event()
    router = CallRouter(client, lambda ctx: parked.wait())
    for n in (1, 2):
        await router.adopt(Channel.from_json(channel_json(f"1700000000.{n}")), ())

    assert router.events_lost() == 2
    for ctx in router.calls.values():
        assert ctx.events.get_nowait().type == EVENTS_LOST
    parked.set()
    await router.shutdown(grace=1)
    assert router.events_lost() == 0


async def test_a_prompt_waiting_for_its_end_raises_events_lost(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: []  # its PlaybackFinished went out while we were away
    playing = asyncio.create_task(call.play(["sound:citas/promo_digital_channels"], barge_in=False))
    call.ctx.events.put_nowait(Event(EVENTS_LOST, "", "", {}))

    with pytest.raises(EventsLost) as lost:
        await within(playing)
    assert isinstance(lost.value, ChannelError)  # the controller's rescue path takes it
