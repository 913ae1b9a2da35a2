"""Races on the desk's tables, on a real database (SQLite, and PostgreSQL when
CITAS_TEST_PG_URL is set — the production case, where transactions really overlap).

The kind of fault: a decision taken on a read that a concurrent writer invalidates
(check-then-insert, check-then-update). Its instances here: one AgentConnect
delivered twice at once (two contacts), two agents' clicks closing one contact at
once (both "win"), two steps recorded at once (one seq twice), two administrators
publishing at once (two versions published, or none), two servers seeding at once.
Each race is run several times with separate stores (separate connections).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.desk.errors import ContactConflict
from ivr.desk.model import CLOSED, PUBLISHED, VOICE, NewContact
from ivr.desk.store import DeskStore, ScriptStore
from ivr.store.db import Database

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
ROUNDS = 5


def ok(tree: Mapping[str, Any]) -> None:
    """A validator that accepts every tree (the races do not depend on the rules)."""


def connect(n: int, uniqueid: str, source_key: str | None) -> NewContact:
    return NewContact(
        kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="general", level=1,
        area="recepcion", journey_key=uniqueid, answered_at=T0, uniqueid=uniqueid,
        source_key=source_key, context={"delivery": n},
    )  # fmt: skip


@pytest.mark.parametrize("keyed", [True, False], ids=["source_key", "answer tuple"])
async def test_two_concurrent_deliveries_of_one_agent_connect_make_one_contact(
    db: Database, keyed: bool
) -> None:
    stores = [DeskStore(db), DeskStore(db)]
    for round_ in range(ROUNDS):
        uniqueid = f"1733324400.{round_}"
        key = f"{uniqueid}/7001" if keyed else None
        opened = await asyncio.gather(
            *(stores[i].open_contact(connect(i, uniqueid, key)) for i in range(2))
        )
        assert opened[0].id == opened[1].id
        assert len(await stores[0].by_uniqueid(uniqueid)) == 1


async def test_two_concurrent_closes_one_wins_the_other_conflicts(db: Database) -> None:
    stores = [DeskStore(db), DeskStore(db)]
    for round_ in range(ROUNDS):
        contact = await stores[0].open_contact(connect(0, f"u{round_}", f"k{round_}"))
        results = await asyncio.gather(
            *(stores[i].close(contact.id, disposition=f"d{i}", agent=f"700{i + 1}")
              for i in range(2)),
            return_exceptions=True,
        )  # fmt: skip
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], ContactConflict) and lost[0].state == CLOSED
        final = await stores[0].get(contact.id)
        assert final is not None and final.disposition == won[0].disposition
        assert final.version == 2  # one change written, not two


async def test_concurrent_steps_are_numbered_once_each(db: Database) -> None:
    stores = [DeskStore(db) for _ in range(3)]
    contact = await stores[0].open_contact(connect(0, "u", "k"))
    await asyncio.gather(*(
        stores[i % 3].record_step(contact.id, node_id=f"n{i}", node_kind="text", label="L",
                                  agent="7001")
        for i in range(6)
    ))  # fmt: skip
    steps = await stores[0].steps(contact.id)
    assert [s.seq for s in steps] == [1, 2, 3, 4, 5, 6]
    assert sorted(s.node_id for s in steps) == [f"n{i}" for i in range(6)]
    assert [s.left_at is None for s in steps] == [False] * 5 + [True]  # only the last is open


async def test_two_concurrent_publishes_leave_exactly_one_published(db: Database) -> None:
    stores = [ScriptStore(db, ok), ScriptStore(db, ok)]
    await stores[0].seed({"v": 1})
    for _ in range(ROUNDS):
        a = await stores[0].create({"v": "a"}, note="a", author="ana")
        b = await stores[1].create({"v": "b"}, note="b", author="bruno")
        published = await asyncio.gather(
            stores[0].publish(a.version, author="ana"), stores[1].publish(b.version, author="bruno")
        )
        assert all(p.state == PUBLISHED for p in published)  # each saw its own publish
        versions = await stores[0].versions()
        assert [v.version for v in versions if v.state == PUBLISHED] in ([a.version], [b.version])
        active = await stores[0].active()
        assert active is not None and active.version in (a.version, b.version)
    numbers = [v.version for v in await stores[0].versions()]
    assert sorted(numbers) == list(range(1, 2 * ROUNDS + 2))  # no number twice, none lost


@pytest.mark.parametrize("writers", [2, 6, 12])
async def test_concurrent_creates_get_distinct_numbers(db: Database, writers: int) -> None:
    # Each round of the race has one winner: n writers need up to n attempts (six at
    # once once failed on SQLite with a bound of five attempts).
    stores = [ScriptStore(db, ok) for _ in range(3)]
    created = await asyncio.gather(
        *(stores[i % 3].create({"i": i}, note="", author="a") for i in range(writers))
    )
    assert sorted(c.version for c in created) == list(range(1, writers + 1))


async def test_concurrent_seeds_publish_version_one_once(db: Database) -> None:
    stores = [ScriptStore(db, ok) for _ in range(3)]
    seeded = await asyncio.gather(*(s.seed({"n": i}) for i, s in enumerate(stores)))
    winners = [s for s in seeded if s is not None]
    assert len(winners) == 1 and winners[0].version == 1
    assert [v.version for v in await stores[0].versions()] == [1]
