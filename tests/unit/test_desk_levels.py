"""Service levels (ivr.desk.levels, ivr.desk.escalations) on a real database (SQLite,
and PostgreSQL when CITAS_TEST_PG_URL is set), with AMI replaced by a recorder (the
moves themselves are tested on the real Asterisk: tests/e2e/test_desk_levels.py).

The kinds of fault:
- an escalation to a queue the level does not reach (or from the last level), or
  of a contact no longer in progress: refused before anything moves or is written,
  over every (level, area) pair and every state;
- a caller lost between levels: AMI down before the move leaves the call and the
  records untouched; a move that fails after the record is written is undone
  (contact active again, escalation ``failed``); at every point of failure;
- an escalation whose outcome is never known, or written twice: ``answered`` on the
  next agent's ``AgentConnect``, ``unanswered`` on the caller's hang-up, the first
  wins, re-delivered or late events change nothing, an agent leg's hang-up is not
  the caller's;
- a hop that loses its chain, journey or script place;
- a target queue with no announcement (the caller would hear the generic one).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import ivr.desk.escalations  # noqa: F401  (the ORM table in Base.metadata)
from ivr.ami.errors import AmiActionFailed, AmiConnectionError, AmiTimeout
from ivr.desk.config import DeskConfig, load_desk_config
from ivr.desk.errors import ContactConflict, ReasonRequired
from ivr.desk.escalations import ANSWERED, FAILED, PENDING, UNANSWERED, EscalationLog
from ivr.desk.levels import (
    ESCALATE_CONTEXT,
    AmiCallMover,
    CallGone,
    Levels,
    NoEscalationTarget,
    TelephonyUnavailable,
    missing_announcements,
    seconds_per_level,
)
from ivr.desk.model import ACTIVE, ESCALATED, VOICE, NewContact
from ivr.desk.store import DeskStore
from ivr.prompts import load_prompt_texts
from ivr.settings import REPO_ROOT, Settings
from ivr.store.db import Database
from ivr.store.models import Base

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
CONFIG = load_desk_config()
PROMPTS = frozenset(load_prompt_texts(Settings().prompts_file))
L1 = next(q.id for q in CONFIG.queues.values() if q.level == 1)  # reception's first queue


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class RecordingAmi:
    """AMI as the mover sees it: records every action; ``fail`` maps an action name
    to the exception it raises; ``healthy`` False is a dropped connection."""

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.fail: dict[str, Exception] = {}
        self.healthy = True

    async def action(self, fields: Mapping[str, str]) -> dict[str, str]:
        error = self.fail.get(fields["Action"])
        if error is not None:
            raise error
        self.actions.append(dict(fields))
        return {"Response": "Success"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ami() -> RecordingAmi:
    return RecordingAmi()


@pytest.fixture
def levels(db: Database, clock: Clock, ami: RecordingAmi) -> Levels:
    return Levels(CONFIG, DeskStore(db, clock=clock), EscalationLog(db, clock=clock),
                  mover=AmiCallMover(ami), prompts=PROMPTS)  # fmt: skip


def voice(queue: str = L1, agent: str = "7001", uniqueid: str = "1733324400.12",
          **kw: Any) -> NewContact:  # fmt: skip
    q = CONFIG.queue(queue)
    fields: dict[str, Any] = dict(
        kind=VOICE, agent=agent, agent_name=CONFIG.agent(agent).name, queue=q.id,
        level=q.level, area=q.area, journey_key=uniqueid, answered_at=T0,
        queued_at=T0 - timedelta(seconds=9), channel="PJSIP/caller-0000000c", uniqueid=uniqueid,
        linkedid=uniqueid, sip_call_id="call-abc@127.0.0.1", context={"segment": "non_target"},
        hold_seconds=9.0, source_key=f"{uniqueid}/{agent}/{T0.isoformat()}",
    )  # fmt: skip
    fields.update(kw)
    return NewContact(**fields)


# --- where a level escalates: every (queue, area) pair -------------------------------------
AREAS = sorted({q.area for q in CONFIG.queues.values()} | {"juridico"})
PAIRS = list(itertools.product(sorted(CONFIG.queues), AREAS))


def _agent_of(config: DeskConfig, queue: str) -> str:
    """An agent who takes ``queue`` (desk.yaml staffs no level-3 técnico: any agent)."""
    takers = [a.extension for a in config.agents.values() if queue in config.profile(a.profile).queues]
    return takers[0] if takers else next(iter(config.agents))


@pytest.mark.parametrize(("queue", "area"), PAIRS, ids=[f"{q}-{a}" for q, a in PAIRS])
async def test_every_queue_and_area_escalates_one_level_up_or_is_refused(
    levels: Levels, ami: RecordingAmi, queue: str, area: str
) -> None:
    agent = _agent_of(CONFIG, queue)
    contact = await levels.contacts.open_contact(voice(queue, agent=agent))
    target_id = CONFIG.escalation.get(contact.level, {}).get(area)
    if target_id is None:
        with pytest.raises(NoEscalationTarget):
            await levels.escalate(contact.id, area=area, reason="motivo", agent=agent)
        assert ami.actions == []
        assert (await levels.contacts.get(contact.id)).state == ACTIVE  # type: ignore[union-attr]
        return
    target = CONFIG.queue(target_id)
    assert target.level == contact.level + 1 and target.area == area
    escalated, pending = await levels.escalate(contact.id, area=area, reason=" el caso es clínico ", agent=agent)
    assert (escalated.state, escalated.escalated_to, escalated.escalation_reason) == (
        ESCALATED, target.id, "el caso es clínico",
    )  # fmt: skip
    assert (pending.outcome, pending.to_queue, pending.to_level, pending.from_level) == (
        PENDING, target.id, target.level, contact.level,
    )  # fmt: skip
    assert ami.actions == [
        {"Action": "Setvar", "Channel": contact.channel, "Variable": "__CITAS_LEVEL", "Value": str(target.level)},
        {"Action": "Setvar", "Channel": contact.channel, "Variable": "__CITAS_DESK_PREV", "Value": contact.id},
        {"Action": "Setvar", "Channel": contact.channel, "Variable": "CITAS_DESK_ANNOUNCE", "Value": f"desk_escalate_{target.id}"},
        {"Action": "Redirect", "Channel": contact.channel, "Context": ESCALATE_CONTEXT, "Exten": target.extension, "Priority": "1"},
    ]  # fmt: skip


def test_level_three_has_nowhere_to_go_and_every_target_has_its_announcement() -> None:
    top = max(q.level for q in CONFIG.queues.values())
    assert top == 3 and top not in CONFIG.escalation
    assert missing_announcements(CONFIG, PROMPTS) == []
    # The kind: a target without its prompt is reported (it would hear the generic one).
    assert missing_announcements(CONFIG, PROMPTS - {"desk_escalate_l2_clinico"}) == [
        "desk_escalate_l2_clinico"
    ]


def test_the_dialplan_has_the_context_the_caller_is_redirected_to() -> None:
    plan = (REPO_ROOT / "dialplans" / "asterisk" / "extensions.conf").read_text()
    section = plan.split(f"[{ESCALATE_CONTEXT}]", 1)[1].split("\n[", 1)[0]
    assert "Playback(citas/" in section and "${CITAS_DESK_ANNOUNCE}" in section
    assert "Goto(citas-agents,${EXTEN},1)" in section


# --- refused states --------------------------------------------------------------------
@pytest.mark.parametrize("state", ["wrapup", "closed", "escalated"])
async def test_only_a_contact_in_progress_escalates(levels: Levels, ami: RecordingAmi, state: str) -> None:
    contact = await levels.contacts.open_contact(voice())
    if state == "wrapup":
        await levels.contacts.end(contact.id)
    elif state == "closed":
        await levels.contacts.close(contact.id, disposition="agendado", agent="7001")
    else:
        await levels.escalate(contact.id, area="clinico", reason="primera vez", agent="7001")
    ami.actions.clear()
    with pytest.raises(ContactConflict):
        await levels.escalate(contact.id, area="tecnico", reason="otra vez", agent="7001")
    assert ami.actions == []
    assert len(await levels.log.of_journey(contact.journey_key)) == (1 if state == "escalated" else 0)


async def test_a_reason_is_required_and_nothing_moves_without_it(levels: Levels, ami: RecordingAmi) -> None:
    contact = await levels.contacts.open_contact(voice())
    with pytest.raises(ReasonRequired):
        await levels.escalate(contact.id, area="clinico", reason="   ", agent="7001")
    assert ami.actions == [] and (await levels.contacts.get(contact.id)).state == ACTIVE  # type: ignore[union-attr]


# --- faults: at every point of the move --------------------------------------------------
BEFORE_WRITE = [
    ("down", None),
    ("setvar-timeout", AmiTimeout("AMI Setvar: no response in 5s")),
    ("setvar-lost", AmiConnectionError("AMI: connection lost")),
]


@pytest.mark.parametrize(("case", "error"), BEFORE_WRITE, ids=[c for c, _ in BEFORE_WRITE])
async def test_telephony_down_before_the_move_changes_nothing(
    levels: Levels, ami: RecordingAmi, case: str, error: Exception | None
) -> None:
    contact = await levels.contacts.open_contact(voice())
    if error is None:
        ami.healthy = False
    else:
        ami.fail["Setvar"] = error
    with pytest.raises(TelephonyUnavailable) as raised:
        await levels.escalate(contact.id, area="clinico", reason="clínico", agent="7001")
    assert "la llamada sigue con usted" in str(raised.value).lower()
    after = await levels.contacts.get(contact.id)
    assert after == contact  # not even the version moved
    assert await levels.log.of_journey(contact.journey_key) == []
    assert not any(a["Action"] == "Redirect" for a in ami.actions)


AFTER_WRITE = [
    ("redirect-lost", AmiConnectionError("AMI: connection lost"), TelephonyUnavailable),
    ("redirect-timeout", AmiTimeout("AMI Redirect: no response"), TelephonyUnavailable),
    ("caller-gone", AmiActionFailed("Redirect", {"Response": "Error", "Message": "Channel does not exist"}), CallGone),
]  # fmt: skip


@pytest.mark.parametrize(("case", "error", "raised"), AFTER_WRITE, ids=[c for c, _, _ in AFTER_WRITE])
async def test_a_move_that_fails_after_the_record_is_undone(
    levels: Levels, ami: RecordingAmi, case: str, error: Exception, raised: type[Exception]
) -> None:
    contact = await levels.contacts.open_contact(voice())
    await levels.contacts.record_step(contact.id, node_id="s1", node_kind="text", label="Saludo", agent="7001")
    ami.fail["Redirect"] = error
    with pytest.raises(raised):
        await levels.escalate(contact.id, area="clinico", reason="clínico", agent="7001")
    after = await levels.contacts.get(contact.id)
    assert after is not None
    assert (after.state, after.escalated_at, after.escalated_to) == (ACTIVE, None, None)
    assert after.version > contact.version
    [failed] = await levels.log.of_journey(contact.journey_key)
    assert failed.outcome == FAILED and failed.detail and type(error).__name__ not in ("",)
    # The agent can go on with the script, and escalate again once the telephony is back.
    await levels.contacts.record_step(contact.id, node_id="s2", node_kind="text", label="Sigue", agent="7001")
    ami.fail.clear()
    escalated, pending = await levels.escalate(contact.id, area="clinico", reason="clínico", agent="7001")
    assert escalated.state == ESCALATED and pending.outcome == PENDING


async def test_escalating_closes_the_open_script_step(levels: Levels, clock: Clock) -> None:
    contact = await levels.contacts.open_contact(voice())
    await levels.contacts.record_step(contact.id, node_id="s1", node_kind="question", label="¿Smartphone?", agent="7001")
    clock.advance(12)
    await levels.escalate(contact.id, area="clinico", reason="clínico", agent="7001")
    [step] = await levels.contacts.steps(contact.id)
    assert step.left_at == clock.now and step.seconds == 12.0


# --- outcomes ------------------------------------------------------------------------------
def agent_connect(prev: str, uniqueid: str = "1733324400.12") -> dict[str, str]:
    return {"Event": "AgentConnect", "Uniqueid": uniqueid, "Queue": "l2_clinico",
            "ChanVariable": f"CITAS_CALL_ID=abc\nCITAS_LEVEL=2\nCITAS_DESK_PREV={prev}",
            "DestChannel": "PJSIP/7003-00000010", "HoldTime": "7"}  # fmt: skip


def hangup(prev: str, uniqueid: str = "1733324400.12") -> dict[str, str]:
    return {"Event": "Hangup", "Uniqueid": uniqueid, "Cause-txt": "Normal Clearing",
            "ChanVariable": f"CITAS_DESK_PREV={prev}"}  # fmt: skip


async def _escalated(levels: Levels) -> str:
    contact = await levels.contacts.open_contact(voice())
    await levels.escalate(contact.id, area="clinico", reason="clínico", agent="7001")
    return contact.id


ORDERS = [
    ("answered", ["connect"], ANSWERED),
    ("answered-then-hangup", ["connect", "hangup"], ANSWERED),
    ("answered-twice", ["connect", "connect"], ANSWERED),
    ("unanswered", ["hangup"], UNANSWERED),
    ("hangup-then-late-connect", ["hangup", "connect"], UNANSWERED),
    ("agent-leg-hangup-only", ["agent-hangup"], PENDING),
    ("no-variable", ["plain-hangup"], PENDING),
]


@pytest.mark.parametrize(("case", "events", "outcome"), ORDERS, ids=[c for c, _, _ in ORDERS])
async def test_the_first_decisive_event_settles_the_outcome_once(
    levels: Levels, clock: Clock, case: str, events: list[str], outcome: str
) -> None:
    prev = await _escalated(levels)
    for name in events:
        clock.advance(5)
        event = {
            "connect": agent_connect(prev), "hangup": hangup(prev),
            "agent-hangup": hangup(prev, uniqueid="1733324500.16"),
            "plain-hangup": {"Event": "Hangup", "Uniqueid": "1733324400.12"},
        }[name]  # fmt: skip
        await levels.on_ami_event(event)
    [esc] = await levels.log.of_journey("1733324400.12")
    assert esc.outcome == outcome
    if outcome != PENDING:
        assert esc.queued_seconds == 5.0 and esc.outcome_at == T0 + timedelta(seconds=5)


async def test_the_next_hop_chains_and_resumes_the_script(levels: Levels, clock: Clock) -> None:
    first = await levels.contacts.open_contact(voice())
    await levels.contacts.set_script(first.id, version=3, node_id="agendamiento/sin_cupo/s2",
                                     call_type="agendamiento")  # fmt: skip
    await levels.contacts.record_step(first.id, node_id="agendamiento/sin_cupo/s2",
                                      node_kind="question", label="¿Smartphone?", agent="7001")  # fmt: skip
    clock.advance(30)
    await levels.escalate(first.id, area="clinico", reason="clínico", agent="7001")
    clock.advance(8)
    chain = await levels.hop_fields(first.id)
    assert chain is not None
    assert chain.as_kwargs() == {
        "previous_contact_id": first.id, "journey_key": first.journey_key,
        "script_version": 3, "script_node": "agendamiento/sin_cupo/s2",
        "call_type": "agendamiento",
    }  # fmt: skip
    second = await levels.contacts.open_contact(voice(
        "l2_clinico", agent="7003", answered_at=clock.now, queued_at=clock.now - timedelta(seconds=8),
        hold_seconds=None, source_key="second", **chain.as_kwargs(),
    ))  # fmt: skip
    settled = await levels.hop_opened(second)
    assert settled is not None and settled.outcome == ANSWERED
    assert settled.next_contact_id == second.id and settled.queued_seconds == 8.0
    clock.advance(20)
    await levels.contacts.end(second.id)
    hops = await levels.journey(first.journey_key)
    assert [h.contact.id for h in hops] == [first.id, second.id]
    assert [h.contact.level for h in hops] == [1, 2]
    assert [len(h.steps) for h in hops] == [1, 0] and hops[0].steps[0].seconds == 30.0
    assert [h.queued_seconds for h in hops] == [9.0, 8.0]
    assert seconds_per_level(hops) == {1: 30.0, 2: 20.0}
    assert hops[0].escalations[0].outcome == ANSWERED and hops[1].escalations == []
    json = hops[0].as_json()
    assert json["seconds_at_level"] == 30.0 and json["escalations"][0]["outcome_label"]


@pytest.mark.parametrize("prev", [None, "", "no-such-contact"])
async def test_a_missing_or_stale_previous_contact_gives_no_chain(levels: Levels, prev: str | None) -> None:
    assert await levels.hop_fields(prev) is None


async def test_unknown_journey_is_empty(levels: Levels) -> None:
    assert await levels.journey("nobody") == []


# --- migration 0013 ----------------------------------------------------------------------
def _diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, Base.metadata)
            if "desk_escalations" in repr(d)]  # fmt: skip


async def test_migration_0013_matches_the_orm_table(db: Database) -> None:
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


# --- chat: the hand-off goes back to the queue for the next level -----------------------
async def test_a_chat_escalates_by_requeuing_its_handoff(db: Database, clock: Clock) -> None:
    from ivr.chat.store import ConversationStore, InboundMessage
    from ivr.desk.levels import HandoffRequeue
    from ivr.desk.model import CHAT

    chats = ConversationStore(db, flow="citas", clock=clock)
    wa = "573001234567"
    await chats.receive(InboundMessage("wamid.1", wa, "text", T0, text="hola"))
    async with chats.turn(wa) as turn:
        turn.hand_to_agent("asked", {"motivo": "cita"})
    [queued] = await chats.open_handoffs()
    taken = await chats.take(queued.id, "ana")
    conversation = await chats.conversation(wa)
    assert conversation is not None
    levels = Levels(CONFIG, DeskStore(db, clock=clock), EscalationLog(db, clock=clock),
                    chats=HandoffRequeue(db, clock=clock), prompts=PROMPTS)  # fmt: skip
    contact = await levels.contacts.open_contact(NewContact(
        kind=CHAT, agent="7001", agent_name="Ana Gómez", queue=L1, level=1,
        area="recepcion", journey_key=conversation.id, answered_at=T0,
        conversation_id=conversation.id, wa_id=wa, handoff_id=str(taken.id),
        source_key=f"handoff:{taken.id}:7001",
    ))  # fmt: skip
    clock.advance(40)
    escalated, pending = await levels.escalate(contact.id, area="comercial", reason="planes", agent="7001")
    assert escalated.state == ESCALATED and pending.to_queue == "l2_comercial"
    # The same hand-off row, back in the queue with no agent, marked for the next level.
    [again] = await chats.open_handoffs()
    assert again.id == queued.id and again.taken_by is None and again.queued_at == clock.now
    assert again.context == {"motivo": "cita", "desk_queue": "l2_comercial", "desk_level": 2,
                             "desk_prev": contact.id, "desk_area": "comercial"}  # fmt: skip
    after = await chats.conversation(wa)
    assert after is not None and after.assigned_agent is None and after.state == "agent"
    # The level-2 agent takes it: a new hop chained to the first, the escalation answered.
    chain = await levels.hop_fields(again.context["desk_prev"])
    assert chain is not None and chain.journey_key == conversation.id
    retaken = await chats.take(again.id, "elena")
    second = await levels.contacts.open_contact(NewContact(
        kind=CHAT, agent="7005", agent_name="Elena Vargas", queue="l2_comercial", level=2,
        area="comercial", answered_at=clock.advance(15), conversation_id=conversation.id,
        wa_id=wa, handoff_id=str(retaken.id), source_key=f"handoff:{retaken.id}:7005",
        **{k: v for k, v in chain.as_kwargs().items()},
    ))  # fmt: skip
    settled = await levels.hop_opened(second)
    assert settled is not None and settled.outcome == ANSWERED and settled.queued_seconds == 15.0
    assert [h.contact.level for h in await levels.journey(conversation.id)] == [1, 2]


async def test_a_chat_no_longer_with_an_agent_is_not_escalated(db: Database, clock: Clock) -> None:
    from ivr.desk.levels import HandoffRequeue
    from ivr.desk.model import CHAT

    levels = Levels(CONFIG, DeskStore(db, clock=clock), EscalationLog(db, clock=clock),
                    chats=HandoffRequeue(db, clock=clock), prompts=PROMPTS)  # fmt: skip
    contact = await levels.contacts.open_contact(NewContact(
        kind=CHAT, agent="7001", agent_name="Ana Gómez", queue=L1, level=1,
        area="recepcion", journey_key="conv-gone", answered_at=T0, conversation_id="conv-gone",
    ))  # fmt: skip
    with pytest.raises(ContactConflict):
        await levels.escalate(contact.id, area="clinico", reason="x", agent="7001")
    # Undone: the contact is the agent's again, the escalation logged as failed.
    after = await levels.contacts.get(contact.id)
    assert after is not None and after.state == ACTIVE
    assert [e.outcome for e in await levels.log.of_journey("conv-gone")] == [FAILED]


async def test_the_ami_listener_takes_agent_connect_and_hangup(levels: Levels) -> None:
    from ivr.desk.levels import listen_for_outcomes

    handlers: dict[str, Any] = {}

    class Source:
        def on_event(self, pattern: str, handler: Any) -> None:
            handlers[pattern] = handler

    listen_for_outcomes(Source(), levels)
    assert set(handlers) == {"AgentConnect", "Hangup"}
    prev = await _escalated(levels)
    await handlers["Hangup"](hangup(prev))
    assert [e.outcome for e in await levels.log.of_journey("1733324400.12")] == [UNANSWERED]


async def test_an_answer_heard_on_ami_is_linked_to_the_next_hop_in_the_journey(levels: Levels, clock: Clock) -> None:
    # AgentConnect settles the outcome before (or while) the pop opens the contact:
    # the journey finds the chained contact and stores the link once.
    prev = await _escalated(levels)
    await levels.on_ami_event(agent_connect(prev))
    [esc] = await levels.log.of_journey("1733324400.12")
    assert (esc.outcome, esc.next_contact_id) == (ANSWERED, None)
    chain = await levels.hop_fields(prev)
    assert chain is not None
    second = await levels.contacts.open_contact(voice("l2_clinico", agent="7003", source_key="l2",
                                                      answered_at=clock.advance(4), **chain.as_kwargs()))  # fmt: skip
    hops = await levels.journey("1733324400.12")
    assert hops[0].escalations[0].next_contact_id == second.id
    [stored] = await levels.log.of_journey("1733324400.12")
    assert stored.next_contact_id == second.id


async def test_a_next_hop_found_while_pending_settles_the_escalation_answered(levels: Levels, clock: Clock) -> None:
    # No AgentConnect was heard (a chat taken; AMI reconnecting): the hop itself says it.
    prev = await _escalated(levels)
    chain = await levels.hop_fields(prev)
    assert chain is not None
    second = await levels.contacts.open_contact(voice("l2_clinico", agent="7003", source_key="l2",
                                                      answered_at=T0 + timedelta(seconds=6), **chain.as_kwargs()))  # fmt: skip
    hops = await levels.journey("1733324400.12")
    esc = hops[0].escalations[0]
    assert (esc.outcome, esc.next_contact_id, esc.queued_seconds) == (ANSWERED, second.id, 6.0)
