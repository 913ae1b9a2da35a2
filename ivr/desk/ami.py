"""The desk's AMI connection (``DeskAmi``) and the agents' presence in the queues (``QueueControl``).

``DeskAmi`` is THE desk's one AMI session: it connects, reconnects with a
full-jitter back-off when Asterisk goes away, and keeps every handler registered
with ``on_event`` across reconnects (the pop part registers its queue-event
handlers on it). ``on_connected`` hooks run after each (re)connect: Asterisk does
not replay events missed while the session was down, so a part re-reads state
(``QueueControl.status``) there. ``health()`` says how it is for /readyz-like reports.

``QueueControl`` moves agents in and out of the app_queue queues rendered from
desk.yaml (``ivr.sandbox.desk``, docs/desk/queues.md):

- ``login``: ``QueueAdd`` to every queue of the agent's profile (MemberName the
  agent's name, StateInterface ``PJSIP/<ext>``: app_queue rings the member only
  when that device is free, Penalty 0: before the tester's static member);
- ``logout``: ``QueueRemove`` from every desk queue the agent is in (even one its
  profile no longer lists);
- ``pause`` / ``unpause``: ``QueuePause`` in all its queues, with the reason's
  Spanish label (desk.yaml ``pause_reasons``) as app_queue's PausedReason;
- ``status``: ``QueueStatus`` read back per agent (logged in, paused + reason,
  device state, in a call, queues).

Each action waits at most the connection's timeout (``AmiTimeout``, an
``AmiConnectionError``) and every change is written to ``desk_presence``
(``DeskStore.log_presence``) with who did it. Asterisk is the truth for the
live state (``persistentmembers``: it survives an Asterisk restart); the table
is the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ivr.ami import AmiActionFailed, AmiConnection, AmiConnectionError, AmiError, AmiEventHandler
from ivr.ari.stream import full_jitter
from ivr.desk.config import DeskConfig
from ivr.desk.errors import UnknownAgent

logger = logging.getLogger(__name__)

ConnectedHook = Callable[[], Awaitable[None]]

# app_queue's member Status (AST_DEVICE_*), as QueueStatus and QueueMember* events give it.
DEVICE_STATES = {
    "0": "unknown", "1": "not_inuse", "2": "inuse", "3": "busy", "4": "invalid",
    "5": "unavailable", "6": "ringing", "7": "ringinuse", "8": "onhold",
}  # fmt: skip
DEVICE_LABELS = {
    "unknown": "desconocido", "not_inuse": "libre", "inuse": "en llamada", "busy": "ocupado",
    "invalid": "no válido", "unavailable": "sin registrar", "ringing": "timbrando",
    "ringinuse": "timbrando en llamada", "onhold": "en espera",
}  # fmt: skip
IN_CALL_STATES = frozenset({"inuse", "busy", "ringinuse", "onhold"})


class DeskAmiError(Exception):
    """A presence change the desk refuses; the message is Spanish (agents read it)."""


class NotLoggedIn(DeskAmiError):
    def __init__(self, extension: str) -> None:
        super().__init__(f"El asesor {extension} no ha iniciado sesión en las colas.")


class UnknownPauseReason(DeskAmiError):
    def __init__(self, reason: str, known: Sequence[str]) -> None:
        super().__init__(
            f"Motivo de pausa desconocido: {reason!r}. Motivos: {', '.join(known)}."
        )
        self.reason = reason


class DeskAmiUnavailable(DeskAmiError):
    """Asterisk's AMI cannot be reached (down, reconnecting, or it did not answer in time)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "La central telefónica no responde en este momento; intente de nuevo en unos segundos."
        )
        self.detail = detail


class AmiLike(Protocol):
    """What ``QueueControl`` needs of ``DeskAmi`` (a fake in unit tests)."""

    async def action(self, fields: Mapping[str, str]) -> dict[str, str]: ...

    async def action_list(self, fields: Mapping[str, str]) -> list[dict[str, str]]: ...


class PresenceLog(Protocol):
    """``DeskStore.log_presence``."""

    async def log_presence(
        self, agent: str, event: str, *, queues: Sequence[str] = (),
        reason: str | None = None, actor: str,
    ) -> object: ...  # fmt: skip


@dataclass(frozen=True)
class AmiHealth:
    connected: bool
    since: datetime | None  # connected since / down since
    reconnects: int
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "since": self.since.isoformat() if self.since else None,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


class DeskAmi:
    """One supervised AMI session for the desk.

    ``start()`` launches the supervisor and returns at once; it connects, pings
    every ``ping_every`` seconds (a half-open TCP connection is noticed), and on
    loss waits ``full_jitter(failures, backoff_initial, backoff_max)`` seconds
    before the next attempt. ``stop()`` ends it and closes the session.
    """

    def __init__(
        self, host: str, port: int, username: str, password: str, *, timeout: float = 5.0,
        backoff_initial: float = 0.5, backoff_max: float = 15.0, ping_every: float = 10.0,
        rng: random.Random | None = None, connection: AmiConnection | None = None,
    ) -> None:  # fmt: skip
        self._conn = connection or AmiConnection(host, port, username, password, timeout=timeout)
        self._where = f"{host}:{port}"
        self._backoff = (backoff_initial, backoff_max)
        self._ping_every = ping_every
        self._rng = rng or random.Random()
        self._on_connected: list[ConnectedHook] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self._failures = 0
        self._since: datetime | None = None
        self._reconnects = -1  # the first connect is not a reconnect
        self._last_error: str | None = None

    def on_event(self, pattern: str, handler: AmiEventHandler) -> None:
        """``handler(event)`` for every event named like ``pattern`` (``"Agent*"``), on
        this and every later connection (``AmiConnection.on_event``)."""
        self._conn.on_event(pattern, handler)

    def on_connected(self, hook: ConnectedHook) -> None:
        """``await hook()`` after every (re)connect; an exception is logged."""
        self._on_connected.append(hook)

    def health(self) -> AmiHealth:
        return AmiHealth(self.connected.is_set(), self._since, max(self._reconnects, 0),
                         self._last_error)  # fmt: skip

    @property
    def healthy(self) -> bool:
        return self.connected.is_set() and self._conn.healthy

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._supervise(), name="desk-ami")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.connected.clear()
        await self._conn.close()

    async def action(self, fields: Mapping[str, str]) -> dict[str, str]:
        """``AmiConnection.action``; ``AmiConnectionError`` at once while disconnected."""
        return await self._conn.action(fields)

    async def action_list(self, fields: Mapping[str, str]) -> list[dict[str, str]]:
        return await self._conn.action_list(fields)

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._conn.connect()
            except AmiError as exc:
                self._went_down(f"connect: {exc}")
                await self._pause()
                continue
            self._failures = 0
            self._reconnects += 1
            self._since, self._last_error = datetime.now(UTC), None
            self.connected.set()
            logger.info("desk AMI connected to %s (reconnects=%d)", self._where, self._reconnects)
            for hook in self._on_connected:
                try:
                    await hook()
                except Exception:
                    logger.exception("desk AMI on_connected hook %s failed", hook)
            await self._watch()
            self._went_down("connection lost")
            if not self._stopping.is_set():
                await self._pause()

    async def _watch(self) -> None:
        """Return when the connection is lost (or a ping is not answered)."""
        lost = asyncio.create_task(self._conn.wait_disconnected())
        try:
            while not lost.done():
                done, _ = await asyncio.wait({lost}, timeout=self._ping_every)
                if not done and not await self._conn.ping():
                    await self._conn.close()  # half-open: start over
                    return
        finally:
            lost.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lost

    def _went_down(self, why: str) -> None:
        if self.connected.is_set() or self._since is None:
            self._since = datetime.now(UTC)
        self.connected.clear()
        self._last_error = why
        logger.warning("desk AMI to %s down: %s", self._where, why)

    async def _pause(self) -> None:
        delay = full_jitter(self._failures, *self._backoff, self._rng)
        self._failures += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)


@dataclass(frozen=True)
class AgentStatus:
    """One agent as Asterisk sees it now. ``device``: ``DEVICE_STATES`` value of its
    phone (``unavailable``: not registered); ``queues``: the desk queues it is in."""

    extension: str
    name: str
    logged_in: bool
    paused: bool
    pause_reason: str | None
    device: str
    in_call: bool
    queues: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "extension": self.extension, "name": self.name, "logged_in": self.logged_in,
            "paused": self.paused, "pause_reason": self.pause_reason, "device": self.device,
            "device_label": DEVICE_LABELS.get(self.device, self.device), "in_call": self.in_call,
            "queues": list(self.queues),
        }  # fmt: skip


class QueueControl:
    """Agents' login, logout, pause and status over AMI, logged to ``desk_presence``.

    ``pause_reasons``: reason id -> Spanish label (desk.yaml ``pause_reasons``).
    Errors: ``UnknownAgent`` (not in desk.yaml), ``NotLoggedIn`` (pause/unpause of
    an agent in no queue), ``UnknownPauseReason``, ``DeskAmiUnavailable`` (AMI down
    or timed out: nothing was logged).
    """

    def __init__(
        self, ami: AmiLike, config: DeskConfig, presence: PresenceLog,
        pause_reasons: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.ami, self.config, self.presence = ami, config, presence
        self.pause_reasons = dict(pause_reasons)

    async def login(self, extension: str, *, actor: str) -> AgentStatus:
        agent = self.config.agent(extension)
        queues = [q.id for q in self.config.queues_of(extension)]
        for queue in queues:
            fields = {
                "Action": "QueueAdd", "Queue": queue, "Interface": agent.interface,
                "MemberName": agent.name, "StateInterface": agent.interface, "Penalty": "0",
            }  # fmt: skip
            await self._act(fields, tolerate="Already there")
        await self.presence.log_presence(extension, "login", queues=queues, actor=actor)
        return await self.agent_status(extension)

    async def logout(self, extension: str, *, actor: str) -> AgentStatus:
        agent = self.config.agent(extension)
        now_in = (await self.agent_status(extension)).queues
        for queue in now_in:
            fields = {"Action": "QueueRemove", "Queue": queue, "Interface": agent.interface}
            await self._act(fields, tolerate="Not there")
        await self.presence.log_presence(extension, "logout", queues=now_in, actor=actor)
        return await self.agent_status(extension)

    async def pause(self, extension: str, reason: str, *, actor: str) -> AgentStatus:
        agent = self.config.agent(extension)
        if reason not in self.pause_reasons:
            raise UnknownPauseReason(reason, list(self.pause_reasons))
        status = await self.agent_status(extension)
        if not status.logged_in:
            raise NotLoggedIn(extension)
        label = self.pause_reasons[reason]
        await self._act({"Action": "QueuePause", "Interface": agent.interface,
                         "Paused": "true", "Reason": label})  # fmt: skip
        await self.presence.log_presence(extension, "pause", queues=status.queues, reason=reason,
                                         actor=actor)  # fmt: skip
        return await self.agent_status(extension)

    async def unpause(self, extension: str, *, actor: str) -> AgentStatus:
        agent = self.config.agent(extension)
        status = await self.agent_status(extension)
        if not status.logged_in:
            raise NotLoggedIn(extension)
        await self._act({"Action": "QueuePause", "Interface": agent.interface, "Paused": "false"})
        await self.presence.log_presence(extension, "unpause", queues=status.queues, actor=actor)
        return await self.agent_status(extension)

    async def status(self) -> list[AgentStatus]:
        """Every desk.yaml agent, in extension order, from one ``QueueStatus``."""
        members = await self._members()
        return [self._status_of(ext, members) for ext in sorted(self.config.agents)]

    async def agent_status(self, extension: str) -> AgentStatus:
        self.config.agent(extension)  # UnknownAgent
        return self._status_of(extension, await self._members())

    async def _members(self) -> list[dict[str, str]]:
        try:
            events = await self.ami.action_list({"Action": "QueueStatus"})
        except AmiConnectionError as exc:
            raise DeskAmiUnavailable(str(exc)) from exc
        return [e for e in events if e.get("Event") == "QueueMember" and e.get("Queue") in
                self.config.queues]  # fmt: skip

    def _status_of(self, extension: str, members: list[dict[str, str]]) -> AgentStatus:
        agent = self.config.agent(extension)
        mine = [m for m in members if _interface(m) == agent.interface.lower()
                and m.get("Membership", "dynamic") != "static"]  # fmt: skip
        member_of = {m["Queue"] for m in mine}
        queues = tuple(q for q in self.config.queues if q in member_of)  # desk.yaml's order
        paused = bool(mine) and all(m.get("Paused") == "1" for m in mine)
        reason = next((m.get("PausedReason") or None for m in mine if m.get("Paused") == "1"), None)
        device = DEVICE_STATES.get(mine[0].get("Status", ""), "unknown") if mine else "unknown"
        in_call = any(m.get("InCall") == "1" for m in mine) or device in IN_CALL_STATES
        return AgentStatus(extension, agent.name, bool(mine), paused,
                           reason if paused else None, device, in_call, queues)  # fmt: skip

    async def _act(self, fields: Mapping[str, str], *, tolerate: str | None = None) -> None:
        try:
            await self.ami.action(fields)
        except AmiActionFailed as exc:
            if tolerate and tolerate.lower() in str(exc.response.get("Message", "")).lower():
                return  # already as asked: login twice, logout of a queue it left
            raise
        except AmiConnectionError as exc:
            raise DeskAmiUnavailable(str(exc)) from exc


def _interface(member: Mapping[str, str]) -> str:
    # QueueStatus says Location (the interface rung) and StateInterface.
    return (member.get("StateInterface") or member.get("Location") or "").lower()


__all__ = [
    "DEVICE_STATES", "AgentStatus", "AmiHealth", "DeskAmi", "DeskAmiError", "DeskAmiUnavailable",
    "NotLoggedIn", "QueueControl", "UnknownAgent", "UnknownPauseReason",
]  # fmt: skip
