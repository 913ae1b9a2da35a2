"""Meta's webhook payloads (shapes from the Cloud API "messages webhook" reference) parsed."""

from __future__ import annotations

import copy
import doctest
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.whatsapp import events as events_module
from ivr.whatsapp.events import (
    InteractiveReply,
    StatusError,
    StatusUpdate,
    TemplateButtonReply,
    TextMessage,
    UnsupportedMessage,
    WebhookPayloadError,
    parse_webhook,
)

WA_ID = "573001234567"
PHONE_ID = "106540352242922"
WHEN = datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)


def value(**parts: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        **parts,
    }


def payload(*values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "102290129340398", "changes": [{"value": v, "field": field} for v in values]}
        ],
    }


def inbound(kind: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    message = {"from": WA_ID, "id": "wamid.HBgM", "timestamp": "1749416383", "type": kind}
    return payload(
        value(
            contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": WA_ID}],
            messages=[message | content | extra],
        )
    )


COMMON: dict[str, Any] = {
    "message_id": "wamid.HBgM",
    "sender": WA_ID,
    "timestamp": WHEN,
    "phone_number_id": PHONE_ID,
    "contact_name": "Sheena Nelson",
}
CONTEXT = {"context": {"from": "15550783881", "id": "wamid.OURS"}}

KINDS: list[tuple[str, dict[str, Any], object]] = [
    (
        "text",
        inbound("text", {"text": {"body": "Quiero una cita"}}),
        TextMessage(body="Quiero una cita", **COMMON),
    ),
    (
        "list_reply",
        inbound(
            "interactive",
            {
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {
                        "id": "slot-2",
                        "title": "Martes 9:00",
                        "description": "Sede norte",
                    },
                }
            },
            **CONTEXT,
        ),
        InteractiveReply(
            reply_kind="list_reply",
            reply_id="slot-2",
            title="Martes 9:00",
            description="Sede norte",
            context_id="wamid.OURS",
            **COMMON,
        ),
    ),
    (
        "button_reply",
        inbound(
            "interactive",
            {"interactive": {"type": "button_reply", "button_reply": {"id": "si", "title": "Sí"}}},
            **CONTEXT,
        ),
        InteractiveReply(
            reply_kind="button_reply", reply_id="si", title="Sí", context_id="wamid.OURS", **COMMON
        ),
    ),
    (
        "template quick reply",
        inbound("button", {"button": {"payload": "CONFIRMAR", "text": "Confirmar"}}, **CONTEXT),
        TemplateButtonReply(
            text="Confirmar", payload="CONFIRMAR", context_id="wamid.OURS", **COMMON
        ),
    ),
    *[
        (
            kind,
            inbound(kind, {kind: content}),
            UnsupportedMessage(kind=kind, raw_type=kind, **COMMON),
        )
        for kind, content in [
            ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "1", "voice": True}),
            ("image", {"caption": "orden", "mime_type": "image/jpeg", "sha256": "x", "id": "2"}),
            ("sticker", {"mime_type": "image/webp", "id": "3", "animated": False}),
            ("video", {"mime_type": "video/mp4", "id": "4"}),
            ("document", {"filename": "orden.pdf", "mime_type": "application/pdf", "id": "5"}),
            ("location", {"latitude": 4.6, "longitude": -74.08, "name": "Sede"}),
            ("reaction", {"message_id": "wamid.OURS", "emoji": "👍"}),
        ]
    ],
    (
        "contacts",
        inbound("contacts", {"contacts": [{"name": {"formatted_name": "Ana"}, "phones": []}]}),
        UnsupportedMessage(kind="contacts", raw_type="contacts", **COMMON),
    ),
    (
        "unsupported (Meta's own kind)",
        inbound(
            "unsupported",
            {"errors": [{"code": 131051, "title": "Message type unknown", "message": "x"}]},
        ),
        UnsupportedMessage(kind="unknown", raw_type="unsupported", **COMMON),
    ),
    (
        "a kind added later",
        inbound("hologram", {"hologram": {"id": "6"}}),
        UnsupportedMessage(kind="unknown", raw_type="hologram", **COMMON),
    ),
    (
        "a flow's reply (interactive nfm_reply)",
        inbound(
            "interactive",
            {"interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}},
        ),
        UnsupportedMessage(kind="unknown", raw_type="interactive/nfm_reply", **COMMON),
    ),
]


@pytest.mark.parametrize(("body", "expected"), [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_each_message_kind_becomes_its_event(body: dict[str, Any], expected: object) -> None:
    assert parse_webhook(body) == [expected]


def status(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "wamid.OURS",
        "status": kind,
        "timestamp": "1749416383",
        "recipient_id": WA_ID,
        "conversation": {"id": "c1", "origin": {"type": "service"}},
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
    } | extra


@pytest.mark.parametrize("kind", ["sent", "delivered", "read"])
def test_statuses_carry_message_id_recipient_and_time(kind: str) -> None:
    [event] = parse_webhook(
        payload(value(statuses=[status(kind, biz_opaque_callback_data="c:7:0")]))
    )
    assert event == StatusUpdate(
        message_id="wamid.OURS",
        recipient=WA_ID,
        status=kind,
        timestamp=WHEN,
        phone_number_id=PHONE_ID,
        callback_data="c:7:0",
    )


def test_a_failed_status_carries_metas_errors() -> None:
    failed = status(
        "failed",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "More than 24 hours have passed"},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            },
            {"code": 131026, "title": "Message undeliverable"},
        ],
    )
    [event] = parse_webhook(payload(value(statuses=[failed])))
    assert isinstance(event, StatusUpdate) and event.status == "failed"
    assert event.errors == (
        StatusError(
            131047,
            "Re-engagement message",
            "Re-engagement message",
            "More than 24 hours have passed",
        ),
        StatusError(131026, "Message undeliverable"),
    )


def test_several_entries_and_changes_keep_payload_order() -> None:
    first = inbound("text", {"text": {"body": "uno"}})
    second = inbound("text", {"text": {"body": "dos"}}, id="wamid.2")
    body = payload(
        first["entry"][0]["changes"][0]["value"],
        value(statuses=[status("read")]),
    )
    body["entry"].append(second["entry"][0])
    body["entry"].append(payload(value(), field="message_template_status_update")["entry"][0])
    got = parse_webhook(body)
    assert [type(e).__name__ for e in got] == ["TextMessage", "StatusUpdate", "TextMessage"]
    assert [getattr(e, "body", None) for e in got] == ["uno", None, "dos"]


def test_other_fields_and_values_without_messages_give_no_events() -> None:
    template_update = {"event": "APPROVED", "message_template_name": "recordatorio"}
    assert parse_webhook(payload(template_update, field="message_template_status_update")) == []
    assert parse_webhook(payload(value())) == []
    assert parse_webhook({"object": "whatsapp_business_account", "entry": []}) == []


def test_fields_meta_adds_are_tolerated_everywhere() -> None:
    body = inbound("text", {"text": {"body": "hola", "new": 1}}, brand_new={"x": 1})
    body["brand_new_top"] = True
    body["entry"][0]["time"] = 1749416383
    body["entry"][0]["changes"][0]["value"]["metadata"]["extra"] = "y"
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "CO.123"
    [event] = parse_webhook(body)
    assert isinstance(event, TextMessage) and event.body == "hola"


def test_integer_timestamps_and_a_contact_without_profile() -> None:
    body = inbound("text", {"text": {"body": "hola"}}, timestamp=1749416383)
    del body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]
    [event] = parse_webhook(body)
    assert isinstance(event, TextMessage)
    assert (event.timestamp, event.contact_name) == (WHEN, None)


def broken(path: list[str | int], new: object = None, *, delete: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(KINDS[0][1])
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return body


MESSAGE: list[str | int] = ["entry", 0, "changes", 0, "value", "messages", 0]
MALFORMED = [
    ("entry missing", {"object": "whatsapp_business_account"}, "entry"),
    ("entry not a list", {"entry": {}}, "entry"),
    ("changes missing", broken(["entry", 0, "changes"], delete=True), "changes"),
    ("value missing", broken(["entry", 0, "changes", 0, "value"], delete=True), "value"),
    (
        "not whatsapp",
        broken(["entry", 0, "changes", 0, "value", "messaging_product"], "x"),
        "messaging_product",
    ),
    (
        "no metadata",
        broken(["entry", 0, "changes", 0, "value", "metadata"], delete=True),
        "metadata",
    ),
    ("sender missing", broken([*MESSAGE, "from"], delete=True), "from"),
    ("message id missing", broken([*MESSAGE, "id"], delete=True), "id"),
    ("type missing", broken([*MESSAGE, "type"], delete=True), "type"),
    ("timestamp not a number", broken([*MESSAGE, "timestamp"], "ayer"), "timestamp"),
    ("text without body", broken([*MESSAGE, "text"], {}), "body"),
    ("text body not text", broken([*MESSAGE, "text"], {"body": 5}), "body"),
    (
        "interactive without reply id",
        broken(
            [*MESSAGE],
            {
                "from": WA_ID,
                "id": "w",
                "timestamp": "1",
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {"title": "t"}},
            },
        ),
        "id",
    ),
    (
        "interactive without its reply",
        broken(
            [*MESSAGE],
            {
                "from": WA_ID,
                "id": "w",
                "timestamp": "1",
                "type": "interactive",
                "interactive": {"type": "button_reply"},
            },
        ),
        "button_reply",
    ),
    (
        "template button without text",
        broken(
            [*MESSAGE],
            {
                "from": WA_ID,
                "id": "w",
                "timestamp": "1",
                "type": "button",
                "button": {"payload": "p"},
            },
        ),
        "text",
    ),
    (
        "status without recipient",
        payload(value(statuses=[{"id": "w", "status": "read", "timestamp": "1"}])),
        "recipient_id",
    ),
    (
        "status error code not a number",
        payload(value(statuses=[status("failed", errors=[{"code": "x"}])])),
        "code",
    ),
]


@pytest.mark.parametrize(
    ("body", "names"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_bodies_are_refused_naming_what_is_wrong(
    body: dict[str, Any], names: str
) -> None:
    with pytest.raises(WebhookPayloadError, match="webhook") as raised:
        parse_webhook(body)
    assert names in str(raised.value)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", '{"entry": [}', b"null", b"42"])
def test_bodies_that_are_not_a_json_object_are_refused(raw: bytes | str) -> None:
    with pytest.raises(WebhookPayloadError, match="webhook body"):
        parse_webhook(raw)


def test_the_module_examples_run() -> None:
    result = doctest.testmod(events_module)
    assert result.attempted >= 1 and result.failed == 0
