"""CPU per ARI request over HTTP against over the event websocket (docs/perf/ari.md).

Sends N ``POST /asterisk/variable`` requests through ``AriClient`` (at most 32 at
once), alternately over HTTP (its pool of ``ARI_CONNECTIONS`` sockets) and over the
websocket of an ``EventStream`` on a throwaway application (``ivr.ari.wsrest``),
and prints per request this process's CPU and Asterisk's (``psutil``, user + system),
and the wall time. Against a running sandbox (``ivr sandbox up``):

    CITAS_INSTANCE=wsx CITAS_PORT_OFFSET=15000 .venv/bin/python scripts/ari_rest_transport.py 3000

Asterisk's pid is the sandbox's (``ivr sandbox status``); pass it as the second
argument to get its CPU too. No call is placed: the request is the cheapest ARI
has, so the figures are the transport's own cost.
"""

from __future__ import annotations

import asyncio
import sys
import time

import psutil

from ivr.ari import AriClient, Event, EventStream
from ivr.ari.events import EVENT_FILTER
from ivr.settings import Settings

CONCURRENT = 32
PROBE_APP = "citas-transport-probe"


def cpu_s(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


async def burst(client: AriClient, n: int) -> None:
    gate = asyncio.Semaphore(CONCURRENT)

    async def one(i: int) -> None:
        async with gate:
            await client.set_global_variable("CITAS_TRANSPORT_PROBE", str(i))

    await asyncio.gather(*(one(i) for i in range(n)))


async def main(n: int, asterisk_pid: int | None) -> None:
    settings = Settings.from_env()
    asterisk = psutil.Process(asterisk_pid) if asterisk_pid else None
    me = psutil.Process()
    client = AriClient(settings.ari_url, settings.ari_user, settings.ari_password)

    async def ignore(_: Event) -> None:
        return None

    stream = EventStream(
        settings.ari_url, settings.ari_user, settings.ari_password, PROBE_APP, ignore
    )
    runner = asyncio.create_task(stream.run())
    try:
        await asyncio.wait_for(stream.connected.wait(), 5)
        await client.set_event_filter(PROBE_APP, EVENT_FILTER)  # lets RESTResponse through
        assert await stream.rest.probe(5.0), "this Asterisk does not take REST over WebSocket"
        for transport in ("http", "websocket", "http", "websocket"):
            client.websocket = stream.rest if transport == "websocket" else None
            ast0, me0, t0 = cpu_s(asterisk), cpu_s(me), time.perf_counter()
            await burst(client, n)
            ast1, me1, t1 = cpu_s(asterisk), cpu_s(me), time.perf_counter()
            print(
                f"{transport:9}: {n} requests in {t1 - t0:5.2f} s; "
                f"client {1000 * (me1 - me0) / n:.3f} ms/request"
                + (f", Asterisk {1000 * (ast1 - ast0) / n:.3f} ms/request" if asterisk else "")
            )
    finally:
        await stream.stop()
        await runner
        await client.close()


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    pid = int(sys.argv[2]) if len(sys.argv) > 2 else None
    asyncio.run(main(count, pid))
