"""Count the SQL statements a process sends, by origin and kind (issue 13, part db).

``CITAS_DB_STATEMENTS=<file>`` makes every ``Database`` of the process count the
statements its engine executes (a SQLAlchemy ``before_cursor_execute`` listener:
one dict increment per statement) and write the counts as JSON to that file when
the database is closed (``ivr serve``'s shutdown). ``ivr bench`` divides them by
the calls of the run (docs/perf/db.md). Without the variable nothing is installed.

A statement's *origin* is the asyncio task that sent it: ``call`` for a call's
task (the router names them ``call-<channel id>``), the task's name for the named
background tasks (``sms-worker``, ``flags-poller``, ``call-records``...), ``other``
for unnamed tasks (``Task-N``: a record checkpoint's write, an HTTP handler).
Its *kind* is the verb and the first table it names (``SELECT slots``,
``INSERT call_records``, ``BEGIN``...).

It also times the SQLite write turns (``Database.write_turn``, the writer
thread's jobs: ivr/store/writer.py): per origin, how long a writer waited for
its turn and how long it held it (ms). A statement the writer thread sends
counts under the origin of the task that queued it.

The file: ``{"statements": {origin: {kind: count}}, "turns": {origin: {"n",
"wait_p50_ms", "wait_p99_ms", "wait_max_ms", "hold_p50_ms", "hold_p99_ms",
"hold_max_ms"}}, "started": unix s, "written": unix s}``; several databases in
one process add up. A ``{pid}`` in the file name becomes the process id (each
controller process its own file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

ENV = "CITAS_DB_STATEMENTS"
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def statement_kind(sql: str) -> str:
    """``"SELECT slots"`` for ``SELECT ... FROM slots JOIN ...``: the verb and the
    first table named after FROM/INTO/UPDATE/JOIN; the verb alone when none is.

    >>> statement_kind("SELECT slots.id FROM slots WHERE slots.site_id = ?")
    'SELECT slots'
    >>> statement_kind("INSERT INTO call_records (id) VALUES (?)")
    'INSERT call_records'
    >>> statement_kind("select 1")
    'SELECT'
    """
    head = sql.lstrip().split(None, 1)
    verb = head[0].upper() if head else "?"
    found = _TABLE.search(sql)
    return f"{verb} {found.group(1)}" if found else verb


# The origin of the job a writer thread runs (ivr/store/writer.py sets ``name``).
thread_origin = threading.local()


def task_origin() -> str:
    """The running task's origin (see the module docstring); in a writer thread, the
    origin of the task whose job it runs; ``sync`` outside any task."""
    queued = getattr(thread_origin, "name", None)
    if queued is not None:
        return str(queued)
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "sync"
    if task is None:
        return "sync"
    name = task.get_name()
    if name.startswith("call-") and name != "call-records":
        return "call"
    return "other" if name.startswith("Task-") else name


class StatementProbe:
    """Counts per (origin, kind) for the engines it is attached to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.counts: dict[str, Counter[str]] = {}
        self.turns: dict[str, list[tuple[float, float]]] = {}  # origin: [(wait, hold) s]
        self.gave_up: dict[str, list[float]] = {}  # origin: [wait s] of turns never got
        self.pid = os.getpid()
        self._lock = threading.Lock()  # the loop, the writer and the reader threads count

    @contextlib.asynccontextmanager
    async def timed_turn(
        self, turn: contextlib.AbstractAsyncContextManager[object]
    ) -> AsyncIterator[None]:
        """``turn`` entered and left, its wait and hold times kept under the task's origin."""
        origin = task_origin()
        asked = time.perf_counter()
        try:
            await turn.__aenter__()
        except BaseException:  # the deadline came first: the longest waits are these
            self.record_gave_up(origin, time.perf_counter() - asked)
            raise
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_exit(turn)
            got = time.perf_counter()
            try:
                yield
            finally:
                self.record_turn(origin, got - asked, time.perf_counter() - got)

    def record_turn(self, origin: str, wait: float, hold: float) -> None:
        """One turn taken: waited ``wait`` s, held ``hold`` s (any thread)."""
        with self._lock:
            self.turns.setdefault(origin, []).append((wait, hold))

    def record_gave_up(self, origin: str, wait: float) -> None:
        """One turn never taken: the writer gave up after ``wait`` s (any thread)."""
        with self._lock:
            self.gave_up.setdefault(origin, []).append(wait)

    def attach(self, engine: AsyncEngine | Engine) -> None:
        sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        event.listen(sync, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        origin, kind = task_origin(), statement_kind(statement)
        with self._lock:
            self.counts.setdefault(origin, Counter())[kind] += 1

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return self._as_json()

    def _as_json(self) -> dict[str, Any]:
        return {
            "statements": {o: dict(sorted(c.items())) for o, c in sorted(self.counts.items())},
            "turns": {
                o: _turn_figures(self.turns.get(o, []), self.gave_up.get(o, []))
                for o in sorted(self.turns.keys() | self.gave_up.keys())
            },
            "started": self.started,
            "written": time.time(),
        }

    def write(self) -> None:
        self.path.write_text(json.dumps(self.as_json(), indent=1) + "\n")


def _turn_figures(
    turns: Sequence[tuple[float, float]], gave_up: Sequence[float] = ()
) -> dict[str, float]:
    """p50/p99/max (ms, linear between the nearest ranks) of the waits and holds of
    ``turns`` (``[(wait s, hold s), ...]``), and how many waits were given up
    (``gave_up``: their seconds; the caller's deadline came first) and the longest.

    >>> _turn_figures([(0.001, 0.002), (0.003, 0.004)])["hold_p50_ms"]
    3.0
    """
    out: dict[str, float] = {"n": len(turns)}
    for i, name in enumerate(("wait", "hold")):
        values = sorted(t[i] * 1000 for t in turns)
        if not values:
            continue
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            out[f"{name}_{label}_ms"] = round(_quantile(values, q), 2)
        out[f"{name}_max_ms"] = round(values[-1], 2)
    if gave_up:
        out["gave_up"] = len(gave_up)
        out["gave_up_max_ms"] = round(max(gave_up) * 1000, 2)
    return out


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linear between ranks (numpy's default)."""
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


_probe: StatementProbe | None = None


def probe_from_env() -> StatementProbe | None:
    """The process's probe when ``CITAS_DB_STATEMENTS`` is set, else None."""
    global _probe
    target = os.environ.get(ENV, "")
    if not target:
        return None
    if _probe is None or _probe.pid != os.getpid():  # a forked child counts its own
        _probe = StatementProbe(Path(target.replace("{pid}", str(os.getpid()))))
    return _probe
