"""Typed ARI events, parsed from the JSON messages of ``/ari/events``.

``parse_event`` returns the subclass named by the message's ``type``; an event
type we do not handle becomes a plain ``Event`` (Asterisk adds event types in
new versions, and the stream must not die on them). A handled event with a
missing or mistyped field raises ``AriProtocolError``.

>>> ev = parse_event({"type": "ChannelDtmfReceived", "application": "citas-ivr",
...                   "timestamp": "2024-01-01T00:00:00.000+0000", "digit": "5",
...                   "duration_ms": 120,
...                   "channel": {"id": "1700000000.1", "name": "PJSIP/a-1", "state": "Up"}})
>>> (type(ev).__name__, ev.channel_id, ev.digit)
('ChannelDtmfReceived', '1700000000.1', '5')
>>> type(parse_event({"type": "ChannelVarset", "application": "citas-ivr"})).__name__
'Event'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.ari._fields import opt_obj, opt_str, req_int, req_obj, req_str, str_list
from ivr.ari.errors import AriProtocolError
from ivr.ari.models import Channel, Playback


@dataclass(frozen=True)
class Event:
    type: str
    application: str
    timestamp: str
    # The message as received, for logs and for fields we do not model.
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def channel_id(self) -> str | None:
        """The channel this event concerns; None for events about no channel.

        Unhandled event types answer None even if they carry a channel, so a
        call handler only ever sees the typed events it was written for.
        """
        return None


@dataclass(frozen=True)
class _ChannelEvent(Event):
    channel: Channel

    @property
    def channel_id(self) -> str:
        return self.channel.id


@dataclass(frozen=True)
class StasisStart(_ChannelEvent):
    args: tuple[str, ...]
    replace_channel: Channel | None


@dataclass(frozen=True)
class StasisEnd(_ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDtmfReceived(_ChannelEvent):
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ChannelDestroyed(_ChannelEvent):
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class _PlaybackEvent(Event):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return self.playback.channel_id


@dataclass(frozen=True)
class PlaybackFinished(_PlaybackEvent):
    pass


@dataclass(frozen=True)
class ApplicationReplaced(Event):
    """Another websocket took over our application name; we get no more events."""


def _head(data: Mapping[str, Any]) -> dict[str, Any]:
    # Envelope fields are read leniently: a missing timestamp is no reason to
    # lose a hangup.
    return {
        "type": req_str(data, "type", "Event"),
        "application": opt_str(data, "application", "Event"),
        "timestamp": opt_str(data, "timestamp", "Event"),
        "raw": data,
    }


def _channel(data: Mapping[str, Any], where: str) -> Channel:
    return Channel.from_json(req_obj(data, "channel", where))


def _stasis_start(d: Mapping[str, Any]) -> Event:
    replace = opt_obj(d, "replace_channel", "StasisStart")
    return StasisStart(
        **_head(d),
        channel=_channel(d, "StasisStart"),
        args=str_list(d, "args", "StasisStart"),
        replace_channel=Channel.from_json(replace) if replace is not None else None,
    )


def _stasis_end(d: Mapping[str, Any]) -> Event:
    return StasisEnd(**_head(d), channel=_channel(d, "StasisEnd"))


def _dtmf(d: Mapping[str, Any]) -> Event:
    return ChannelDtmfReceived(
        **_head(d),
        channel=_channel(d, "ChannelDtmfReceived"),
        digit=req_str(d, "digit", "ChannelDtmfReceived"),
        duration_ms=req_int(d, "duration_ms", "ChannelDtmfReceived"),
    )


def _destroyed(d: Mapping[str, Any]) -> Event:
    return ChannelDestroyed(
        **_head(d),
        channel=_channel(d, "ChannelDestroyed"),
        cause=req_int(d, "cause", "ChannelDestroyed"),
        cause_txt=req_str(d, "cause_txt", "ChannelDestroyed"),
    )


def _playback_finished(d: Mapping[str, Any]) -> Event:
    playback = Playback.from_json(req_obj(d, "playback", "PlaybackFinished"))
    return PlaybackFinished(**_head(d), playback=playback)


def _application_replaced(d: Mapping[str, Any]) -> Event:
    return ApplicationReplaced(**_head(d))


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "StasisStart": _stasis_start,
    "StasisEnd": _stasis_end,
    "ChannelDtmfReceived": _dtmf,
    "ChannelDestroyed": _destroyed,
    "PlaybackFinished": _playback_finished,
    "ApplicationReplaced": _application_replaced,
}

# Checked against Asterisk's rest-api/api-docs/events.json by a test, so a
# renamed or removed event type is caught before a call is.
HANDLED_EVENT_TYPES: tuple[str, ...] = tuple(_PARSERS)

# The event types the IVR asks Asterisk for: the application's event filter
# (``AriClient.set_event_filter``, set by the controller at every connect).
# Asterisk then neither serialises nor sends the others (per smoke call 7
# events of 19: no ``ChannelVarset``, ``PlaybackStarted``, ``PlaybackContinuing``
# or ``ChannelStateChange``, which no code reads; docs/perf/ari.md). Nor
# ``ChannelHangupRequest``: a channel hung up in Stasis leaves it, and its
# ``StasisEnd`` follows at once; with no bridge in this IVR nothing holds a
# hung-up channel in the application, so that event told nothing the end does
# not (one event fewer per call for Asterisk to build and send, and for us to
# read: docs/PERFORMANCE.md, run t63).
# Every handled type must be in it (a type missing here would never arrive):
# tests/unit/test_ari_event_filter.py checks it, and that no module of ``ivr/``
# looks for a type that is not.
# ``RESTResponse`` is the answer to a request sent over the websocket
# (``ivr.ari.wsrest``): filtered out, it would never arrive.
EVENT_FILTER: tuple[str, ...] = (*HANDLED_EVENT_TYPES, "RESTResponse")


def parse_event(data: Mapping[str, Any]) -> Event:
    """Build the typed event for one ARI message (already decoded from JSON)."""
    if not isinstance(data, Mapping):
        raise AriProtocolError(f"ARI event: expected object, got {type(data).__name__}")
    head = _head(data)
    parser = _PARSERS.get(head["type"])
    if parser is None:
        return Event(**head)
    return parser(data)
