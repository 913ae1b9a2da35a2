"""Menus as WhatsApp messages (``ivr.chat.render``): the form by option count,
Meta's limits at and past each bound, never truncated, and phrases as chat text."""

from __future__ import annotations

import doctest
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.channel import Choice, Phrase
from ivr.chat import render
from ivr.chat.render import (
    Button,
    Buttons,
    ListMenu,
    MessageTooLong,
    RenderError,
    Row,
    Text,
    UnknownPrompt,
    chat_text,
    check_menu,
    menu_problem,
    numbered_text,
    render_menu,
)
from ivr.prompts import DEFAULT_TEXTS, load_prompt_texts

LABEL = "Ver opciones"
KEYS = "1234567890*#"


def menu(n: int, title_len: int = 10, description: str = "") -> list[Choice]:
    """``n`` options with distinct titles of exactly ``title_len`` characters."""
    return [
        Choice(KEYS[i], (f"{KEYS[i]}" + "x" * title_len)[:title_len], description) for i in range(n)
    ]


def test_the_module_examples_run() -> None:
    result = doctest.testmod(render)
    assert result.attempted >= 4 and result.failed == 0


# --- Phrases -> chat text ---------------------------------------------------------

TEXTS = {"hi": "Hola.", "at": "Su cita es a las", "ask": "¿Desea confirmarla?", "empty": "  "}


@pytest.mark.parametrize(
    ("phrases", "expected"),
    [
        ([Phrase("prompt", "hi")], "Hola."),
        ([Phrase("prompt", "at"), Phrase("number", "8")], "Su cita es a las 8"),
        ([Phrase("prompt", "hi"), Phrase("prompt", "ask")], "Hola.\n¿Desea confirmarla?"),
        ([Phrase("digits", "3001234567")], "3001234567"),
        ([Phrase("sound", "beep"), Phrase("prompt", "hi"), Phrase("sound", "x")], "Hola."),
        (
            [Phrase("prompt", "at"), Phrase("spoken", "8:00 a. m.", ("sound:x",))],
            "Su cita es a las 8:00 a. m.",
        ),
        (
            [Phrase("spoken", "Martes 3:"), Phrase("spoken", "con la doctora")],
            "Martes 3:\ncon la doctora",
        ),
        ([Phrase("prompt", "empty"), Phrase("prompt", "hi")], "Hola."),
        ([Phrase("sound", "only")], ""),
        ([], ""),
    ],
)
def test_chat_text_of_each_phrase_kind(phrases: list[Phrase], expected: str) -> None:
    assert chat_text(phrases, TEXTS) == expected


def test_a_prompt_without_chat_text_is_named() -> None:
    with pytest.raises(UnknownPrompt, match="'nope'"):
        chat_text([Phrase("prompt", "hi"), Phrase("prompt", "nope")], TEXTS)


# --- the form by option count --------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_up_to_three_short_titles_are_reply_buttons_with_the_keys_as_ids(n: int) -> None:
    choices = menu(n, title_len=20)
    message = render_menu("¿Qué desea hacer?", choices, list_button=LABEL)
    assert message == Buttons("¿Qué desea hacer?", tuple(Button(c.key, c.title) for c in choices))
    assert menu_problem("¿Qué desea hacer?", choices, list_button=LABEL) is None


@pytest.mark.parametrize(
    ("choices", "why"),
    [
        (menu(3, title_len=21), "a title one past the button limit"),
        (menu(3, title_len=24), "a title at the row limit"),
        (menu(2, description="Primera vez"), "a description, which a button cannot show"),
        (menu(4, title_len=5), "four options"),
        (menu(10, title_len=24), "ten options"),
    ],
)
def test_what_buttons_cannot_show_and_a_list_can_is_a_list(choices: list[Choice], why: str) -> None:
    message = render_menu("Elija una opción.", choices, list_button=LABEL)
    assert message == ListMenu(
        "Elija una opción.",
        LABEL,
        tuple(Row(c.key, c.title, c.description) for c in choices),
    ), why
    assert menu_problem("Elija una opción.", choices, list_button=LABEL) is None, why


@pytest.mark.parametrize("n", [11, 12])
def test_more_than_ten_options_are_numbered_text(n: int) -> None:
    choices = [Choice(KEYS[i], f"Servicio {i}") for i in range(n)]
    message = render_menu("Elija:", choices, list_button=LABEL)
    lines = "\n".join(f"{c.key}. {c.title}" for c in choices)
    assert message == Text(f"Elija:\n\n{lines}")
    assert menu_problem("Elija:", choices) is None


def test_numbered_lines_carry_the_description() -> None:
    choices = [Choice(k, f"Opción {k}", "Con descripción") for k in KEYS]
    assert "1. Opción 1 — Con descripción\n2. Opción 2" in numbered_text("Elija:", choices)


def test_a_menu_without_titles_sends_its_prompt_text_which_lists_the_options() -> None:
    choices = [Choice("1", ""), Choice("2", "")]
    body = "Para pedir una cita, escriba 1. Para sus citas, escriba 2."
    assert render_menu(body, choices, list_button=LABEL) == Text(body)
    assert menu_problem(body, choices) is None
    assert menu_problem("", choices) is not None
    with pytest.raises(RenderError):
        render_menu("", choices, list_button=LABEL)


def test_an_untitled_option_at_run_time_is_sent_as_numbered_text_not_an_empty_row() -> None:
    choices = [Choice("1", "Pedir cita"), Choice("2", "Mis citas"), Choice("3", " ")]
    assert render_menu("Elija:", choices, list_button=LABEL) == Text(
        numbered_text("Elija:", choices)
    )
    assert menu_problem("Elija:", choices) == (
        "option 3 has no chat title while options 1, 2 have one; give every option a title or none"
    )


def test_header_and_footer_go_with_the_message() -> None:
    choices = menu(2)
    assert render_menu("B", choices, list_button=LABEL, header="H", footer="F") == Buttons(
        "B", tuple(Button(c.key, c.title) for c in choices), "H", "F"
    )
    text = render_menu("B", menu(11), list_button=LABEL, header="H", footer="F")
    assert isinstance(text, Text)
    assert text.body.startswith("H\n\nB\n\n1. ") and text.body.endswith("\n\nF")


# --- the limits, at and past each bound -----------------------------------------------


ELEVEN = [Choice(KEYS[i], chr(ord("a") + i) * 2) for i in range(11)]


@pytest.mark.parametrize(
    ("body", "choices", "kwargs", "problem"),
    [
        ("b" * 1024, menu(2), {}, None),
        (
            "b" * 1025,
            menu(2),
            {},
            "the menu prompt (body) has 1025 characters; WhatsApp holds 1024",
        ),
        ("b" * 1025, menu(5), {}, "the menu prompt (body) has 1025 characters"),
        ("b", menu(5, title_len=24), {}, None),
        (
            "b",
            menu(5, title_len=25),
            {},
            "option 1's title has 25 characters; a WhatsApp list row title holds 24",
        ),
        ("b", menu(3, title_len=25), {}, "option 1's title has 25 characters"),
        ("b", menu(10, description="d" * 72), {}, None),
        ("b", menu(10, description="d" * 73), {}, "option 1's description has 73 characters"),
        ("b", menu(4), {"list_button": "l" * 20}, None),
        ("b", menu(4), {"list_button": "l" * 21}, "the list button label (prompt chat_list_button) has 21 characters"),
        ("b", menu(4), {"list_button": " "}, "the list button label (prompt chat_list_button) is empty"),
        ("b", menu(2), {"list_button": "l" * 21}, None),  # buttons need no label
        ("b", menu(2), {"header": "h" * 60, "footer": "f" * 60}, None),
        ("b", menu(2), {"header": "h" * 61}, "the header has 61 characters"),
        ("b", menu(5), {"footer": "f" * 61}, "the footer has 61 characters"),
        ("  ", menu(2), {}, "needs a body text"),
        # 11 lines "k. aa" (5 characters) and 10 line breaks, after the body and a blank line
        ("b" * (4096 - 2 - 65), ELEVEN, {}, None),
        (
            "b" * (4096 - 1 - 65),
            ELEVEN,
            {},
            "numbered text of 11 options has 4097 characters; WhatsApp holds 4096",
        ),
        ("b" * 4096, [Choice("1", ""), Choice("2", "")], {}, None),
        ("b" * 4097, [Choice("1", ""), Choice("2", "")], {}, "the message has 4097 characters"),
        (
            "b",
            [Choice("1", "Sí"), Choice("2", "")],
            {},
            "option 2 has no chat title while option 1 has one",
        ),
        (
            "b",
            [Choice("1", "Medicina General"), Choice("2", "medicina general")],
            {},
            "options 1 and 2 have the same chat title",
        ),
        (
            "b",
            [Choice("1", "Odontología"), Choice("2", "ODONTOLOGIA")],
            {},
            "options 1 and 2 have the same chat title",
        ),
    ],
)
def test_menu_problem_at_and_past_each_limit(
    body: str, choices: list[Choice], kwargs: dict[str, str], problem: str | None
) -> None:
    found = menu_problem(body, choices, **kwargs)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_body_grown_at_run_time_falls_back_to_numbered_text_whole() -> None:
    body = "Tenemos esta cita: " + "martes 3 de diciembre " * 60
    assert len(body) > 1024
    message = render_menu(body, menu(3), list_button=LABEL)
    assert message == Text(numbered_text(body, menu(3)))


def test_nothing_is_truncated_past_4096_it_is_refused() -> None:
    with pytest.raises(MessageTooLong, match="4097 characters"):
        render_menu("b" * 4097, [Choice("1", "")], list_button=LABEL)
    with pytest.raises(MessageTooLong):
        render_menu("b" * 4090, menu(3), list_button=LABEL)


# --- over the range: whatever fits is shown whole, in the form the count calls for ------

choice_lists = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 30), min_size=n, max_size=n),
        st.lists(st.sampled_from([0, 0, 10, 72, 73]), min_size=n, max_size=n),
    )
)


def limits_hold(message: render.Message) -> bool:
    """Meta's limits, written out again from the docs (not from the module)."""
    if isinstance(message, Text):
        return 0 < len(message.body) <= 4096
    if len(message.body) > 1024 or not message.body.strip():
        return False
    if len(message.header) > 60 or len(message.footer) > 60:
        return False
    if isinstance(message, Buttons):
        return 1 <= len(message.buttons) <= 3 and all(
            0 < len(b.title) <= 20 for b in message.buttons
        )
    return (
        0 < len(message.button) <= 20
        and 1 <= len(message.rows) <= 10
        and all(len(r.title) <= 24 and len(r.description) <= 72 for r in message.rows)
    )


@settings(max_examples=300, deadline=None)
@given(shape=choice_lists, body_len=st.sampled_from([1, 100, 1024, 1025, 3000]))
def test_every_menu_renders_whole_within_the_limits_or_is_refused(
    shape: tuple[list[int], list[int]], body_len: int
) -> None:
    title_lens, description_lens = shape
    choices = [
        Choice(KEYS[i], (KEYS[i] + "t" * n)[:n], "d" * d)
        for i, (n, d) in enumerate(zip(title_lens, description_lens, strict=True))
    ]
    body = "b" * body_len
    problem = menu_problem(body, choices, list_button=LABEL)
    try:
        message = render_menu(body, choices, list_button=LABEL)
    except MessageTooLong:
        assert problem is not None
        return
    assert limits_hold(message)
    shown = repr(message)
    assert all(c.title in shown and c.description in shown for c in choices)
    assert body in shown
    expected = {"buttons": Buttons, "list": ListMenu, "numbered_text": Text}[
        render.menu_form(choices)
    ]
    if problem is None:
        assert isinstance(message, expected)  # fits: the form the count calls for
    if isinstance(message, Buttons | ListMenu):
        ids = (
            [b.id for b in message.buttons]
            if isinstance(message, Buttons)
            else [r.id for r in message.rows]
        )
        assert ids == [c.key for c in choices]


# --- the loader's check, on prompt ids ----------------------------------------------------


@dataclass(frozen=True)
class Part:  # the shape of ivr.flow.model.PromptPart
    kind: str
    value: str


@dataclass(frozen=True)
class Option:  # the shape of the flow's MenuOption
    next: str
    title: str | None = None


@dataclass(frozen=True)
class Node:  # the shape of the flow's MenuNode, as far as the check reads it
    prompts: tuple[Part, ...]
    options: dict[str, Option]


@dataclass(frozen=True)
class Prompt:  # the shape of ivr.prompts.PromptText
    text: str
    chat: str | None = None


CATALOGUE = {
    "ask": Prompt("Para pedir una cita, marque 1.", chat="¿Qué desea hacer?"),
    "t_book": Prompt("Pedir una cita"),
    "t_mine": Prompt("Mis citas"),
    "t_long": Prompt("Pedir una cita de medicina general"),
    "chat_list_button": Prompt("Ver opciones"),
    **{f"t_{k}": Prompt(f"Opción {k}") for k in range(1, 5)},
}


@pytest.mark.parametrize(
    ("node", "catalogue", "problem"),
    [
        (
            Node(
                (Part("prompt", "ask"),), {"1": Option("a", "t_book"), "2": Option("b", "t_mine")}
            ),
            {},
            None,
        ),
        (Node((Part("prompt", "ask"),), {"1": Option("a"), "2": Option("b")}), {}, None),
        (
            Node(
                (Part("prompt", "ask"), Part("media", "{slot}"), Part("sound", "beep")),
                {"1": Option("a", "t_book")},
            ),
            {},
            None,
        ),
        (
            Node(
                (Part("prompt", "ask"),), {"1": Option("a", "t_book"), "2": Option("b", "t_book")}
            ),
            {},
            ("options.2.title", "options 1 and 2 have the same chat title"),
        ),
        (
            Node(
                (Part("prompt", "ask"),), {"1": Option("a", "t_book"), "2": Option("b", "t_long")}
            ),
            {},
            (
                "options.2.title",
                "option 2's title has 34 characters; a WhatsApp list row title holds 24",
            ),
        ),
        (
            Node((Part("prompt", "ask"),), {"1": Option("a", "t_book"), "2": Option("b")}),
            {},
            (
                "options.2",
                "option 2 has no chat title while option 1 has one; give every option a title or none",
            ),
        ),
        (
            Node((Part("prompt", "nope"),), {"1": Option("a", "t_book")}),
            {},
            ("prompt", "no prompt 'nope' in the catalogue"),
        ),
        (
            Node((Part("prompt", "ask"),), {"1": Option("a", "t_nope")}),
            {},
            ("options.1.title", "no prompt 't_nope' in the catalogue"),
        ),
        (
            Node((Part("prompt", "ask"),), {str(k): Option("a", f"t_{k}") for k in range(1, 5)}),
            {"chat_list_button": Prompt("Ver todas las opciones")},
            (
                "",
                "the list button label (prompt chat_list_button) has 22 characters; WhatsApp holds 20",
            ),
        ),
        (
            Node(
                (Part("prompt", "ask"), Part("digits", "3001234567")), {"1": Option("a", "t_book")}
            ),
            {"ask": Prompt("x", chat="b" * 1013)},
            None,  # 1013 + a space + 10 digits = 1024
        ),
        (
            Node(
                (Part("prompt", "ask"), Part("digits", "30012345678")), {"1": Option("a", "t_book")}
            ),
            {"ask": Prompt("x", chat="b" * 1013)},
            (
                "prompt",
                "the menu prompt (body) has 1025 characters; WhatsApp holds 1024 in an interactive message",
            ),
        ),
        (
            Node((Part("prompt", "ask"),), {"1": Option("a", "t_book")}),
            {"ask": Prompt("b" * 1025)},  # no chat text: the voice text is what a chat shows
            (
                "prompt",
                "the menu prompt (body) has 1025 characters; WhatsApp holds 1024 in an interactive message",
            ),
        ),
    ],
)
def test_check_menu_reads_a_menu_node_and_says_where_the_problem_lies(
    node: Node, catalogue: dict[str, Prompt], problem: tuple[str, str] | None
) -> None:
    assert check_menu(node, {**CATALOGUE, **catalogue}) == problem


def test_the_catalogue_chat_texts_fit() -> None:
    texts = {p.id: p.text for p in load_prompt_texts(DEFAULT_TEXTS).values()}
    assert 0 < len(texts["chat_list_button"]) <= render.LIST_BUTTON_MAX
    for prompt_id in ("chat_unsupported_media", "chat_not_understood"):
        assert 0 < len(texts[prompt_id]) <= render.TEXT_BODY_MAX


# A sentence prompt after a fragment that ends without punctuation (a site's or a
# doctor's name, a time): the voice runs them together, the chat must not
# ("... en la sede Norte ¿Qué desea hacer con esta cita?" seen in the demo).
@pytest.mark.parametrize(
    ("left", "sentence", "expected"),
    [
        ("Norte", "¿Qué desea hacer con esta cita?", "en la sede Norte.\n¿Qué desea hacer con esta cita?"),
        ("Norte", "Le recomendamos llegar quince minutos antes.", "en la sede Norte.\nLe recomendamos llegar quince minutos antes."),
        ("Norte", "¡Gracias!", "en la sede Norte.\n¡Gracias!"),
        ("Norte.", "Gracias por escribirnos.", "en la sede Norte.\nGracias por escribirnos."),
        ("Norte", "Centro", "en la sede Norte Centro"),  # a name, no sentence: a space
        ("Norte", "con la doctora", "en la sede Norte con la doctora"),
    ],
)
def test_chat_text_closes_a_fragment_before_a_sentence(
    left: str, sentence: str, expected: str
) -> None:
    texts = {"at_site": "en la sede", "site": left, "next": sentence}
    phrases = [Phrase("prompt", "at_site"), Phrase("prompt", "site"), Phrase("prompt", "next")]
    assert chat_text(phrases, texts) == expected


def test_no_capitalised_fragment_of_the_catalogue_reads_as_a_sentence() -> None:
    """The range of the rule above: every prompt of the shipped catalogue that
    starts with a capital but does not end a sentence (names, titles, intros such
    as "Su cita es el") still joins a fragment with a space, never a period."""
    from pathlib import Path

    catalogue = load_prompt_texts(Path(__file__).parents[2] / "prompts" / "prompts.yaml")
    fragments = {
        prompt_id: str(text).strip()
        for prompt_id, text in catalogue.items()
        if str(text).strip()[:1].isupper() and not str(text).strip().endswith((".", "!", "?", "…", ":"))
    }
    assert "site_norte" in fragments  # the kind is present in the catalogue
    for prompt_id, text in fragments.items():
        joined = chat_text(
            [Phrase("prompt", "left"), Phrase("prompt", prompt_id)], {"left": "con", prompt_id: text}
        )
        assert joined == f"con {text}", prompt_id
