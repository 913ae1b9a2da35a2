"""Outbound message builders: the JSON body of ``POST /{version}/{phone_number_id}/messages``.

Each builder checks WhatsApp's limits (``ivr.whatsapp.limits``) and raises
``WhatsAppLimitError`` (a ``ValueError``) rather than truncate; a bad
recipient raises ``ValueError``. Shapes follow Meta's Cloud API reference
("Messages": text, interactive ``list`` / ``button``, template).

``callback_data`` sets Meta's ``biz_opaque_callback_data``: an opaque string
(at most 512 characters) that Meta echoes in the status webhooks of that
message, so a status can be matched to our outbox row without a lookup by
wamid.

>>> text_message("573001234567", "Hola")["text"]
{'preview_url': False, 'body': 'Hola'}
>>> m = buttons_message("573001234567", "¿Confirma?", [ReplyButton("si", "Sí"), ReplyButton("no", "No")])
>>> [b["reply"]["id"] for b in m["interactive"]["action"]["buttons"]]
['si', 'no']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.whatsapp import limits
from ivr.whatsapp.limits import check_count, check_text, check_unique

OutboundMessage = dict[str, Any]

# A wa_id: the E.164 number without "+" as Meta sends it (a leading "+" is accepted).
_RECIPIENT = re.compile(r"\+?[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class ReplyButton:
    """One reply button: ``id`` comes back in ``button_reply.id``; ``title`` ≤ 20 chars."""

    id: str
    title: str


@dataclass(frozen=True)
class ListRow:
    """One list row: ``id`` comes back in ``list_reply.id``; title ≤ 24, description ≤ 72."""

    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True)
class ListSection:
    """A titled group of rows; the title is required when a list has several sections."""

    rows: Sequence[ListRow]
    title: str | None = None


def text_message(
    to: str, body: str, *, preview_url: bool = False, callback_data: str | None = None
) -> OutboundMessage:
    """A text message; ``body`` 1..4096 characters."""
    check_text("text body", body, limits.TEXT_BODY_MAX)
    return _envelope(to, "text", {"preview_url": preview_url, "body": body}, callback_data)


def buttons_message(
    to: str,
    body: str,
    buttons: Sequence[ReplyButton],
    *,
    header: str | None = None,
    footer: str | None = None,
    callback_data: str | None = None,
) -> OutboundMessage:
    """An interactive message with 1..3 reply buttons (unique ids and titles)."""
    check_count("reply buttons", buttons, limits.BUTTONS_MAX)
    for button in buttons:
        check_text("button id", button.id, limits.BUTTON_ID_MAX)
        check_text("button title", button.title, limits.BUTTON_TITLE_MAX)
    check_unique("button id", [b.id for b in buttons])
    check_unique("button title", [b.title for b in buttons])
    action = {
        "buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in buttons]
    }
    return _envelope(
        to, "interactive", _interactive("button", body, action, header, footer), callback_data
    )


def list_message(
    to: str,
    body: str,
    button: str,
    sections: Sequence[ListSection],
    *,
    header: str | None = None,
    footer: str | None = None,
    callback_data: str | None = None,
) -> OutboundMessage:
    """An interactive list: ``button`` opens it; 1..10 rows over 1..10 sections.

    Row ids must be unique over the whole list; with more than one section,
    every section needs a title (≤ 24 characters).
    """
    check_text("list button", button, limits.LIST_BUTTON_MAX)
    check_count("list sections", sections, limits.LIST_SECTIONS_MAX)
    rows = [row for section in sections for row in section.rows]
    check_count("list rows", rows, limits.LIST_ROWS_MAX)
    for section in sections:
        check_count("rows of a list section", section.rows, limits.LIST_ROWS_MAX)
        if section.title is not None or len(sections) > 1:
            check_text("section title", section.title or "", limits.SECTION_TITLE_MAX)
    for row in rows:
        check_text("row id", row.id, limits.ROW_ID_MAX)
        check_text("row title", row.title, limits.ROW_TITLE_MAX)
        if row.description is not None:
            check_text("row description", row.description, limits.ROW_DESCRIPTION_MAX)
    check_unique("row id", [row.id for row in rows])
    action = {"button": button, "sections": [_section(s) for s in sections]}
    return _envelope(
        to, "interactive", _interactive("list", body, action, header, footer), callback_data
    )


def template_message(
    to: str,
    name: str,
    language: str,
    *,
    components: Sequence[dict[str, Any]] = (),
    callback_data: str | None = None,
) -> OutboundMessage:
    """A message from an approved template (the only kind allowed outside the 24-hour window).

    ``language`` is the template's language code as approved (``"es"``, ``"es_CO"``);
    ``components`` are passed as given (header/body parameters, Meta's format).
    """
    check_text("template name", name, limits.TEMPLATE_NAME_MAX)
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
        raise ValueError(f"template language {language!r} is not a code like 'es' or 'es_CO'")
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = list(components)
    return _envelope(to, "template", template, callback_data)


def check_message(payload: Mapping[str, Any]) -> None:
    """Refuse a message body Meta would refuse, by rebuilding it with the builders above.

    For bodies not built here (the simulator checks what the product sends).
    Raises ``WhatsAppLimitError`` past a limit, ``ValueError`` for a wrong
    recipient, product or type, ``KeyError`` / ``TypeError`` for a missing
    or mistyped part.
    """
    if payload.get("messaging_product") != "whatsapp":
        raise ValueError("messaging_product must be 'whatsapp'")
    to, kind = payload["to"], payload["type"]
    if kind == "text":
        text_message(to, payload["text"]["body"])
    elif kind == "template":
        template_message(to, payload["template"]["name"], payload["template"]["language"]["code"])
    elif kind == "interactive":
        _check_interactive(to, payload["interactive"])
    else:
        raise ValueError(f"message type {kind!r} is not one the product sends")


def _check_interactive(to: str, interactive: Mapping[str, Any]) -> None:
    body = interactive["body"]["text"]
    header = interactive.get("header", {}).get("text")
    footer = interactive.get("footer", {}).get("text")
    action = interactive["action"]
    if interactive["type"] == "button":
        buttons = [ReplyButton(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
        buttons_message(to, body, buttons, header=header, footer=footer)
    elif interactive["type"] == "list":
        sections = [
            ListSection(
                title=s.get("title"),
                rows=[ListRow(r["id"], r["title"], r.get("description")) for r in s["rows"]],
            )
            for s in action["sections"]
        ]
        list_message(to, body, action["button"], sections, header=header, footer=footer)
    else:
        raise ValueError(f"interactive type {interactive['type']!r} is not list or button")


def _envelope(
    to: str, kind: str, content: dict[str, Any], callback_data: str | None
) -> OutboundMessage:
    if not _RECIPIENT.fullmatch(to):
        raise ValueError(f"recipient {to!r} is not an E.164 number (digits, country code first)")
    message: OutboundMessage = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.removeprefix("+"),
        "type": kind,
        kind: content,
    }
    if callback_data is not None:
        check_text("callback data", callback_data, limits.CALLBACK_DATA_MAX)
        message["biz_opaque_callback_data"] = callback_data
    return message


def _interactive(
    kind: str, body: str, action: dict[str, Any], header: str | None, footer: str | None
) -> dict[str, Any]:
    check_text("interactive body", body, limits.INTERACTIVE_BODY_MAX)
    interactive: dict[str, Any] = {"type": kind}
    if header is not None:
        check_text("header", header, limits.HEADER_TEXT_MAX)
        interactive["header"] = {"type": "text", "text": header}
    interactive["body"] = {"text": body}
    if footer is not None:
        check_text("footer", footer, limits.FOOTER_TEXT_MAX)
        interactive["footer"] = {"text": footer}
    interactive["action"] = action
    return interactive


def _section(section: ListSection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if section.title is not None:
        out["title"] = section.title
    out["rows"] = [
        {"id": row.id, "title": row.title}
        | ({"description": row.description} if row.description is not None else {})
        for row in section.rows
    ]
    return out
