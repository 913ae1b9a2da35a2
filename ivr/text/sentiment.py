"""Sentiment of a Spanish text by lexicon: a score, a label and the words that decided.

``analyse(text)`` is pure and offline: it folds, tokenises and stems the text
(:mod:`ivr.text.normalise`), finds the lexicon's phrases (longest first) and
words (``lexicon_es.yaml``, shipped in this package), adjusts each hit by what
comes before it in the same clause, and sums:

- **negation**: a negator ("no", "nunca", "ni", "tampoco", "jamás", "nada",
  "sin", "nadie") up to ``negation_scope`` tokens before a hit, in the same
  clause (a ``, . ; : ! ?`` ends it), multiplies it by ``negation_factor``
  (-0.6: "no es excelente" is mildly negative, not the opposite of praise).
  Spanish negative concord ("no … nunca") does not flip back;
- **intensifiers** ("muy", "demasiado", "súper"…) up to two tokens before a hit
  multiply it; "poco" softens a negative ("un poco demorado") and negates a
  positive ("poco amable");
- **contrast**: after the last "pero"/"sino", hits count 1.5 times, before it
  half ("amables, pero demoradísimos" is a complaint).

The sum ``s`` becomes a score in (-1, 1) as ``s / sqrt(s² + 0.5)`` (VADER's
normalisation, Hutto & Gilbert 2014, with the constant scaled to weights of
-1…1); ``|score| < 0.25`` is ``neutral``.

Why our own lexicon and not a model: it runs offline with nothing downloaded
at run time (a transformer needs hundreds of MB of weights and a GPU-sized
CPU budget per text), it is *explainable* (every label comes with the words
that decided it and their weights, which an operator can check and an admin
can correct by editing a YAML file), and it knows the line's own vocabulary
(tutela, Superintendencia, "nadie responde") that general models score as
neutral. What it cannot do: irony, and words it does not list score 0.

>>> result = analyse("La atención fue muy amable, pero la demora es PÉSIMA 😡")
>>> result.label, [(w.text, w.weight) for w in result.decisive_words]
('negativo', [('PÉSIMA', -1.35), ('😡', -1.2), ('demora', -0.9), ('muy amable', 0.4)])
>>> analyse("No es excelente").label, analyse("Quiero una cita de control").label
('negativo', 'neutral')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

from ivr.schemas import load_checked
from ivr.text.normalise import Token, fold, stem, tokens

LEXICON_FILE = Path(__file__).parent / "lexicon_es.yaml"
Label = Literal["negativo", "neutral", "positivo"]
LABELS: tuple[Label, ...] = ("negativo", "neutral", "positivo")
NEUTRAL_BAND = 0.25  # |score| below this is neutral
ALPHA = 0.5  # the normalisation constant: one word of weight 0.5 scores 0.58
INTENSIFIER_REACH = 2  # tokens between an intensifier and the word it strengthens
CONTRAST_AFTER, CONTRAST_BEFORE = 1.5, 0.5
SOFTENER = "poco"


@dataclass(frozen=True)
class DecisiveWord:
    """A word or phrase that moved the score: as written (with its negator or
    intensifier, if any) and its weight after them."""

    text: str
    weight: float

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "weight": self.weight}


@dataclass(frozen=True)
class Sentiment:
    """``score`` in [-1, 1], its ``label``, and the decisive words, strongest first."""

    score: float
    label: Label
    decisive_words: tuple[DecisiveWord, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "label": self.label,
            "words": [w.as_json() for w in self.decisive_words],
        }


@dataclass(frozen=True)
class Lexicon:
    """Weights by folded word and by stem, phrases as stem tuples, and the modifiers."""

    by_word: Mapping[str, float]
    by_stem: Mapping[str, float]
    phrases: Mapping[tuple[str, ...], float]  # stems → weight
    fillers: frozenset[str]  # stems a phrase may skip
    negators: frozenset[str]  # folded
    negation_scope: int
    negation_factor: float
    intensifiers: Mapping[str, float]  # folded → factor
    contrast: frozenset[str]  # folded

    @classmethod
    def from_file(cls, path: Path) -> Lexicon:
        """Read and check a lexicon file (schema ``lexicon``); raises ConfigError."""
        doc = load_checked(path, "lexicon")
        words = {fold(str(w)): float(v) for w, v in doc["words"].items()}
        stems: dict[str, float] = {}
        for word, weight in words.items():
            stems.setdefault(stem(word), weight)  # the first listed form sets a shared stem
        phrases = {
            tuple(t.stem for t in tokens(str(p))): float(v) for p, v in doc["phrases"].items()
        }
        return cls(
            by_word=words,
            by_stem=stems,
            phrases={k: v for k, v in phrases.items() if k},
            fillers=frozenset(stem(fold(str(w))) for w in doc["fillers"]),
            negators=frozenset(fold(str(w)) for w in doc["negators"]),
            negation_scope=int(doc["negation_scope"]),
            negation_factor=float(doc["negation_factor"]),
            intensifiers={fold(str(w)): float(v) for w, v in doc["intensifiers"].items()},
            contrast=frozenset(fold(str(w)) for w in doc["contrast"]),
        )

    def weight(self, token: Token) -> float | None:
        """A word's weight: by its folded form, else by its stem; None when unlisted."""
        found = self.by_word.get(token.folded)
        return found if found is not None else self.by_stem.get(token.stem)

    @cached_property  # written to the instance's __dict__: allowed on a frozen dataclass
    def _phrases_by_first(self) -> dict[str, list[tuple[tuple[str, ...], float]]]:
        index: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for stems, weight in self.phrases.items():
            index.setdefault(stems[0], []).append((stems, weight))
        return index

    def phrase_at(self, toks: Sequence[Token], i: int) -> tuple[int, float] | None:
        """The longest phrase starting at ``toks[i]``: (index after it, weight)."""
        best: tuple[int, float] | None = None
        for stems, weight in self._phrases_by_first.get(toks[i].stem, ()):
            end = _match(stems, toks, i, self.fillers)
            if end is not None and (best is None or end > best[0]):
                best = (end, weight)
        return best


@cache
def default_lexicon() -> Lexicon:
    """The lexicon shipped with the package (read once)."""
    return Lexicon.from_file(LEXICON_FILE)


@dataclass
class _Hit:
    start: int  # first token of the hit (or of its modifier)
    end: int
    weight: float


def analyse(text: str, lexicon: Lexicon | None = None) -> Sentiment:
    """The sentiment of ``text`` (any length; empty text is neutral with score 0)."""
    lex = lexicon or default_lexicon()
    toks = tokens(text)
    hits, consumed = _hits(toks, lex)
    last_contrast = max((i for i, t in enumerate(toks) if t.folded in lex.contrast), default=-1)
    decisive = []
    total = 0.0
    for hit in hits:
        weight, start = _modified(hit, toks, lex, consumed)
        if last_contrast >= 0:
            weight *= CONTRAST_AFTER if hit.start > last_contrast else CONTRAST_BEFORE
        weight = round(weight, 3)
        if weight == 0:
            continue
        total += weight
        decisive.append(DecisiveWord(text[toks[start].start : toks[hit.end - 1].end], weight))
    score = round(total / math.sqrt(total * total + ALPHA), 3)
    label: Label = (
        "neutral" if abs(score) < NEUTRAL_BAND else ("positivo" if score > 0 else "negativo")
    )
    decisive.sort(key=lambda w: -abs(w.weight))
    return Sentiment(score, label, tuple(decisive))


def _hits(toks: Sequence[Token], lex: Lexicon) -> tuple[list[_Hit], set[int]]:
    """Phrases (longest first) and words, left to right; the token indexes phrases use."""
    hits: list[_Hit] = []
    consumed: set[int] = set()
    i = 0
    while i < len(toks):
        if toks[i].is_break:
            i += 1
            continue
        phrase = lex.phrase_at(toks, i)
        if phrase is not None:
            end, weight = phrase
            hits.append(_Hit(i, end, weight))
            consumed.update(range(i, end))
            i = end
            continue
        word = lex.weight(toks[i])
        if word is not None and toks[i].folded not in lex.intensifiers:
            hits.append(_Hit(i, i + 1, word))
        i += 1
    return hits, consumed


def _modified(
    hit: _Hit, toks: Sequence[Token], lex: Lexicon, consumed: set[int]
) -> tuple[float, int]:
    """A hit's weight after the intensifiers and negators before it, and where they start."""
    weight, start = hit.weight, hit.start
    for back in range(1, INTENSIFIER_REACH + 1):
        j = hit.start - back
        if j < 0 or toks[j].is_break or j in consumed:
            break
        factor = lex.intensifiers.get(toks[j].folded)
        if factor is None:
            continue
        if toks[j].folded == SOFTENER and weight > 0:
            weight *= lex.negation_factor  # "poco amable": not friendly
        else:
            weight *= factor
        start = j
    for back in range(1, lex.negation_scope + 1):
        j = hit.start - back
        if j < 0 or toks[j].is_break:
            break
        if j not in consumed and toks[j].folded in lex.negators:
            weight *= lex.negation_factor
            start = min(start, j)
            break  # negative concord: one flip per hit
    return weight, start


def _match(
    stems: tuple[str, ...], toks: Sequence[Token], i: int, fillers: frozenset[str]
) -> int | None:
    """Where ``stems`` matched from ``toks[i]`` ends (fillers may sit between its words)."""
    j = i
    for k, wanted in enumerate(stems):
        while k > 0 and j < len(toks) and toks[j].stem != wanted and toks[j].stem in fillers:
            j += 1
        if j >= len(toks) or toks[j].is_break or toks[j].stem != wanted:
            return None
        j += 1
    return j
