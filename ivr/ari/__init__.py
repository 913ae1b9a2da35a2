"""Our own thin async client for the Asterisk REST Interface (Asterisk 22).

Why not a library from PyPI:

- ``ari`` (ari-py), the reference client, fails to import on Python 3.11, is
  synchronous and has been abandoned;
- ``aioari`` was last released in 2020 and wraps swagger-py, so every call is
  generated at runtime from the api-docs and cannot be type-checked;
- ``asyncari`` is built on anyio/httpx with the same swagger-generated calls,
  and has almost no tests;
- ``ari-client`` 0.9.0 is brand new (late 2026) with no track record yet.

The IVR uses about 12 REST calls and 7 event types. A small typed client on
aiohttp, tested against an in-process server and checked against Asterisk's
own ``/ari/api-docs`` (see ``AriClient.calls_made`` and
``HANDLED_EVENT_TYPES``), is cheaper to own than any of those.

Layout: ``errors`` (the exception tree), ``models`` (channel, playback),
``events`` (typed websocket events), ``client`` (REST), ``stream`` (the event
websocket with reconnects), ``router`` (one handler task per call).
"""

from ivr.ari.client import AriClient
from ivr.ari.errors import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFound,
    AriProtocolError,
    AriServerError,
    AriTimeout,
)
from ivr.ari.events import (
    EVENT_FILTER,
    HANDLED_EVENT_TYPES,
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    parse_event,
)
from ivr.ari.models import CallerId, Channel, Playback
from ivr.ari.router import CallContext, CallRouter
from ivr.ari.stream import EventStream

__all__ = [
    "EVENT_FILTER",
    "HANDLED_EVENT_TYPES",
    "ApplicationReplaced",
    "AriAuthError",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriConnectionError",
    "AriError",
    "AriHttpError",
    "AriNotFound",
    "AriProtocolError",
    "AriServerError",
    "AriTimeout",
    "CallContext",
    "CallRouter",
    "CallerId",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "Event",
    "EventStream",
    "Playback",
    "PlaybackFinished",
    "StasisEnd",
    "StasisStart",
    "parse_event",
]
