"""Reading a survey reply typed in a chat: a rating 1-10, or "no" to the comment.

Pure functions, no I/O. What people type on WhatsApp when asked "califique de 1
a 10": "9", "diez", "8/10", "un 9", "le doy 10 de 10", "9️⃣", "10 👍". The rule:

1. The text is folded: lower case, accents and emoji modifiers dropped (NFKD),
   the keycap emoji 🔟 read as 10.
2. A scale that follows the rating is not a rating: "8/10", "8 de 10",
   "8 sobre 10" give 8 (only a denominator of 10 is read as the scale).
3. The numbers left (digits, or the words cero…diez; "un"/"una" are articles,
   not one) must be exactly one distinct value, within 1-10. Anything else
   ("0", "11", "7.5", "8 o 9", "4/5", "no", an emoji alone) is no rating: the survey
   asks again, once (``ivr.surveys.chat``).

Written here rather than taken from a library: the Spanish number parsers on
the package index (``text2num``, ``numerizer``) read numbers inside any text,
but none knows the scale ("8/10") or refuses an ambiguous "8 o 9", which is
the whole job, and 1-10 needs eleven words.

>>> [parse_rating(t) for t in ("10", "diez", "8/10", "un 9", "0", "11", "no")]
[10, 10, 8, 9, None, None, None]
>>> is_refusal("No, gracias")
True
"""

from __future__ import annotations

import re
import unicodedata

RATING_MIN = 1
RATING_MAX = 10
COMMENT_MAX = 2000
"""Characters of a comment kept (a longer one is cut, and the log says so)."""

NUMBER_WORDS = {
    "cero": 0, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12,
}  # fmt: skip
SCALE_WORDS = ("/", "de", "sobre")
REFUSALS = frozenset(
    {"no", "nop", "nel", "ninguno", "ninguna", "nada", "no gracias", "gracias no",
     "no quiero", "no deseo", "ningun comentario", "sin comentarios", "sin comentario",
     "no tengo", "no tengo comentarios", "no mas", "asi esta bien", "esta bien asi"}
)  # fmt: skip

_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[a-zñ]+|/")


def fold(text: str) -> str:
    """Lower case without accents (ñ kept), 🔟 as " 10 ", other symbols as spaces."""
    text = text.replace("\N{KEYCAP TEN}", " 10 ").lower()
    out: list[str] = []
    for char in text:
        if char == "ñ":
            out.append(char)
            continue
        for part in unicodedata.normalize("NFKD", char):
            if unicodedata.combining(part):
                continue  # accents, and the keycap's combining enclosure
            out.append(part if part.isalnum() or part in "/.," else " ")
    return "".join(out)


def tokens(text: str) -> list[str]:
    """The words, numbers and slashes of ``text`` once folded."""
    return _TOKEN.findall(fold(text))


def _value(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


def parse_rating(text: str) -> int | None:
    """The rating 1-10 a reply gives, or None (no number, several, out of range).

    See the module docstring for the rule; ``"7.5"`` is None (ratings are whole).
    """
    found: list[int] = []
    parts = tokens(text)
    skip = 0
    for index, token in enumerate(parts):
        if skip:
            skip -= 1
            continue
        if re.fullmatch(r"\d+[.,]\d+", token):
            return None
        value = _value(token)
        if value is None:
            continue
        following = parts[index + 1 : index + 3]
        if len(following) == 2 and following[0] in SCALE_WORDS:
            scale = _value(following[1])
            if scale is not None and scale != 10:
                return None  # "4/5": another scale, not ours to convert
            if scale == 10:
                skip = 2  # "8/10", "8 de 10": the scale is not a second rating
        found.append(value)
    distinct = set(found)
    if len(distinct) != 1:
        return None
    rating = distinct.pop()
    return rating if RATING_MIN <= rating <= RATING_MAX else None


def is_refusal(text: str) -> bool:
    """Whether a reply to "¿Desea dejar un comentario?" declines it ("NO", "no gracias")."""
    return " ".join(tokens(text)) in REFUSALS


def comment_of(text: str) -> str:
    """The comment as stored: stripped, at most ``COMMENT_MAX`` characters."""
    return text.strip()[:COMMENT_MAX]
