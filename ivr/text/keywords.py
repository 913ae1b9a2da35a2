"""Keyword lists that admins edit, and matching them in a text.

A keyword is a word or a short phrase ("tutela", "nadie responde"). It matches
a text when its stems appear there in order, side by side, inside one clause:
the same folding and Snowball stemming as the sentiment analyser
(:mod:`ivr.text.normalise`), so "Tutelas", "TUTELA" and "tutéla" all match
"tutela", and "nadie me responde" does not match "nadie responde" (an admin
who wants it adds that phrase too). Each keyword says whether a match raises a
case's priority (``raises_priority``).

>>> matcher = KeywordMatcher([Keyword("k1", "l1", "Legal", "Tutela", True),
...                           Keyword("k2", "l1", "Legal", "nadie responde", False)])
>>> [(m.keyword.phrase, m.written) for m in matcher.find("Pondré TUTELAS: nadie responde.")]
[('Tutela', 'TUTELAS'), ('nadie responde', 'nadie responde')]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ivr.text.normalise import tokens

MAX_PHRASE = 120  # characters
MAX_WORDS = 6


class InvalidKeyword(ValueError):
    """A keyword that cannot match anything, or is too long (message in Spanish)."""


def match_key(phrase: str) -> str:
    """The stems a keyword matches on, space-separated; raises InvalidKeyword.

    >>> match_key("  Superintendencia de Salud ")
    'superintendent de salud'
    """
    if len(phrase.strip()) > MAX_PHRASE:
        raise InvalidKeyword(f"la palabra clave tiene más de {MAX_PHRASE} caracteres")
    words = [t for t in tokens(phrase) if not t.is_break]
    if not words:
        raise InvalidKeyword("la palabra clave debe tener al menos una palabra")
    if len(words) > MAX_WORDS:
        raise InvalidKeyword(f"la palabra clave tiene más de {MAX_WORDS} palabras")
    return " ".join(t.stem for t in words)


@dataclass(frozen=True)
class Keyword:
    id: str
    list_id: str
    list_name: str
    phrase: str
    raises_priority: bool

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(match_key(self.phrase).split(" "))

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list_id": self.list_id,
            "list": self.list_name,
            "phrase": self.phrase,
            "raises_priority": self.raises_priority,
        }


@dataclass(frozen=True)
class KeywordMatch:
    """A keyword found in a text, and the words as written there."""

    keyword: Keyword
    written: str

    def as_json(self) -> dict[str, Any]:
        return {**self.keyword.as_json(), "written": self.written}


class KeywordMatcher:
    """Every keyword of every list, ready to match (build one per scan)."""

    def __init__(self, keywords: Iterable[Keyword]) -> None:
        self.keywords = [(k, k.stems) for k in keywords]

    def find(self, text: str) -> list[KeywordMatch]:
        """Each keyword found in ``text`` once (its first place), in the text's order."""
        toks = tokens(text)
        found: list[tuple[int, KeywordMatch]] = []
        for keyword, stems in self.keywords:
            for i in range(len(toks) - len(stems) + 1):
                window = toks[i : i + len(stems)]
                if all(t.stem == s and not t.is_break for t, s in zip(window, stems, strict=True)):
                    written = text[window[0].start : window[-1].end]
                    found.append((i, KeywordMatch(keyword, written)))
                    break
        found.sort(key=lambda pair: pair[0])
        return [m for _, m in found]


def priority_reason(matches: Iterable[KeywordMatch]) -> str | None:
    """The reason a case's priority goes up ("palabra clave: tutela"), or None.

    Several keywords that raise priority are named together, in the text's order.
    """
    phrases = list(dict.fromkeys(m.keyword.phrase for m in matches if m.keyword.raises_priority))
    if not phrases:
        return None
    return "palabra clave: " + ", ".join(phrases)
