"""Reading chat replies (``ivr.chat.replies``): by interactive id, key, Spanish
number word, title with small typos, the global commands, and typed digits."""

from __future__ import annotations

import doctest
import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from num2words import num2words

from ivr.channel import Choice
from ivr.chat import replies
from ivr.chat.replies import (
    Agent,
    Digits,
    MainMenu,
    NoMatch,
    Picked,
    normalize,
    read_choice,
    read_digits,
)

SERVICES = [
    Choice("1", "Medicina general"),
    Choice("2", "Odontología"),
    Choice("3", "Pediatría"),
    Choice("4", "Ginecología"),
    Choice("5", "Laboratorio clínico"),
]
NINE = [Choice(str(k), f"Servicio número {k}") for k in range(1, 10)]
WITH_ZERO = [*NINE, Choice("0", "Ninguna me sirve")]


def picked(reply: object) -> str | None:
    """The key a reply picked, or None."""
    return reply.choice.key if isinstance(reply, Picked) else None


def test_the_module_examples_run() -> None:
    result = doctest.testmod(replies)
    assert result.attempted >= 8 and result.failed == 0


# --- interactive reply ids ----------------------------------------------------------------


def test_an_interactive_reply_id_maps_back_exactly() -> None:
    for choice in SERVICES:
        assert read_choice("whatever the title", SERVICES, reply_id=choice.key) == Picked(
            choice, "id"
        )


@pytest.mark.parametrize("reply_id", ["9", "0", "", "1 ", "medicina general"])
def test_an_id_not_of_this_menu_is_no_match_never_read_as_text(reply_id: str) -> None:
    assert isinstance(read_choice("Medicina general", SERVICES, reply_id=reply_id), NoMatch)


# --- keys, in every form a person types them --------------------------------------------

KEY_FORMS = [
    "{k}",
    " {k} ",
    "{k}.",
    "({k})",
    "{k})",
    "{k} .",
    "opción {k}",
    "Opción {k}.",
    "la {k}",
    "el número {k}",
    "nro. {k}",
]


@pytest.mark.parametrize("form", KEY_FORMS)
@pytest.mark.parametrize("key", [str(k) for k in range(1, 10)])
def test_every_key_in_every_typed_form(form: str, key: str) -> None:
    reply = read_choice(form.format(k=key), NINE)
    assert isinstance(reply, Picked) and (reply.choice.key, reply.how) == (key, "key")


@pytest.mark.parametrize("key", [str(k) for k in range(10)])
def test_fullwidth_keycap_and_other_script_digits(key: str) -> None:
    fullwidth = chr(0xFF10 + int(key))
    keycap = f"{key}\ufe0f\u20e3"
    arabic_indic = chr(0x0660 + int(key))
    for typed in (fullwidth, keycap, arabic_indic):
        assert picked(read_choice(typed, WITH_ZERO)) == key, ascii(typed)


def test_star_and_hash_keys() -> None:
    menu = [Choice("1", "Uno"), Choice("*", "Otra fecha"), Choice("#", "Repetir")]
    assert picked(read_choice("*", menu)) == "*"
    assert picked(read_choice("#\ufe0f\u20e3", menu)) == "#"
    assert isinstance(read_choice("#", SERVICES), NoMatch)


@pytest.mark.parametrize("typed", ["6", "9", "12", "10", "🔟", "1 2", "2 3 4", "1.5", "1,2"])
def test_a_number_that_is_no_key_is_no_match(typed: str) -> None:
    assert isinstance(read_choice(typed, SERVICES), NoMatch)


def test_zero_is_the_main_menu_unless_the_menu_has_its_own_zero() -> None:
    for typed in ("0", " 0 ", "0.", "０", "0️⃣", "cero", "Cero", "opción 0"):
        assert read_choice(typed, NINE) == MainMenu(), typed
        assert picked(read_choice(typed, WITH_ZERO)) == "0", typed


# --- Spanish number words ------------------------------------------------------------------


@pytest.mark.parametrize("n", range(11))
def test_every_cardinal_word_from_num2words(n: int) -> None:
    word = num2words(n, lang="es")  # an independent speller
    for typed in (word, word.upper(), word.capitalize(), f"la {word}", f"opción {word}"):
        reply = read_choice(typed, WITH_ZERO)
        if n == 10:  # no key is 10: keys are one character
            assert isinstance(reply, NoMatch), typed
        else:
            assert picked(reply) == str(n), typed


@pytest.mark.parametrize("n", range(1, 11))
def test_every_ordinal_word_from_num2words_both_genders(n: int) -> None:
    masculine = num2words(n, lang="es", to="ordinal")
    feminine = masculine[:-1] + "a"
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", masculine) if not unicodedata.combining(c)
    )
    for typed in (
        masculine,
        feminine,
        plain,
        f"la {feminine}",
        f"el {masculine}",
        feminine.upper(),
    ):
        reply = read_choice(typed, WITH_ZERO)
        if n == 10:
            assert isinstance(reply, NoMatch), typed
        else:
            assert picked(reply) == str(n), typed


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("un", "1"),
        ("una", "1"),
        ("primer", "1"),
        ("tercer", "3"),
        ("setima", "7"),
        ("1ro", "1"),
        ("2da", "2"),
        ("3er", "3"),
        ("2ª", "2"),
        ("1.º", "1"),
        ("Dos", "2"),
        ("DOS", "2"),
    ],
)
def test_the_variants_people_write(typed: str, key: str) -> None:
    reply = read_choice(typed, NINE)
    assert isinstance(reply, Picked) and reply.choice.key == key
    assert reply.how == ("word" if typed.isalpha() else "key")


def test_the_table_agrees_with_num2words() -> None:
    for n in range(11):
        assert replies.NUMBER_WORDS[normalize(num2words(n, lang="es"))] == n
    for n in range(1, 11):
        assert replies.NUMBER_WORDS[normalize(num2words(n, lang="es", to="ordinal"))] == n


# --- titles, with typos, accents and case ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("Medicina general", "1"),
        ("medicina genral", "1"),  # the example: one letter missing
        ("medicina jeneral", "1"),
        ("medicna genral", "1"),  # two edits in 16 letters
        ("MEDICINA GENERAL", "1"),
        ("odontologia", "2"),
        ("Odontologìa", "2"),
        ("odontolojia", "2"),
        ("odotnologia", "2"),  # a transposition is one edit
        ("dmicina general", "1"),  # a letter dropped next to a swap: two edits
        ("pediatria", "3"),
        ("pediatra", "3"),
        ("ginecologia", "4"),
        ("laboratorio", "5"),  # a run of words covering half the title
        ("medicina", "1"),  # the only title it is half of
        ("odntlogia", "2"),  # two edits in 11 letters: the budget
        ("laboratorio clinico", "5"),
        ("  ¡Pediatría!  ", "3"),
        ("1 medicina general", "1"),  # a line copied back: key and title agree
        ("2. Odontología", "2"),
    ],
)
def test_titles_with_small_typos_accents_and_case(typed: str, key: str) -> None:
    assert picked(read_choice(typed, SERVICES)) == key


@pytest.mark.parametrize(
    "typed",
    [
        "clinico",  # too small a part of "Laboratorio clínico"
        "general",
        "1 odontologia",  # key and title disagree
        "xyz",
        "cita",
        "si",
        "no",
        "medizina jenerl",  # three edits
        "odntlgia",  # two edits in 11 letters is the budget; three here
    ],
)
def test_what_is_not_an_option(typed: str) -> None:
    assert isinstance(read_choice(typed, SERVICES), NoMatch)


AMBIGUOUS = [
    Choice("1", "Medicina general"),
    Choice("2", "Medicina especializada"),
    Choice("3", "Control prenatal"),
    Choice("4", "Control posnatal"),
    Choice("5", "Cita"),
    Choice("6", "Citas"),
]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("medicina", None),  # part of two titles
        ("control", None),
        ("control pronatal", None),  # one edit from 3, two from 4: a guess
        ("control prenatal", "3"),  # exact beats the two-edit rival
        ("control posnatal", "4"),
        ("cita", "5"),  # exact beats one edit
        ("citas", "6"),
        ("citaz", None),  # one edit from both
        ("medicina general", "1"),
        ("medicina especializada", "2"),
        ("especializada", "2"),
    ],
)
def test_close_scores_are_no_match_rather_than_a_guess(typed: str, expected: str | None) -> None:
    reply = read_choice(typed, AMBIGUOUS)
    if expected is None:
        assert isinstance(reply, NoMatch), reply
    else:
        assert picked(reply) == expected


def one_edit(word: str, data: st.DataObject) -> str:
    """``word`` with one random deletion, insertion, substitution or transposition."""
    i = data.draw(st.integers(0, len(word) - 1))
    letter = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    kind = data.draw(st.sampled_from(["delete", "insert", "substitute", "transpose"]))
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "insert":
        return word[:i] + letter + word[i:]
    if kind == "substitute":
        return word[:i] + letter + word[i + 1 :]
    j = min(i + 1, len(word) - 1)
    return word[:i] + word[j] + word[i] + word[j + 1 :] if j > i else word


@settings(max_examples=300, deadline=None)
@given(data=st.data(), edits=st.integers(1, 2))
def test_one_or_two_random_typos_still_pick_the_title(data: st.DataObject, edits: int) -> None:
    choice = data.draw(st.sampled_from(SERVICES))
    title = normalize(choice.title)
    assume(edits == 1 or len(title) >= 8)  # the budget: 1 edit from 4 letters, 2 from 8
    typed = title
    for _ in range(edits):
        typed = one_edit(typed, data)
    assume(typed.strip() and not normalize(typed).isdecimal())
    assert picked(read_choice(typed, SERVICES)) == choice.key, typed


def damerau(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (Lowrance-Wagner), written out as the test's reference."""
    big = len(a) + len(b)
    last_row: dict[str, int] = {}
    d = [[big] * (len(b) + 2) for _ in range(len(a) + 2)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    for i in range(1, len(a) + 1):
        last_col = 0
        for j in range(1, len(b) + 1):
            k, cost = last_row.get(b[j - 1], 0), int(a[i - 1] != b[j - 1])
            d[i + 1][j + 1] = min(
                d[i][j] + cost,
                d[i + 1][j] + 1,
                d[i][j + 1] + 1,
                d[k][last_col] + (i - k - 1) + 1 + (j - last_col - 1),
            )
            if not cost:
                last_col = j
        last_row[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def test_the_reference_distance() -> None:
    assert damerau("medicina general", "dmicina general") == 2
    assert damerau("ca", "abc") == 2  # optimal string alignment says 3
    assert damerau("asesor", "asesor") == 0
    assert damerau("", "abc") == 3


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_typo_within_reach_of_two_titles_is_no_match(data: st.DataObject) -> None:
    twins = [Choice("1", "Control prenatal"), Choice("2", "Control posnatal")]  # 2 edits apart
    typed = one_edit(data.draw(st.sampled_from(["control prenatal", "control posnatal"])), data)
    assume(len(typed.split()) == 2)
    distances = {c.key: damerau(typed, normalize(c.title)) for c in twins}
    within = sorted(key for key, d in distances.items() if d <= 2)  # 16 letters: 2 edits
    reply = read_choice(typed, twins)
    exact = [key for key, d in distances.items() if d == 0]
    if exact:
        assert picked(reply) == exact[0], typed
    elif len(within) == 1:
        assert picked(reply) == within[0], typed
    else:
        assert isinstance(reply, NoMatch), typed


# --- the global commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "menú",
        "menu",
        "MENÚ",
        "Menu.",
        "inicio",
        "Inicio",
        "menú principal",
        "volver al menú",
        "volver",
        "meni",
        "menú por favor",
        "quiero ir al menú",
    ],
)
def test_back_to_the_main_menu(typed: str) -> None:
    assert read_choice(typed, SERVICES) == MainMenu()
    assert read_choice(typed, []) == MainMenu()


@pytest.mark.parametrize(
    "typed",
    [
        "asesor",
        "Asesor",
        "ASESORA",
        "agente",
        "asesr",
        "aseosr",
        "agnte",
        "hablar con una persona",
        "Hablar con un asesór",
        "hablar con una persna",
        "quiero hablar con un asesor",
        "un asesor por favor",
        "necesito un agente",
    ],
)
def test_hand_off_to_a_person(typed: str) -> None:
    assert read_choice(typed, SERVICES) == Agent()


@pytest.mark.parametrize(
    "typed",
    [
        "volver a intentar",
        "la fecha de inicio",
        "hay mucha gente",
        "ases",
        "asesoramiento financiero",
        "persona",
    ],
)
def test_commands_are_not_read_into_other_words(typed: str) -> None:
    assert isinstance(read_choice(typed, SERVICES), NoMatch)


def test_a_command_inside_a_long_message_counts_exactly() -> None:
    filler = "le escribo porque tengo una pregunta sobre mi cita " * 8
    assert len(filler) > 300
    assert read_choice(filler + "quiero hablar con un asesor", SERVICES) == Agent()
    assert isinstance(read_choice(filler + "quiero hablar con un asesr", SERVICES), NoMatch)
    assert read_choice(filler[:250] + "quiero hablar con un asesr", SERVICES) == Agent()


def test_the_menus_own_option_wins_over_a_command() -> None:
    menu = [Choice("1", "Pedir cita"), Choice("2", "Asesor")]
    assert picked(read_choice("asesor", menu)) == "2"
    assert isinstance(read_choice("asesr", menu), NoMatch)  # a typo of both: no guess


# --- random text ------------------------------------------------------------------------------


def spells_nothing(char: str) -> bool:
    """A character no normalization turns into a Latin letter or a digit."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", char)).casefold()
    return not any((c.isascii() and c.isalnum()) or c.isdecimal() for c in folded)


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=200), reply_id=st.none() | st.text(max_size=5))
def test_any_text_is_read_without_crashing(text: str, reply_id: str | None) -> None:
    assert isinstance(
        read_choice(text, SERVICES, reply_id=reply_id), Picked | MainMenu | Agent | NoMatch
    )
    assert isinstance(
        read_digits(text, min_digits=5, max_digits=12), Digits | MainMenu | Agent | NoMatch
    )


@settings(max_examples=500, deadline=None)
@given(text=st.text(st.characters(codec="utf-8").filter(spells_nothing), min_size=1, max_size=60))
def test_text_that_spells_no_latin_word_nor_digit_never_matches(text: str) -> None:
    assert isinstance(read_choice(text, SERVICES), NoMatch)
    assert isinstance(read_choice(text, WITH_ZERO), NoMatch)
    assert isinstance(read_digits(text), NoMatch)


# --- digits for a digits request ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("1023456789", "1023456789"),
        ("1.023.456.789", "1023456789"),
        ("1 023 456 789", "1023456789"),
        ("1-023-456-789", "1023456789"),
        ("1,023,456,789", "1023456789"),
        ("  1023456789\n", "1023456789"),
        ("１０２３４５６７８９", "1023456789"),
        ("1\u00a0023\u202f456", "1023456"),  # no-break and narrow no-break spaces
        ("١٠٢٣٤٥٦", "1023456"),
        ("1️⃣0️⃣2️⃣3️⃣4️⃣", "10234"),
    ],
)
def test_typed_digits_lose_their_separators(typed: str, value: str) -> None:
    assert read_digits(typed, min_digits=5, max_digits=12) == Digits(value)


@pytest.mark.parametrize(
    "typed",
    ["CC 1023456789", "1023456789a", "10234S6789", "uno cero dos", "1023/456", "", "  ", "🔟🔟🔟"],
)
def test_letters_and_other_symbols_refuse_the_digits(typed: str) -> None:
    assert isinstance(read_digits(typed, min_digits=1, max_digits=12), NoMatch)


@pytest.mark.parametrize(("count", "ok"), [(4, False), (5, True), (12, True), (13, False)])
def test_the_digit_count_bounds(count: int, ok: bool) -> None:
    reply = read_digits("7" * count, min_digits=5, max_digits=12)
    assert (reply == Digits("7" * count)) is ok


def test_commands_during_a_digits_request() -> None:
    assert read_digits("menú", min_digits=5) == MainMenu()
    assert read_digits("0", min_digits=5) == MainMenu()
    assert read_digits("cero", min_digits=5) == MainMenu()
    assert read_digits("0", min_digits=1) == Digits("0")  # a lone 0 is a valid answer here
    assert read_digits("quiero hablar con un asesor", min_digits=5) == Agent()


@settings(max_examples=300, deadline=None)
@given(
    groups=st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=5),
    separator=st.sampled_from([" ", ".", "-", ",", " . "]),
)
def test_any_grouping_reads_as_its_digits(groups: list[str], separator: str) -> None:
    digits = "".join(groups)
    assume(digits != "0")
    assert read_digits(separator.join(groups), max_digits=20) == Digits(digits)


@settings(max_examples=300, deadline=None)
@given(digits=st.text("0123456789", min_size=5, max_size=12), data=st.data())
def test_a_letter_anywhere_refuses_the_digits(digits: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(digits)))
    letter = data.draw(st.characters(categories=["Lu", "Ll"]))
    assert isinstance(
        read_digits(digits[:i] + letter + digits[i:], min_digits=5, max_digits=13), NoMatch
    )
