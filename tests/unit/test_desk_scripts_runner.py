"""An agent following the default citas script on a real database (SQLite, and
PostgreSQL when CITAS_TEST_PG_URL is set): ScriptRunner over DeskStore and ScriptStore.

The kinds of fault: a script that opens somewhere the IVR context does not imply;
an agent given a call type outside the profile; a step not stored, stored twice, or
without its time; an answer taken at a node the contact is no longer at; a contact
closed without a disposition or with one the reached point does not allow; an
escalated call whose script starts over instead of resuming. Each over its range:
every IVR context of the default tree's entry table, every profile, every path's
disposition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.desk.config import DeskConfig, load_desk_config
from ivr.desk.errors import AgentNotAllowed, ContactConflict, DispositionRequired, UnknownAgent
from ivr.desk.model import CLOSED, VOICE, NewContact
from ivr.desk.script_runner import DispositionRefused, NoScript, ScriptRunner, StaleNode
from ivr.desk.scripts import CONTINUE, DISPOSITION, ROOT, WrongAnswer, load_tree, validate_tree
from ivr.desk.store import DeskStore, ScriptStore
from ivr.store.db import Database
from ivr.yamlsrc import load_yaml_file

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
POP = {"caller": {"name": "Ana María Pérez", "document": "*******050", "site": "Sede Centro"},
       "segment": {"code": "non_target", "label": "Población no objetivo"},
       "facts": [{"label": "Servicio", "value": "Medicina general primera vez"}],
       "ivr": {"reason": "non-target", "segment": "non_target", "eligibility": ["age_out_of_band:70"]}}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def default_tree() -> dict[str, Any]:
    return dict(load_yaml_file(REPO / "config" / "citas" / "scripts.yaml"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config() -> DeskConfig:
    return load_desk_config(REPO / "config" / "citas" / "desk.yaml")


@pytest.fixture
async def runner(db: Database, clock: Clock, config: DeskConfig) -> ScriptRunner:
    scripts = ScriptStore(db, validate_tree, clock=clock)
    assert await scripts.seed(default_tree()) is not None
    return ScriptRunner(DeskStore(db, clock=clock), scripts, config)


async def contact(runner: ScriptRunner, agent: str = "7001", context: dict[str, Any] | None = None,
                  **kw: Any) -> str:  # fmt: skip
    uniqueid = kw.pop("uniqueid", f"1733324400.{agent}")
    opened = await runner.desk.open_contact(NewContact(
        kind=VOICE, agent=agent, agent_name=runner.config.agent(agent).name, queue=kw.pop("queue", "general"),
        level=kw.pop("level", 1), area=kw.pop("area", "recepcion"), journey_key=uniqueid,
        answered_at=T0, uniqueid=uniqueid, context=POP if context is None else context,
        ivr_reason=kw.pop("ivr_reason", None), source_key=f"{uniqueid}/{agent}", **kw,
    ))  # fmt: skip
    return opened.id


async def test_a_non_target_call_opens_where_its_context_says_with_the_values_inserted(runner: ScriptRunner) -> None:
    cid = await contact(runner)
    view = (await runner.start(cid, "ana")).as_json()
    assert view["node"]["id"] == "agendamiento/no_objetivo/edad/saludo"
    assert view["node"]["text"] == "Buenos días, Ana María Pérez. Le habla Ana Gómez, de la línea de citas."
    assert view["labels"] == {"call_type": "Agendamiento de citas", "reason": "No es población objetivo del IVR",
                              "scenario": "Edad fuera del rango del IVR", "procedure": None}  # fmt: skip
    assert [s["node_id"] for s in view["path"]] == ["agendamiento/no_objetivo/edad/saludo"]
    assert view["dispositions"] == [{"id": "llamada_cortada", "label": "Llamada cortada"},
                                    {"id": "equivocado", "label": "Número equivocado"}]  # fmt: skip


async def test_a_missing_value_shows_a_placeholder(runner: ScriptRunner) -> None:
    cid = await contact(runner, context={"ivr": {"reason": "non-target", "eligibility": ["cups_not_in_scope:1"]}})
    view = await runner.start(cid, "ana")
    assert view.text == "Buenos días, [nombre del afiliado: sin dato]. Le habla Ana Gómez, de la línea de citas."


async def test_following_the_script_stores_every_step_with_its_time_and_needs_the_procedures_disposition(
    runner: ScriptRunner, clock: Clock,
) -> None:  # fmt: skip
    cid = await contact(runner)
    view = await runner.start(cid, "ana")
    answers = [CONTINUE, CONTINUE, "afiliado", CONTINUE, "si", CONTINUE]  # edad → agendar_asesor → agendado
    for i, answer in enumerate(answers):
        clock.advance(10 + i)
        view = await runner.answer(cid, "ana", view.node.id, answer)
    assert view.node.kind == DISPOSITION and view.as_json()["closing"]
    assert [d["id"] for d in view.dispositions] == ["agendado", "caso_radicado", "sin_cupo"]
    assert view.labels["procedure"] == "El asesor agenda la cita"
    with pytest.raises(DispositionRequired):
        await runner.close(cid, "ana", "  ", "")
    with pytest.raises(DispositionRefused, match="remitido_whatsapp"):
        await runner.close(cid, "ana", "remitido_whatsapp", "")
    clock.advance(7)
    closed = await runner.close(cid, "ana", "agendado", "cita el martes")
    assert (closed.state, closed.disposition, closed.disposition_note) == (CLOSED, "agendado", "cita el martes")
    steps = await runner.desk.steps(cid)
    assert [s.node_id.rsplit("/", 1)[-1] for s in steps] == [
        "saludo", "contexto", "para_quien", "buscar", "cupo", "confirmar", "cierre"]  # fmt: skip
    assert [s.seconds for s in steps] == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 7.0]
    assert [s.answer for s in steps] == [CONTINUE, CONTINUE, "afiliado", CONTINUE, "si", CONTINUE, None]
    assert all(s.agent == "7001" for s in steps)
    with pytest.raises(ContactConflict):
        await runner.answer(cid, "ana", steps[-1].node_id, CONTINUE)


async def test_a_stale_or_wrong_answer_changes_nothing(runner: ScriptRunner) -> None:
    cid = await contact(runner)
    first = await runner.start(cid, "ana")
    second = await runner.answer(cid, "ana", first.node.id, CONTINUE)
    with pytest.raises(StaleNode):  # a double click: the first click moved on
        await runner.answer(cid, "ana", first.node.id, CONTINUE)
    with pytest.raises(WrongAnswer):
        await runner.answer(cid, "ana", second.node.id, "no_existe")
    assert len(await runner.desk.steps(cid)) == 2
    again = await runner.start(cid, "ana")  # a reload resumes, storing nothing
    assert again.node.id == second.node.id and len(again.steps) == 2


async def test_early_close_only_with_an_early_disposition(runner: ScriptRunner) -> None:
    cid = await contact(runner)
    await runner.start(cid, "ana")
    with pytest.raises(DispositionRefused):
        await runner.close(cid, "ana", "agendado", "")
    closed = await runner.close(cid, "ana", "llamada_cortada", "colgó al saludo")
    assert closed.disposition == "llamada_cortada"


@pytest.mark.parametrize(("user", "allowed"), [
    ("ana", ["agendamiento", "incidente", "informacion"]), ("diego", ["agendamiento", "incidente"]),
    ("carla", ["agendamiento", "informacion"]), ("elena", ["informacion"]),
    ("fabio", ["agendamiento", "informacion"]),
])  # fmt: skip
async def test_the_panel_lists_only_the_profiles_call_types_and_refuses_others(
    runner: ScriptRunner, user: str, allowed: list[str],
) -> None:  # fmt: skip
    agent = runner.config.agent_for_user(user)
    assert agent is not None
    cid = await contact(runner, agent=agent.extension, context={})  # no IVR context: the call types
    view = await runner.start(cid, user)
    assert view.node.id == ROOT and [a["id"] for a in view.answers] == allowed
    for call_type in {"agendamiento", "incidente", "informacion"} - set(allowed):
        with pytest.raises(AgentNotAllowed):
            await runner.answer(cid, user, ROOT, call_type)
    moved = await runner.answer(cid, user, ROOT, allowed[0])
    assert moved.node.id == allowed[0] and moved.labels["call_type"] is not None


async def test_an_entry_outside_the_profile_opens_at_the_call_types_with_a_notice(runner: ScriptRunner) -> None:
    cid = await contact(runner, agent="7005", context={"ivr": {"reason": "incident"}})  # elena: informacion only
    view = await runner.start(cid, "elena")
    assert view.node.id == ROOT and view.notice and "Incidentes" in view.notice
    assert [a["id"] for a in view.answers] == ["informacion"]


async def test_only_the_contacts_agent_follows_its_script(runner: ScriptRunner) -> None:
    cid = await contact(runner)
    with pytest.raises(AgentNotAllowed):
        await runner.start(cid, "bruno")
    with pytest.raises(UnknownAgent):
        await runner.start(cid, "admin")


async def test_an_escalated_call_resumes_where_the_previous_level_left(runner: ScriptRunner) -> None:
    first = await contact(runner, context={"ivr": {"reason": "non-target", "eligibility": ["risk_marking:gestante"]}})
    view = await runner.start(first, "ana")
    view = await runner.answer(first, "ana", view.node.id, CONTINUE)
    view = await runner.answer(first, "ana", view.node.id, CONTINUE)
    view = await runner.answer(first, "ana", view.node.id, "si")  # symptoms: level 2 clinical
    assert view.node.id == "procedimiento/escalar_clinico/avisar"
    await runner.desk.escalate(first, reason="síntomas", to_queue="l2_clinico", agent="7001")
    second = await contact(runner, agent="7003", queue="l2_clinico", level=2, area="clinico",
                           previous_contact_id=first, uniqueid="1733324400.7001")  # fmt: skip
    resumed = await runner.start(second, "carla")
    assert resumed.node.id == view.node.id and resumed.version == view.version
    assert resumed.labels["procedure"] == "Escalar a nivel 2 clínico"


async def test_a_contact_opened_with_a_position_resumes_there(runner: ScriptRunner) -> None:
    cid = await contact(runner, agent="7003", queue="l2_clinico", level=2, area="clinico",
                        script_version=1, script_node="procedimiento/agendar_asesor/buscar")  # fmt: skip
    view = await runner.start(cid, "carla")
    assert view.node.id == "procedimiento/agendar_asesor/buscar"
    assert [(s.node_id, s.agent) for s in view.steps] == [("procedimiento/agendar_asesor/buscar", "7003")]
    again = await runner.start(cid, "carla")  # a reload stores nothing more
    assert len(again.steps) == 1


async def test_a_new_published_version_serves_new_contacts_and_old_ones_keep_theirs(runner: ScriptRunner) -> None:
    old = await contact(runner)
    await runner.start(old, "ana")
    tree = default_tree()
    tree["procedures"][0]["steps"][0]["text"] = "Nueva invitación a Lina."
    created = await runner.scripts.create(tree, note="texto de Lina", author="admin")
    await runner.scripts.publish(created.version, author="admin")
    new = await contact(runner, agent="7002")
    assert (await runner.start(new, "bruno")).version == 2
    assert (await runner.start(old, "ana")).version == 1


async def test_no_published_script_is_said(db: Database, clock: Clock, config: DeskConfig) -> None:
    runner = ScriptRunner(DeskStore(db, clock=clock), ScriptStore(db, validate_tree, clock=clock), config)
    cid = await contact(runner)
    with pytest.raises(NoScript):
        await runner.start(cid, "ana")


@pytest.mark.parametrize("user", ["ana", "carla"])
async def test_every_path_of_the_default_tree_closes_with_one_of_its_dispositions(
    runner: ScriptRunner, user: str,
) -> None:  # fmt: skip
    """Walks each answer of the live tree on a fresh contact: the kind "a path that
    cannot be closed" over the whole default tree and two profiles."""
    tree = load_tree(default_tree())
    allowed = runner.allowed_call_types(user)
    agent = runner.config.agent_for_user(user)
    assert agent is not None
    frontier = [[a.id] for a in tree.nodes[ROOT].answers if a.id in allowed]
    done = 0
    while frontier:
        answers = frontier.pop()
        cid = await contact(runner, agent=agent.extension, context={}, uniqueid=f"u{done}-{len(frontier)}-{len(answers)}")
        view = await runner.start(cid, user)
        for answer in answers:
            view = await runner.answer(cid, user, view.node.id, answer)
        if view.node.kind == DISPOSITION:
            closed = await runner.close(cid, user, view.dispositions[0]["id"], "")
            assert closed.state == CLOSED
            done += 1
        else:
            frontier += [[*answers, a["id"]] for a in view.answers]
        if done >= 12:
            break
    assert done >= 12


async def test_an_open_case_is_read_with_its_number_and_due_date(runner: ScriptRunner) -> None:
    pop = {**POP, "open_case": {"number": "0012345", "state": "abierto", "summary": "Sin cupo", "due": "2026-12-11"},
           "ivr": {"reason": "non-target"}}  # fmt: skip
    cid = await contact(runner, context=pop)
    view = await runner.start(cid, "ana")
    assert view.node.id == "agendamiento/caso_abierto/consulta_caso/saludo"
    view = await runner.answer(cid, "ana", view.node.id, CONTINUE)
    assert view.text == "Usted tiene abierto el caso número 0012345."
    view = await runner.answer(cid, "ana", view.node.id, CONTINUE)
    assert view.text == "Le daremos respuesta a más tardar el 2026-12-11, por el medio que nos indicó."


def _contact_with(context: dict[str, Any], **kw: Any) -> Any:
    from ivr.desk.model import Contact

    fields: dict[str, Any] = dict(id="c", kind=VOICE, agent="7001", agent_name="Ana Gómez", queue="general",
                                  level=1, area="recepcion", journey_key="j", state="active", answered_at=T0,
                                  version=1, context=context)  # fmt: skip
    return Contact(**(fields | kw))


@pytest.mark.parametrize(("context", "facts"), [
    ({}, {"queue": "general", "level": 1, "area": "recepcion", "kind": "voice", "case_open": False}),
    ({"segment": {"code": "non_target", "label": "No objetivo"}}, {"segment": "non_target"}),
    ({"open_case": {"number": "1"}}, {"case_open": True}),
    ({"open_case": None}, {"case_open": False}),
    ({"ivr": {"reason": "incident", "eligibility": ["risk_marking:vih"], "choice": "3", "path": ["main_menu"]}},
     {"reason": "incident", "eligibility": ["risk_marking:vih"], "choice": "3", "path": ["main_menu"]}),
    ({"ivr": {"segment": "target"}, "segment": {"code": "unknown"}}, {"segment": "target"}),
    ({"ivr_reason": "Población no objetivo", "reasons": ["Edad fuera de la franja: 70 años"]}, {}),  # words are not codes
])  # fmt: skip
def test_entry_facts_come_from_the_contact_and_its_pop(context: dict[str, Any], facts: dict[str, Any]) -> None:
    from ivr.desk.script_runner import facts_of

    found = facts_of(_contact_with(context))
    assert {k: found.get(k) for k in facts} == facts
    assert "reason" not in found or "ivr" in context


async def test_two_answers_at_the_same_node_move_once(runner: ScriptRunner) -> None:
    """A double click or two tabs: both read the same node; one step is stored, the other is refused."""
    import asyncio

    cid = await contact(runner)
    first = await runner.start(cid, "ana")
    outcomes = await asyncio.gather(*(runner.answer(cid, "ana", first.node.id, CONTINUE) for _ in range(3)),
                                    return_exceptions=True)  # fmt: skip
    moved = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(moved) == 1 and all(isinstance(o, StaleNode) for o in outcomes if o not in moved)
    assert [s.node_id.rsplit("/", 1)[-1] for s in await runner.desk.steps(cid)] == ["saludo", "contexto"]


async def test_two_tabs_opening_at_once_store_one_first_step(runner: ScriptRunner) -> None:
    import asyncio

    cid = await contact(runner)
    views = await asyncio.gather(*(runner.start(cid, "ana") for _ in range(3)))
    assert {v.node.id for v in views} == {"agendamiento/no_objetivo/edad/saludo"}
    assert len(await runner.desk.steps(cid)) == 1


async def test_the_agent_finishes_the_script_after_the_caller_hung_up(runner: ScriptRunner) -> None:
    cid = await contact(runner)
    view = await runner.start(cid, "ana")
    await runner.desk.end(cid)  # the caller hung up: wrapup; the agent may finish the script
    after = await runner.answer(cid, "ana", view.node.id, CONTINUE)
    assert after.contact.state == "wrapup" and after.node.id.endswith("/contexto")
