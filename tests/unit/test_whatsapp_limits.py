"""WhatsApp's limits: builders accept everything up to each limit and refuse one past it."""

from __future__ import annotations

import copy
import doctest
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.whatsapp import limits, messages
from ivr.whatsapp.limits import WhatsAppLimitError
from ivr.whatsapp.messages import (
    ListRow,
    ListSection,
    ReplyButton,
    buttons_message,
    list_message,
    template_message,
    text_message,
)

TO = "573001234567"


def test_the_limits_are_metas_numbers() -> None:
    assert (limits.TEXT_BODY_MAX, limits.INTERACTIVE_BODY_MAX) == (4096, 1024)
    assert (limits.BUTTONS_MAX, limits.BUTTON_TITLE_MAX) == (3, 20)
    assert (limits.LIST_ROWS_MAX, limits.ROW_TITLE_MAX, limits.ROW_DESCRIPTION_MAX) == (10, 24, 72)
    assert (limits.LIST_BUTTON_MAX, limits.HEADER_TEXT_MAX, limits.FOOTER_TEXT_MAX) == (20, 60, 60)


def rows(count: int) -> list[ListRow]:
    return [ListRow(f"r{i}", f"Opción {i}") for i in range(count)]


def a_list(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "body": "Elija",
        "button": "Ver opciones",
        "sections": [ListSection(rows(3))],
    }
    args |= kw
    return list_message(TO, args.pop("body"), args.pop("button"), args.pop("sections"), **args)


def two_buttons(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "body": "¿Confirma?",
        "buttons": [ReplyButton("si", "Sí"), ReplyButton("no", "No")],
    }
    args |= kw
    return buttons_message(TO, args.pop("body"), args.pop("buttons"), **args)


# (what, limit, build with a text of n characters)
TEXTS: list[tuple[str, int, Callable[[str], object]]] = [
    ("text body", 4096, lambda t: text_message(TO, t)),
    ("interactive body (buttons)", 1024, lambda t: two_buttons(body=t)),
    ("interactive body (list)", 1024, lambda t: a_list(body=t)),
    ("button title", 20, lambda t: two_buttons(buttons=[ReplyButton("a", t)])),
    ("button id", 256, lambda t: two_buttons(buttons=[ReplyButton(t, "A")])),
    ("row title", 24, lambda t: a_list(sections=[ListSection([ListRow("a", t)])])),
    ("row description", 72, lambda t: a_list(sections=[ListSection([ListRow("a", "A", t)])])),
    ("row id", 200, lambda t: a_list(sections=[ListSection([ListRow(t, "A")])])),
    ("section title", 24, lambda t: a_list(sections=[ListSection(rows(1), title=t)])),
    ("list button", 20, lambda t: a_list(button=t)),
    ("header (list)", 60, lambda t: a_list(header=t)),
    ("footer (list)", 60, lambda t: a_list(footer=t)),
    ("header (buttons)", 60, lambda t: two_buttons(header=t)),
    ("footer (buttons)", 60, lambda t: two_buttons(footer=t)),
    ("template name", 512, lambda t: template_message(TO, t, "es_CO")),
    ("callback data", 512, lambda t: text_message(TO, "hola", callback_data=t)),
]


@pytest.mark.parametrize(("limit", "build"), [t[1:] for t in TEXTS], ids=[t[0] for t in TEXTS])
def test_texts_at_the_limit_pass_and_one_past_is_refused(
    limit: int, build: Callable[[str], object]
) -> None:
    build("x" * limit)
    build("ñ" * limit)  # characters, not bytes
    with pytest.raises(WhatsAppLimitError) as raised:
        build("x" * (limit + 1))
    assert (raised.value.limit, raised.value.actual) == (limit, limit + 1)
    assert f"at most {limit}" in str(raised.value)


@pytest.mark.parametrize(("build"), [t[2] for t in TEXTS], ids=[t[0] for t in TEXTS])
@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_blank_texts_are_refused(build: Callable[[str], object], blank: str) -> None:
    with pytest.raises(WhatsAppLimitError, match="empty"):
        build(blank)


@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_any_button_title_is_accepted_exactly_when_it_fits(title: str) -> None:
    build = TEXTS[3][2]
    if len(title) <= 20:
        message = build(title)
        assert isinstance(message, dict)
        assert (
            message["interactive"]["action"]["buttons"][0]["reply"]["title"] == title
        )  # never cut
    else:
        with pytest.raises(WhatsAppLimitError):
            build(title)


@given(st.integers(min_value=0, max_value=15))
def test_rows_one_to_ten_over_any_sections(count: int) -> None:
    half = count // 2
    sections = [
        ListSection(rows(count)[:half], title="A"),
        ListSection(rows(count)[half:], title="B"),
    ]
    sections = [s for s in sections if s.rows]
    if 1 <= count <= 10:
        message = a_list(sections=sections)
        got = [r["id"] for s in message["interactive"]["action"]["sections"] for r in s["rows"]]
        assert got == [r.id for r in rows(count)]
    else:
        with pytest.raises(WhatsAppLimitError, match=r"list (rows|sections)"):
            a_list(sections=sections)


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (10, True), (11, False)])
def test_ten_rows_pass_eleven_are_refused(count: int, ok: bool) -> None:
    if ok:
        a_list(sections=[ListSection(rows(count))])
    else:
        with pytest.raises(WhatsAppLimitError, match="list rows"):
            a_list(sections=[ListSection(rows(count))])


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (3, True), (4, False)])
def test_three_buttons_pass_four_are_refused(count: int, ok: bool) -> None:
    buttons = [ReplyButton(f"b{i}", f"Botón {i}") for i in range(count)]
    if ok:
        assert len(two_buttons(buttons=buttons)["interactive"]["action"]["buttons"]) == count
    else:
        with pytest.raises(WhatsAppLimitError, match="reply buttons"):
            two_buttons(buttons=buttons)


def test_eleven_sections_are_refused_even_with_few_rows() -> None:
    with pytest.raises(WhatsAppLimitError, match="list sections: 11 given"):
        a_list(sections=[ListSection(rows(1), title=f"S{i}") for i in range(11)])


def test_several_sections_each_need_a_title() -> None:
    with pytest.raises(WhatsAppLimitError, match="section title is empty"):
        a_list(sections=[ListSection(rows(1)), ListSection([ListRow("z", "Z")], title="B")])


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (
            lambda: two_buttons(buttons=[ReplyButton("a", "Sí"), ReplyButton("a", "No")]),
            "button id",
        ),
        (
            lambda: two_buttons(buttons=[ReplyButton("a", "Sí"), ReplyButton("b", "Sí")]),
            "button title",
        ),
        (
            lambda: a_list(
                sections=[
                    ListSection([ListRow("a", "A")], "1"),
                    ListSection([ListRow("a", "B")], "2"),
                ]
            ),
            "row id",
        ),
    ],
)
def test_ids_and_button_titles_must_be_unique(build: Callable[[], object], what: str) -> None:
    with pytest.raises(WhatsAppLimitError, match=f"{what} .* more than once"):
        build()


def test_builders_produce_metas_shapes() -> None:
    assert text_message("+" + TO, "Hola", callback_data="c:1:0") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"preview_url": False, "body": "Hola"},
        "biz_opaque_callback_data": "c:1:0",
    }
    listed = list_message(
        TO,
        "Elija una cita",
        "Ver citas",
        [
            ListSection(
                [ListRow("s1", "Lunes 8:00", "Sede norte"), ListRow("s2", "Martes 9:00")], "Citas"
            )
        ],
        header="Citas disponibles",
        footer="Lina",
    )
    assert listed["interactive"] == {
        "type": "list",
        "header": {"type": "text", "text": "Citas disponibles"},
        "body": {"text": "Elija una cita"},
        "footer": {"text": "Lina"},
        "action": {
            "button": "Ver citas",
            "sections": [
                {
                    "title": "Citas",
                    "rows": [
                        {"id": "s1", "title": "Lunes 8:00", "description": "Sede norte"},
                        {"id": "s2", "title": "Martes 9:00"},
                    ],
                }
            ],
        },
    }
    assert two_buttons()["interactive"] == {
        "type": "button",
        "body": {"text": "¿Confirma?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "si", "title": "Sí"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}},
            ]
        },
    }
    template = template_message(TO, "recordatorio_cita", "es_CO", components=[{"type": "body"}])
    assert template["template"] == {
        "name": "recordatorio_cita",
        "language": {"code": "es_CO"},
        "components": [{"type": "body"}],
    }


@pytest.mark.parametrize("to", ["", "abc", "0573001234567", "57300", "+57 300 123 4567", "1" * 16])
def test_recipients_must_be_e164_digits(to: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        text_message(to, "hola")


@pytest.mark.parametrize("language", ["", "spanish", "es-CO", "ES", "es_co"])
def test_template_language_must_be_a_code(language: str) -> None:
    with pytest.raises(ValueError, match="template language"):
        template_message(TO, "recordatorio", language)


def test_the_module_examples_run() -> None:
    for module in (limits, messages):
        result = doctest.testmod(module)
        assert result.attempted >= 2 and result.failed == 0


BUILT = {
    "text": text_message(TO, "x" * 4096),
    "buttons": two_buttons(header="H" * 60, footer="F" * 60),
    "list": a_list(sections=[ListSection(rows(5), "A"), ListSection(rows(10)[5:], "B")]),
    "template": template_message(TO, "recordatorio", "es"),
}


@pytest.mark.parametrize("message", BUILT.values(), ids=BUILT.keys())
def test_check_message_accepts_whatever_the_builders_build(message: dict[str, Any]) -> None:
    messages.check_message(message)


def tampered(kind: str, *path: str | int, value: object) -> dict[str, Any]:
    message = copy.deepcopy(BUILT[kind])
    node: Any = message
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return message


BUTTON = ("interactive", "action", "buttons")
ROW = ("interactive", "action", "sections", 0, "rows", 0)
TAMPERED = [
    ("text too long", tampered("text", "text", "body", value="x" * 4097), WhatsAppLimitError),
    (
        "button title 21",
        tampered("buttons", *BUTTON, 0, "reply", "title", value="x" * 21),
        WhatsAppLimitError,
    ),
    (
        "four buttons",
        tampered(
            "buttons",
            *BUTTON,
            value=[{"type": "reply", "reply": {"id": str(i), "title": str(i)}} for i in range(4)],
        ),
        WhatsAppLimitError,
    ),
    ("row title 25", tampered("list", *ROW, "title", value="x" * 25), WhatsAppLimitError),
    (
        "row description 73",
        tampered("list", *ROW, "description", value="x" * 73),
        WhatsAppLimitError,
    ),
    (
        "list button 21",
        tampered("list", "interactive", "action", "button", value="x" * 21),
        WhatsAppLimitError,
    ),
    (
        "header 61",
        tampered("buttons", "interactive", "header", "text", value="x" * 61),
        WhatsAppLimitError,
    ),
    ("not whatsapp", tampered("text", "messaging_product", value="sms"), ValueError),
    ("unknown type", tampered("text", "type", value="carrier_pigeon"), ValueError),
    ("bad recipient", tampered("text", "to", value="12"), ValueError),
    ("no body", tampered("text", "text", value={}), KeyError),
    (
        "interactive product",
        tampered("buttons", "interactive", "type", value="product"),
        ValueError,
    ),
]


@pytest.mark.parametrize(
    ("message", "error"), [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED]
)
def test_check_message_refuses_what_meta_refuses(
    message: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        messages.check_message(message)
