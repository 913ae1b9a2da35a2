"""ARI resources we read, as frozen dataclasses.

Only the fields the IVR uses are kept; anything else Asterisk adds in a newer
version is ignored, so an upgrade does not break parsing. A field we rely on
that is missing or of the wrong type raises ``AriProtocolError``.

>>> ch = Channel.from_json({"id": "1700000000.1", "name": "PJSIP/caller-00000001",
...                         "state": "Up", "caller": {"name": "", "number": "3001234567"},
...                         "dialplan": {"context": "citas-entry", "exten": "4441234"}})
>>> (ch.id, ch.state, ch.dialplan_exten)
('1700000000.1', 'Up', '4441234')
>>> ch.caller
CallerId(name='', number='******4567')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.ari._fields import opt_obj, opt_str, req_str, str_map
from ivr.masking import mask_number


@dataclass(frozen=True)
class CallerId:
    name: str
    number: str

    def __repr__(self) -> str:
        return f"CallerId(name={self.name!r}, number={mask_number(self.number)!r})"

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CallerId:
        if data is None:
            return cls(name="", number="")
        return cls(
            name=opt_str(data, "name", "CallerId"),
            number=opt_str(data, "number", "CallerId"),
        )


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller: CallerId
    connected: CallerId
    language: str
    dialplan_context: str
    dialplan_exten: str
    channelvars: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Channel:
        dialplan = opt_obj(data, "dialplan", "Channel") or {}
        return cls(
            id=req_str(data, "id", "Channel"),
            name=req_str(data, "name", "Channel"),
            state=req_str(data, "state", "Channel"),
            caller=CallerId.from_json(opt_obj(data, "caller", "Channel")),
            connected=CallerId.from_json(opt_obj(data, "connected", "Channel")),
            language=opt_str(data, "language", "Channel"),
            dialplan_context=opt_str(dialplan, "context", "Channel.dialplan"),
            dialplan_exten=opt_str(dialplan, "exten", "Channel.dialplan"),
            # ARI only includes channelvars when ari.conf asks for them.
            channelvars=str_map(data, "channelvars", "Channel"),
        )


@dataclass(frozen=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str

    @property
    def channel_id(self) -> str | None:
        """The channel this plays to, or None when the target is a bridge etc."""
        kind, _, target = self.target_uri.partition(":")
        return target if kind == "channel" and target else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Playback:
        return cls(
            id=req_str(data, "id", "Playback"),
            media_uri=req_str(data, "media_uri", "Playback"),
            target_uri=req_str(data, "target_uri", "Playback"),
            state=req_str(data, "state", "Playback"),
        )
