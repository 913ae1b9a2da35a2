"""The desk's queue events, from Asterisk's AMI (app_queue) as typed values.

app_queue reports every step of a queued call on the AMI (``read = agent``)::

    QueueCallerJoin      the caller entered a queue            -> CallerJoined
    AgentCalled          a member's phone rings                -> AgentCalled
    AgentRingNoAnswer    it rang out                           -> AgentRingNoAnswer
    AgentConnect         the member answered                   -> AgentConnected
    AgentComplete        the bridged call ended                -> AgentCompleted
    QueueCallerAbandon   the caller hung up while queued       -> CallerAbandoned
    QueueCallerLeave     the caller left the queue (answered,
                         abandoned, timed out, redirected)     -> CallerLeft
    QueueMemberStatus    a member's device or queue state      -> MemberStatus
    QueueMemberPause     a member paused / unpaused            -> MemberPaused

The caller's IVR context comes with each caller-side event as ``ChanVariable``
headers, one per variable of ``manager.conf``'s ``channelvars`` (the queues
part lists ``CITAS_CALL_ID``, ``CITAS_SEGMENT``, ``CITAS_REASON``…). AMI repeats
the header once per variable; panoramisk collects a repeated header into a
list and :class:`ivr.ami.manager.AmiConnection` joins a list with newlines, so
:func:`channel_variables` reads either shape (checked against a real Asterisk
22: see ``tests/unit/data/desk_ami_events.json``). The agent's own leg carries
its variables as ``DestChanVariable``.

The agent is the member's ``Interface`` (``PJSIP/7001`` -> ``"7001"``, the
desk.yaml extension); a member whose interface is not ``PJSIP/<digits>`` (the
tester's ``PJSIP/agent``, a ``Local/`` channel) is not a desk agent and
:func:`agent_of` gives None.

>>> ev = parse_event({"Event": "AgentConnect", "Queue": "general", "Uniqueid": "171.5",
...                   "Linkedid": "171.5", "Channel": "PJSIP/caller-0001",
...                   "Interface": "PJSIP/7001", "MemberName": "Ana Gómez",
...                   "HoldTime": "3", "RingTime": "1",
...                   "ChanVariable": "CITAS_SEGMENT=non_target\\nCITAS_REASON=non-target"})
>>> type(ev).__name__, ev.agent, ev.variables["CITAS_SEGMENT"], ev.hold_seconds
('AgentConnected', '7001', 'non_target', 3)
>>> parse_event({"Event": "Newchannel"}) is None
True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

logger = logging.getLogger(__name__)

EVENT_NAMES = (
    "QueueCallerJoin",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "QueueCallerLeave",
    "QueueMemberStatus",
    "QueueMemberPause",
)
_DESK_INTERFACE = re.compile(r"^PJSIP/(\d{2,8})$", re.IGNORECASE)

# app_queue's member Status (AST_DEVICE_* values), as the desktop names them.
DEVICE_STATES = {
    "0": "desconocido",
    "1": "libre",
    "2": "en llamada",
    "3": "ocupado",
    "4": "no válido",
    "5": "no disponible",
    "6": "timbrando",
    "7": "timbrando en llamada",
    "8": "en espera",
}


def channel_variables(raw: str | list[str] | None) -> dict[str, str]:
    """``ChanVariable`` headers as ``{name: value}``.

    ``raw``: one ``NAME=value`` string, several joined by newlines (what
    ``AmiConnection`` hands its handlers), or a list of them (panoramisk's own
    shape for a repeated header). An empty value is kept as ``""``; an item with
    no ``=`` is ignored. A name app_queue prefixes with the inheritance marks
    (``__CITAS_SEGMENT``) is stored without them.

    >>> channel_variables("CITAS_SEGMENT=non_target\\nCITAS_AFFILIATE=\\nBROKEN")
    {'CITAS_SEGMENT': 'non_target', 'CITAS_AFFILIATE': ''}
    >>> channel_variables(["A=1", "B=x=y"])
    {'A': '1', 'B': 'x=y'}
    """
    if raw is None:
        return {}
    items: Iterable[str] = raw if isinstance(raw, list) else raw.split("\n")
    found: dict[str, str] = {}
    for item in items:
        name, sep, value = item.strip("\r").partition("=")
        if sep and name.strip():
            found[name.strip().lstrip("_")] = value
    return found


def agent_of(interface: str | None) -> str | None:
    """The desk agent's extension of a queue member's interface, or None.

    >>> agent_of("PJSIP/7001"), agent_of("pjsip/7002"), agent_of("PJSIP/agent"), agent_of(None)
    ('7001', '7002', None, None)
    """
    match = _DESK_INTERFACE.match((interface or "").strip())
    return match.group(1) if match else None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _instant(fields: Mapping[str, str], received: datetime) -> datetime:
    """The event's ``Timestamp`` (manager.conf ``timestampevents``, epoch seconds
    with microseconds) when Asterisk sent one, else when we received it."""
    raw = fields.get("Timestamp")
    if raw:
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except (ValueError, OverflowError, OSError):
            pass
    return received


@dataclass(frozen=True)
class QueueEvent:
    """What every queue event has: ``queue`` (the queue's name, desk.yaml's id),
    the caller's leg (``channel``, ``uniqueid``, ``linkedid``; empty on member
    events), its ``variables`` (ChanVariable), ``at`` (aware UTC) and the raw
    ``fields`` as received."""

    name: str
    queue: str
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    variables: Mapping[str, str]
    at: datetime
    fields: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class MemberEvent(QueueEvent):
    """An event about one queue member: ``interface`` (``PJSIP/7001``),
    ``member_name``, and ``agent`` (the desk extension, None when not a desk agent)."""

    interface: str = ""
    member_name: str = ""

    @property
    def agent(self) -> str | None:
        return agent_of(self.interface)


@dataclass(frozen=True)
class CallerJoined(QueueEvent):
    position: int = 0
    count: int = 0


@dataclass(frozen=True)
class AgentCalled(MemberEvent):
    dest_channel: str = ""


@dataclass(frozen=True)
class AgentRingNoAnswer(MemberEvent):
    ring_ms: int = 0


@dataclass(frozen=True)
class AgentConnected(MemberEvent):
    """The agent answered: ``hold_seconds`` the caller waited in the queue,
    ``ring_seconds`` the agent's phone rang (app_queue's HoldTime, RingTime);
    ``dest_channel``/``dest_uniqueid`` the agent's leg."""

    dest_channel: str = ""
    dest_uniqueid: str = ""
    hold_seconds: int = 0
    ring_seconds: int = 0


@dataclass(frozen=True)
class AgentCompleted(MemberEvent):
    """The bridged call ended: ``reason`` ``caller`` | ``agent`` | ``transfer``
    (who hung up, or a transfer took it away), ``talk_seconds``."""

    reason: str = ""
    hold_seconds: int = 0
    talk_seconds: int = 0


@dataclass(frozen=True)
class CallerAbandoned(QueueEvent):
    hold_seconds: int = 0
    position: int = 0


@dataclass(frozen=True)
class CallerLeft(QueueEvent):
    position: int = 0
    count: int = 0


@dataclass(frozen=True)
class MemberStatus(MemberEvent):
    """``status`` app_queue's device state number (see :data:`DEVICE_STATES`),
    ``paused``, ``paused_reason``, ``in_call``."""

    status: str = ""
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False

    @property
    def state_words(self) -> str:
        return DEVICE_STATES.get(self.status, "desconocido")


@dataclass(frozen=True)
class MemberPaused(MemberEvent):
    paused: bool = False
    paused_reason: str = ""


DeskEvent = QueueEvent


def parse_event(fields: Mapping[str, Any], *, received: datetime | None = None) -> QueueEvent | None:
    """One AMI event (header -> value, as :class:`AmiConnection` delivers it, or
    with lists for repeated headers) as a typed event; None when it is not one of
    :data:`EVENT_NAMES`. Missing numbers read as 0, missing text as ``""``:
    Asterisk versions differ in the headers they send, never in these names.
    """
    flat = {str(k): ("\n".join(v) if isinstance(v, list) else str(v)) for k, v in fields.items()}
    name = flat.get("Event", "")
    if name not in EVENT_NAMES:
        return None
    base: dict[str, Any] = {
        "name": name,
        "queue": flat.get("Queue", ""),
        "channel": flat.get("Channel", ""),
        "uniqueid": flat.get("Uniqueid", ""),
        "linkedid": flat.get("Linkedid", ""),
        "caller_number": flat.get("CallerIDNum", ""),
        "variables": channel_variables(fields.get("ChanVariable")),
        "at": _instant(flat, received or datetime.now(UTC)),
        "fields": flat,
    }
    member: dict[str, Any] = {"interface": flat.get("Interface", ""), "member_name": flat.get("MemberName", "")}
    if name == "QueueCallerJoin":
        return CallerJoined(**base, position=_int(flat.get("Position")), count=_int(flat.get("Count")))
    if name == "AgentCalled":
        return AgentCalled(**base, **member, dest_channel=flat.get("DestChannel", ""))
    if name == "AgentRingNoAnswer":
        return AgentRingNoAnswer(**base, **member, ring_ms=_int(flat.get("RingTime")))
    if name == "AgentConnect":
        return AgentConnected(
            **base, **member,
            dest_channel=flat.get("DestChannel", ""), dest_uniqueid=flat.get("DestUniqueid", ""),
            hold_seconds=_int(flat.get("HoldTime")), ring_seconds=_int(flat.get("RingTime")),
        )  # fmt: skip
    if name == "AgentComplete":
        return AgentCompleted(
            **base, **member, reason=flat.get("Reason", ""),
            hold_seconds=_int(flat.get("HoldTime")), talk_seconds=_int(flat.get("TalkTime")),
        )  # fmt: skip
    if name == "QueueCallerAbandon":
        return CallerAbandoned(**base, hold_seconds=_int(flat.get("HoldTime")),
                               position=_int(flat.get("Position")))  # fmt: skip
    if name == "QueueCallerLeave":
        return CallerLeft(**base, position=_int(flat.get("Position")), count=_int(flat.get("Count")))
    paused = flat.get("Paused", "0") == "1"
    reason = flat.get("PausedReason", "") or flat.get("Reason", "")
    if name == "QueueMemberStatus":
        return MemberStatus(**base, **member, status=flat.get("Status", ""), paused=paused,
                            paused_reason=reason, in_call=flat.get("InCall", "0") == "1")  # fmt: skip
    return MemberPaused(**base, **member, paused=paused, paused_reason=reason)


class EventSource(Protocol):
    """What delivers AMI events: ``ivr.desk.ami.DeskAmi`` (supervised) or an
    ``ivr.ami.manager.AmiConnection``."""

    def on_event(self, pattern: str, handler: Callable[[Mapping[str, str]], Awaitable[None]]) -> None: ...


DeskEventHandler = Callable[[QueueEvent], Awaitable[None]]


def listen(source: EventSource, handler: DeskEventHandler) -> None:
    """Have ``handler`` called with every desk event ``source`` receives (parsed;
    other events are not even subscribed). The source runs each event in its own
    task; ``handler`` must therefore tolerate overlap (the pop's store calls are
    idempotent)."""

    async def deliver(fields: Mapping[str, str]) -> None:
        event = parse_event(fields)
        if event is not None:
            await handler(event)

    for name in EVENT_NAMES:
        source.on_event(name, deliver)
