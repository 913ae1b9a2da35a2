"""The citas line's screen pop (``ivr.desk.pop.PopSource``): what the IVR or the
chat already did with this person, in words an agent reads at a glance.

For a call, the keys are the IVR's channel variables (``CITAS_CALL_ID`` = the
call record's ``sip_call_id``, ``CITAS_SEGMENT``, ``CITAS_REASON``,
``CITAS_AFFILIATE``, ``CITAS_CUPS``). The pop shows:

- who: the affiliate of the directory (``CITAS_AFFILIATE``, else the record's
  ``affiliate_id``), name in full, document and phone masked (``ivr.masking``);
- the segment and the reasons in words: the transfer's reason
  (:data:`TRANSFER_REASONS`) and the eligibility's (:func:`eligibility_words`:
  the age out of the band, a risk marking, the CUPS or plan out of scope, the
  site that no longer books by phone);
- the path through the menu, one line per choice (:func:`path_words`: the menu's
  name, the key, the option's title from the flow's ``title`` prompts);
- appointments (the booking source's pending ones), the open case of the
  service's specialty (``CaseStore.open_for``), the chat history of the same
  journey (conversations whose ``journey_id`` is the call record's id).

The call record must be in the database when the agent answers: the transfer
node writes it (``CallRecord.checkpoint``) before the call leaves the IVR. If
it is not there yet (the database was slow or down and the record buffered),
the pop shows what the channel variables say and lists ``"recorrido"`` in
``pending``; ``ivr.desk.screen.ScreenPop`` asks again and pushes the update.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.booking.model import Booking
from ivr.cases.model import Case
from ivr.chat.tables import ChatInboundRow, ChatOutboundRow, ConversationRow
from ivr.citas.affiliates import Affiliate, AffiliateDirectory, YamlAffiliateDirectory
from ivr.citas.reference import Reference
from ivr.desk.pop import CallKeys, ChatKeys, PopDetails, masked_person
from ivr.failures import failure_text
from ivr.flow.model import Flow, chat_text
from ivr.flow.nodes.menu import MenuNode
from ivr.masking import mask_number
from ivr.settings import Settings
from ivr.store import StoreUnavailable
from ivr.store.db import Database
from ivr.store.models import CallRecordRow

logger = logging.getLogger(__name__)

PENDING_PATH = "recorrido"
FLOW = "citas"  # the flow whose menus the path names
T = TypeVar("T")

SEGMENTS = {
    "target": "Población objetivo",
    "non_target": "Población no objetivo",
    "unknown": "Sin clasificar (no se evaluó)",
}
TRANSFER_REASONS = {
    "non-target": "Población no objetivo: no tomó un cupo en el IVR",
    "invalid-input": "Agotó los intentos en el menú",
    "service-unavailable": "El servicio de agendamiento no respondió",
    "self-service-off": "El autoservicio está apagado por operación",
    "redirect-off": "Sin cupo y la remisión a WhatsApp está apagada",
    "incident": "Reporta un incidente",
    "asked": "Pidió hablar con un asesor",
    "ivr-error": "Falla del IVR durante la llamada",
    "ivr-restarted": "El IVR se reinició durante la llamada",
    "ivr-shutdown": "El IVR se estaba apagando",
    "ivr-unknown-flow": "Llamada a un flujo que no existe",
}
MENUS = {
    "main_menu": "Menú principal",
    "ask_service": "Servicio",
    "offer_slot": "Cupo ofrecido",
    "ask_time_band": "Franja horaria",
    "offer_cancel": "Cita a cancelar",
    "confirm_cancel": "Confirmar cancelación",
    "offer_reschedule": "Cita a reprogramar",
    "case_offer": "Radicar un caso",
    "case_consent": "Autorización de datos",
    "case_email_voice": "Respuesta por correo",
    "case_email_chat": "Respuesta por correo",
    "case_email_none": "Respuesta por correo",
}
ACTIONS = {
    ("identify_by_caller_id", "found"): "Identificado por el número desde el que llama",
    ("identify_by_caller_id", "not_found"): "No se identificó por el número desde el que llama",
    ("identify_by_document", "found"): "Identificado por número de documento",
    ("identify_by_document", "not_found"): "Documento no encontrado",
    ("identify_by_document", "exhausted"): "No se pudo identificar por documento",
    ("evaluate_eligibility", "non_target"): "Evaluado: población no objetivo",
    ("evaluate_eligibility", "target_self_service"): "Evaluado: población objetivo",
    (
        "evaluate_eligibility",
        "target_digital",
    ): "Evaluado: su sede agenda solo por canales digitales",
    ("find_slot", "none"): "No había cupos",
    ("find_slot", "has_appointment"): "Ya tiene una cita pendiente de ese servicio",
    ("next_slot", "none"): "No hubo más cupos",
    ("widen_search", "tried"): "Se buscó en todas las franjas y médicos, sin cupo",
    ("book_slot", "booked"): "Agendó una cita",
    ("cancel_appointment", "cancelled"): "Canceló una cita",
    ("file_case", "filed"): "Radicó un caso",
    ("open_case_check", "open"): "Tiene un caso abierto",
    ("send_whatsapp_sms", "queued"): "Se le envió el enlace de WhatsApp por SMS",
}
CASE_STATES = {
    "open": "abierto",
    "assigned": "asignado",
    "answered": "respondido",
    "closed": "cerrado",
}


def eligibility_words(reason: str) -> str:
    """One eligibility reason (``ivr.citas.eligibility``) in Spanish.

    >>> eligibility_words("age_out_of_band:70")
    'Edad fuera de la franja: 70 años'
    >>> eligibility_words("plan_not_in_scope:PAC")
    'Plan fuera del alcance: PAC'
    >>> eligibility_words("something_new")
    'something_new'
    """
    kind, _, value = reason.partition(":")
    words = {
        "age_out_of_band": f"Edad fuera de la franja: {value} años",
        "risk_marking": f"Marcación de riesgo: {value}",
        "cups_not_in_scope": f"Servicio (CUPS {value}) fuera del alcance",
        "plan_not_in_scope": f"Plan fuera del alcance: {value}",
        "site_phone_booking_closed": "Su sede ya no agenda por teléfono (migración a canales digitales)",
    }
    return words.get(kind, reason)


def path_words(
    path: Sequence[Mapping[str, Any]], flow: Flow | None, title: Callable[[str], str]
) -> list[str]:
    """The call record's path as the agent reads it: the caller's choices in each
    menu (menu name and the option's title), what the IVR found (identification,
    eligibility, slots) and the transfer. Prompts, nodes and decisions are left
    out (the agent does not need what the IVR said, only what happened).

    >>> path_words([{"kind": "digits", "node": "main_menu", "digits": "1"},
    ...             {"kind": "transfer", "reason": "non-target"}], None, str)
    ['Menú principal: 1', 'Transferido: Población no objetivo: no tomó un cupo en el IVR']
    """
    lines: list[str] = []
    for step in path:
        kind = step.get("kind")
        if kind == "digits":
            line = _digits_words(step, flow, title)
        elif kind == "action":
            line = ACTIONS.get((str(step.get("action")), str(step.get("outcome"))))
        elif kind == "max_retries":
            line = f"{MENUS.get(str(step.get('node')), str(step.get('node')))}: agotó los intentos"
        elif kind == "transfer":
            reason = str(step.get("reason", ""))
            line = f"Transferido: {TRANSFER_REASONS.get(reason, reason)}"
        elif kind == "caller_hangup":
            line = "Colgó"
        else:
            line = None
        if line:
            lines.append(line)
    return lines


def _digits_words(
    step: Mapping[str, Any], flow: Flow | None, title: Callable[[str], str]
) -> str | None:
    node_id = str(step.get("node", ""))
    digits = str(step.get("digits") or "")
    node = flow.nodes.get(node_id) if flow is not None else None
    if node_id == "ask_document":
        return f"Digitó su documento: {mask_number(digits)}" if digits else "No digitó su documento"
    if node is not None and not isinstance(node, MenuNode):
        return None
    menu = MENUS.get(node_id, node_id)
    if not digits:
        return f"{menu}: sin respuesta"
    option = node.options.get(digits) if isinstance(node, MenuNode) else None
    if isinstance(node, MenuNode) and option is None:
        return f"{menu}: opción no válida ({digits})"
    named = title(option.title) if option is not None and option.title else ""
    return f"{menu}: {digits} — {named}" if named else f"{menu}: {digits}"


class CallRecords(Protocol):
    async def find_by_sip_call_id(self, sip_call_id: str) -> list[CallRecordRow]: ...


class Appointments(Protocol):
    async def pending_for(self, affiliate_id: str) -> list[Booking]: ...


class OpenCases(Protocol):
    async def open_for(self, affiliate_id: str, specialty: str) -> Case | None: ...


class ChatHistory(Protocol):
    """The conversations of a journey and their messages, oldest first:
    ``[{"at", "from", "text"}]`` (``from``: ``persona`` or ``Lina``)."""

    async def history(
        self, *, journey_id: str | None, conversation_id: str | None
    ) -> list[dict[str, str]]: ...


class CitasPopSource:
    """The citas :class:`ivr.desk.pop.PopSource` (see the module docstring).

    Every lookup is bounded by the store's own timeout; one that fails
    (``StoreUnavailable``, the booking service down) leaves its part of the pop
    empty and is logged: a pop without appointments beats no pop.
    """

    def __init__(
        self,
        reference: Reference,
        directory: AffiliateDirectory,
        records: CallRecords,
        *,
        appointments: Appointments | None = None,
        cases: OpenCases | None = None,
        chats: ChatHistory | None = None,
        flow: Flow | None = None,
        title: Callable[[str], str] = str,
    ) -> None:
        self.reference = reference
        self.directory = directory
        self.records = records
        self.appointments = appointments
        self.cases = cases
        self.chats = chats
        self.flow = flow
        self.title = title
        self.zone = ZoneInfo(reference.line.timezone)

    async def for_call(self, call: CallKeys) -> PopDetails:
        record = await self._record(call.sip_call_id)
        variables = dict(record.variables or {}) if record is not None else {}
        segment = call.variables.get("CITAS_SEGMENT") or str(variables.get("segment") or "unknown")
        reason = call.variables.get("CITAS_REASON") or _transfer_reason(record) or ""
        affiliate_id = call.variables.get("CITAS_AFFILIATE") or str(
            variables.get("affiliate_id") or ""
        )
        details = PopDetails(segment={"code": segment, "label": SEGMENTS.get(segment, segment)})
        details.ivr_reason = TRANSFER_REASONS.get(reason, reason) if reason else None
        details.reasons = [details.ivr_reason] if details.ivr_reason else []
        details.reasons += [
            eligibility_words(str(r)) for r in variables.get("eligibility_reasons") or []
        ]
        if record is not None and _complete(record):
            details.call_record_id = record.id
            details.path = path_words(record.path or [], self.flow, self.title)
        else:
            details.pending.append(PENDING_PATH)
        affiliate = await self._affiliate(affiliate_id)
        details.caller = self._person(affiliate, affiliate_id or None, call.caller_number)
        details.facts = self._facts(variables, call.variables, affiliate)
        await self._affiliate_parts(details, affiliate_id, str(variables.get("specialty") or ""))
        if self.chats is not None and record is not None:
            details.chat = await self._guard("chat history", self.chats.history(
                journey_id=record.id, conversation_id=None), [])  # fmt: skip
        return details

    async def for_chat(self, chat: ChatKeys) -> PopDetails:
        context = dict(chat.context)
        segment = str(context.get("segment") or "unknown")
        affiliate_id = str(context.get("affiliate_id") or context.get("affiliate") or "")
        affiliate = await self._affiliate(affiliate_id)
        details = PopDetails(segment={"code": segment, "label": SEGMENTS.get(segment, segment)})
        details.ivr_reason = TRANSFER_REASONS.get(chat.reason, chat.reason)
        details.reasons = [details.ivr_reason]
        details.reasons += [
            eligibility_words(str(r)) for r in context.get("eligibility_reasons") or []
        ]
        details.caller = self._person(affiliate, affiliate_id or None, "+" + chat.wa_id)
        details.facts = [
            {"label": "Canal", "value": "WhatsApp (Lina)"},
            *self._facts(context, {}, affiliate),
        ]
        await self._affiliate_parts(details, affiliate_id, str(context.get("specialty") or ""))
        if self.chats is not None:
            details.chat = await self._guard("chat history", self.chats.history(
                journey_id=chat.journey_id, conversation_id=chat.conversation_id), [])  # fmt: skip
        return details

    # --- parts ---------------------------------------------------------------------------
    async def _record(self, sip_call_id: str | None) -> CallRecordRow | None:
        if not sip_call_id:
            return None
        rows = await self._guard("call record", self.records.find_by_sip_call_id(sip_call_id), [])
        return rows[-1] if rows else None

    async def _affiliate(self, affiliate_id: str) -> Affiliate | None:
        if not affiliate_id:
            return None
        return await self._guard("affiliate", self.directory.by_document(affiliate_id), None)

    def _person(
        self, affiliate: Affiliate | None, document: str | None, number: str | None
    ) -> dict[str, str | None]:
        if affiliate is None:
            return masked_person(name=None, document=document, phone=number)
        site = self.reference.sites.get(affiliate.site_id)
        return masked_person(
            name=affiliate.name,
            document=affiliate.document,
            phone=number or affiliate.phone,
            plan=affiliate.plan,
            site=site.name if site else affiliate.site_id,
        )

    def _facts(
        self, variables: Mapping[str, Any], channel: Mapping[str, str], affiliate: Affiliate | None
    ) -> list[dict[str, str]]:
        facts: list[dict[str, str]] = []
        service = next((s for s in self.reference.services.values()
                        if s.id == variables.get("service")), None)  # fmt: skip
        if service is not None:
            facts.append({"label": "Servicio", "value": service.name})
        cups = channel.get("CITAS_CUPS") or variables.get("cups")
        if cups:
            facts.append({"label": "CUPS", "value": str(cups)})
        if variables.get("age") is not None:
            facts.append({"label": "Edad", "value": f"{variables['age']} años"})
        if channel.get("CITAS_VDN"):
            facts.append({"label": "VDN", "value": channel["CITAS_VDN"]})
        return facts

    async def _affiliate_parts(
        self, details: PopDetails, affiliate_id: str, specialty: str
    ) -> None:
        if not affiliate_id:
            return
        if self.appointments is not None:
            bookings = await self._guard(
                "appointments", self.appointments.pending_for(affiliate_id), []
            )
            details.appointments = [self._appointment(b) for b in bookings]
        if self.cases is not None and specialty:
            case = await self._guard(
                "open case", self.cases.open_for(affiliate_id, specialty), None
            )
            if case is not None:
                details.open_case = {
                    "number": case.number, "state": CASE_STATES.get(case.state, case.state),
                    "summary": case.summary,
                    "due": case.due_at.astimezone(self.zone).strftime("%Y-%m-%d"),
                }  # fmt: skip

    def _appointment(self, booking: Booking) -> dict[str, str]:
        slot = booking.slot
        site = self.reference.sites.get(slot.site_id)
        doctor = site.doctors.get(slot.doctor_id) if site else None
        service = next(
            (s.name for s in self.reference.services.values() if s.cups == slot.cups), slot.cups
        )
        return {
            "when": slot.starts_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"),
            "what": service, "doctor": doctor.name if doctor else slot.doctor_id,
            "where": site.name if site else slot.site_id,
            "state": "cancelada" if booking.cancelled else "pendiente",
        }  # fmt: skip

    async def _guard(self, what: str, step: Awaitable[T], default: T) -> T:
        try:
            return await step
        except (StoreUnavailable, OSError, TimeoutError) as exc:
            logger.warning("desk pop: %s unavailable: %s", what, failure_text(exc))
            return default


def _transfer_reason(record: CallRecordRow | None) -> str | None:
    for step in reversed(record.path or [] if record is not None else []):
        if step.get("kind") == "transfer":
            return str(step.get("reason") or "") or None
    return None


def _complete(record: CallRecordRow) -> bool:
    """The record holds the path up to the hand-off: closed, or checkpointed at the transfer."""
    return record.ended_at is not None or _transfer_reason(record) is not None


class ConversationHistory:
    """:class:`ChatHistory` over the chat tables (``ivr.chat.tables``): the
    conversation itself and every conversation of the journey, their inbound and
    outbound messages merged by time, the last ``limit`` lines."""

    def __init__(self, db: Database, zone: ZoneInfo, limit: int = 30) -> None:
        self.db = db
        self.zone = zone
        self.limit = limit

    async def history(
        self, *, journey_id: str | None, conversation_id: str | None
    ) -> list[dict[str, str]]:
        keys = [c for c in (ConversationRow.id == conversation_id if conversation_id else None,
                            ConversationRow.journey_id == journey_id if journey_id else None)
                if c is not None]  # fmt: skip
        if not keys:
            return []

        async def op(session: AsyncSession) -> list[tuple[datetime, str, str]]:
            ids = list(await session.scalars(select(ConversationRow.id).where(or_(*keys))))
            lines: list[tuple[datetime, str, str]] = []
            inbound = await session.scalars(
                select(ChatInboundRow).where(ChatInboundRow.conversation_id.in_(ids))
            )
            for msg in inbound:
                lines.append((msg.meta_timestamp, "persona", msg.text or f"[{msg.kind}]"))
            outbound = await session.scalars(
                select(ChatOutboundRow).where(ChatOutboundRow.conversation_id.in_(ids))
            )
            for out in outbound:
                lines.append((out.created_at, "Lina", _outbound_text(out.payload)))
            return lines

        lines = await self.db.run("read the journey's chats", op)
        lines.sort(key=lambda item: item[0])
        return [{"at": at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M"), "from": who, "text": text}
                for at, who, text in lines[-self.limit:]]  # fmt: skip


def _outbound_text(payload: Mapping[str, Any]) -> str:
    text = payload.get("text")
    if isinstance(text, Mapping):
        return str(text.get("body", ""))
    interactive = payload.get("interactive")
    if isinstance(interactive, Mapping):
        body = interactive.get("body")
        return str(body.get("text", "")) if isinstance(body, Mapping) else "[interactivo]"
    return "[mensaje]"


def citas_pop_source(
    settings: Settings,
    db: Database,
    *,
    flows: Mapping[str, Flow],
    reference: Reference | None = None,
    slots: Appointments | None = None,
) -> CitasPopSource:
    """The citas pop source over ``db`` for ``settings``' deployment (composition root):
    the affiliates directory, the call records, the booking source (``slots``: the
    controller's guarded one; None: our own database), the cases, the chat tables,
    and the citas flow's menus with their titles (the prompts' chat texts)."""
    from ivr.booking.db import DbSlotSource
    from ivr.cases.setup import case_store
    from ivr.citas.reference import load_reference
    from ivr.prompts import load_prompt_texts
    from ivr.store.records import CallRecordStore

    reference = reference or load_reference(settings.citas_dir)
    zone = ZoneInfo(reference.line.timezone)
    directory = YamlAffiliateDirectory.load(
        settings.citas_dir / "affiliates.yaml", datetime.now(zone).date(), sites=reference.sites
    )
    texts = load_prompt_texts(settings.prompts_file)
    cases = case_store(settings, db) if (settings.citas_dir / "cases.yaml").exists() else None
    return CitasPopSource(
        reference, directory, CallRecordStore(db),
        appointments=slots or DbSlotSource(db, timeout=settings.request_timeout),
        cases=cases, chats=ConversationHistory(db, zone), flow=flows.get(FLOW),
        title=lambda prompt_id: chat_text(texts[prompt_id]) if prompt_id in texts else prompt_id,
    )  # fmt: skip
