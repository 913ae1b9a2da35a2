"""Keyword lists (ivr/text/keywords.py, ivr/text/keyword_store.py): matching, editing, audit."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, inspect

from ivr.ops.flags import Role
from ivr.ops.service import Actor, Forbidden, InvalidChange, NotFound
from ivr.store.db import Database, alembic_config
from ivr.store.models import Base
from ivr.text.keyword_store import KeywordStore
from ivr.text.keywords import (
    InvalidKeyword,
    Keyword,
    KeywordMatcher,
    match_key,
    priority_reason,
)

ADMIN = Actor("token:ada", Role.ADMIN)
OPERATOR = Actor("token:olga", Role.OPERATOR)
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def kw(phrase: str, raises: bool = True, list_name: str = "Legal") -> Keyword:
    return Keyword(f"id-{phrase}", "l1", list_name, phrase, raises)


# --- matching ---------------------------------------------------------------------------------
MATCHES = [
    ("tutela", "Voy a poner una tutela", "tutela"),
    ("tutela", "TUTELAS ya", "TUTELAS"),
    ("tutela", "una tutéla", "tutéla"),
    ("Superintendencia de Salud", "me quejo en la superintendencia de salud.", "superintendencia de salud"),
    ("nadie responde", "Nadie responde nunca", "Nadie responde"),
    ("derecho de petición", "radico un DERECHO DE PETICION", "DERECHO DE PETICION"),
    ("demora", "qué demoras", "demoras"),
    ("Supersalud", "supersalud!!", "supersalud"),
]  # fmt: skip
MISSES = [
    ("tutela", "quiero una cita"),
    ("nadie responde", "nadie me responde"),  # words side by side only
    ("nadie responde", "nadie. Responde"),  # not across a clause break
    ("derecho de petición", "derecho a la petición"),
    ("demora", "demócrata"),
]


@pytest.mark.parametrize(("phrase", "text", "written"), MATCHES)
def test_a_keyword_matches_inflected_unaccented_and_capitalised(phrase: str, text: str, written: str) -> None:  # fmt: skip
    [found] = KeywordMatcher([kw(phrase)]).find(text)
    assert found.keyword.phrase == phrase and found.written == written


@pytest.mark.parametrize(("phrase", "text"), MISSES)
def test_a_keyword_does_not_match_elsewhere(phrase: str, text: str) -> None:
    assert KeywordMatcher([kw(phrase)]).find(text) == []


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


PHRASES = [
    "tutela",
    "superintendencia",
    "nadie responde",
    "queja",
    "derecho de petición",
    "abogado",
]
FILL = ["quiero", "una", "cita", "la", "el", "médico", "ya", "por", "favor", "señora"]


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    before=st.lists(st.sampled_from(FILL), max_size=5),
    after=st.lists(st.sampled_from(FILL), max_size=5),
    phrase=st.sampled_from(PHRASES),
    shout=st.booleans(),
)
def test_a_keyword_is_found_wherever_it_sits_however_it_is_written(
    before: list[str], after: list[str], phrase: str, shout: bool
) -> None:
    written = phrase.upper() if shout else strip_accents(phrase)
    text = " ".join([*before, written, *after])
    matcher = KeywordMatcher([kw(p) for p in PHRASES])
    assert [m.keyword.phrase for m in matcher.find(text)] == [phrase]


def test_priority_reason_names_the_keywords_that_raise_in_the_texts_order() -> None:
    matcher = KeywordMatcher([kw("tutela"), kw("demora", raises=False), kw("Supersalud")])
    matches = matcher.find("Supersalud y tutela por la demora")
    assert priority_reason(matches) == "palabra clave: Supersalud, tutela"
    assert priority_reason(matcher.find("qué demora")) is None
    assert priority_reason([]) is None


@pytest.mark.parametrize("phrase", ["", "   ", "!!!", "¿?", "x" * 121, "a b c d e f g"])
def test_a_keyword_that_cannot_match_or_is_too_long_is_refused(phrase: str) -> None:
    with pytest.raises(InvalidKeyword):
        match_key(phrase)


# --- the store (SQLite, and PostgreSQL when CITAS_TEST_PG_URL is set) ---------------------------
@pytest.fixture
def store(db: Database) -> KeywordStore:
    return KeywordStore(db, clock=lambda: T0)


async def test_an_admin_builds_a_list_and_every_change_is_audited(store: KeywordStore) -> None:
    legal = await store.create_list(ADMIN, "Legal", "Escalan a jurídica", "lista inicial")
    tutela = await store.add_keyword(
        ADMIN, legal.id, "  Tutela ", raises_priority=True, reason="plan"
    )
    demora = await store.add_keyword(
        ADMIN, legal.id, "demora", raises_priority=False, reason="plan"
    )
    await store.update_keyword(ADMIN, demora.id, raises_priority=True, reason="muchas quejas")
    await store.remove_keyword(ADMIN, tutela.id, reason="ya no aplica")
    await store.update_list(ADMIN, legal.id, name="Jurídica", description="", reason="nombre")

    [lst] = await store.lists()
    assert (lst.name, [(k.phrase, k.raises_priority) for k in lst.keywords]) == (
        "Jurídica",
        [("demora", True)],
    )
    assert [k.phrase for k in await store.keywords()] == ["demora"]
    history = await store.history()
    assert [(e.action, e.actor, e.reason) for e in reversed(history)] == [
        ("list_created", "token:ada", "lista inicial"),
        ("keyword_added", "token:ada", "plan"),
        ("keyword_added", "token:ada", "plan"),
        ("keyword_changed", "token:ada", "muchas quejas"),
        ("keyword_removed", "token:ada", "ya no aplica"),
        ("list_changed", "token:ada", "nombre"),
    ]
    changed = history[2]
    assert (changed.old_value, changed.new_value) == (
        {"phrase": "demora", "raises_priority": False}, {"phrase": "demora", "raises_priority": True},
    )  # fmt: skip
    assert history[1].old_value == {"phrase": "Tutela", "raises_priority": True}
    assert all(e.role == "admin" and e.at == T0 for e in history)


async def test_deleting_a_list_keeps_its_keywords_in_the_audit(store: KeywordStore) -> None:
    legal = await store.create_list(ADMIN, "Legal", "", "r")
    await store.add_keyword(ADMIN, legal.id, "tutela", raises_priority=True, reason="r")
    await store.delete_list(ADMIN, legal.id, "se reorganiza")
    assert await store.lists() == []
    [deleted, *_] = await store.history()
    assert deleted.action == "list_deleted" and deleted.old_value == {
        "name": "Legal", "description": "",
        "keywords": [{"phrase": "tutela", "raises_priority": True}],
    }  # fmt: skip


async def unchanged(store: KeywordStore) -> tuple[object, ...]:
    return (await store.lists(), len(await store.history()))


REFUSALS = [
    ("operator", lambda s, lid, kid: s.add_keyword(OPERATOR, lid, "queja", raises_priority=True, reason="r"), Forbidden),
    ("operator list", lambda s, lid, kid: s.create_list(OPERATOR, "Otra", "", "r"), Forbidden),
    ("operator remove", lambda s, lid, kid: s.remove_keyword(OPERATOR, kid, "r"), Forbidden),
    ("no reason", lambda s, lid, kid: s.add_keyword(ADMIN, lid, "queja", raises_priority=True, reason="  "), InvalidChange),
    ("same stems", lambda s, lid, kid: s.add_keyword(ADMIN, lid, "TUTELAS", raises_priority=False, reason="r"), InvalidChange),
    ("empty phrase", lambda s, lid, kid: s.add_keyword(ADMIN, lid, "¡!", raises_priority=False, reason="r"), InvalidChange),
    ("same name", lambda s, lid, kid: s.create_list(ADMIN, " Legal ", "", "r"), InvalidChange),
    ("empty name", lambda s, lid, kid: s.create_list(ADMIN, "  ", "", "r"), InvalidChange),
    ("no list", lambda s, lid, kid: s.add_keyword(ADMIN, "nope", "queja", raises_priority=True, reason="r"), NotFound),
    ("no keyword", lambda s, lid, kid: s.update_keyword(ADMIN, "nope", raises_priority=True, reason="r"), NotFound),
    ("no list to delete", lambda s, lid, kid: s.delete_list(ADMIN, "nope", "r"), NotFound),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refused_change_changes_nothing(store: KeywordStore, case: str, change: object, error: type[Exception]) -> None:  # fmt: skip
    legal = await store.create_list(ADMIN, "Legal", "", "r")
    tutela = await store.add_keyword(ADMIN, legal.id, "tutela", raises_priority=True, reason="r")
    before = await unchanged(store)
    with pytest.raises(error):
        await change(store, legal.id, tutela.id)  # type: ignore[operator]
    assert await unchanged(store) == before


async def test_the_same_phrase_may_sit_in_two_lists(store: KeywordStore) -> None:
    a = await store.create_list(ADMIN, "A", "", "r")
    b = await store.create_list(ADMIN, "B", "", "r")
    await store.add_keyword(ADMIN, a.id, "tutela", raises_priority=True, reason="r")
    await store.add_keyword(ADMIN, b.id, "tutela", raises_priority=False, reason="r")
    assert sorted((k.list_name, k.raises_priority) for k in await store.keywords()) == [
        ("A", True),
        ("B", False),
    ]


async def test_the_migration_creates_the_tables(db: Database) -> None:
    async with db.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {
        "keyword_lists",
        "keywords",
        "keyword_audit",
        "text_analyses",
        "incident_reports",
    } <= names


# --- migration 0010 ---------------------------------------------------------------------------
MY_TABLES = {"keyword_lists", "keywords", "keyword_audit", "text_analyses", "incident_reports"}


def _diffs(connection: Connection) -> list[object]:
    """What differs between the database and the ORM tables of migration 0010."""
    import ivr.incidents.tables  # noqa: F401  (registers the table on Base.metadata)

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        for item in diff if isinstance(diff, list) else [diff]:
            names = (
                {getattr(x, "name", None) for x in item[1:]}
                | {getattr(getattr(x, "table", None), "name", None) for x in item[1:]}
                | {x for x in item[1:] if isinstance(x, str)}
            )
            if names & MY_TABLES:
                found.append(item)
    return found


async def test_migration_0010_matches_the_tables_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        assert await conn.run_sync(_diffs) == []
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0009"))
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert names & MY_TABLES == set() and "conversations" in names
    await db.migrate()
    assert await KeywordStore(db).lists() == []
