"""Meta's webhook payload (field ``messages``) parsed into typed events.

The shape (Cloud API reference, "messages webhook"):
``{"object": "whatsapp_business_account", "entry": [{"id", "changes": [{"field":
"messages", "value": {"messaging_product": "whatsapp", "metadata":
{"display_phone_number", "phone_number_id"}, "contacts": [{"wa_id",
"profile": {"name"}}], "messages": [...], "statuses": [...]}}]}]}``.

One POST may carry several entries and changes; the events come out in the
order they appear. Fields Meta adds are ignored (the schema lists what we
need, not what may come). Changes of other fields (template status, account
updates) carry no events. A body that is not JSON or lacks what we need raises
``WebhookPayloadError`` naming the JSON path.

Events:
- ``TextMessage`` (``type: text``): ``body``.
- ``InteractiveReply`` (``type: interactive``, ``list_reply`` / ``button_reply``):
  the option's ``reply_id`` and ``title`` (and a list row's ``description``).
- ``TemplateButtonReply`` (``type: button``, a template's quick reply): ``text``, ``payload``.
- ``UnsupportedMessage``: any other kind, kept as ``kind`` (``audio``, ``image``,
  ``sticker``, ``location``, ``video``, ``document``, ``contacts``, ``reaction``,
  else ``unknown`` with Meta's ``raw_type``) so the product can answer politely.
- ``StatusUpdate``: ``sent`` / ``delivered`` / ``read`` / ``failed`` (with
  ``errors``) for one of our messages (``message_id`` is its wamid).

>>> body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
...     {"field": "messages", "value": {"messaging_product": "whatsapp",
...      "metadata": {"display_phone_number": "5716000000", "phone_number_id": "106"},
...      "contacts": [{"wa_id": "573001234567", "profile": {"name": "Ana"}}],
...      "messages": [{"from": "573001234567", "id": "wamid.A", "timestamp": "1749416383",
...                    "type": "text", "text": {"body": "hola"}}]}}]}]}
>>> [(type(e).__name__, e.sender, e.body, e.contact_name) for e in parse_webhook(body)]
[('TextMessage', '573001234567', 'hola', 'Ana')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jsonschema

UNSUPPORTED_KINDS: Final = frozenset(
    {"audio", "image", "sticker", "location", "video", "document", "contacts", "reaction"}
)
"""Message kinds the product does not read but answers politely (else ``unknown``)."""

STATUSES: Final = frozenset({"sent", "delivered", "read", "failed"})


class WebhookPayloadError(ValueError):
    """The webhook body is not Meta's format; the message names the JSON path."""


@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    """What every inbound message has.

    ``sender`` is the contact's wa_id (E.164 without "+"); ``message_id`` is
    Meta's wamid (the dedupe key: Meta retries webhooks); ``timestamp`` is when
    the user sent it (UTC, whole seconds); ``phone_number_id`` is our business
    number it was sent to; ``context_id`` is the wamid of the message it
    replies to (interactive replies always have one).
    """

    message_id: str
    sender: str
    timestamp: datetime
    phone_number_id: str
    contact_name: str | None = None
    context_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TextMessage(InboundMessage):
    body: str


@dataclass(frozen=True, kw_only=True)
class InteractiveReply(InboundMessage):
    """A tap on a list row (``list_reply``) or a reply button (``button_reply``)."""

    reply_kind: str
    reply_id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class TemplateButtonReply(InboundMessage):
    """A tap on a template's quick-reply button (``type: button``)."""

    text: str
    payload: str | None = None


@dataclass(frozen=True, kw_only=True)
class UnsupportedMessage(InboundMessage):
    """A message the product does not read (see ``UNSUPPORTED_KINDS``)."""

    kind: str
    raw_type: str


@dataclass(frozen=True)
class StatusError:
    """One entry of a failed status's ``errors`` (Meta's error code, e.g. 131047)."""

    code: int
    title: str
    message: str | None = None
    details: str | None = None


@dataclass(frozen=True, kw_only=True)
class StatusUpdate:
    """A delivery status of one of our messages.

    ``status`` is one of ``STATUSES`` (a value Meta may add later is kept as
    given); ``callback_data`` is the ``biz_opaque_callback_data`` we sent with
    the message, if any.
    """

    message_id: str
    recipient: str
    status: str
    timestamp: datetime
    phone_number_id: str
    errors: tuple[StatusError, ...] = ()
    callback_data: str | None = None


WebhookEvent = (
    TextMessage | InteractiveReply | TemplateButtonReply | UnsupportedMessage | StatusUpdate
)

_TIMESTAMP = {"type": ["string", "integer"], "pattern": "^[0-9]+$"}
_TEXT = {"type": "string"}
_REPLY = {
    "type": "object",
    "required": ["id", "title"],
    "properties": {"id": _TEXT, "title": _TEXT},
}

SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["entry"],
    "properties": {
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["changes"],
                "properties": {"changes": {"type": "array", "items": {"$ref": "#/$defs/change"}}},
            },
        }
    },
    "$defs": {
        "change": {
            "type": "object",
            "required": ["field", "value"],
            "properties": {"field": _TEXT, "value": {"type": "object"}},
            "if": {"required": ["field"], "properties": {"field": {"const": "messages"}}},
            "then": {"properties": {"value": {"$ref": "#/$defs/value"}}},
        },
        "value": {
            "type": "object",
            "required": ["messaging_product", "metadata"],
            "properties": {
                "messaging_product": {"const": "whatsapp"},
                "metadata": {
                    "type": "object",
                    "required": ["phone_number_id"],
                    "properties": {"phone_number_id": _TEXT},
                },
                "contacts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["wa_id"],
                        "properties": {
                            "wa_id": _TEXT,
                            "profile": {"type": "object", "properties": {"name": _TEXT}},
                        },
                    },
                },
                "messages": {"type": "array", "items": {"$ref": "#/$defs/message"}},
                "statuses": {"type": "array", "items": {"$ref": "#/$defs/status"}},
            },
        },
        "message": {
            "type": "object",
            "required": ["from", "id", "timestamp", "type"],
            "properties": {
                "from": _TEXT,
                "id": _TEXT,
                "timestamp": _TIMESTAMP,
                "type": _TEXT,
                "context": {"type": "object", "properties": {"id": _TEXT}},
            },
            "allOf": [
                {
                    "if": {"required": ["type"], "properties": {"type": {"const": "text"}}},
                    "then": {
                        "required": ["text"],
                        "properties": {
                            "text": {
                                "type": "object",
                                "required": ["body"],
                                "properties": {"body": _TEXT},
                            }
                        },
                    },
                },
                {
                    "if": {"required": ["type"], "properties": {"type": {"const": "interactive"}}},
                    "then": {
                        "required": ["interactive"],
                        "properties": {
                            "interactive": {
                                "type": "object",
                                "required": ["type"],
                                "properties": {
                                    "type": _TEXT,
                                    "list_reply": {
                                        **_REPLY,
                                        "properties": {
                                            "id": _TEXT,
                                            "title": _TEXT,
                                            "description": _TEXT,
                                        },
                                    },
                                    "button_reply": _REPLY,
                                },
                            }
                        },
                    },
                },
                {
                    "if": {"required": ["type"], "properties": {"type": {"const": "button"}}},
                    "then": {
                        "required": ["button"],
                        "properties": {
                            "button": {
                                "type": "object",
                                "required": ["text"],
                                "properties": {"text": _TEXT, "payload": _TEXT},
                            }
                        },
                    },
                },
            ],
        },
        "status": {
            "type": "object",
            "required": ["id", "status", "timestamp", "recipient_id"],
            "properties": {
                "id": _TEXT,
                "status": _TEXT,
                "timestamp": _TIMESTAMP,
                "recipient_id": _TEXT,
                "biz_opaque_callback_data": _TEXT,
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code"],
                        "properties": {
                            "code": {"type": "integer"},
                            "title": _TEXT,
                            "message": _TEXT,
                            "error_data": {
                                "type": "object",
                                "properties": {"details": _TEXT},
                            },
                        },
                    },
                },
            },
        },
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> list[WebhookEvent]:
    """The events of one webhook POST, in payload order.

    ``body`` is the raw request body (bytes/str, UTF-8 JSON) or the decoded
    object. Raises ``WebhookPayloadError`` when it is not JSON or not Meta's
    shape (the message names the first offending JSON path).
    """
    data = _decode(body) if isinstance(body, bytes | str) else body
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise WebhookPayloadError(f"webhook body at {where}: {error.message}")
    events: list[WebhookEvent] = []
    for entry in data["entry"]:
        for change in entry["changes"]:
            if change["field"] == "messages":
                events.extend(_value_events(change["value"]))
    return events


def _decode(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"webhook body is not JSON: {exc}") from None


def _value_events(value: Mapping[str, Any]) -> list[WebhookEvent]:
    phone_number_id = value["metadata"]["phone_number_id"]
    names = {
        contact["wa_id"]: contact.get("profile", {}).get("name")
        for contact in value.get("contacts", ())
    }
    events: list[WebhookEvent] = []
    for message in value.get("messages", ()):
        events.append(_message(message, phone_number_id, names.get(message["from"])))
    for status in value.get("statuses", ()):
        events.append(_status(status, phone_number_id))
    return events


def _message(
    message: Mapping[str, Any], phone_number_id: str, contact_name: str | None
) -> WebhookEvent:
    common: dict[str, Any] = {
        "message_id": message["id"],
        "sender": message["from"],
        "timestamp": _time(message["timestamp"]),
        "phone_number_id": phone_number_id,
        "contact_name": contact_name,
        "context_id": message.get("context", {}).get("id"),
    }
    kind = message["type"]
    if kind == "text":
        return TextMessage(body=message["text"]["body"], **common)
    if kind == "button":
        button = message["button"]
        return TemplateButtonReply(text=button["text"], payload=button.get("payload"), **common)
    if kind == "interactive":
        interactive = message["interactive"]
        reply_kind = interactive["type"]
        reply = interactive.get(reply_kind)
        if reply_kind in ("list_reply", "button_reply"):
            if reply is None:
                raise WebhookPayloadError(f"webhook message {message['id']}: no {reply_kind}")
            return InteractiveReply(
                reply_kind=reply_kind,
                reply_id=reply["id"],
                title=reply["title"],
                description=reply.get("description"),
                **common,
            )
        return UnsupportedMessage(kind="unknown", raw_type=f"interactive/{reply_kind}", **common)
    return UnsupportedMessage(
        kind=kind if kind in UNSUPPORTED_KINDS else "unknown", raw_type=kind, **common
    )


def _status(status: Mapping[str, Any], phone_number_id: str) -> StatusUpdate:
    errors = tuple(
        StatusError(
            code=error["code"],
            title=error.get("title", ""),
            message=error.get("message"),
            details=error.get("error_data", {}).get("details"),
        )
        for error in status.get("errors", ())
    )
    return StatusUpdate(
        message_id=status["id"],
        recipient=status["recipient_id"],
        status=status["status"],
        timestamp=_time(status["timestamp"]),
        phone_number_id=phone_number_id,
        errors=errors,
        callback_data=status.get("biz_opaque_callback_data"),
    )


def _time(raw: str | int) -> datetime:
    return datetime.fromtimestamp(int(raw), tz=UTC)
