"""Spanish sentiment by lexicon (ivr/text/sentiment.py): a table of sentences and its properties."""

from __future__ import annotations

import doctest
import importlib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.text.normalise import fold, tokens
from ivr.text.sentiment import LABELS, NEUTRAL_BAND, Lexicon, analyse, default_lexicon
from ivr.yamlsrc import ConfigError

NEG, NEU, POS = "negativo", "neutral", "positivo"

# What callers and affiliates write on a health insurer's appointments line: complaints,
# thanks, neutral requests, negations, no accents, capitals, emoji, misspellings.
TABLE: list[tuple[str, str]] = [
    # complaints
    ("La demora para asignar la cita es inaceptable", NEG),
    ("Llevo tres semanas esperando y nadie responde", NEG),
    ("Nadie contesta el teléfono, pésimo servicio", NEG),
    ("La señora que me atendió fue muy grosera", NEG),
    ("Voy a poner una tutela porque no hay citas", NEG),
    ("Si no me dan la cita me quejo ante la Superintendencia", NEG),
    ("Quiero poner una queja por la mala atención", NEG),
    ("Es una falta de respeto con los pacientes", NEG),
    ("Me colgaron dos veces", NEG),
    ("No me han respondido la solicitud", NEG),
    ("Horrible, siempre lo mismo", NEG),
    ("Estoy cansada de llamar y que no contesten", NEG),
    ("El sistema no funciona desde ayer", NEG),
    ("Es una burla lo que hacen con los afiliados", NEG),
    ("Demasiado demorado todo", NEG),
    ("Estoy muy molesto con el servicio", NEG),
    ("Radicaré un derecho de petición", NEG),
    ("Gracias por nada", NEG),
    ("Son unos ladrones", NEG),
    ("Ya no aguanto más esta situación", NEG),
    # complaints without accents, in capitals, misspelt, with emoji
    ("PESIMO SERVICIO", NEG),
    ("pesima atencion, nadie responde", NEG),
    ("NADIE RESPONDE!!!", NEG),
    ("la atencion es malisima 😡", NEG),
    ("muuuy demorados 👎", NEG),
    ("q demora tan horrible", NEG),
    ("estoy harta 😤😤", NEG),
    ("no contestan nunca", NEG),
    ("TUTELA YA", NEG),
    ("me toco poner queja en supersalud", NEG),
    # thanks and praise
    ("Excelente servicio, muchas gracias", POS),
    ("La asesora fue muy amable", POS),
    ("Muchas gracias por la atención", POS),
    ("Me atendieron rápido, los felicito", POS),
    ("Todo perfecto, quedé muy satisfecha", POS),
    ("Dios le pague señorita", POS),
    ("Muy buena atención 👍", POS),
    ("Gracias 🙏😊", POS),
    ("EXCELENTE", POS),
    ("exelente atencion", POS),
    ("super amables todos", POS),
    ("me resolvieron rapido, mil gracias", POS),
    ("Estoy contenta con el servicio ❤️", POS),
    # neutral requests and information
    ("Quiero una cita de control para mi hijo", NEU),
    ("Necesito cambiar la cita del martes", NEU),
    ("Buenos días, quisiera saber el horario de la sede", NEU),
    ("Buenas tardes, por favor una cita de medicina general", NEU),
    ("Mi documento es 1020304050", NEU),
    ("¿A qué hora abren mañana?", NEU),
    ("Necesito una cita con pediatría, gracias", NEU),
    ("El correo es ana@example.org", NEU),
    ("cita para el lunes en la mañana", NEU),
    ("", NEU),
    ("📅", NEU),
    ("Solicito información sobre mi autorización", NEU),
    # negations
    ("No es excelente", NEG),
    ("No fue nada amable", NEG),
    ("No estoy satisfecho", NEG),
    ("Nunca fueron amables conmigo", NEG),
    ("La atención no fue buena", NEG),
    ("Ni amables ni rápidos", NEG),
    ("No tuve ningún problema", POS),
    ("No fue tan malo", POS),
    ("Poco amable la persona que me atendió", NEG),
    # contrast
    ("Fueron amables, pero la demora fue terrible", NEG),
    ("Hubo demora, pero me atendieron excelente", POS),
]


def test_the_table_is_big_enough_and_balanced() -> None:
    counts = {label: sum(1 for _, want in TABLE if want == label) for label in LABELS}
    assert len(TABLE) >= 60 and min(counts.values()) >= 12, counts


@pytest.mark.parametrize(("text", "label"), TABLE, ids=[t[:40] or "empty" for t, _ in TABLE])
def test_each_sentence_gets_its_label(text: str, label: str) -> None:
    result = analyse(text)
    assert result.label == label, (result.score, result.decisive_words)
    if label != NEU:
        assert result.decisive_words  # a decided label always shows why
        strongest = result.decisive_words[0]
        assert (strongest.weight < 0) == (label == NEG) or len(result.decisive_words) > 1
        assert all(w.text in text for w in result.decisive_words)  # as written


def test_the_decisive_words_are_shown_as_written_with_their_modifiers() -> None:
    result = analyse("NO fue Excelente, y la DEMORA… muy grosera")
    assert [w.text for w in result.decisive_words] == ["muy grosera", "DEMORA", "NO fue Excelente"]
    assert result.as_json()["words"][0] == {"text": "muy grosera", "weight": -1.2}


def test_negation_stops_at_a_clause_break() -> None:
    assert analyse("no, excelente").label == POS
    assert analyse("no excelente").label == NEG


# --- properties over the lexicon -------------------------------------------------------------
LEX = default_lexicon()
POSITIVE = sorted(w for w, v in LEX.by_word.items() if v >= 0.5 and w.isalpha())
NEGATIVE = sorted(w for w, v in LEX.by_word.items() if v <= -0.5 and w.isalpha())
FILLER = ["la", "atencion", "de", "hoy", "el", "servicio", "cita", "medico", "sede", "en"]
WORDS = st.sampled_from(sorted({*POSITIVE[:40], *NEGATIVE[:40], *FILLER, "muy", "no", "pero"}))
SENTENCES = st.lists(WORDS, min_size=0, max_size=10).map(" ".join)


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def accented(text: str) -> str:
    """The same words as a careful writer would accent some of them."""
    return (
        text.replace("atencion", "atención").replace("pesimo", "pésimo")
        .replace("rapido", "rápido").replace("peticion", "petición")
    )  # fmt: skip


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(text=SENTENCES, shout=st.booleans())
def test_accents_and_case_never_change_the_result(text: str, shout: bool) -> None:
    variant = accented(text)
    variant = variant.upper() if shout else variant.title()
    a, b, c = analyse(text), analyse(variant), analyse(strip_accents(variant))
    assert (a.score, a.label) == (b.score, b.label) == (c.score, c.label)
    assert [w.weight for w in a.decisive_words] == [w.weight for w in b.decisive_words]


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(word=st.sampled_from(POSITIVE), strong=st.booleans())
def test_negating_a_positive_sentence_never_keeps_it_positive(word: str, strong: bool) -> None:
    said = f"el servicio fue {'muy ' if strong else ''}{word}"
    negated = f"el servicio no fue {'muy ' if strong else ''}{word}"
    assert analyse(said).label == POS
    result = analyse(negated)
    assert result.label != POS and result.score < 0


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(word=st.sampled_from(NEGATIVE))
def test_negating_a_negative_word_never_makes_it_more_negative(word: str) -> None:
    assert analyse(f"no fue {word}").score > analyse(f"fue {word}").score


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(text=SENTENCES, word=st.sampled_from(NEGATIVE))
def test_adding_a_complaint_never_raises_the_score(text: str, word: str) -> None:
    assert analyse(f"{text}. {word}").score <= analyse(text).score


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_scores_within_bounds_with_a_consistent_label(text: str) -> None:
    result = analyse(text)
    assert -1 <= result.score <= 1
    assert result.label == (
        NEU if abs(result.score) < NEUTRAL_BAND else (POS if result.score > 0 else NEG)
    )
    assert all(w.text and w.text in text and w.weight != 0 for w in result.decisive_words)


# --- normalising -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "folded"),
    [("Pésimo", "pesimo"), ("ATENCIÓN", "atencion"), ("pingüino", "pinguino"),
     ("Muuuuy", "muy"), ("cañón", "canon"), ("ﬁn", "fin"), ("ＱＵＥＪＡ", "queja")],
)  # fmt: skip
def test_folding(written: str, folded: str) -> None:
    assert fold(written) == folded


def test_tokens_keep_what_was_written_and_where() -> None:
    text = "¡Qué DEMORA! 😡👍🏽"
    found = tokens(text)
    assert [t.written for t in found] == ["¡", "Qué", "DEMORA", "!", "😡", "👍🏽"]
    assert all(text[t.start : t.end] == t.written for t in found)
    assert found[-1].folded == "👍"  # the skin tone does not hide the pictograph


def test_a_lexicon_with_a_bad_weight_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "words:\n  bueno: 0.5\n  malo: -3\nphrases: {}\nfillers: []\nnegators: ['no']\n"
        "negation_scope: 3\nnegation_factor: -0.6\nintensifiers: {}\ncontrast: []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        Lexicon.from_file(path)
    assert (caught.value.line, caught.value.field) == (3, "words.malo")


def test_an_admin_lexicon_changes_the_verdict(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "words:\n  agendador: -0.8\nphrases: {}\nfillers: []\nnegators: ['no']\n"
        "negation_scope: 3\nnegation_factor: -0.6\nintensifiers: {}\ncontrast: []\n",
        encoding="utf-8",
    )
    text = "el agendador otra vez"
    assert analyse(text).label == NEU
    assert analyse(text, Lexicon.from_file(path)).label == NEG


@pytest.mark.parametrize(
    "module",
    ["ivr.text.normalise", "ivr.text.sentiment", "ivr.text.keywords", "ivr.xlsx_export",
     "ivr.incidents.reports", "ivr.incidents.export"],
)  # fmt: skip
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
