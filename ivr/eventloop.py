"""The event loop ``ivr serve`` runs on: uvloop's (libuv), not asyncio's default.

The controller is one event loop carrying every call's events, REST requests
and database work; uvloop's loop, sockets and timers are written in C (Cython)
over libuv, so each of those costs less CPU than in asyncio's pure-Python
selector loop. It is a drop-in ``asyncio.AbstractEventLoop``: aiohttp,
SQLAlchemy's async drivers, panoramisk and signal handlers run on it unchanged.
Measured effect per smoke call: docs/perf/ari.md. Tests keep asyncio's loop
(pytest-asyncio's); the e2e suite runs ``ivr serve``, so on uvloop.

``CITAS_EVENT_LOOP=asyncio`` picks asyncio's own loop instead (to compare, or
to rule uvloop out when chasing a bug); any other value is refused.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

EVENT_LOOP_ENV = "CITAS_EVENT_LOOP"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": None,  # asyncio.Runner's default
}


def loop_factory(
    environ: dict[str, str] | None = None,
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory named by ``CITAS_EVENT_LOOP`` (default ``uvloop``);
    ``ValueError`` for a name that is not in ``LOOPS``."""
    name = (environ if environ is not None else dict(os.environ)).get(EVENT_LOOP_ENV, "uvloop")
    if name not in LOOPS:
        raise ValueError(f"{EVENT_LOOP_ENV}={name!r}: expected one of {sorted(LOOPS)}")
    return LOOPS[name]


def run(main: Coroutine[Any, Any, T], *, environ: dict[str, str] | None = None) -> T:
    """``asyncio.run(main)`` on the loop ``loop_factory`` picks."""
    with asyncio.Runner(loop_factory=loop_factory(environ)) as runner:
        return runner.run(main)
