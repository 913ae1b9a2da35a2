"""Spanish text as the analysers see it: folded, split into tokens, stemmed.

- **Folding** (:func:`fold`): Unicode NFKD, combining marks dropped, case
  folded. "Pésimo", "PESIMO" and "pesimo" are one word, which is how people
  write on a phone keypad or in a hurry; ``ñ`` folds to ``n`` too (``año`` and
  ``ano`` meet: no word in the lexicon depends on it). Letters repeated three
  times or more collapse to one ("muuuy pesimooo" → "muy pesimo").
- **Tokens** (:func:`tokens`): runs of letters or digits, the emoji the lexicon
  knows, and clause breaks (``. , ; : ! ?`` and line ends) which bound negation.
  Each token keeps the text as written, for the "decisive words" shown to people.
- **Stems**: the Snowball Spanish stemmer (``snowballstemmer``, the algorithm
  of snowballstem.org), so "demora", "demoras" and "demorado" share ``demor``.

>>> [(t.written, t.folded, t.stem) for t in tokens("¡Muuuy DEMORADOS!")]
[('¡', '¡', '¡'), ('Muuuy', 'muy', 'muy'), ('DEMORADOS', 'demorados', 'demor'), ('!', '!', '!')]
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

BREAKS = frozenset(".,;:!?¡¿\n")
# A word (letters, digits), one pictograph (with its variation selector / skin tone
# modifiers skipped by folding), or one clause-breaking mark.
_TOKEN = re.compile(
    r"[^\W_]+"
    r"|[\u2600-\u27bf\U0001f300-\U0001faff\u2b50\u2764][\ufe0f\U0001f3fb-\U0001f3ff]*"
    r"|[.,;:!?¡¿\n]"
)
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_STEMMER = snowballstemmer.stemmer("spanish")


@dataclass(frozen=True)
class Token:
    """One token: as written, folded, and its stem (a break's stem is itself)."""

    written: str
    folded: str
    stem: str
    start: int = 0  # offsets in the text analysed: text[start:end] == written
    end: int = 0

    @property
    def is_break(self) -> bool:
        return self.folded in BREAKS


def fold(text: str) -> str:
    """Lower case, no accents or other marks, long letter runs shortened.

    >>> fold("Ñoño SÚPER Atención 👍🏽❤️")
    'nono super atencion 👍\U0001f3fd❤'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _REPEATS.sub(r"\1", bare.casefold())


@lru_cache(maxsize=8192)
def stem(folded_word: str) -> str:
    """The Snowball Spanish stem of a folded word (pictographs stay as they are)."""
    if not folded_word[:1].isalpha():
        return folded_word
    result: str = _STEMMER.stemWord(folded_word)
    return result


def tokens(text: str) -> list[Token]:
    """The tokens of ``text`` in order (see the module's rules)."""
    out = []
    for match in _TOKEN.finditer(text):
        written = match.group()
        folded = fold(written)
        folded = _strip_modifiers(folded)
        out.append(Token(written, folded, stem(folded), match.start(), match.end()))
    return out


def _strip_modifiers(folded: str) -> str:
    """A pictograph without its skin-tone modifier (👍🏽 is 👍 for the lexicon)."""
    if folded[:1].isalnum():
        return folded
    return "".join(c for c in folded if not "\U0001f3fb" <= c <= "\U0001f3ff")
