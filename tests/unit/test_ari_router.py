"""CallRouter: one handler task per channel, events routed to the right call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivr.ari import (
    AriClient,
    CallContext,
    CallRouter,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    parse_event,
)
from tests.unit.ari_samples import channel_json

DEADLINE = 2.0
APP = "citas-ivr"


def ev(type_: str, channel_id: str | None = None, **fields: Any) -> Event:
    data: dict[str, Any] = {
        "type": type_,
        "application": APP,
        "timestamp": "2024-05-02T10:00:01.000-0500",
        **fields,
    }
    if channel_id is not None:
        data["channel"] = channel_json(channel_id)
    return parse_event(data)


def start(channel_id: str, *args: str) -> Event:
    return ev("StasisStart", channel_id, args=list(args))


def dtmf(channel_id: str, digit: str) -> Event:
    return ev("ChannelDtmfReceived", channel_id, digit=digit, duration_ms=100)


def playback_finished(target_uri: str) -> Event:
    playback = {
        "id": "pb-1",
        "media_uri": "sound:citas/welcome",
        "target_uri": target_uri,
        "state": "done",
    }
    return ev("PlaybackFinished", playback=playback)


def call_task(channel_id: str) -> asyncio.Task[Any]:
    [task] = [t for t in asyncio.all_tasks() if t.get_name() == f"call-{channel_id}"]
    return task


async def handler_ended(channel_id: str) -> None:
    """Wait, with a deadline, for a call's handler task to end however it ends.

    The router's done-callback was added before ours, so by the time this
    returns the router has already dropped the call from its table.
    """
    task = call_task(channel_id)
    await asyncio.wait([task], timeout=DEADLINE)
    assert task.done()


@pytest.fixture
async def client() -> AsyncIterator[AriClient]:
    # Never reached: the router itself makes no REST calls.
    async with AriClient("http://127.0.0.1:9/ari", "citas", "s3cret") as ari:
        yield ari


class Calls:
    """A handler that parks until told to finish, recording its contexts."""

    def __init__(self) -> None:
        self.contexts: dict[str, CallContext] = {}
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, ctx: CallContext) -> None:
        self.contexts[ctx.channel_id] = ctx
        self.started.set()
        await self.release.wait()


async def test_stasis_start_spawns_named_task(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)

    await router.dispatch(start("1700000000.1", "citas", "main"))
    await asyncio.wait_for(calls.started.wait(), DEADLINE)

    ctx = calls.contexts["1700000000.1"]
    assert ctx.args == ("citas", "main")
    assert ctx.client is client
    assert not ctx.resumed
    assert ctx.channel.dialplan_exten == "4441234"
    assert router.active_calls == 1
    assert router.calls["1700000000.1"] is ctx
    with pytest.raises(TypeError):
        router.calls["x"] = ctx  # type: ignore[index]
    task = call_task("1700000000.1")
    assert not task.done()

    calls.release.set()
    await router.shutdown(grace=DEADLINE)
    assert task.done() and not task.cancelled()
    assert router.active_calls == 0


async def test_dtmf_goes_to_its_own_call(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)
    await router.dispatch(start("1700000000.1"))
    await router.dispatch(start("1700000000.2"))

    await router.dispatch(dtmf("1700000000.2", "4"))

    a, b = router.calls["1700000000.1"], router.calls["1700000000.2"]
    assert a.events.empty()
    got = b.events.get_nowait()
    assert isinstance(got, ChannelDtmfReceived) and got.digit == "4"
    await router.shutdown(grace=0)


async def test_playback_event_routed_by_target_uri(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)
    await router.dispatch(start("1700000000.1"))

    await router.dispatch(playback_finished("channel:1700000000.1"))
    await router.dispatch(playback_finished("bridge:b-1"))
    await router.dispatch(playback_finished("channel:1700000000.99"))

    queue = router.calls["1700000000.1"].events
    assert isinstance(queue.get_nowait(), PlaybackFinished)
    assert queue.empty()
    await router.shutdown(grace=0)


async def test_stasis_end_sets_gone_and_call_is_removed(client: AriClient) -> None:
    seen: list[Event] = []

    async def until_gone(ctx: CallContext) -> None:
        await ctx.gone.wait()
        while not ctx.events.empty():
            seen.append(ctx.events.get_nowait())

    router = CallRouter(client, until_gone)
    await router.dispatch(start("1700000000.1"))
    await router.dispatch(dtmf("1700000000.1", "1"))

    await router.dispatch(ev("StasisEnd", "1700000000.1"))
    await handler_ended("1700000000.1")

    assert [type(e) for e in seen] == [ChannelDtmfReceived, StasisEnd]
    assert "1700000000.1" not in router.calls


async def test_channel_destroyed_sets_gone(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)
    await router.dispatch(start("1700000000.1"))
    ctx = router.calls["1700000000.1"]

    await router.dispatch(
        ev("ChannelDestroyed", "1700000000.1", cause=16, cause_txt="Normal Clearing")
    )

    assert ctx.gone.is_set()
    assert isinstance(ctx.events.get_nowait(), ChannelDestroyed)
    calls.release.set()
    await handler_ended("1700000000.1")
    assert router.active_calls == 0


async def test_handler_exception_is_logged_and_call_removed(
    client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(ctx: CallContext) -> None:
        raise RuntimeError("flow bug")

    router = CallRouter(client, broken)
    with caplog.at_level(logging.ERROR, logger="ivr.ari.router"):
        await router.dispatch(start("1700000000.1"))
        await handler_ended("1700000000.1")
    assert router.active_calls == 0

    [record] = [r for r in caplog.records if r.exc_info]
    assert "1700000000.1" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_shutdown_waits_grace_then_cancels_stuck_handlers(client: AriClient) -> None:
    finished: list[str] = []
    cancelled: list[str] = []
    rejected: list[Channel] = []
    never = asyncio.Event()

    async def handler(ctx: CallContext) -> None:
        try:
            if ctx.channel_id.endswith(".1"):
                await ctx.gone.wait()  # well behaved: ends when the caller leaves
            else:
                await never.wait()  # stuck
            finished.append(ctx.channel_id)
        except asyncio.CancelledError:
            cancelled.append(ctx.channel_id)
            raise

    async def reject(channel: Channel) -> None:
        rejected.append(channel)

    router = CallRouter(client, handler, on_reject=reject)
    await router.dispatch(start("1700000000.1"))
    await router.dispatch(start("1700000000.2"))

    stopping = asyncio.create_task(router.shutdown(grace=0.2))
    await asyncio.sleep(0)  # one loop turn: shutdown() runs up to its first await
    assert not router.accepting
    await router.dispatch(start("1700000000.3"))  # refused while shutting down
    await router.dispatch(ev("StasisEnd", "1700000000.1"))
    await asyncio.wait_for(stopping, DEADLINE)

    assert finished == ["1700000000.1"]
    assert cancelled == ["1700000000.2"]
    assert [c.id for c in rejected] == ["1700000000.3"]
    assert router.active_calls == 0


async def test_shutdown_without_calls_returns_at_once(client: AriClient) -> None:
    router = CallRouter(client, Calls().handle)

    await asyncio.wait_for(router.shutdown(grace=30), 0.5)

    # No on_reject given: a late StasisStart is simply not taken.
    await router.dispatch(start("1700000000.1"))
    assert router.active_calls == 0


async def test_adopt_marks_resumed_and_is_idempotent(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)
    channel = Channel.from_json(channel_json("1700000000.5"))

    ctx = await router.adopt(channel, ("citas",))
    again = await router.adopt(channel, ("citas",))
    # The StasisStart that raced the reconcile must not start a second handler.
    late = start("1700000000.5")
    await router.dispatch(late)

    assert ctx is not None and ctx is again
    assert ctx.resumed
    assert ctx.args == ("citas",)
    assert router.active_calls == 1
    assert isinstance(ctx.events.get_nowait(), StasisStart)
    await router.shutdown(grace=0)


async def test_events_without_a_call_are_ignored(client: AriClient) -> None:
    calls = Calls()
    router = CallRouter(client, calls.handle)
    await router.dispatch(start("1700000000.1"))

    await router.dispatch(dtmf("1700000000.7", "1"))
    await router.dispatch(ev("ApplicationReplaced"))
    await router.dispatch(ev("ChannelVarset", "1700000000.1", variable="X", value="1"))

    assert router.calls["1700000000.1"].events.empty()
    assert router.active_calls == 1
    await router.shutdown(grace=0)
