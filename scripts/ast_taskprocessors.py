"""Where an ARI event waits inside Asterisk: its taskprocessors' queues, sampled.

Every ``interval`` seconds, for ``seconds``, asks Asterisk over AMI for
``core show taskprocessors`` (each serial queue: tasks processed, in queue now,
the deepest it has been) and keeps, per taskprocessor whose name matches
``pattern``, the queue depth seen at each sample. Prints, per queue that was
ever non-empty, the samples' p50/p99/max depth and the tasks processed per
second over the window; writes every sample as JSON lines to ``out`` when given.

An event for a Stasis application leaves Asterisk through that application's
mailbox, ``stasis/m:ari:application/<app>``: one serial queue per application,
one thread at a time (main/stasis_message_router.c, res/ari/ari_websockets.c).
A queue that is deep while the controller's event loop is idle is Asterisk's
share of the events' lateness (bench ``from_asterisk_ms``); an empty one puts it
on the websocket or the controller. Run it beside ``ivr bench`` (its sandbox:
``CITAS_INSTANCE=bench CITAS_PORT_OFFSET=3000``; docs/PERFORMANCE.md):

    CITAS_PORT_OFFSET=3000 .venv/bin/python scripts/ast_taskprocessors.py 240 1 \
        'stasis|ari|pjsip' /tmp/tp.jsonl

Arguments: seconds, interval (s), a regular expression on the taskprocessor's
name (default: every one), the JSON-lines file (optional). Connects as the
controller would (``Settings.from_env``: host, AMI port, user and password).
Raises ``AmiError`` (ivr.ami.errors) when Asterisk refuses the login.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from ivr.ami.errors import AmiError, AmiTimeout
from ivr.ami.manager import AmiConnection, AmiEvent
from ivr.bench.stats import percentile
from ivr.settings import Settings

# Asterisk 22: "Processor  Processed  In Queue  Max Depth  Low water  High water
# Low time(us)  High time(us)" (the last two, the shortest and longest task run,
# are newer than Asterisk 16's six columns; both layouts are read).
ROW = re.compile(r"^(\S+)((?:\s+\d+){5,7})\s*$")


def parse(output: str) -> dict[str, tuple[int, ...]]:
    """``core show taskprocessors`` as {name: (processed, in_queue, max_depth,
    high_time_us)}; ``high_time_us`` is -1 where Asterisk does not show it."""
    rows: dict[str, tuple[int, ...]] = {}
    for line in output.splitlines():
        match = ROW.match(line.strip())
        if match:
            numbers = [int(n) for n in match.group(2).split()]
            high_time = numbers[6] if len(numbers) > 6 else -1
            rows[match.group(1)] = (numbers[0], numbers[1], numbers[2], high_time)
    return rows


async def main(seconds: float, interval: float, pattern: str, out: Path | None) -> None:
    settings = Settings.from_env()
    ami = AmiConnection(
        settings.host, settings.ports.ami, settings.ami_user, settings.ami_password,
        timeout=10.0,
    )  # fmt: skip

    async def booted(event: AmiEvent) -> None:
        """Never called during a run: its handler makes the session filtered
        (``AmiConnection._filter_events``), so Asterisk sends it no call's events."""

    ami.on_event("FullyBooted", booted)
    await ami.connect()
    wanted = re.compile(pattern)
    depths: dict[str, list[float]] = defaultdict(list)
    first: dict[str, tuple[float, int]] = {}
    last: dict[str, tuple[float, int, int, int]] = {}
    sink = out.open("w", encoding="utf-8", buffering=1) if out is not None else None
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            asked = time.monotonic()
            try:
                rows = parse(await ami.command("core show taskprocessors"))
            except AmiTimeout as exc:  # a busy Asterisk: this sample is lost, not the run
                print(f"sample skipped: {exc}", file=sys.stderr)
                continue
            except AmiError as exc:  # Asterisk stopped (the bench's step is over)
                print(f"sampling stopped: {exc}", file=sys.stderr)
                break
            now = time.time()
            kept = {name: row for name, row in rows.items() if wanted.search(name)}
            for name, (processed, in_queue, max_depth, high_us) in kept.items():
                depths[name].append(in_queue)
                first.setdefault(name, (now, processed))
                last[name] = (now, processed, max_depth, high_us)
            if sink is not None:
                sink.write(json.dumps({"t": round(now, 3), "rows": kept}) + "\n")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - asked)))
    finally:
        if sink is not None:
            sink.close()
        await ami.close()
    print(f"{'taskprocessor':60} {'samples':>7} {'p50':>6} {'p99':>6} {'max':>6} "
          f"{'max depth':>9} {'tasks/s':>8} {'longest task ms':>15}")  # fmt: skip
    # Queued at a sample, or ever 10 deep since Asterisk started.
    busy = [name for name, values in depths.items() if max(values) > 0 or last[name][2] >= 10]
    for name in sorted(busy, key=lambda n: (-max(depths[n]), -last[n][2])):
        values = depths[name]
        (t0, p0), (t1, p1, deepest, high_us) = first[name], last[name]
        rate = (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0
        p50, p99 = percentile(values, 50) or 0.0, percentile(values, 99) or 0.0  # never empty
        print(f"{name[:60]:60} {len(values):7} {p50:6.0f} "
              f"{p99:6.0f} {max(values):6} {deepest:9} {rate:8.1f} "
              f"{high_us / 1000:15.1f}")  # fmt: skip


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            float(args[0]) if args else 60.0,
            float(args[1]) if len(args) > 1 else 1.0,
            args[2] if len(args) > 2 else "",
            Path(args[3]) if len(args) > 3 else None,
        )
    )
