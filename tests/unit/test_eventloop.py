"""``ivr serve``'s event loop: uvloop by default, asyncio's on request, nothing else."""

from __future__ import annotations

import asyncio
import signal

import pytest
import uvloop

from ivr.eventloop import EVENT_LOOP_ENV, run


async def loop_kind() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, uvloop.Loop),
        ({EVENT_LOOP_ENV: "uvloop"}, uvloop.Loop),
        ({EVENT_LOOP_ENV: "asyncio"}, asyncio.SelectorEventLoop),
    ],
)
def test_the_loop_is_the_one_named(
    environ: dict[str, str], expected: type[asyncio.AbstractEventLoop]
) -> None:
    assert run(loop_kind(), environ=environ) is expected


@pytest.mark.parametrize("name", ["", "UVLOOP", "trio", "tokio"])
def test_an_unknown_loop_is_refused(name: str) -> None:
    coro = loop_kind()
    with pytest.raises(ValueError, match=EVENT_LOOP_ENV):
        run(coro, environ={EVENT_LOOP_ENV: name})
    coro.close()


async def until_signalled() -> str:
    # What serve() relies on: add_signal_handler, a subprocess-free wake-up by SIGTERM.
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, got.set)
    try:
        loop.call_later(0.05, signal.raise_signal, signal.SIGTERM)
        await asyncio.wait_for(got.wait(), 5)
        return "signalled"
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def test_sigterm_reaches_a_handler_on_uvloop() -> None:
    assert run(until_signalled(), environ={}) == "signalled"
