"""Reading a person's chat reply (issue 10 §3): pure functions, no I/O.

``read_choice`` reads a reply to a menu; ``read_digits`` reads a typed number
(a document number) for a digits request. Both return a small typed value:
``Picked`` (with the ``Choice``), ``Digits``, ``MainMenu`` (back to the main
menu), ``Agent`` (hand the conversation to a person) or ``NoMatch`` (with the
reason, in English, for the log).

A menu reply is tried, in this order:

1. the interactive reply id (``button_reply``/``list_reply``): the choice key
   ``ivr.chat.render`` gave the row or button; an id that is not a current key
   (a tap on an older message) is ``NoMatch``, never read as text;
2. one key: "2", " 2 ", "2.", "(2)", "2)", "- 2" (punctuation around it is
   ignored), fullwidth "２", keycap "2️⃣", "*", "#", any script's decimal
   digit; with the fillers "opción", "la", "el", "número", "nro": "opción 2",
   "la 2"; a number that is no key ("12", "1.5") is ``NoMatch``;
3. one Spanish number word, cardinal or ordinal, read as the key it names:
   "dos", "DOS", "la segunda", "segundo", "primer", "séptima". Ordinals name
   the key, not the position in the list ("la primera" is key 1 even when key
   0 is shown first): the rows show the keys, and that is what people read
   back. "diez"/"décimo" name 10, which no key is (keys are one character);
4. the option's title, or the global commands, exactly or with small typos
   (below).

"0" (and "cero") returns to the main menu unless the current menu has a key
0 of its own: the menu's own option wins over the global command, as an
explicit option beats an implicit one. "menú", "menu", "inicio", "menú
principal", "volver al menú"… return to the main menu; "asesor", "agente",
"hablar con una persona", "hablar con un asesor"… hand off to a person. A
command also counts inside a longer message ("quiero hablar con un asesor").

Matching text (step 4). Text is normalized (``normalize``: NFKC, accents
and other marks dropped, case folded, anything but letters and digits a
space) and compared with rapidfuzz's Damerau-Levenshtein distance
(insertions, deletions, substitutions and adjacent transpositions, each one
edit; unlike optimal string alignment, a letter dropped next to a swap is
still two edits: "dmicina" for "medicina"). The edit budget
depends on the length of what is matched: 0 edits up to 3 characters, 1 up to
7, 2 from 8 on ("menú" takes one typo, "medicina general" two). The typed text
is matched against a whole title, or against a run of its words covering at
least half its letters ("odontologia" for "Odontología general"; "general"
alone is too little of "Medicina general" to pick it, though enough to make a
reply ambiguous). Commands are also matched against runs of the typed text's
words (exactly, in a reply over 300 characters). A reply made of digits only is never matched by text; one mixing digits
and words is read only as a line copied back ("2 Odontología": key and title
must agree).

When candidates of more than one result are within budget, the reply is
ambiguous and is ``NoMatch`` rather than a guess, with one exception: an exact
match (no edit) that is strictly better than the runner-up, where a whole
title beats part of one and an option beats a command. So "medicina genral"
picks "Medicina general" when no other title is within two edits, "medicina"
offered "Medicina general" and "Medicina especializada" picks none, and
"asesor" picks an option titled "Asesor" over the hand-off command.

Why a table for number words instead of num2words: num2words spells numbers
(5 -> "cinco") but does not read them, and the reading needs the variants
people write ("un", "una", "primer", "primera", "setimo"); eleven cardinals and
ten ordinals are smaller than the code to invert a speller. The test suite
checks the table against num2words, an independent source.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import DamerauLevenshtein

from ivr.channel import Choice

How = Literal["id", "key", "word", "title"]


@dataclass(frozen=True)
class Picked:
    """The reply picked ``choice``; ``how`` says by what (interactive id, key,
    number word or title)."""

    choice: Choice
    how: How


@dataclass(frozen=True)
class Digits:
    """The digits a person typed, separators removed ("1023456789")."""

    value: str


@dataclass(frozen=True)
class MainMenu:
    """Back to the main menu ("0", "menú", "inicio")."""


@dataclass(frozen=True)
class Agent:
    """Hand the conversation to a person ("asesor", "agente")."""


@dataclass(frozen=True)
class NoMatch:
    """The reply answers nothing; ``reason`` in English, for the log (it may
    quote the reply: mask it before logging a digits request's)."""

    reason: str


@dataclass(frozen=True)
class Typed:
    """Free text typed for a text question (an e-mail address), stripped."""

    value: str


Reply = Picked | MainMenu | Agent | NoMatch
DigitsReply = Digits | MainMenu | Agent | NoMatch
TextReply = Typed | MainMenu | Agent | NoMatch

KEYS = frozenset("0123456789*#")
MAIN_MENU_PHRASES = (
    "menu",
    "menu principal",
    "inicio",
    "al inicio",
    "volver",
    "volver al menu",
    "volver al inicio",
    "regresar al menu",
)
AGENT_PHRASES = (
    "asesor",
    "asesora",
    "agente",
    "hablar con una persona",
    "hablar con un asesor",
    "hablar con una asesora",
    "hablar con un agente",
    "hablar con alguien",
)
# Commands read only as the whole reply: inside a message they mean other
# things ("volver a intentar", "la fecha de inicio"). The others also count
# inside a longer message, single words exactly, phrases with the typo budget.
_WHOLE_REPLY_ONLY = frozenset({"volver", "inicio", "al inicio"})
# Past this many characters a command inside the message counts only exactly:
# looking for typos in every run of a 4096-character message costs ~0.1 s.
_FUZZY_INSIDE_MAX = 300
NUMBER_WORDS: dict[str, int] = {
    "cero": 0,
    "uno": 1, "un": 1, "una": 1,
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10,
    "primero": 1, "primera": 1, "primer": 1,
    "segundo": 2, "segunda": 2,
    "tercero": 3, "tercera": 3, "tercer": 3,
    "cuarto": 4, "cuarta": 4,
    "quinto": 5, "quinta": 5,
    "sexto": 6, "sexta": 6,
    "septimo": 7, "septima": 7, "setimo": 7, "setima": 7,
    "octavo": 8, "octava": 8,
    "noveno": 9, "novena": 9,
    "decimo": 10, "decima": 10,
}  # fmt: skip
# Words around a key that say nothing more: "opción 2", "la segunda", "el número 3".
_FILLERS = frozenset({"opcion", "la", "el", "numero", "nro"})
# "1ro", "2da", "3er", "2ª", "1.º" (NFKC makes º and ª plain o and a).
_ORDINAL_ABBREVIATION = re.compile(r"(\d)(?:o|a|ro|ra|er|do|da|to|ta|mo|ma|vo|va|no|na)")
# Separators a person types inside a long number: 1.023.456.789, 1 023 456 789, 1-023.
_DIGIT_SEPARATORS = frozenset(" .-,_'")
# Accents, the keycap marks (the keycap "2️⃣" is "2" + U+FE0F + U+20E3), joiners.
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


def normalize(text: str) -> str:
    """Text as matching sees it: NFKC (fullwidth and compatibility forms to
    their plain letters), accents and other combining marks dropped, case
    folded, every run of characters other than letters and digits one space.

    >>> normalize("  ¿Medicina GENERAL? ")
    'medicina general'
    >>> normalize("２️⃣ Ñandú")
    '2 nandu'
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)):
        if unicodedata.category(char) in _DROPPED_CATEGORIES:
            continue
        out.append(_ascii_digit(char) if char.isalnum() else " ")
    return " ".join("".join(out).casefold().split())


def read_choice(text: str, choices: Sequence[Choice], *, reply_id: str | None = None) -> Reply:
    """What a chat reply to a menu offering ``choices`` asks for.

    ``text`` is the message's text (a typed reply, or an interactive reply's
    title); ``reply_id`` the interactive reply's id when there is one. The rules
    are the module docstring's.

    >>> menu = [Choice("1", "Medicina general"), Choice("2", "Odontología")]
    >>> read_choice("medicina genral", menu)
    Picked(choice=Choice(key='1', title='Medicina general', description=''), how='title')
    >>> read_choice("Dos", menu).choice.key
    '2'
    >>> read_choice("0", menu)
    MainMenu()
    """
    by_key = {choice.key: choice for choice in choices}
    if reply_id is not None:
        if reply_id in by_key:
            return Picked(by_key[reply_id], "id")
        return NoMatch(f"interactive reply id {reply_id!r} is not an option of this menu")
    key = _typed_key(text)
    if key is not None:
        return _by_key(key, "key", by_key)
    words = normalize(text).split()
    number = _number_word(words)
    if number is not None:
        return _by_key(*number, by_key)
    if not words:
        return NoMatch("the reply has no letters or digits")
    if all(word.isdecimal() for word in words):
        return NoMatch(f"{' '.join(words)!r} is not an option's key")
    if any(word.isdecimal() for word in words):
        return _key_and_title(words, choices, by_key)
    return _by_text(words, choices)


def read_digits(text: str, *, min_digits: int = 1, max_digits: int = 64) -> DigitsReply:
    """The digits of a typed number (a document number) for a digits request.

    Separators people type inside a number are dropped ("1.023.456.789",
    "1 023 456 789", "1-023-456-789" -> "1023456789"), fullwidth and other
    scripts' decimal digits become ASCII; any letter or other symbol refuses the
    reply (``NoMatch``), as does a count outside ``min_digits``..``max_digits``.
    The global commands apply ("menú", "asesor"; "0" when a lone 0 is not itself
    a valid answer, i.e. ``min_digits`` > 1).

    >>> read_digits("1.023.456.789", min_digits=5, max_digits=12)
    Digits(value='1023456789')
    >>> read_digits("CC 1023456789").reason
    'the reply has characters other than digits and separators'
    """
    words = normalize(text).split()
    if words == ["cero"] and min_digits > 1:
        return MainMenu()
    if words and not any(word.isdecimal() for word in words):
        command = _command(words)
        return (
            command
            if command is not None
            else NoMatch("the reply has characters other than digits and separators")
        )
    digits: list[str] = []
    for char in unicodedata.normalize("NFKC", text):
        if unicodedata.category(char) in _DROPPED_CATEGORIES:
            continue
        if char.isdecimal():
            digits.append(_ascii_digit(char))
        elif not (char in _DIGIT_SEPARATORS or char.isspace()):
            return NoMatch("the reply has characters other than digits and separators")
    value = "".join(digits)
    if value == "0" and min_digits > 1:
        return MainMenu()
    if not min_digits <= len(value) <= max_digits:
        return NoMatch(f"{len(value)} digits; {min_digits} to {max_digits} expected")
    return Digits(value)


# --- steps ----------------------------------------------------------------------


def read_text(text: str, *, max_length: int = 254) -> TextReply:
    """A free-text reply to a text question (an e-mail address).

    The global commands count only as the whole reply ("menú", "0",
    "asesor"...): inside free text they are part of the answer
    ("menu@empresa.co" is an address). Empty text, or text longer than
    ``max_length`` characters, is ``NoMatch``; judging the text (is it an
    address?) is the question's own rule.

    >>> read_text("  ana@example.org ")
    Typed(value='ana@example.org')
    >>> read_text("Menú")
    MainMenu()
    """
    typed = text.strip()
    words = normalize(typed)
    if words == "0" or words in MAIN_MENU_PHRASES:
        return MainMenu()
    if words in AGENT_PHRASES:
        return Agent()
    if not typed:
        return NoMatch("the reply is empty")
    if len(typed) > max_length:
        return NoMatch(f"the reply has {len(typed)} characters, more than {max_length}")
    return Typed(typed)


def _typed_key(text: str) -> str | None:
    """The one key character of a reply like "2", "2.", "(2)", "２", "2️⃣", "#"."""
    compact = "".join(
        char
        for char in unicodedata.normalize("NFKC", text)
        if not char.isspace() and unicodedata.category(char) not in _DROPPED_CATEGORIES
    )
    compact = compact.strip(".)(:")
    if len(compact) != 1:
        return None
    if compact in KEYS:
        return compact
    return _ascii_digit(compact) if compact.isdecimal() else None


def _number_word(words: Sequence[str]) -> tuple[str, How] | None:
    """The key a reply like "dos", "la segunda", "opción 3" names, and whether
    it was written as a word or as digits."""
    rest = [word for word in words if word not in _FILLERS]
    if len(rest) == 2 and rest[0].isdecimal() and rest[1] in ("o", "a"):
        rest = ["".join(rest)]  # "1.º", "2.ª"
    if len(rest) != 1:
        return None
    word = rest[0]
    abbreviation = _ORDINAL_ABBREVIATION.fullmatch(word)
    if abbreviation:
        word = abbreviation.group(1)
    if word.isdecimal():
        return str(int(word)), "key"
    number = NUMBER_WORDS.get(word)
    return None if number is None else (str(number), "word")


def _key_and_title(
    words: Sequence[str], choices: Sequence[Choice], by_key: dict[str, Choice]
) -> Reply:
    """A reply like "2 Odontología" (a line copied back): its key and its title
    must name the same option; any other mix of digits and words is no answer."""
    key, rest = words[0], words[1:]
    if key in by_key and not any(word.isdecimal() for word in rest):
        by_title = _by_text(rest, choices)
        if isinstance(by_title, Picked) and by_title.choice == by_key[key]:
            return Picked(by_key[key], "key")
    return NoMatch("the reply mixes digits and words that do not name one option")


def _by_key(key: str, how: How, by_key: dict[str, Choice]) -> Reply:
    if key in by_key:
        return Picked(by_key[key], how)
    if key == "0":
        return MainMenu()
    return NoMatch(f"{key!r} is not an option's key")


@dataclass(frozen=True, order=True)
class _Match:
    # Sorted best first: fewer edits, whole before part, option before command.
    edits: int
    partial: bool
    weak: bool  # part of a title too small to pick it, but enough to make a reply ambiguous
    command: bool
    target: int  # index into the candidates: the choice, or -1 main menu, -2 agent


def _by_text(words: Sequence[str], choices: Sequence[Choice]) -> Reply:
    typed = " ".join(words)
    best: dict[int, _Match] = {}
    for match in _matches(typed, choices):
        if match.target not in best or match < best[match.target]:
            best[match.target] = match
    ranked = sorted(best.values())
    if not ranked:
        return NoMatch("the reply matches no option's title nor a command")
    first = ranked[0]
    if first.weak:
        return NoMatch(f"the reply is too small a part of {_describe(first, choices)}")
    if len(ranked) > 1 and not _decisive(first, ranked[1]):
        second = ranked[1]
        return NoMatch(
            f"the reply is ambiguous: {_describe(first, choices)} or {_describe(second, choices)}"
        )
    return _result(first, choices)


def _decisive(first: _Match, second: _Match) -> bool:
    """An exact match strictly better than the runner-up (whole over part,
    option over command); anything inexact with a rival is a guess."""
    return first.edits == 0 and (first.edits, first.partial, first.command) < (
        second.edits,
        second.partial,
        second.command,
    )


def _matches(typed: str, choices: Sequence[Choice]) -> Iterator[_Match]:
    for index, choice in enumerate(choices):
        title = normalize(choice.title)
        if title:
            yield from _against(typed, title, index, command=False)
    for phrases, target in ((MAIN_MENU_PHRASES, -1), (AGENT_PHRASES, -2)):
        for phrase in phrases:
            yield from _against(typed, phrase, target, command=True)
            if phrase in _WHOLE_REPLY_ONLY:
                continue
            if len(typed) > _FUZZY_INSIDE_MAX:
                if f" {phrase} " in f" {typed} ":
                    yield _Match(0, True, False, True, target)
                continue
            size = len(phrase.split())
            for window in _windows(typed.split(), size):
                edits = _edits(window, phrase)
                if window != typed and edits is not None and (size > 1 or edits == 0):
                    yield _Match(edits, True, False, True, target)


def _against(typed: str, candidate: str, target: int, *, command: bool) -> Iterator[_Match]:
    edits = _edits(typed, candidate)
    if edits is not None:
        yield _Match(edits, False, False, command, target)
    letters = len(candidate.replace(" ", ""))
    for window in _windows(candidate.split(), len(typed.split())):
        edits = _edits(typed, window)
        if window != candidate and edits is not None:
            weak = 2 * len(window.replace(" ", "")) < letters
            yield _Match(edits, True, weak, command, target)


def _windows(words: Sequence[str], size: int) -> Iterator[str]:
    for start in range(len(words) - size + 1):
        yield " ".join(words[start : start + size])


def _edits(typed: str, candidate: str) -> int | None:
    """Damerau-Levenshtein edits from ``typed`` to ``candidate``, None past the budget."""
    budget = _budget(len(candidate))
    edits: int = DamerauLevenshtein.distance(typed, candidate, score_cutoff=budget)
    return edits if edits <= budget else None


def _budget(length: int) -> int:
    if length <= 3:
        return 0
    if length <= 7:
        return 1
    return 2


def _result(match: _Match, choices: Sequence[Choice]) -> Reply:
    if match.target == -1:
        return MainMenu()
    if match.target == -2:
        return Agent()
    return Picked(choices[match.target], "title")


def _describe(match: _Match, choices: Sequence[Choice]) -> str:
    if match.target < 0:
        return "the main-menu command" if match.target == -1 else "the hand-off command"
    return f"option {choices[match.target].key}'s title"


def _command(words: Sequence[str]) -> MainMenu | Agent | None:
    reply = _by_text(words, ())
    return reply if isinstance(reply, MainMenu | Agent) else None


def _ascii_digit(char: str) -> str:
    return str(unicodedata.decimal(char)) if char.isdecimal() else char
