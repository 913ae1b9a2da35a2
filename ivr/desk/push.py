"""What the desk pushes to the agents' desktops: one in-process fan-out per agent.

Each open desktop (``GET /api/desk/stream``) holds a :class:`Subscription` of its
agent; :meth:`PushHub.publish` puts a :class:`Push` in every subscription of that
agent, never waiting (a desktop that does not read fills its bounded queue and
is dropped: it reconnects and reads ``GET /api/desk/current``, so nothing is
lost that matters — the current contact lives in the database, not here).

>>> hub = PushHub()
>>> sub = hub.subscribe("7001")
>>> hub.publish("7001", "pop", {"contact_id": "c1"})
1
>>> sub.queue.get_nowait().event
'pop'
>>> hub.publish("7002", "pop", {}), hub.listeners("7001")
(0, 1)
>>> sub.close(); hub.listeners("7001")
0
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MAX_PENDING = 100  # pushes a desktop may be behind before it is dropped


@dataclass(frozen=True)
class Push:
    """One server-sent event: ``event`` (``pop``, ``wrapup``, ``ringing``,
    ``presence``...), ``data`` (JSON-serialisable), ``id`` (increasing per hub)."""

    id: int
    event: str
    data: Any

    def encode(self) -> bytes:
        """The SSE frame (``id``, ``event``, one ``data`` line of compact JSON)."""
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.event}\ndata: {body}\n\n".encode()


@dataclass(eq=False)
class Subscription:
    """One desktop's queue of pushes; ``dropped`` is set when it fell too far behind."""

    agent: str
    hub: PushHub
    queue: asyncio.Queue[Push] = field(default_factory=lambda: asyncio.Queue(MAX_PENDING))
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        self.hub._remove(self)


class PushHub:
    """Agent extension -> its open desktops."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._ids = itertools.count(1)

    def subscribe(self, agent: str) -> Subscription:
        sub = Subscription(agent, self)
        self._subs.setdefault(agent, set()).add(sub)
        return sub

    def listeners(self, agent: str) -> int:
        return len(self._subs.get(agent, ()))

    def publish(self, agent: str, event: str, data: Any) -> int:
        """Queue ``event`` for every desktop of ``agent``; how many got it."""
        push = Push(next(self._ids), event, data)
        delivered = 0
        for sub in list(self._subs.get(agent, ())):
            try:
                sub.queue.put_nowait(push)
                delivered += 1
            except asyncio.QueueFull:
                logger.warning("desk: desktop of agent %s is %d pushes behind; dropped",
                               agent, MAX_PENDING)  # fmt: skip
                sub.dropped.set()
                self._remove(sub)
        return delivered

    async def close(self) -> None:
        """End every desktop's stream (the server stops): each gets a ``closing``
        push and is dropped; its page reconnects to the next server."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.dropped.set()
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(Push(next(self._ids), "closing", {}))
                self._remove(sub)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.agent)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.agent]
