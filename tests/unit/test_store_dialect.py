"""``ivr.store.db.dialect_insert``: the stores' one upsert builder (records, change feed,
SMS outbox, booking, chat, surveys), per database."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from ivr.booking.db import _guard
from ivr.booking.model import BookingUnavailable
from ivr.store.db import UnsupportedDialect, dialect_insert
from ivr.store.models import ChangeVersionRow

DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_database_gets_its_own_on_conflict(name: str) -> None:
    built = dialect_insert(name, ChangeVersionRow)
    assert isinstance(built, {"postgresql": postgresql.Insert, "sqlite": sqlite.Insert}[name])
    statement = built.values(topic="flags", version=1)
    statement = statement.on_conflict_do_update(index_elements=["topic"], set_={"version": 2})
    sql = str(statement.compile(dialect=DIALECTS[name]))
    assert sql.startswith("INSERT INTO change_versions")
    assert "ON CONFLICT (topic) DO UPDATE SET version" in sql


@pytest.mark.parametrize("name", ["mysql", "mssql", "oracle", ""])
def test_another_database_is_refused_by_name(name: str) -> None:
    with pytest.raises(UnsupportedDialect, match=f"no upsert for the {name} database"):
        dialect_insert(name, ChangeVersionRow)


def test_the_booking_says_it_as_an_unavailable_booking() -> None:
    """The booking's callers handle BookingUnavailable (the caller goes to the agents)."""
    from datetime import UTC, datetime

    with pytest.raises(BookingUnavailable, match="booking: no upsert for the mysql database"):
        _guard("mysql", "CC-1", datetime(2026, 12, 1, tzinfo=UTC))
