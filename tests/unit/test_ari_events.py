"""parse_event on messages shaped like Asterisk 22's /ari/events output."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ivr.ari import (
    EVENT_FILTER,
    HANDLED_EVENT_TYPES,
    ApplicationReplaced,
    AriProtocolError,
    CallerId,
    ChannelDestroyed,
    ChannelDtmfReceived,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    parse_event,
)
from ivr.ari import events as events_module
from tests.unit.ari_samples import channel_json

CHANNEL: dict[str, Any] = channel_json(
    connected={"name": "Citas", "number": "4441234"}, channelvars={"CITAS_LINE": "main"}
)

PLAYBACK: dict[str, Any] = {
    "id": "1700000000.1-welcome",
    "media_uri": "sound:citas/welcome",
    "target_uri": "channel:1700000000.1",
    "language": "es",
    "state": "playing",
}


def message(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "application": "citas-ivr",
        "timestamp": "2024-05-02T10:00:01.123-0500",
        "asterisk_id": "02:42:ac:11:00:02",
        **fields,
    }


def test_stasis_start() -> None:
    data = message("StasisStart", args=["citas", "main"], channel=CHANNEL)

    ev = parse_event(data)

    assert isinstance(ev, StasisStart)
    assert (ev.type, ev.application) == ("StasisStart", "citas-ivr")
    assert ev.timestamp == "2024-05-02T10:00:01.123-0500"
    assert ev.channel_id == "1700000000.1"
    assert ev.args == ("citas", "main")
    assert ev.replace_channel is None
    assert ev.raw is data
    channel = ev.channel
    assert channel.caller == CallerId(name="", number="3001234567")
    assert channel.connected.name == "Citas"
    assert (channel.dialplan_context, channel.dialplan_exten) == ("citas-entry", "4441234")
    assert (channel.language, channel.state) == ("es", "Up")
    assert channel.channelvars == {"CITAS_LINE": "main"}


def test_stasis_start_with_replace_channel_and_no_args() -> None:
    old = {**CHANNEL, "id": "1700000000.0", "name": "Local/x-00000001;2"}

    ev = parse_event(message("StasisStart", args=[], channel=CHANNEL, replace_channel=old))

    assert isinstance(ev, StasisStart)
    assert ev.args == ()
    assert ev.replace_channel is not None
    assert ev.replace_channel.id == "1700000000.0"


def test_stasis_end() -> None:
    ev = parse_event(message("StasisEnd", channel=CHANNEL))

    assert isinstance(ev, StasisEnd)
    assert ev.channel_id == "1700000000.1"


def test_dtmf() -> None:
    ev = parse_event(message("ChannelDtmfReceived", digit="#", duration_ms=160, channel=CHANNEL))

    assert isinstance(ev, ChannelDtmfReceived)
    assert (ev.channel_id, ev.digit, ev.duration_ms) == ("1700000000.1", "#", 160)


def test_a_hangup_request_is_not_handled() -> None:
    # Filtered out (ivr.ari.events: its StasisEnd follows); an Asterisk that refused
    # the filter still sends it, and it is read as an event of no use, not refused.
    ev = parse_event(message("ChannelHangupRequest", cause=16, soft=True, channel=CHANNEL))

    assert type(ev) is Event and ev.type == "ChannelHangupRequest"
    assert "ChannelHangupRequest" not in EVENT_FILTER


def test_channel_destroyed() -> None:
    ev = parse_event(
        message("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=CHANNEL)
    )

    assert isinstance(ev, ChannelDestroyed)
    assert (ev.channel_id, ev.cause, ev.cause_txt) == ("1700000000.1", 16, "Normal Clearing")


@pytest.mark.parametrize("type_", ["ChannelStateChange", "PlaybackStarted", "ChannelVarset"])
def test_types_no_code_reads_are_plain_events(type_: str) -> None:
    # Not handled, so not in the app's event filter: Asterisk does not send them.
    ev = parse_event(message(type_, channel={**CHANNEL, "state": "Ringing"}, playback=PLAYBACK))

    assert type(ev) is Event
    assert ev.channel_id is None


@pytest.mark.parametrize(("type_", "cls"), [("PlaybackFinished", PlaybackFinished)])
def test_playback_events_derive_channel_from_target(type_: str, cls: type[Event]) -> None:
    ev = parse_event(message(type_, playback=PLAYBACK))

    assert isinstance(ev, cls)
    assert ev.channel_id == "1700000000.1"


def test_playback_on_a_bridge_has_no_channel() -> None:
    on_bridge = {**PLAYBACK, "target_uri": "bridge:4f0a-bridge"}

    ev = parse_event(message("PlaybackFinished", playback={**on_bridge, "state": "done"}))

    assert isinstance(ev, PlaybackFinished)
    assert ev.playback.state == "done"
    assert ev.channel_id is None


def test_application_replaced() -> None:
    ev = parse_event(message("ApplicationReplaced"))

    assert isinstance(ev, ApplicationReplaced)
    assert ev.channel_id is None


def test_unknown_type_is_a_plain_event() -> None:
    data = message("ChannelVarset", variable="CITAS_X", value="1", channel=CHANNEL)

    ev = parse_event(data)

    assert type(ev) is Event
    assert ev.type == "ChannelVarset"
    assert ev.raw["variable"] == "CITAS_X"
    # Only typed events are routed to calls.
    assert ev.channel_id is None


def test_extra_fields_are_ignored() -> None:
    channel = copy.deepcopy(CHANNEL)
    channel["caller_rdnis"] = "3000000000"
    channel["dialplan"]["future_field"] = {"nested": True}

    ev = parse_event(message("StasisEnd", channel=channel, brand_new="x"))

    assert isinstance(ev, StasisEnd)
    assert ev.channel.id == "1700000000.1"


def test_minimal_channel_gets_defaults() -> None:
    bare = {"id": "1700000000.9", "name": "PJSIP/x-9", "state": "Ring"}

    ev = parse_event(message("StasisEnd", channel=bare))

    assert isinstance(ev, StasisEnd)
    assert ev.channel.caller == CallerId("", "")
    assert (ev.channel.language, ev.channel.dialplan_context, ev.channel.channelvars) == (
        "",
        "",
        {},
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (message("StasisStart", args=[]), "StasisStart.channel: expected object, got missing"),
        (message("StasisStart", args="a,b", channel=CHANNEL), "StasisStart.args"),
        (
            message("ChannelDtmfReceived", digit="1", duration_ms="100", channel=CHANNEL),
            "ChannelDtmfReceived.duration_ms: expected integer, got str",
        ),
        (
            message("ChannelDestroyed", cause_txt="Normal Clearing", channel=CHANNEL),
            "ChannelDestroyed.cause: expected integer, got missing",
        ),
        (message("StasisEnd", channel={"id": 17, "name": "x", "state": "Up"}), "Channel.id"),
        (message("StasisEnd", channel={**CHANNEL, "caller": "3001234567"}), "Channel.caller"),
        (message("PlaybackFinished", playback={"id": "p"}), "Playback.media_uri"),
        (message("StasisEnd", channel=None), "StasisEnd.channel: expected object, got null"),
        ({"application": "citas-ivr"}, "Event.type: expected string, got missing"),
    ],
)
def test_malformed_known_events_raise(data: dict[str, Any], error: str) -> None:
    with pytest.raises(AriProtocolError, match=error.replace(".", r"\.")):
        parse_event(data)


def test_non_object_message_raises() -> None:
    with pytest.raises(AriProtocolError, match="expected object"):
        parse_event(["StasisStart"])  # type: ignore[arg-type]


def test_handled_types_each_have_their_class() -> None:
    assert len(HANDLED_EVENT_TYPES) == len(set(HANDLED_EVENT_TYPES)) == 6
    for name in HANDLED_EVENT_TYPES:
        cls = getattr(events_module, name)
        assert issubclass(cls, Event)
        fields = {"channel": CHANNEL, "playback": PLAYBACK, "digit": "1", "duration_ms": 1}
        ev = parse_event(message(name, cause=16, cause_txt="Normal Clearing", **fields))
        assert type(ev) is cls


def test_caller_number_is_masked_in_repr() -> None:
    ev = parse_event(message("StasisEnd", channel=CHANNEL))

    assert "3001234567" not in repr(ev)
    assert "*******567" in repr(ev)
