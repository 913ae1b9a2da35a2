"""A channel as Asterisk 22 describes it in ARI JSON, shared by the ARI and voice tests."""

from __future__ import annotations

from typing import Any

APP = "citas-ivr"


def channel_json(channel_id: str = "1700000000.1", **overrides: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "id": channel_id,
        "name": "PJSIP/caller-00000001",
        "state": "Up",
        "protocol_id": "abc@127.0.0.1",
        "caller": {"name": "", "number": "3001234567"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "citas-entry",
            "exten": "4441234",
            "priority": 3,
            "app_name": "Stasis",
            "app_data": APP,
        },
        "creationtime": "2024-05-02T10:00:00.000-0500",
        "language": "es",
        "channelvars": {},
    }
    return {**channel, **overrides}
