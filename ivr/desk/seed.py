"""Realistic desk data for the demo and the tests, the same for the same seed.

:func:`generate` plans ``contacts`` desk contacts (hops included) over ``days``
local days: callers sent by the IVR for one of its reasons (``non-target`` the
most), answered by the roster's level-1 agents, some escalated to level 2 and a
few on to level 3 (each hop a contact of the same journey, the script resumed
where the previous level left it), every script step with its seconds, a
disposition at the end (a few left in wrap-up), and each agent's day of
presence (login, pauses with their Spanish reasons, logout). Agents record
now and then a call type the IVR's reason did not imply, so the mismatch
report has something to find. :func:`write` inserts the plan into a migrated
database (bulk, one transaction), and :func:`facts` turns it into the
reports' facts, so a test can compare what the database answers with what the
plan holds.

The catalogue below is the citas plan's shape (call type → reason → scenario →
procedure → disposition) written as demo data: the platform knows no line, and
the real tree lives in ``config/citas/scripts.yaml``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.desk.report_figures import ContactFacts, PresenceFacts, StepFacts
from ivr.desk.tables import DeskContactRow, DeskPresenceRow, DeskStepRow
from ivr.store.db import Database


@dataclass(frozen=True)
class SeedAgent:
    """An agent of the roster: extension, name, level and the queues they take."""

    extension: str
    name: str
    level: int
    queues: tuple[str, ...]


ROSTER = (
    SeedAgent("7001", "Ana Gómez", 1, ("general", "incidentes")),
    SeedAgent("7002", "Bruno Díaz", 1, ("general", "incidentes")),
    SeedAgent("7003", "Carla Ruiz", 2, ("l2_clinico",)),
    SeedAgent("7004", "Diego Torres", 2, ("l2_tecnico",)),
    SeedAgent("7005", "Elena Vargas", 2, ("l2_comercial",)),
    SeedAgent("7006", "Fabio León", 3, ("l3_clinico",)),
)
"""The sandbox's agents (``config/citas/desk.yaml``)."""

SITES = ("norte", "sur", "centro", "oriente")
PAUSE_REASONS = ("almuerzo", "pausa_activa", "capacitacion", "reunion")  # desk.yaml pause_reasons

# (node id, kind, label, typical seconds)
_Node = tuple[str, str, str, float]
GREETING: _Node = ("saludo", "text", "Saludo y presentación", 8.0)
ASK_REASON: _Node = ("motivo", "question", "¿En qué le puedo ayudar?", 20.0)
CLOSING: _Node = ("cierre", "text", "Despedida", 6.0)


@dataclass(frozen=True)
class Path:
    """One way through the script: its labels, its nodes, the disposition it ends in."""

    call_type: str
    reason: str
    scenario: str
    procedure: str
    disposition: str
    nodes: tuple[_Node, ...]


PATHS: tuple[Path, ...] = (
    Path("agendamiento", "sin_cupo", "tiene_smartphone", "invitar_lina", "remitido_whatsapp", (
        ("smartphone", "question", "¿Cuenta con un smartphone?", 10.0),
        ("invitar_lina", "procedure", "Invitación a Lina por WhatsApp", 45.0))),
    Path("agendamiento", "sin_cupo", "sin_smartphone", "agendar_asesor", "agendado", (
        ("smartphone", "question", "¿Cuenta con un smartphone?", 10.0),
        ("agendar_asesor", "procedure", "Agendamiento por el asesor", 150.0),
        ("confirmar_cita", "question", "¿Confirma la cita?", 15.0))),
    Path("agendamiento", "no_objetivo", "fuera_de_rango", "agendar_asesor", "agendado", (
        ("verificar_datos", "question", "Verificación de datos del afiliado", 40.0),
        ("agendar_asesor", "procedure", "Agendamiento por el asesor", 150.0))),
    Path("agendamiento", "sede_no_agenda", "sede_migrada", "informar_canales", "informado", (
        ("informar_sede", "text", "Su sede ya no agenda por teléfono", 25.0),
        ("invitar_lina", "procedure", "Invitación a Lina por WhatsApp", 45.0))),
    Path("incidente", "falla_servicio", "caida_agendamiento", "radicar_caso", "caso_radicado", (
        ("registrar_falla", "question", "¿Qué falló?", 60.0),
        ("radicar_caso", "procedure", "Radicación del caso", 90.0))),
    Path("incidente", "falla_servicio", "cita_no_registrada", "radicar_caso", "caso_radicado", (
        ("verificar_cita", "question", "¿Tiene el número de la cita?", 50.0),
        ("radicar_caso", "procedure", "Radicación del caso", 90.0))),
    Path("informacion", "consulta_general", "horarios", "informar_canales", "informado", (
        ("informar_canales", "procedure", "Canales y horarios de atención", 40.0),)),
)  # fmt: skip

# The IVR's reasons (how often, and what agents end up recording: call type → weight).
IVR_REASONS: tuple[tuple[str, float, dict[str, float]], ...] = (
    ("non-target", 0.45, {"agendamiento": 0.85, "informacion": 0.15}),
    ("service-unavailable", 0.15, {"incidente": 0.6, "agendamiento": 0.4}),
    ("incident", 0.1, {"incidente": 0.9, "informacion": 0.1}),
    ("self-service-off", 0.1, {"agendamiento": 1.0}),
    ("redirect-off", 0.1, {"agendamiento": 0.8, "informacion": 0.2}),
    ("invalid-input", 0.1, {"informacion": 0.5, "agendamiento": 0.5}),
)
LABELS = {
    "agendamiento": "Agendamiento de citas", "incidente": "Incidentes",
    "informacion": "Solicitudes de información",
    "sin_cupo": "No pudo agendar en el IVR", "no_objetivo": "No es población objetivo del IVR",
    "sede_no_agenda": "Su sede ya no agenda por teléfono",
    "falla_servicio": "El sistema de citas no respondió", "consulta_general": "Horarios, sedes y requisitos",
    "tiene_smartphone": "Tiene smartphone", "sin_smartphone": "No tiene smartphone",
    "fuera_de_rango": "Edad fuera del rango del IVR", "sede_migrada": "Sede en migración digital",
    "caida_agendamiento": "La agenda no respondió", "cita_no_registrada": "La cita no quedó registrada",
    "horarios": "Horarios y sedes",
    "invitar_lina": "Invitación a Lina por WhatsApp", "agendar_asesor": "El asesor agenda la cita",
    "informar_canales": "Dar la información pedida", "radicar_caso": "Radicación del caso",
}  # fmt: skip
"""The labels the desk records for the seed's ids (``desk_contacts`` holds the tree's
labels, as the scripts part writes them; dispositions stay ids)."""

EXPECTED = {"non-target": ["agendamiento"], "service-unavailable": ["incidente"],
            "incident": ["incidente"], "self-service-off": ["agendamiento"],
            "redirect-off": ["agendamiento"]}  # fmt: skip
"""What the seeded script's entry rules imply (``invalid-input`` has no rule), by call type id."""

SEED_TREE: dict[str, Any] = {
    "call_types": [
        {"id": t, "label": LABELS[t],
         "reasons": [{"id": p.reason, "label": LABELS[p.reason]} for p in PATHS if p.call_type == t]}
        for t in ("agendamiento", "incidente", "informacion")
    ],
    "entry": [{"when": {"reason": r}, "node": f"{ts[0]}/{next(p.reason for p in PATHS if p.call_type == ts[0])}"}
              for r, ts in EXPECTED.items()],
}  # fmt: skip
"""A script tree in the scripts part's shape whose entry rules imply :data:`EXPECTED`
(for the tests; the demo reads the published tree, ``config/citas/scripts.yaml``)."""

# Level 1 → level 2 by call type (area, queue, agent), level 2 clinical → level 3.
ESCALATE_L2 = {"incidente": ("tecnico", "l2_tecnico", "7004", "Falla técnica sin solución en nivel 1"),
               "agendamiento": ("clinico", "l2_clinico", "7003", "Requiere valoración clínica"),
               "informacion": ("comercial", "l2_comercial", "7005", "Consulta de afiliación y planes")}  # fmt: skip
ESCALATE_L3 = ("clinico", "l3_clinico", "7006", "Caso clínico especializado")
L2_STEPS: tuple[_Node, ...] = (("revision_nivel", "text", "Revisión del caso escalado", 30.0),)
MEAN_HOLD_S = {1: 16.0, 2: 35.0, 3: 60.0}


@dataclass
class SeedStep:
    seq: int
    node_id: str
    node_kind: str
    label: str
    answer: str | None
    entered_at: datetime
    left_at: datetime | None
    seconds: float | None


@dataclass
class SeedContact:
    """A ``desk_contacts`` row to be, with its steps."""

    id: str
    kind: str
    agent: str
    agent_name: str
    queue: str
    level: int
    area: str
    journey_key: str
    context: dict[str, Any]
    ivr_reason: str | None
    queued_at: datetime
    answered_at: datetime
    hold_seconds: float
    ring_seconds: float
    state: str = "active"
    ended_at: datetime | None = None
    closed_at: datetime | None = None
    call_type: str | None = None
    reason: str | None = None
    scenario: str | None = None
    procedure: str | None = None
    disposition: str | None = None
    escalated_at: datetime | None = None
    escalation_reason: str | None = None
    escalated_to: str | None = None
    previous_contact_id: str | None = None
    steps: list[SeedStep] = field(default_factory=list)


@dataclass
class SeedPresence:
    agent: str
    event: str
    reason: str | None
    queues: list[str]
    at: datetime


@dataclass
class DeskSeed:
    contacts: list[SeedContact]
    presence: list[SeedPresence]


def label(contact: SeedContact, path: Path) -> None:
    """Record the path's call type, reason and scenario as the desk does: their labels."""
    contact.call_type, contact.reason = LABELS[path.call_type], LABELS[path.reason]
    contact.scenario = LABELS[path.scenario]


class _Planner:
    def __init__(self, rng: random.Random, tz: tzinfo) -> None:
        self.rng = rng
        self.tz = tz

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def seconds(self, typical: float) -> float:
        return round(self.rng.lognormvariate(0, 0.5) * typical, 1)

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def walk(
        self, contact: SeedContact, nodes: Sequence[_Node], at: datetime, first_seq: int
    ) -> datetime:
        for i, (node, kind, label, typical) in enumerate(nodes):
            spent = self.seconds(typical)
            left = at + timedelta(seconds=spent)
            answer = (
                "si"
                if kind == "question" and self.rng.random() < 0.7
                else ("no" if kind == "question" else None)
            )
            contact.steps.append(
                SeedStep(first_seq + i, node, kind, label, answer, at, left, spent)
            )
            at = left
        return at

    def agent(self, extension: str) -> SeedAgent:
        return next(a for a in ROSTER if a.extension == extension)

    def journey(self, day: date, budget: int) -> list[SeedContact]:
        rng = self.rng
        ivr_reason, _, implies = rng.choices(IVR_REASONS, [w for _, w, _ in IVR_REASONS])[0]
        call_type = self.pick(implies)
        path = rng.choice([p for p in PATHS if p.call_type == call_type])
        chat = rng.random() < 0.1
        minute = rng.randrange(8 * 60, 16 * 60 + 30)
        queued = datetime.combine(day, time(minute // 60, minute % 60, rng.randrange(60)), self.tz)
        journey_key = (
            self.uid() if chat else f"{rng.randrange(10**9, 10**10)}.{rng.randrange(1000)}"
        )
        context = {
            "site_id": rng.choice(SITES),
            "segment": "non-target" if ivr_reason == "non-target" else "target",
        }
        queue = "incidentes" if ivr_reason == "incident" else "general"
        l1 = self.agent(rng.choice(("7001", "7002")))
        first = self.hop(l1, queue, 1, "recepcion", journey_key, context, ivr_reason, queued, chat)
        label(first, path)
        at = self.walk(first, (GREETING, ASK_REASON), first.answered_at, 1)
        hops = [first]
        escalate = budget > 1 and rng.random() < 0.18
        if not escalate:
            self.finish(first, path, at)
            return hops
        area, queue2, ext2, why = ESCALATE_L2[path.call_type]
        at = self.escalate(first, at, why, queue2)
        second = self.hop(
            self.agent(ext2), queue2, 2, area, journey_key, context, ivr_reason, at, chat
        )
        second.previous_contact_id = first.id
        label(second, path)
        at = self.walk(second, L2_STEPS, second.answered_at, 1)
        hops.append(second)
        if area == "clinico" and budget > 2 and rng.random() < 0.3:
            area3, queue3, ext3, why3 = ESCALATE_L3
            at = self.escalate(second, at, why3, queue3)
            third = self.hop(
                self.agent(ext3), queue3, 3, area3, journey_key, context, ivr_reason, at, chat
            )
            third.previous_contact_id = second.id
            label(third, path)
            at = self.walk(third, L2_STEPS, third.answered_at, 1)
            hops.append(third)
        self.finish(hops[-1], path, at)
        return hops

    def hop(self, agent: SeedAgent, queue: str, level: int, area: str, journey_key: str,
            context: dict[str, Any], ivr_reason: str, queued: datetime, chat: bool) -> SeedContact:  # fmt: skip
        hold = round(self.rng.expovariate(1 / MEAN_HOLD_S[level]), 1)
        answered = queued + timedelta(seconds=hold)
        return SeedContact(
            self.uid(), "chat" if chat else "voice", agent.extension, agent.name, queue, level, area,
            journey_key, dict(context), "solicitud-asesor" if chat else ivr_reason, queued, answered,
            hold, round(self.rng.uniform(2, 9), 1),
        )  # fmt: skip

    def escalate(self, contact: SeedContact, at: datetime, why: str, to_queue: str) -> datetime:
        contact.state, contact.escalated_at = "escalated", at
        contact.escalation_reason, contact.escalated_to = why, to_queue
        contact.ended_at = at  # the agent's leg ends when the caller moves on
        return at + timedelta(seconds=self.rng.uniform(3, 8))  # the message before the hold music

    def finish(self, contact: SeedContact, path: Path, at: datetime) -> None:
        seq = len(contact.steps) + 1
        nodes = path.nodes if contact.level == 1 else path.nodes[-1:]
        at = self.walk(contact, (*nodes, CLOSING), at, seq)
        contact.procedure = LABELS[path.procedure]
        contact.ended_at = at
        roll = self.rng.random()
        if roll < 0.03:
            contact.state = "wrapup"  # hung up, no disposition yet
            return
        if roll < 0.05:
            contact.steps[-1].left_at = contact.steps[-1].seconds = None  # cut in the last step
        contact.state, contact.disposition = "closed", path.disposition
        contact.closed_at = at + timedelta(seconds=self.seconds(20.0))

    def presence(self, day: date) -> list[SeedPresence]:
        found = []
        for agent in ROSTER:
            at = datetime.combine(day, time(7, self.rng.randrange(0, 50)), self.tz)
            found.append(SeedPresence(agent.extension, "login", None, list(agent.queues), at))
            for hour in sorted(self.rng.sample(range(9, 16), self.rng.randrange(1, 4))):
                start = datetime.combine(day, time(hour, self.rng.randrange(60)), self.tz)
                reason = self.rng.choice(PAUSE_REASONS)
                minutes = 45 if reason == "almuerzo" else self.rng.randrange(5, 20)
                found.append(
                    SeedPresence(agent.extension, "pause", reason, list(agent.queues), start)
                )
                found.append(SeedPresence(agent.extension, "unpause", None, list(agent.queues),
                                          start + timedelta(minutes=minutes)))  # fmt: skip
            end = datetime.combine(day, time(17, self.rng.randrange(0, 59)), self.tz)
            found.append(SeedPresence(agent.extension, "logout", None, list(agent.queues), end))
        return found


def generate(contacts: int, *, first_day: date, days: int, tz: tzinfo, seed: int = 12) -> DeskSeed:
    """Plan ``contacts`` contacts (hops included) over ``days`` local days from
    ``first_day`` in ``tz``, and every agent's presence on those days; the same
    ``seed`` gives the same plan. Raises ValueError for a negative count or no day."""
    if contacts < 0 or days < 1:
        raise ValueError("contacts ≥ 0 and days ≥ 1")
    planner = _Planner(random.Random(seed), tz)
    planned: list[SeedContact] = []
    while len(planned) < contacts:
        day = first_day + timedelta(days=planner.rng.randrange(days))
        planned.extend(planner.journey(day, contacts - len(planned)))
    presence = [e for d in range(days) for e in planner.presence(first_day + timedelta(days=d))]
    planned.sort(key=lambda c: (c.answered_at, c.id))
    return DeskSeed(planned, presence)


def facts(seed: DeskSeed) -> tuple[list[ContactFacts], list[StepFacts], list[PresenceFacts]]:
    """The plan as the reports read it (what a report over the written plan must agree with)."""
    contacts = [
        ContactFacts(
            id=c.id, kind=c.kind, agent=c.agent, agent_name=c.agent_name, queue=c.queue,
            level=c.level, answered_at=c.answered_at, state=c.state, site=c.context.get("site_id"),
            ivr_reason=c.ivr_reason, call_type=c.call_type, reason=c.reason, scenario=c.scenario,
            procedure=c.procedure, disposition=c.disposition, queued_at=c.queued_at,
            ended_at=c.ended_at, closed_at=c.closed_at, escalated_at=c.escalated_at,
            escalation_reason=c.escalation_reason, escalated_to=c.escalated_to,
            hold_seconds=c.hold_seconds, previous_contact_id=c.previous_contact_id,
            journey_key=c.journey_key,
        )
        for c in seed.contacts
    ]  # fmt: skip
    steps = [
        StepFacts(c.id, s.seq, s.node_id, s.label, s.seconds)
        for c in seed.contacts
        for s in c.steps
    ]
    presence = [PresenceFacts(p.agent, p.event, p.at, p.reason) for p in seed.presence]
    return contacts, steps, presence


SEED_ACTOR = "semilla"
"""``desk_presence.actor`` of seeded events (and how :func:`write` finds them to replace)."""


def contact_rows(seed: DeskSeed) -> list[dict[str, Any]]:
    """The ``desk_contacts`` rows of the plan (voice contacts get Asterisk-like ids)."""
    rows = []
    for c in seed.contacts:
        voice = c.kind == "voice"
        rows.append({
            "id": c.id, "kind": c.kind, "agent": c.agent, "agent_name": c.agent_name,
            "queue": c.queue, "level": c.level, "area": c.area,
            "channel": f"PJSIP/citas-{c.journey_key[-8:]}" if voice else None,
            "uniqueid": c.journey_key if voice else None, "linkedid": c.journey_key if voice else None,
            "sip_call_id": None, "call_record_id": None,
            "conversation_id": None if voice else c.journey_key, "wa_id": None, "handoff_id": None,
            "context": c.context, "ivr_reason": c.ivr_reason, "queued_at": c.queued_at,
            "answered_at": c.answered_at, "ended_at": c.ended_at, "hold_seconds": c.hold_seconds,
            "ring_seconds": c.ring_seconds, "script_version": None,
            "script_node": c.steps[-1].node_id if c.steps else None, "call_type": c.call_type,
            "reason": c.reason, "scenario": c.scenario, "procedure": c.procedure,
            "disposition": c.disposition, "disposition_note": "", "closed_at": c.closed_at,
            "closed_by": c.agent if c.closed_at else None, "state": c.state,
            "escalated_at": c.escalated_at, "escalation_reason": c.escalation_reason,
            "escalated_to": c.escalated_to, "previous_contact_id": c.previous_contact_id,
            "journey_key": c.journey_key, "source_key": f"seed:{c.id}",
            "created_at": c.answered_at, "updated_at": c.closed_at or c.ended_at or c.answered_at,
            "version": 1,
        })  # fmt: skip
    return rows


async def write(db: Database, seed: DeskSeed) -> int:
    """Insert the plan into ``db`` (migrated) in one transaction, replacing what an
    earlier seed wrote (``source_key`` ``seed:…`` contacts, their steps, and presence
    by :data:`SEED_ACTOR`); contacts written. Raises StoreUnavailable."""
    contacts = contact_rows(seed)
    steps = [
        {"contact_id": c.id, "seq": s.seq, "node_id": s.node_id, "node_kind": s.node_kind,
         "label": s.label, "answer": s.answer, "entered_at": s.entered_at, "left_at": s.left_at,
         "seconds": s.seconds, "agent": c.agent}
        for c in seed.contacts for s in c.steps
    ]  # fmt: skip
    presence = [
        {"agent": p.agent, "event": p.event, "reason": p.reason, "queues": p.queues, "at": p.at,
         "actor": SEED_ACTOR}
        for p in seed.presence
    ]  # fmt: skip

    async def op(session: AsyncSession) -> int:
        seeded = DeskContactRow.source_key.like("seed:%")
        ids = select(DeskContactRow.id).where(seeded)
        await session.execute(delete(DeskStepRow).where(DeskStepRow.contact_id.in_(ids)))
        for level in (3, 2, 1):  # a hop points at the hop before: the later hops go first
            await session.execute(
                delete(DeskContactRow).where(seeded, DeskContactRow.level == level)
            )
        await session.execute(delete(DeskPresenceRow).where(DeskPresenceRow.actor == SEED_ACTOR))
        for level in (1, 2, 3):  # and are written after it
            rows = [r for r in contacts if r["level"] == level]
            if rows:
                await session.execute(insert(DeskContactRow), rows)
        if steps:
            await session.execute(insert(DeskStepRow), steps)
        if presence:
            await session.execute(insert(DeskPresenceRow), presence)
        return len(contacts)

    return await db.run("write the desk seed", op, deadline_s=max(db.timeout, 60.0))
