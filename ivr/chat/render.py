"""The dialogue as chat messages (issue 10 §3): pure functions, no I/O.

``chat_text`` turns the ``Phrase``s a node says into the text a chat shows;
``render_menu`` turns a menu (body text and ``Choice``s) into one message
description (``Text``, ``Buttons`` or ``ListMenu``) that ``ivr.whatsapp`` maps
to Meta's JSON; ``menu_problem`` says, in English for the flow's author, which
WhatsApp limit a menu exceeds, and ``check_menu`` is the flow loader's check
of a menu node (``FlowLoader(checks=[check_menu])``).

The output types are our own small dataclasses rather than Meta's JSON: they
are typed (mypy checks every field the renderer sets, where a JSON dict would
be ``dict[str, Any]``), they compare by value in tests, and the wire format
(``"type": "interactive"``, ``"action": {"sections": ...}``) stays in one place,
``ivr.whatsapp``, which knows Meta's API and nothing of menus.

Meta's limits (WhatsApp Cloud API reference, "Interactive messages" and "Text
messages"; lengths in characters, counted here as code points):

=====================  =====
text message body      4096
interactive body       1024 (required in list and button messages)
header, footer           60
reply buttons             3, title 20
list rows                10 (one section), row title 24, description 72
list button label        20
=====================  =====

Which form a menu takes (the rule ``render_menu`` follows and ``menu_problem``
checks; the number of options decides, so a menu's form never changes because
one title grew by a character):

1. no option has a title (the flow's short form ``{"1": book}``): the prompt's
   own chat text lists the options, sent as ``Text``;
2. at most 3 options, every title fits a button (≤ 20) and none has a
   description (a button cannot show one): ``Buttons``;
3. at most 10 options: ``ListMenu`` (a title of 21-24 characters, or a
   description, turns a 3-option menu into a list: not an error);
4. more than 10 options (keys 0-9, * and # allow 12): numbered ``Text``
   ("1. Medicina general" lines).

A menu is refused at load (``menu_problem``) when the form its option count
calls for cannot show it whole: with at most 10 options, a title over 24 or a
description over 72 characters (numbered text could show it, but a list is
what a person expects for a short menu and silently falling back would hide
the author's mistake), a body over 1024 or empty, a list button label over 20;
with more than 10, a message over 4096. Also refused: some options titled and
others not, and two options with the same title (a person could not tell them
apart, nor could ``ivr.chat.replies`` by title).

Nothing is ever truncated. At run time a body can grow past the load-time
check (a ``spoken`` phrase an action composed, such as a slot read-out):
``render_menu`` then sends numbered ``Text``, which holds 4096, and raises
``MessageTooLong`` only when not even that holds the message.

Reply ids are the choice keys ("1", "0", "*"), so a ``button_reply`` or
``list_reply`` id maps back to its ``Choice`` exactly (``ivr.chat.replies``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ivr.channel import Choice, Phrase, PhraseKind
from ivr.chat.replies import normalize
from ivr.whatsapp.limits import (  # Meta's numbers, kept in one place
    BUTTON_TITLE_MAX,
    BUTTONS_MAX,
    INTERACTIVE_BODY_MAX,
    LIST_BUTTON_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_TITLE_MAX,
    TEXT_BODY_MAX,
)
from ivr.whatsapp.limits import FOOTER_TEXT_MAX as FOOTER_MAX
from ivr.whatsapp.limits import HEADER_TEXT_MAX as HEADER_MAX
from ivr.whatsapp.limits import LIST_ROWS_MAX as ROWS_MAX

# The prompt whose chat text labels the button that opens a list ("Ver opciones").
LIST_BUTTON_PROMPT = "chat_list_button"

Form = Literal["prompt_text", "buttons", "list", "numbered_text"]


class RenderError(ValueError):
    """A message cannot be rendered."""


class UnknownPrompt(RenderError, KeyError):
    """A ``Phrase("prompt", id)`` names an id the texts mapping lacks."""


class MessageTooLong(RenderError):
    """Even the numbered text form exceeds WhatsApp's 4096 characters."""


@dataclass(frozen=True)
class Text:
    """A plain text message (``"type": "text"``): ``body`` ≤ 4096 characters."""

    body: str


@dataclass(frozen=True)
class Button:
    """One reply button: ``id`` the choice key, ``title`` ≤ 20 characters."""

    id: str
    title: str


@dataclass(frozen=True)
class Buttons:
    """An interactive ``button`` message: ``body`` ≤ 1024, 1-3 ``buttons``,
    ``header``/``footer`` ≤ 60 ("" = none)."""

    body: str
    buttons: tuple[Button, ...]
    header: str = ""
    footer: str = ""


@dataclass(frozen=True)
class Row:
    """One list row: ``id`` the choice key, ``title`` ≤ 24, ``description`` ≤ 72 ("" = none)."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class ListMenu:
    """An interactive ``list`` message with one section (no section title: Meta
    requires one only with several sections): ``body`` ≤ 1024, ``button`` the
    label that opens the list (≤ 20), 1-10 ``rows``, ``header``/``footer`` ≤ 60."""

    body: str
    button: str
    rows: tuple[Row, ...]
    header: str = ""
    footer: str = ""


Message = Text | Buttons | ListMenu


# --- Phrases -> chat text ---------------------------------------------------

_SENTENCE_END = (".", "!", "?", ":", "…")


def chat_text(phrases: Sequence[Phrase], texts: Mapping[str, str]) -> str:
    """The chat text of what a node says.

    ``texts`` maps prompt id -> chat text (the prompt's ``chat:`` text, else its
    ``text``). ``prompt`` phrases are looked up there, ``number``/``digits`` are
    written as their numerals, ``spoken`` as its ``value``, ``sound`` is dropped
    (voice only). Parts are joined with a line break after a sentence (the left
    part ends with . ! ? : or …) and a space inside one ("a las" + "8"). A part
    that is a whole sentence (starts with ¿ or ¡, or is several words from a
    capital to . ! ? or …) after a left part that does not end one (a site's name, a time) closes the
    left part with a period first: the voice runs "sede Norte" into "¿Qué
    desea…?", a reader must not see "sede Norte ¿Qué desea…?".

    >>> chat_text([Phrase("prompt", "hi"), Phrase("sound", "beep"),
    ...            Phrase("prompt", "at"), Phrase("number", "8")],
    ...           {"hi": "Hola.", "at": "Su cita es a las"})
    'Hola.\\nSu cita es a las 8'

    Raises ``UnknownPrompt`` for a prompt id missing from ``texts``.
    """
    parts: list[str] = []
    for phrase in phrases:
        part = _phrase_text(phrase, texts).strip()
        if part:
            parts.append(part)
    out = ""
    for part in parts:
        if out:
            if not out.endswith(_SENTENCE_END) and _is_sentence(part):
                out += "."
            out += "\n" if out.endswith(_SENTENCE_END) else " "
        out += part
    return out


def _is_sentence(part: str) -> bool:
    """Whether ``part`` reads as a whole sentence of its own (see ``chat_text``)."""
    if part[0] in "¿¡":
        return True
    # A capital alone is not enough: names ("Norte", "Ana Gómez") start with one too,
    # and a one-word "Norte." may be a name ending the left part's sentence.
    return part[0].isupper() and part.endswith((".", "!", "?", "…")) and " " in part


def _phrase_text(phrase: Phrase, texts: Mapping[str, str]) -> str:
    if phrase.kind == "sound":
        return ""
    if phrase.kind != "prompt":
        return phrase.value  # number, digits, spoken
    try:
        return texts[phrase.value]
    except KeyError:
        raise UnknownPrompt(f"no chat text for prompt {phrase.value!r}") from None


# --- Menus --------------------------------------------------------------------


def menu_form(choices: Sequence[Choice]) -> Form:
    """The form the rule in the module docstring gives ``choices``.

    The form the option count and titles call for, whether or not the texts
    then fit it (``menu_problem`` says when they don't)."""
    if not any(choice.title.strip() for choice in choices):
        return "prompt_text"
    if len(choices) <= BUTTONS_MAX and all(_fits_button(choice) for choice in choices):
        return "buttons"
    if len(choices) <= ROWS_MAX:
        return "list"
    return "numbered_text"


def render_menu(
    body: str,
    choices: Sequence[Choice],
    *,
    list_button: str,
    header: str = "",
    footer: str = "",
) -> Message:
    """The message that offers ``choices`` under ``body`` (the prompt's chat text).

    ``list_button`` labels the button that opens a list (the prompt
    ``chat_list_button``). Follows the module docstring's rule; when the texts
    do not fit the interactive form (a body made long at run time), falls back
    to numbered ``Text`` instead of truncating.

    >>> render_menu("¿Qué desea?", [Choice("1", "Pedir cita"), Choice("2", "Mis citas")],
    ...             list_button="Ver opciones")
    Buttons(body='¿Qué desea?', buttons=(Button(id='1', title='Pedir cita'), Button(id='2', title='Mis citas')), header='', footer='')

    Raises ``MessageTooLong`` when even numbered text exceeds 4096 characters,
    ``RenderError`` when there is nothing to show (no text and no titles).
    """
    form = menu_form(choices)
    if form == "prompt_text":
        return _checked_text(_join(header, body, footer))
    problem = _interactive_problem(form, body, choices, list_button, header, footer)
    if form == "buttons" and problem is None:
        buttons = tuple(Button(choice.key, choice.title) for choice in choices)
        return Buttons(body, buttons, header, footer)
    if form == "list" and problem is None:
        rows = tuple(Row(choice.key, choice.title, choice.description) for choice in choices)
        return ListMenu(body, list_button, rows, header, footer)
    return _checked_text(numbered_text(body, choices, header=header, footer=footer))


def numbered_text(
    body: str, choices: Sequence[Choice], *, header: str = "", footer: str = ""
) -> str:
    """The numbered text form: header, body, one "key. title" line per choice
    (" — description" when it has one), footer, separated by blank lines.

    >>> print(numbered_text("Elija:", [Choice("1", "Medicina general"), Choice("2", "Odontología")]))
    Elija:
    <BLANKLINE>
    1. Medicina general
    2. Odontología
    """
    lines = "\n".join(_numbered_line(choice) for choice in choices)
    return _join(header, body, lines, footer)


def menu_problem(
    prompt_text: str,
    choices: Sequence[Choice],
    *,
    list_button: str | None = None,
    header: str = "",
    footer: str = "",
) -> str | None:
    """What keeps this menu from being shown whole on WhatsApp, in English for
    the flow's author, or None when it fits (the rule is the module docstring's).

    ``prompt_text`` is the menu prompt's chat text, ``choices`` carry the chat
    titles. ``list_button`` (the label's text) is checked when given.

    >>> menu_problem("¿Qué servicio?", [Choice(str(k), f"Medicina general, opción {k}") for k in range(1, 5)])
    "option 1's title has 26 characters; a WhatsApp list row title holds 24"
    """
    problem = _menu_problem(prompt_text, choices, list_button, header, footer)
    return None if problem is None else problem[1]


# The problem, and where in the menu node it lies ("prompt", "options.2.title",
# "" for the menu as a whole): the flow loader points at that field's line.
Problem = tuple[str, str]


def _menu_problem(
    prompt_text: str,
    choices: Sequence[Choice],
    list_button: str | None,
    header: str,
    footer: str,
) -> Problem | None:
    form = menu_form(choices)
    titled = [choice.key for choice in choices if choice.title.strip()]
    if form != "prompt_text" and len(titled) != len(choices):
        untitled = [choice.key for choice in choices if not choice.title.strip()]
        return f"options.{untitled[0]}", (
            f"{_options(untitled)} no chat title while {_options(titled)} one;"
            " give every option a title or none"
        )
    same = _same_titles(choices)
    if same:
        return (
            f"options.{same[1]}.title",
            f"options {same[0]} and {same[1]} have the same chat title",
        )
    if form == "prompt_text":
        text = _join(header, prompt_text, footer)
        if not text:
            return "prompt", (
                "the menu has neither a chat prompt text nor option titles: a chat shows nothing"
            )
        return _at("prompt", _length_problem("the message", text, TEXT_BODY_MAX))
    if form == "numbered_text":
        text = numbered_text(prompt_text, choices, header=header, footer=footer)
        what = f"the numbered text of {len(choices)} options"
        return _at("options", _length_problem(what, text, TEXT_BODY_MAX))
    return _interactive_problem(form, prompt_text, choices, list_button, header, footer)


class PromptPartLike(Protocol):
    """A part of a menu node's prompt (``ivr.flow.model.PromptPart``)."""

    @property
    def kind(self) -> str: ...  # prompt | number | digits | sound | media

    @property
    def value(self) -> str: ...


class MenuOptionLike(Protocol):
    """A menu option (``ivr.flow`` ``MenuOption``): the prompt id titling it, or None."""

    @property
    def title(self) -> str | None: ...


class MenuNodeLike(Protocol):
    """What the load-time check reads of a menu node (``ivr.flow`` ``MenuNode``)."""

    @property
    def prompts(self) -> Sequence[PromptPartLike]: ...

    @property
    def options(self) -> Mapping[str, MenuOptionLike]: ...


class PromptTextsLike(Protocol):
    """One prompt of the catalogue (``ivr.prompts.PromptText``): ``chat`` the text a
    chat shows (None: ``text``)."""

    @property
    def text(self) -> str: ...

    @property
    def chat(self) -> str | None: ...


def check_menu(menu: MenuNodeLike, texts: Mapping[str, PromptTextsLike]) -> Problem | None:
    """The flow loader's chat check of one menu node: ``menu_problem`` with the
    node's prompt ids resolved through ``texts`` (prompt id -> prompt; the list
    button label is the prompt ``chat_list_button`` when the catalogue has it).
    Returns (field under the node, problem) or None.

    At load time a part filled at run time (``media:{var}``) is unknown and
    counts as nothing; ``number:``/``digits:`` count as written. What a run-time
    part adds is guarded by ``render_menu`` (numbered text, never truncated).
    """
    chat = {prompt_id: prompt.chat or prompt.text for prompt_id, prompt in texts.items()}
    phrases: list[Phrase] = []
    for part in menu.prompts:
        if part.kind == "prompt" and part.value not in chat:
            return "prompt", f"no prompt {part.value!r} in the catalogue"
        if part.kind in ("prompt", "number", "digits"):
            phrases.append(Phrase(_LITERAL_KINDS[part.kind], part.value))
    choices: list[Choice] = []
    for key, option in menu.options.items():
        if option.title is not None and option.title not in chat:
            return f"options.{key}.title", f"no prompt {option.title!r} in the catalogue"
        choices.append(Choice(key, "" if option.title is None else chat[option.title]))
    return _menu_problem(chat_text(phrases, chat), choices, chat.get(LIST_BUTTON_PROMPT), "", "")


_LITERAL_KINDS: Mapping[str, PhraseKind] = {
    "prompt": "prompt",
    "number": "number",
    "digits": "digits",
}


# --- helpers ------------------------------------------------------------------

_BLANK = re.compile(r"\S")


def _fits_button(choice: Choice) -> bool:
    return (
        bool(choice.title.strip())
        and len(choice.title) <= BUTTON_TITLE_MAX
        and not choice.description
    )


def _options(keys: Sequence[str]) -> str:
    """ "option 3 has" / "options 1, 2 have" """
    if len(keys) == 1:
        return f"option {keys[0]} has"
    return f"options {', '.join(keys)} have"


def _numbered_line(choice: Choice) -> str:
    line = f"{choice.key}. {choice.title}"
    return f"{line} — {choice.description}" if choice.description else line


def _join(*blocks: str) -> str:
    return "\n\n".join(block.strip() for block in blocks if block.strip())


def _checked_text(body: str) -> Text:
    if not body:
        raise RenderError("a menu with neither a prompt text nor option titles has nothing to show")
    problem = _length_problem("the message", body, TEXT_BODY_MAX)
    if problem:
        raise MessageTooLong(problem)
    return Text(body)


def _length_problem(what: str, text: str, limit: int) -> str | None:
    if len(text) > limit:
        return f"{what} has {len(text)} characters; WhatsApp holds {limit}"
    return None


def _interactive_problem(
    form: Form,
    body: str,
    choices: Sequence[Choice],
    list_button: str | None,
    header: str,
    footer: str,
) -> Problem | None:
    """The first limit of the interactive ``form`` the texts exceed, or None
    (``list_button`` None: the label is not checked)."""
    if not _BLANK.search(body):
        return (
            "prompt",
            "an interactive WhatsApp message needs a body text; the menu prompt has none",
        )
    for where, what, text, limit in (
        ("prompt", "the menu prompt (body)", body, INTERACTIVE_BODY_MAX),
        ("", "the header", header, HEADER_MAX),
        ("", "the footer", footer, FOOTER_MAX),
    ):
        problem = _length_problem(what, text, limit)
        if problem:
            return where, problem + " in an interactive message"
    for choice in choices:
        if not _BLANK.search(choice.title):
            return f"options.{choice.key}", f"option {choice.key} has no chat title"
    if form == "buttons":
        return None  # menu_form chose buttons because every title fits one
    if list_button is not None:
        if not _BLANK.search(list_button):
            return "", f"the list button label (prompt {LIST_BUTTON_PROMPT}) is empty"
        problem = _length_problem(
            f"the list button label (prompt {LIST_BUTTON_PROMPT})", list_button, LIST_BUTTON_MAX
        )
        if problem:
            return "", problem
    for choice in choices:
        if len(choice.title) > ROW_TITLE_MAX:
            return f"options.{choice.key}.title", (
                f"option {choice.key}'s title has {len(choice.title)} characters;"
                f" a WhatsApp list row title holds {ROW_TITLE_MAX}"
            )
        if len(choice.description) > ROW_DESCRIPTION_MAX:
            return f"options.{choice.key}", (
                f"option {choice.key}'s description has {len(choice.description)} characters;"
                f" a WhatsApp list row description holds {ROW_DESCRIPTION_MAX}"
            )
    return None


def _at(where: str, problem: str | None) -> Problem | None:
    return None if problem is None else (where, problem)


def _same_titles(choices: Sequence[Choice]) -> tuple[str, str] | None:
    seen: dict[str, str] = {}
    for choice in choices:
        folded = normalize(choice.title)
        if not folded:
            continue
        if folded in seen:
            return seen[folded], choice.key
        seen[folded] = choice.key
    return None
