"""DeskStore and ScriptStore on a real database (SQLite, and PostgreSQL when
CITAS_TEST_PG_URL is set).

The kinds of fault: a re-delivered AMI event that opens a second contact; a step
whose time is never known (not ended by the next step, the close or the
escalation); a contact closed without a disposition, or closed twice, or changed on
a stale view; a transition the life of a contact does not allow; a hop that loses
its journey or its script's place; two published script versions, or none after a
publish; a caller's number in the API's shapes. Each is tested over its range: every
(state, operation) pair of the life table, concurrent deliveries, closes and
publishes (tests/unit/test_desk_concurrency.py for the races), the migration against
the ORM tables and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect
from sqlalchemy.exc import IntegrityError

import ivr.desk.tables  # noqa: F401  (the ORM tables in Base.metadata)
from ivr.desk.errors import (
    ContactConflict,
    ContactNotFound,
    DispositionRequired,
    ReasonRequired,
    ScriptInvalid,
    ScriptNotDraft,
    ScriptVersionNotFound,
)
from ivr.desk.model import (
    ACTIVE,
    CHAT,
    CLOSED,
    ESCALATED,
    PUBLISHED,
    RETIRED,
    VOICE,
    WRAPUP,
    NewContact,
    mask_digit_runs,
)
from ivr.desk.store import DeskStore, ScriptStore
from ivr.desk.tables import ScriptVersionRow
from ivr.store.db import Database, alembic_config
from ivr.store.models import Base

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
DESK_TABLES = {"desk_contacts", "desk_steps", "desk_presence", "script_versions"}
TREE: dict[str, Any] = {"call_types": [{"id": "agendamiento", "label": "Agendamiento"}]}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(db: Database, clock: Clock) -> DeskStore:
    return DeskStore(db, clock=clock)


def accept_all(tree: Mapping[str, Any]) -> None:
    if "call_types" not in tree:
        raise ScriptInvalid(["falta call_types"])


@pytest.fixture
def scripts(db: Database, clock: Clock) -> ScriptStore:
    return ScriptStore(db, accept_all, clock=clock)


def voice(agent: str = "7001", uniqueid: str = "1733324400.12", **kw: Any) -> NewContact:
    fields: dict[str, Any] = dict(
        kind=VOICE, agent=agent, agent_name="Ana Gómez", queue="general", level=1,
        area="recepcion", journey_key=uniqueid, answered_at=T0, queued_at=T0 - timedelta(seconds=9),
        channel="PJSIP/3001234567-0000000c", uniqueid=uniqueid, linkedid=uniqueid,
        sip_call_id="call-abc@127.0.0.1", context={"segment": "non-target"},
        ivr_reason="non-target", hold_seconds=9.0, ring_seconds=2.0,
        source_key=f"{uniqueid}/{agent}",
    )  # fmt: skip
    fields.update(kw)
    return NewContact(**fields)


# --- opening -----------------------------------------------------------------------------
async def test_open_gives_an_active_contact_with_everything_it_was_given(store: DeskStore) -> None:
    contact = await store.open_contact(voice())
    assert (contact.state, contact.version, contact.kind) == (ACTIVE, 1, VOICE)
    assert (contact.agent, contact.queue, contact.level, contact.journey_key) == (
        "7001", "general", 1, "1733324400.12",
    )  # fmt: skip
    assert contact.answered_at == T0 and contact.queued_at == T0 - timedelta(seconds=9)
    assert contact.context == {"segment": "non-target"} and contact.hold_seconds == 9.0
    assert await store.get(contact.id) == contact
    assert await store.get("no-such") is None


@pytest.mark.parametrize("keyed", [True, False], ids=["source_key", "answer tuple"])
async def test_a_redelivered_event_gives_the_same_contact(store: DeskStore, keyed: bool) -> None:
    new = voice() if keyed else voice(source_key=None)
    first = await store.open_contact(new)
    again = await store.open_contact(new)
    assert again == first
    assert len(await store.contacts()) == 1
    # Another agent, or another answer of the same agent, is another contact.
    other = await store.open_contact(voice(agent="7002", source_key=None if not keyed else "k2"))
    later = await store.open_contact(
        voice(answered_at=T0 + timedelta(minutes=3), source_key=None if not keyed else "k3")
    )
    assert len({first.id, other.id, later.id}) == 3


async def test_the_database_refuses_a_second_row_for_one_answer(db: Database) -> None:
    # The rule is the database's, not only the store's lookup.
    row = dict(kind="voice", agent="7001", agent_name="A", queue="general", level=1, area="r",
               journey_key="j", answered_at=T0, context={}, disposition_note="", state="active",
               created_at=T0, updated_at=T0, version=1)  # fmt: skip
    from ivr.desk.tables import DeskContactRow

    async with db.sessions.begin() as session:
        await session.execute(insert(DeskContactRow).values(id="a", **row))
    with pytest.raises(IntegrityError):
        async with db.sessions.begin() as session:
            await session.execute(insert(DeskContactRow).values(id="b", **row))


async def test_open_refuses_bad_input(store: DeskStore) -> None:
    with pytest.raises(ValueError, match="kind"):
        await store.open_contact(voice(kind="fax"))
    with pytest.raises(ValueError, match="aware"):
        await store.open_contact(voice(answered_at=datetime(2026, 12, 4, 10)))
    with pytest.raises(ContactNotFound):
        await store.open_contact(voice(previous_contact_id="nobody"))


async def test_a_hop_keeps_the_journey_and_the_scripts_place(store: DeskStore) -> None:
    first = await store.open_contact(voice())
    await store.set_script(first.id, version=3, node_id="agendamiento/sin_cupo/s2",
                           call_type="agendamiento", reason="sin_cupo", scenario="tiene_smartphone")  # fmt: skip
    await store.escalate(first.id, reason="Requiere valoración clínica", to_queue="l2_clinico",
                         agent="7001")  # fmt: skip
    hop = await store.open_contact(voice(
        agent="7003", agent_name="Carla Ruiz", queue="l2_clinico", level=2, area="clinico",
        journey_key="some-other-key", answered_at=T0 + timedelta(minutes=2),
        previous_contact_id=first.id, source_key="hop",
    ))  # fmt: skip
    assert hop.journey_key == first.journey_key and hop.previous_contact_id == first.id
    assert (hop.script_version, hop.script_node, hop.call_type, hop.reason, hop.scenario) == (
        3, "agendamiento/sin_cupo/s2", "agendamiento", "sin_cupo", "tiene_smartphone",
    )  # fmt: skip
    assert [c.id for c in await store.journey(first.journey_key)] == [first.id, hop.id]
    assert [c.id for c in await store.by_uniqueid("1733324400.12")] == [first.id, hop.id]


# --- the life of a contact ---------------------------------------------------------------
async def contact_in(store: DeskStore, state: str, n: int = 0) -> str:
    contact = await store.open_contact(voice(uniqueid=f"u{state}{n}", source_key=f"s{state}{n}"))
    if state == WRAPUP:
        await store.end(contact.id)
    elif state == CLOSED:
        await store.close(contact.id, disposition="agendado", agent="7001")
    elif state == ESCALATED:
        await store.escalate(contact.id, reason="clínico", to_queue="l2_clinico", agent="7001")
    return contact.id


# (state, operation, the state after it, or the error it raises)
LIFE = [
    (ACTIVE, "end", WRAPUP), (WRAPUP, "end", WRAPUP), (CLOSED, "end", CLOSED),
    (ESCALATED, "end", ESCALATED),
    (ACTIVE, "close", CLOSED), (WRAPUP, "close", CLOSED), (CLOSED, "close", ContactConflict),
    (ESCALATED, "close", ContactConflict),
    (ACTIVE, "escalate", ESCALATED), (WRAPUP, "escalate", ContactConflict),
    (CLOSED, "escalate", ContactConflict), (ESCALATED, "escalate", ContactConflict),
    (ACTIVE, "step", ACTIVE), (WRAPUP, "step", WRAPUP), (CLOSED, "step", ContactConflict),
    (ESCALATED, "step", ContactConflict),
    (ACTIVE, "script", ACTIVE), (WRAPUP, "script", WRAPUP), (CLOSED, "script", ContactConflict),
    (ESCALATED, "script", ContactConflict),
]  # fmt: skip


async def operate(store: DeskStore, contact_id: str, operation: str) -> None:
    if operation == "end":
        await store.end(contact_id)
    elif operation == "close":
        await store.close(contact_id, disposition="agendado", agent="7001")
    elif operation == "escalate":
        await store.escalate(contact_id, reason="técnico", to_queue="l2_tecnico", agent="7001")
    elif operation == "step":
        await store.record_step(contact_id, node_id="n", node_kind="text", label="L", agent="7001")
    else:
        await store.set_script(contact_id, version=1, node_id="n")


@pytest.mark.parametrize(
    ("state", "operation", "after"), LIFE, ids=[f"{s}-{o}" for s, o, _ in LIFE]
)
async def test_every_operation_in_every_state(
    store: DeskStore, state: str, operation: str, after: str | type[Exception]
) -> None:
    contact_id = await contact_in(store, state)
    before = await store.get(contact_id)
    assert before is not None
    if isinstance(after, str):
        await operate(store, contact_id, operation)
        now = await store.get(contact_id)
        assert now is not None and now.state == after
    else:
        with pytest.raises(after) as refused:
            await operate(store, contact_id, operation)
        assert str(refused.value)  # Spanish, for the agent
        assert await store.get(contact_id) == before  # nothing written


@pytest.mark.parametrize("operation", ["end", "close", "escalate", "step", "script"])
async def test_an_unknown_contact_is_not_found(store: DeskStore, operation: str) -> None:
    with pytest.raises(ContactNotFound):
        await operate(store, "no-such-contact", operation)


@pytest.mark.parametrize("disposition", ["", "   ", "\t\n"])
async def test_close_requires_a_disposition(store: DeskStore, disposition: str) -> None:
    contact = await store.open_contact(voice())
    with pytest.raises(DispositionRequired, match="tipificación"):
        await store.close(contact.id, disposition=disposition, agent="7001")
    assert (await store.get(contact.id)) == contact


@pytest.mark.parametrize("reason", ["", "  "])
async def test_escalate_requires_a_reason(store: DeskStore, reason: str) -> None:
    contact = await store.open_contact(voice())
    with pytest.raises(ReasonRequired, match="motivo"):
        await store.escalate(contact.id, reason=reason, to_queue="l2_clinico", agent="7001")


async def test_end_then_close_records_both_instants(store: DeskStore, clock: Clock) -> None:
    contact = await store.open_contact(voice())
    ended_at = clock.advance(60)
    ended = await store.end(contact.id)
    assert (ended.state, ended.ended_at, ended.version) == (WRAPUP, ended_at, 2)
    closed_at = clock.advance(15)
    closed = await store.close(
        contact.id, disposition=" agendado ", note="Cita el lunes", agent="7001"
    )
    assert (closed.state, closed.disposition, closed.disposition_note) == (
        CLOSED,
        "agendado",
        "Cita el lunes",
    )
    assert (closed.closed_at, closed.closed_by, closed.ended_at) == (closed_at, "7001", ended_at)
    assert closed.seconds_at_level == 60.0
    # The hang-up after a close during the call records when it happened, once.
    again = await store.end(contact.id, at=T0 + timedelta(seconds=90))
    assert again.ended_at == ended_at and again.version == closed.version


async def test_a_close_on_a_stale_view_is_refused(store: DeskStore) -> None:
    contact = await store.open_contact(voice())
    await store.set_script(contact.id, version=1, node_id="a")  # version 2 now
    with pytest.raises(ContactConflict, match="cambió"):
        await store.close(contact.id, disposition="x", agent="7001", expected_version=1)
    closed = await store.close(contact.id, disposition="x", agent="7001", expected_version=2)
    assert closed.version == 3


async def test_active_for_gives_the_agents_newest_open_contact(store: DeskStore) -> None:
    old = await store.open_contact(voice(uniqueid="u1", source_key="1"))
    new = await store.open_contact(
        voice(uniqueid="u2", source_key="2", answered_at=T0 + timedelta(minutes=5))
    )
    assert (await store.active_for("7001")) == new
    await store.end(new.id)
    assert (await store.active_for("7001")).id == new.id  # type: ignore[union-attr]  # wrapup is open
    await store.close(new.id, disposition="x", agent="7001")
    assert (await store.active_for("7001")) == old
    await store.close(old.id, disposition="x", agent="7001")
    assert await store.active_for("7001") is None
    assert await store.active_for("7002") is None


async def test_contacts_filters(store: DeskStore) -> None:
    a = await store.open_contact(voice(uniqueid="u1", source_key="1"))
    b = await store.open_contact(voice(agent="7002", uniqueid="u2", source_key="2",
                                       answered_at=T0 + timedelta(hours=1)))  # fmt: skip
    await store.close(a.id, disposition="x", agent="7001")
    assert [c.id for c in await store.contacts()] == [b.id, a.id]
    assert [c.id for c in await store.contacts(agent="7002")] == [b.id]
    assert [c.id for c in await store.contacts(state=CLOSED)] == [a.id]
    assert [c.id for c in await store.contacts(since=T0 + timedelta(minutes=1))] == [b.id]
    assert [c.id for c in await store.contacts(until=T0 + timedelta(minutes=1))] == [a.id]
    assert [c.id for c in await store.contacts(limit=1)] == [b.id]
    with pytest.raises(ValueError):
        await store.contacts(state="open")


# --- steps -------------------------------------------------------------------------------
async def test_each_step_ends_the_open_one_and_the_close_ends_the_last(
    store: DeskStore, clock: Clock
) -> None:
    contact = await store.open_contact(voice())
    s1 = await store.record_step(
        contact.id, node_id="s1", node_kind="text", label="Saludo", agent="7001"
    )
    clock.advance(12.5)
    s2 = await store.record_step(contact.id, node_id="s2", node_kind="question",
                                 label="¿Cuenta con un smartphone?", answer="si", agent="7001")  # fmt: skip
    clock.advance(30)
    await store.close(contact.id, disposition="remitido_whatsapp", agent="7001")
    steps = await store.steps(contact.id)
    assert [(s.seq, s.node_id, s.answer, s.seconds) for s in steps] == [
        (1, "s1", None, 12.5), (2, "s2", "si", 30.0),
    ]  # fmt: skip
    assert steps[0].entered_at == s1.entered_at and steps[1].left_at == T0 + timedelta(seconds=42.5)
    assert s2.left_at is None and (await store.get(contact.id)).script_node == "s2"  # type: ignore[union-attr]
    assert steps[1].as_json()["seconds"] == 30.0
    by_contact = await store.steps_of([contact.id, "none"])
    assert [s.seq for s in by_contact[contact.id]] == [1, 2] and by_contact["none"] == []


async def test_escalation_ends_the_open_step(store: DeskStore, clock: Clock) -> None:
    contact = await store.open_contact(voice())
    await store.record_step(
        contact.id, node_id="s1", node_kind="text", label="Saludo", agent="7001"
    )
    clock.advance(5)
    await store.escalate(contact.id, reason="clínico", to_queue="l2_clinico", agent="7001")
    (step,) = await store.steps(contact.id)
    assert step.seconds == 5.0


# --- presence ----------------------------------------------------------------------------
async def test_presence_is_logged_newest_first(store: DeskStore, clock: Clock) -> None:
    assert await store.presence("7001") is None
    await store.log_presence("7001", "login", queues=["general", "incidentes"], actor="ana")
    clock.advance(60)
    await store.log_presence("7001", "pause", reason="Almuerzo", actor="ana")
    latest = await store.presence("7001")
    assert latest is not None and (latest.event, latest.reason) == ("pause", "Almuerzo")
    log = await store.presence_log(agent="7001")
    assert [p.event for p in log] == ["pause", "login"] and log[1].queues == (
        "general",
        "incidentes",
    )
    assert log[1].as_json()["queues"] == ["general", "incidentes"]
    with pytest.raises(ValueError):
        await store.log_presence("7001", "sleep", actor="ana")


# --- what the API shows -----------------------------------------------------------------
@pytest.mark.parametrize(("channel", "shown"), [
    ("PJSIP/3001234567-0000000c", "PJSIP/*******567-0000000c"),
    ("PJSIP/agent-00000001", "PJSIP/agent-00000001"),
    ("PJSIP/+573001234567-00000001", "PJSIP/+*********567-00000001"),
    ("Local/5550001@citas-agents-00000002;1", "Local/****001@citas-agents-00000002;1"),
    (None, None),
])  # fmt: skip
def test_long_digit_runs_are_masked(channel: str | None, shown: str | None) -> None:
    assert mask_digit_runs(channel) == shown


async def test_as_json_masks_numbers(store: DeskStore) -> None:
    chat = await store.open_contact(voice(kind=CHAT, channel=None, wa_id="573001234567",
                                          conversation_id="conv-1", journey_key="conv-1",
                                          source_key="handoff:1:7001"))  # fmt: skip
    shown = chat.as_json()
    assert shown["wa_id"] == "*********567" and shown["state_label"] == "En curso"
    call = (await store.open_contact(voice())).as_json()
    assert call["channel"] == "PJSIP/*******567-0000000c"
    assert "3001234567" not in str(shown) + str(call)
    assert call["answered_at"] == T0.isoformat() and call["closed_at"] is None


async def test_logs_never_show_the_callers_number(
    store: DeskStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="ivr.desk.store")
    contact = await store.open_contact(voice())
    await store.close(contact.id, disposition="x", agent="7001")
    assert contact.id in caplog.text and "3001234567" not in caplog.text


# --- script versions ---------------------------------------------------------------------
async def test_seed_publishes_version_one_only_once(scripts: ScriptStore) -> None:
    assert await scripts.active() is None
    seeded = await scripts.seed(TREE)
    assert seeded is not None and (seeded.version, seeded.state, seeded.created_by) == (
        1,
        PUBLISHED,
        "sistema",
    )
    assert await scripts.seed({"call_types": []}) is None
    assert (await scripts.active()) == seeded and [v.version for v in await scripts.versions()] == [
        1
    ]


async def test_create_publish_retire_and_roll_back(scripts: ScriptStore, clock: Clock) -> None:
    await scripts.seed(TREE)
    draft = await scripts.create({"call_types": [{"id": "x"}]}, note="Nuevo guion", author="admin")
    assert (draft.version, draft.state, draft.note) == (2, "draft", "Nuevo guion")
    assert (await scripts.active()).version == 1  # type: ignore[union-attr]
    clock.advance(60)
    published = await scripts.publish(2, author="admin")
    assert (published.state, published.published_by, published.published_at) == (
        PUBLISHED,
        "admin",
        clock.now,
    )
    states = {v.version: v.state for v in await scripts.versions()}
    assert states == {1: RETIRED, 2: PUBLISHED}
    assert await scripts.publish(2, author="otro") == published  # already: as is
    rolled_back = await scripts.publish(1, author="admin")  # a retired version again
    assert rolled_back.state == PUBLISHED
    assert {v.version: v.state for v in await scripts.versions()} == {1: PUBLISHED, 2: RETIRED}
    assert rolled_back.as_json()["tree"] == TREE


async def test_an_invalid_tree_is_never_stored(scripts: ScriptStore) -> None:
    with pytest.raises(ScriptInvalid) as refused:
        await scripts.create({"nodos": []}, note="", author="admin")
    assert refused.value.details == ["falta call_types"] and "no es válido" in str(refused.value)
    with pytest.raises(ScriptInvalid):
        await scripts.seed({})
    assert await scripts.versions() == []


async def test_publishing_an_unknown_version(scripts: ScriptStore) -> None:
    with pytest.raises(ScriptVersionNotFound, match="versión 7"):
        await scripts.publish(7, author="admin")
    assert await scripts.get(7) is None


async def test_the_database_refuses_two_published_versions(db: Database) -> None:
    row = dict(tree={}, note="", state="published", created_by="a", created_at=T0)
    async with db.sessions.begin() as session:
        await session.execute(insert(ScriptVersionRow).values(id="a", version=1, **row))
    with pytest.raises(IntegrityError):
        async with db.sessions.begin() as session:
            await session.execute(insert(ScriptVersionRow).values(id="b", version=2, **row))


# --- migration 0012 ----------------------------------------------------------------------
def _desk_diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        items = diff if isinstance(diff, list) else [diff]
        for item in items:
            if any(getattr(x, "name", None) in DESK_TABLES or
                   getattr(getattr(x, "table", None), "name", None) in DESK_TABLES
                   or x in DESK_TABLES for x in item[1:]):  # fmt: skip
                found.append(item)
    return found


async def test_migration_0012_matches_the_tables_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        assert await conn.run_sync(_desk_diffs) == []
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0011"))
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert names & DESK_TABLES == set() and "mail_outbox" in names
    await db.migrate()
    async with db.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert DESK_TABLES <= names


@pytest.mark.parametrize("state", ["draft", "published", "retired", "missing"])
async def test_only_a_draft_is_edited_in_place(scripts: ScriptStore, state: str) -> None:
    await scripts.seed(TREE)  # version 1, published
    draft = await scripts.create(TREE, note="borrador", author="admin")  # version 2
    if state == "retired":
        await scripts.publish(2, author="admin")  # 1 retired
    version = {"draft": 2, "published": 1, "retired": 1, "missing": 9}[state]
    before = await scripts.versions()
    new_tree = {"call_types": [{"id": "nuevo"}]}
    if state == "draft":
        saved = await scripts.save_draft(version, new_tree, note="v2 corregida", author="admin")
        assert (saved.version, saved.state, saved.tree, saved.note) == (
            2,
            "draft",
            new_tree,
            "v2 corregida",
        )
        assert saved.created_at == draft.created_at
        return
    expected = ScriptVersionNotFound if state == "missing" else ScriptNotDraft
    with pytest.raises(expected) as refused:
        await scripts.save_draft(version, new_tree, note="x", author="admin")
    assert "solo se edita un borrador" in str(refused.value) or state == "missing"
    assert await scripts.versions() == before
    with pytest.raises(ScriptInvalid):
        await scripts.save_draft(2, {}, note="x", author="admin")


async def test_presence_now_gives_each_agents_latest_change(store: DeskStore, clock: Clock) -> None:
    assert await store.presence_now() == {}
    await store.log_presence("7001", "login", queues=["general"], actor="ana")
    await store.log_presence("7002", "login", queues=["general"], actor="bruno")
    clock.advance(1)
    await store.log_presence("7001", "pause", reason="Almuerzo", actor="ana")
    await store.log_presence("7002", "logout", actor="supervisor")
    now = await store.presence_now()
    assert {a: (p.event, p.actor) for a, p in now.items()} == {
        "7001": ("pause", "ana"), "7002": ("logout", "supervisor"),
    }  # fmt: skip
