"""WhatsApp Cloud API length and count limits, and the checker that enforces them.

The numbers are Meta's (Cloud API reference, "Interactive object" and "Text
object" of the messages endpoint; the same numbers pywa and Chatwoot check).
Meta answers a message past a limit with error 131009 ("Parameter value is
not valid"), so we refuse it before sending. The checker RAISES
``WhatsAppLimitError``; nothing here truncates: a text that does not fit is a
defect of the flow or prompt that produced it, and the flow loader calls these
same checks so it is found at load time, naming file and line.

Lengths are counted in Unicode code points (``len(str)``), as Meta documents
them ("characters").

>>> check_text("button title", "Agendar cita", BUTTON_TITLE_MAX)
>>> check_text("button title", "Agendar una cita médica", BUTTON_TITLE_MAX)
Traceback (most recent call last):
...
ivr.whatsapp.limits.WhatsAppLimitError: button title has 23 characters, WhatsApp allows at most 20: 'Agendar una cita médica'
"""

from __future__ import annotations

from collections.abc import Sized

TEXT_BODY_MAX = 4096
"""``text.body`` of a text message."""
INTERACTIVE_BODY_MAX = 1024
"""``interactive.body.text`` (list and reply-button messages)."""
HEADER_TEXT_MAX = 60
"""``interactive.header.text`` (type ``text``)."""
FOOTER_TEXT_MAX = 60
"""``interactive.footer.text``."""
BUTTONS_MAX = 3
"""Reply buttons in one ``interactive`` of type ``button``."""
BUTTON_TITLE_MAX = 20
"""``reply.title`` of a reply button."""
BUTTON_ID_MAX = 256
"""``reply.id`` of a reply button."""
LIST_BUTTON_MAX = 20
"""``action.button``: the label that opens a list."""
LIST_ROWS_MAX = 10
"""Rows in one list message, counted over all its sections."""
LIST_SECTIONS_MAX = 10
"""Sections in one list message."""
SECTION_TITLE_MAX = 24
"""``sections[].title``; required when a list has more than one section."""
ROW_TITLE_MAX = 24
"""``rows[].title``."""
ROW_DESCRIPTION_MAX = 72
"""``rows[].description``."""
ROW_ID_MAX = 200
"""``rows[].id``."""
TEMPLATE_NAME_MAX = 512
"""An approved template's name."""
CALLBACK_DATA_MAX = 512
"""``biz_opaque_callback_data``: echoed back in the message's status webhooks."""


class WhatsAppLimitError(ValueError):
    """A text or a count exceeds one of WhatsApp's limits (or is empty).

    ``field`` names what was checked (``"row title"``), ``limit`` is Meta's
    number and ``actual`` the length or count found (0 for an empty text).
    """

    def __init__(self, field: str, actual: int, limit: int, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.actual = actual
        self.limit = limit


def check_text(field: str, value: str, limit: int) -> None:
    """Raise ``WhatsAppLimitError`` unless ``value`` has 1..``limit`` characters.

    Blank text is refused as well: Meta rejects empty titles and bodies.
    """
    if not value.strip():
        raise WhatsAppLimitError(field, 0, limit, f"{field} is empty")
    if len(value) > limit:
        raise WhatsAppLimitError(
            field,
            len(value),
            limit,
            f"{field} has {len(value)} characters, WhatsApp allows at most {limit}: {value!r}",
        )


def check_count(field: str, items: Sized, limit: int) -> None:
    """Raise ``WhatsAppLimitError`` unless ``items`` holds 1..``limit`` entries."""
    count = len(items)
    if count == 0:
        raise WhatsAppLimitError(field, 0, limit, f"{field}: none given, at least 1 needed")
    if count > limit:
        raise WhatsAppLimitError(
            field, count, limit, f"{field}: {count} given, WhatsApp allows at most {limit}"
        )


def check_unique(field: str, values: list[str]) -> None:
    """Raise ``WhatsAppLimitError`` if ``values`` repeats one (Meta wants unique ids/titles)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise WhatsAppLimitError(
                field, len(values), len(seen), f"{field} {value!r} appears more than once"
            )
        seen.add(value)
