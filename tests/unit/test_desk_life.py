"""A contact's life over any sequence of operations, against a model of the state table.

The kind of fault: a sequence the table-driven test (test_desk_store.py, every state ×
every operation) does not reach — a version not bumped or bumped twice, a refused
change that still wrote something, a step left open after the contact ended, steps
numbered with a gap. Hypothesis draws sequences of operations; after each one the
stored contact must equal the model's prediction (state, version, ended or not) and
the steps must be numbered 1..n with at most one open, none once the contact is
final. SQLite (one migrated file shared by the examples, a fresh contact each).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.desk.errors import ContactConflict, DispositionRequired, ReasonRequired
from ivr.desk.model import (
    ACTIVE,
    CLOSED,
    ESCALATED,
    FINAL_STATES,
    OPEN_STATES,
    VOICE,
    WRAPUP,
    NewContact,
)
from ivr.desk.store import DeskStore
from ivr.store.db import Database

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
OPERATIONS = [
    "end",
    "close",
    "close_empty",
    "escalate",
    "escalate_empty",
    "step",
    "script",
    "close_stale",
]
_numbers = itertools.count()


@dataclass
class Model:
    state: str = ACTIVE
    version: int = 1
    ended: bool = False
    steps: int = 0

    def apply(self, op: str) -> type[Exception] | None:
        """The model's next state after ``op``; the error the store must raise, or None."""
        if op == "end":
            if self.state == ACTIVE:
                self.state, self.ended, self.version = WRAPUP, True, self.version + 1
            elif not self.ended:
                self.ended, self.version = True, self.version + 1
            return None
        if op == "close_empty":
            return DispositionRequired
        if op == "escalate_empty":
            return ReasonRequired
        if op == "close_stale":
            return ContactConflict
        if op == "escalate":
            if self.state != ACTIVE:
                return ContactConflict
            self.state, self.version = ESCALATED, self.version + 1
            return None
        if self.state not in OPEN_STATES:
            return ContactConflict
        if op == "close":
            self.state, self.version = CLOSED, self.version + 1
        elif op == "script":
            self.version += 1
        else:  # step: the contact's place moves, its version does not
            self.steps += 1
        return None


async def run(store: DeskStore, contact_id: str, op: str, version: int) -> None:
    if op == "end":
        await store.end(contact_id)
    elif op == "close":
        await store.close(
            contact_id, disposition="agendado", agent="7001", expected_version=version
        )
    elif op == "close_empty":
        await store.close(contact_id, disposition=" ", agent="7001")
    elif op == "close_stale":
        await store.close(contact_id, disposition="x", agent="7001", expected_version=version - 1)
    elif op == "escalate":
        await store.escalate(contact_id, reason="clínico", to_queue="l2_clinico", agent="7001")
    elif op == "escalate_empty":
        await store.escalate(contact_id, reason="", to_queue="l2_clinico", agent="7001")
    elif op == "step":
        await store.record_step(contact_id, node_id="n", node_kind="text", label="L", agent="7001")
    else:
        await store.set_script(contact_id, version=1, node_id="n", expected_version=version)


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("desk-life") / "citas.db"

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    return path


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=10))
def test_any_sequence_follows_the_state_table(database_file: Path, ops: list[str]) -> None:
    asyncio.run(_follow(database_file, ops))


async def _follow(database_file: Path, ops: list[str]) -> None:
    db = Database(f"sqlite+aiosqlite:///{database_file}")
    clock = iter(T0 + timedelta(seconds=i) for i in itertools.count())
    store = DeskStore(db, clock=lambda: next(clock))
    try:
        n = next(_numbers)
        contact = await store.open_contact(NewContact(
            kind=VOICE, agent="7001", agent_name="Ana", queue="general", level=1,
            area="recepcion", journey_key=f"life-{n}", answered_at=T0, source_key=f"life-{n}",
        ))  # fmt: skip
        model = Model()
        for op in ops:
            expected_error = model.apply(op)
            before = await store.get(contact.id)
            assert before is not None
            if expected_error is None:
                await run(store, contact.id, op, before.version)
            else:
                with pytest.raises(expected_error):
                    await run(store, contact.id, op, before.version)
                assert await store.get(contact.id) == before, f"{op} refused but wrote"
            now = await store.get(contact.id)
            assert now is not None
            assert (now.state, now.version, now.ended_at is not None) == (
                model.state, model.version, model.ended,
            ), (ops, op)  # fmt: skip
            steps = await store.steps(contact.id)
            assert [s.seq for s in steps] == list(range(1, model.steps + 1))
            still_open = [s for s in steps if s.left_at is None]
            assert len(still_open) <= 1
            if now.state in FINAL_STATES:
                assert still_open == [] and all(s.seconds is not None for s in steps)
    finally:
        await db.close()
