"""The citas flow's actions: identify, decide eligibility, offer and book slots, SMS;
list, cancel and reschedule the patient's appointments (issue 10 §2).

Each action reads and writes the call's variables and returns an outcome
name; ``config/flows/citas.yaml`` maps outcomes to nodes. ``OUTCOMES`` lists
what each action can return, so the flow loader refuses a flow that expects
anything else; ``COMMITS`` names the actions that commit something for the
caller, which no typed-ahead key may reach (``type_ahead`` in ``ivr.flow.model``).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.booking.model import (
    AppointmentNotFound,
    Booking,
    BookingError,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.source import SlotSource
from ivr.cases.store import CaseStore
from ivr.channel import QUEUE_KEY, Phrase
from ivr.chat.callref import DESTINATION_VARIABLE, REFERENCE_VARIABLE, new_reference
from ivr.citas.affiliates import Affiliate, AffiliateDirectory
from ivr.citas.cases import (
    CASE_COMMITS,
    CASE_OUTCOMES,
    EVIDENCE_VARIABLE,
    CitasCases,
    evidence_entry,
)
from ivr.citas.cases import SPOKEN_PROMPTS as CASE_SPOKEN_PROMPTS
from ivr.citas.eligibility import decide
from ivr.citas.flags import AGE_MAX, AGE_MIN, CUPS_IN_SCOPE, flag_registry, site_closure_flag
from ivr.citas.reference import EligibilityTables, Reference, Site
from ivr.citas.surveys import SURVEY_OUTCOMES, CallSurveyActions
from ivr.flow.engine import Action, ActionFailed, CallState
from ivr.masking import mask_number
from ivr.ops.flags import FlagReader, StaticFlags
from ivr.phone import parse_e164, sms_destination, spoken_groups, whatsapp_digits
from ivr.sms.outbox import SmsOutbox
from ivr.speech import es as speech_es
from ivr.surveys.store import SurveyStore
from ivr.yamlsrc import ConfigError

logger = logging.getLogger(__name__)

OUTCOMES: dict[str, tuple[str, ...]] = {
    "identify_by_caller_id": ("found", "not_found"),
    "identify_by_document": ("found", "not_found", "exhausted"),
    "select_service": ("ok",),
    "evaluate_eligibility": ("target_self_service", "target_digital", "non_target"),
    "find_slot": ("found", "none", "has_appointment"),
    "next_slot": ("found", "none"),
    "set_time_band": ("found", "none"),
    "other_doctor": ("found", "none"),
    "book_slot": ("booked", "taken", "unavailable", "has_appointment"),
    "send_whatsapp_sms": ("queued", "no_mobile"),
    "incident_queue": ("ok",),
    "start_over": ("identified", "unidentified"),
    # The patient's appointments (issue 10 §2).
    "list_appointments": ("found", "none"),
    "pick_appointment": ("single", "found", "none"),
    "cancel_appointment": ("cancelled", "not_found", "unavailable"),
    "reschedule": ("found", "none"),
    "move_appointment": ("rescheduled", "taken", "unavailable", "has_appointment", "not_found"),
    # Cases: filing when no slot is found (issue 11 §1; ivr/citas/cases.py).
    **CASE_OUTCOMES,
    **SURVEY_OUTCOMES,  # the keypad survey after a served call (ivr/citas/surveys.py)
}
# What survives a return to the main menu (``start_over``): who the patient is,
# how many documents they tried, the chat's call reference.
KEPT_ON_START_OVER = frozenset(
    {"affiliate_id", "identified_by", "document_tries", REFERENCE_VARIABLE, DESTINATION_VARIABLE}
)
# Actions that commit something the caller must have heard first (issue 9 §1).
COMMITS = frozenset({"book_slot", "cancel_appointment", "move_appointment"}) | CASE_COMMITS
MAX_DOCUMENT_TRIES = 3
# How a doctor's title reads after "con": "con la doctora Ana Gómez".
DOCTOR_TITLES = {"Doctora": "la", "Doctor": "el"}


def spoken_prompts(sites: Mapping[str, Site]) -> dict[str, str]:
    """The prompt ids these actions play by themselves (no flow names them, so the
    flow loader cannot check them), each with what says it: ``ivr.speech.es``'s
    times, the slot offer's words (``CitasActions.slot_media``) and one
    ``doctor_<id>`` and ``site_<id>`` per doctor and site of ``sites.yaml``."""
    spoken = dict.fromkeys(sorted(speech_es.PROMPT_IDS), "ivr/speech/es.py says times with it")
    offer = "the slot offer says it (ivr/citas/actions.py slot_media)"
    spoken |= {"slot_with_doctor": offer, "slot_at_site": offer}
    listing = "the list of appointments says it (ivr/citas/actions.py list_appointments)"
    spoken |= {"appointment_item": listing} | CASE_SPOKEN_PROMPTS
    for site in sites.values():
        spoken[f"site_{site.id}"] = f"the slot offer names site {site.id} of sites.yaml with it"
        for doctor in site.doctors.values():
            spoken[f"doctor_{doctor.id}"] = (
                f"the slot offer names doctor {doctor.id} of site {site.id} (sites.yaml) with it"
            )
    return spoken


def check_spoken_prompts(
    prompt_ids: Collection[str], sites: Mapping[str, Site], prompts_file: Path
) -> None:
    """Raise ``ConfigError`` (file ``prompts_file``, field ``prompts.<id>``) for the
    first prompt of ``spoken_prompts(sites)`` with no text in ``prompt_ids``: the
    caller would hear nothing where the time, the doctor or the site belongs."""
    for prompt_id, why in spoken_prompts(sites).items():
        if prompt_id not in prompt_ids:
            raise ConfigError(
                str(prompts_file), None, f"prompts.{prompt_id}", f"no text, and {why}"
            )


WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
          "septiembre", "octubre", "noviembre", "diciembre")  # fmt: skip


def date_text(day: date) -> str:
    """``day`` as a chat reads it: "lunes 30 de noviembre" (what ``date_media`` says)."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} de {MONTHS[day.month - 1]}"


def time_text(at: time) -> str:
    """``at`` as a chat reads it, 12-hour Colombian style: "a las 8:00 a. m.",
    "a la 1:30 p. m." (what ``time_media`` says: "a la una y treinta de la tarde")."""
    hour = at.hour % 12 or 12
    suffix = "a. m." if at.hour < 12 else "p. m."
    return f"{'a la' if hour == 1 else 'a las'} {hour}:{at.minute:02d} {suffix}"


def _titled(name: str, titles: Mapping[str, str]) -> str:
    """``name`` after a preposition: "Doctora Ana Gómez" -> "la doctora Ana Gómez"."""
    for title, article in titles.items():
        if name.startswith(title + " "):
            return f"{article} {title.lower()}{name[len(title) :]}"
    return name


def whatsapp_link(number: str, prefilled: str) -> str:
    """A wa.me link that opens a chat with a prefilled message (the user opens it).

    ``number`` is E.164 (``+573001112233``); the link has its digits without ``+``.
    Raises ``InvalidPhoneNumber`` for any other form.
    """
    return f"https://wa.me/{whatsapp_digits(number)}?text={urllib.parse.quote(prefilled)}"


class CitasActions:
    def __init__(
        self,
        reference: Reference,
        directory: AffiliateDirectory,
        slots: SlotSource,
        outbox: SmsOutbox,
        *,
        flags: FlagReader | None = None,
        clock: Callable[[], datetime] | None = None,
        cases: CaseStore | None = None,
        surveys: SurveyStore | None = None,
    ) -> None:
        self.ref = reference
        self.surveys = surveys
        self.directory = directory
        self.slots = slots
        self.outbox = outbox
        self.flags = flags or StaticFlags(flag_registry(reference))
        self.tz = ZoneInfo(reference.line.timezone)
        self.clock = clock or (lambda: datetime.now(self.tz))
        # The assistant's number as the caller dials it, one digit at a time, in groups.
        groups = spoken_groups(reference.line.whatsapp_number)
        self.whatsapp_number_media = Phrase(
            "spoken", " ".join(groups), tuple(f"digits:{group}" for group in groups)
        )

        self.cases = CitasCases(
            reference, outbox, tz=self.tz, clock=self.clock, affiliate_of=self._affiliate_of,
            search=self._search, day_text=date_text, store=cases,
        )  # fmt: skip

    def registry(self) -> dict[str, Action]:
        own = {
            name: getattr(self, name)
            for name in OUTCOMES
            if name not in CASE_OUTCOMES and name not in SURVEY_OUTCOMES
        }
        surveys = self.surveys or (SurveyStore(self.outbox.db) if self.outbox else None)
        return own | self.cases.registry() | CallSurveyActions(surveys).registry()

    # --- identification -------------------------------------------------
    def _identified(self, state: CallState, affiliate: Affiliate, how: str) -> None:
        state.set("affiliate_id", affiliate.id)
        state.set("identified_by", how)
        state.set("site_id", affiliate.site_id)
        state.set("plan", affiliate.plan)
        state.set("age", affiliate.age_on(self.clock().date()))
        state.variables["_affiliate"] = affiliate

    async def _affiliate_of(self, state: CallState) -> Affiliate | None:
        """The identified affiliate: the process-local ``_affiliate``, else read again
        by ``affiliate_id`` (a chat resumed in another turn or process keeps only
        the JSON variables; the affiliate id is the document number)."""
        cached = state.variables.get("_affiliate")
        if isinstance(cached, Affiliate):
            return cached
        affiliate_id = state.variables.get("affiliate_id")
        affiliate = await self.directory.by_document(str(affiliate_id)) if affiliate_id else None
        if affiliate is not None:
            state.variables["_affiliate"] = affiliate
        return affiliate

    async def identify_by_caller_id(self, state: CallState, params: Mapping[str, object]) -> str:
        """Look the caller ID up in E.164, whatever form the carrier sent it in.

        Withheld (``anonymous``…), empty or invalid caller IDs are ``not_found``
        without a lookup (``ivr.phone.parse_e164``).
        """
        raw = state.channel.caller_number
        number = parse_e164(raw)
        if number is None:
            logger.info(
                "call %s: caller ID %s withheld or not a number",
                state.channel.call_id,
                mask_number(raw),
            )
            return "not_found"
        affiliate = await self.directory.by_phone(number)
        if affiliate is None:
            logger.info(
                "call %s: caller %s not in the directory",
                state.channel.call_id,
                mask_number(number),
            )
            return "not_found"
        self._identified(state, affiliate, "caller_id")
        return "found"

    async def identify_by_document(self, state: CallState, params: Mapping[str, object]) -> str:
        tries = int(state.variables.get("document_tries", 0)) + 1
        state.set("document_tries", tries)
        document = str(state.variables.get("document", ""))
        affiliate = await self.directory.by_document(document) if document else None
        if affiliate is None:
            logger.info(
                "call %s: document %s not found (try %d)",
                state.channel.call_id,
                mask_number(document),
                tries,
            )
            return "exhausted" if tries >= MAX_DOCUMENT_TRIES else "not_found"
        self._identified(state, affiliate, "document")
        return "found"

    async def start_over(self, state: CallState, params: Mapping[str, object]) -> str:
        """The person asked for the main menu (chat "0"/"menú", the flow's ``menu``):
        forget the task under way and keep who they are.

        Every variable but ``KEPT_ON_START_OVER`` (and the ``_`` caches) is dropped,
        so a new task starts clean: without it, "menú" while rescheduling then
        "1" (book) kept ``mode`` = ``reschedule`` and moved the old appointment
        instead of booking, at the old appointment's site, skipping the slots
        already offered. The identification variables (``site_id``, ``plan``,
        ``age``) are set again from the affiliate. ``identified`` (to the main
        menu) or ``unidentified`` (from the start: nobody to serve yet).
        """
        for name in [n for n in state.variables if n not in KEPT_ON_START_OVER]:
            if not name.startswith("_"):
                del state.variables[name]
                state.record.variables.pop(name, None)
        affiliate = await self._affiliate_of(state)
        if affiliate is None:
            return "unidentified"
        self._identified(state, affiliate, str(state.variables["identified_by"]))
        return "identified"

    # --- incident ----------------------------------------------------------
    async def incident_queue(self, state: CallState, params: Mapping[str, object]) -> str:
        """The next transfer goes to the incident queue, line.yaml ``agent_vdn.incident``."""
        state.set("agent_vdn", self.ref.line.vdn_incident)
        return "ok"

    # --- service and eligibility -----------------------------------------
    async def select_service(self, state: CallState, params: Mapping[str, object]) -> str:
        service = self.ref.services[str(state.variables["service_key"])]
        state.set("service", service.id)
        state.set("cups", service.cups)
        state.set("specialty", service.specialty)
        return "ok"

    async def evaluate_eligibility(self, state: CallState, params: Mapping[str, object]) -> str:
        affiliate = await self._affiliate_of(state)
        if affiliate is None:
            raise ActionFailed(
                f"affiliate {state.variables.get('affiliate_id')!r} not in the directory"
            )
        today = self.clock().date()
        result = decide(
            age=affiliate.age_on(today),
            risk=affiliate.risk_markings,
            cups=str(state.variables["cups"]),
            plan=affiliate.plan,
            phone_booking_open=self._phone_booking_open(affiliate.site_id, today),
            tables=self._tables(),
        )
        vdn = (
            self.ref.line.vdn_default
            if result.segment == "target"
            else self.ref.line.vdn_non_target
        )
        state.set("segment", result.segment)
        state.set("eligibility_route", result.route)
        state.set("eligibility_reasons", list(result.reasons))
        state.set("agent_vdn", vdn)
        # Known now for a rescue's hand-off, even by another controller (voice: the
        # channel's CITAS_CONTEXT, set at once): a non-target caller rescued from here
        # reaches the non-target agents, as the flow would have sent them.
        await state.channel.annotate(
            {"segment": result.segment, "affiliate": affiliate.id,
             "cups": str(state.variables["cups"]), QUEUE_KEY: vdn}
        )  # fmt: skip
        return result.route

    def _tables(self) -> EligibilityTables:
        """The reference tables with the parameters operations own, as they are now."""
        age_min, age_max = self.flags.value(AGE_MIN), self.flags.value(AGE_MAX)
        cups = self.flags.value(CUPS_IN_SCOPE)
        return replace(
            self.ref.eligibility,
            age_min=age_min if isinstance(age_min, int) else self.ref.eligibility.age_min,
            age_max=age_max if isinstance(age_max, int) else self.ref.eligibility.age_max,
            cups_in_scope=frozenset(cups)
            if isinstance(cups, list)
            else self.ref.eligibility.cups_in_scope,
        )

    def _phone_booking_open(self, site_id: str, today: date) -> bool:
        if site_id not in self.ref.sites:
            return False
        closed_from = self.flags.value(site_closure_flag(site_id))
        return not isinstance(closed_from, str) or today < date.fromisoformat(closed_from)

    # --- slots ------------------------------------------------------------
    async def _search(self, state: CallState) -> str:
        offered = list(state.variables.get("offered_ids", []))
        if len(offered) >= self.ref.line.max_offers:
            return "none"
        band = state.variables.get("time_band") or None
        exclude_doctor = state.variables.get("exclude_doctor_id") or None
        try:
            found = await self.slots.find(
                site_id=str(state.variables["site_id"]),
                cups=str(state.variables["cups"]),
                time_band=band,
                exclude_doctor_id=exclude_doctor,
                exclude_ids=offered,
                limit=1,
            )
        except BookingUnavailable as exc:
            raise ActionFailed(f"slot search failed: {exc}") from exc
        # Every search tried, kept for a case filed later (ivr/citas/cases.py).
        evidence = list(state.variables.get(EVIDENCE_VARIABLE, []))
        evidence.append(evidence_entry(band, exclude_doctor, len(found), self.clock()))
        state.set(EVIDENCE_VARIABLE, evidence)
        if not found:
            return "none"
        slot = found[0]
        offered.append(slot.id)
        state.set("offered_ids", offered)
        state.set("slot_id", slot.id)
        state.set("slot_doctor_id", slot.doctor_id)
        state.set("slot_starts_at", slot.starts_at.astimezone(self.tz).isoformat())
        state.set("slot_media", self.slot_phrase(slot))
        return "found"

    def slot_media(self, slot: Slot) -> list[str]:
        """Date, time, doctor and site of ``slot``, in the line's time zone, as media URIs.

        Date and time are said by ``ivr.speech.es`` (gender, "primero", noon,
        midnight, part of the day); the prompt before them ends with "el".
        """
        local = slot.starts_at.astimezone(self.tz)
        return [
            *speech_es.date_media(local.date()),
            *speech_es.time_media(local.time()),
            "sound:citas/slot_with_doctor", f"sound:citas/doctor_{slot.doctor_id}",
            "sound:citas/slot_at_site", f"sound:citas/site_{slot.site_id}",
        ]  # fmt: skip

    def slot_text(self, slot: Slot) -> str:
        """What ``slot_media`` says, as chat text: "lunes 30 de noviembre a las 8:00 a. m.
        con la doctora Ana Gómez en la sede Norte" (names from sites.yaml; ids when
        a site or doctor is not there)."""
        local = slot.starts_at.astimezone(self.tz)
        site = self.ref.sites.get(slot.site_id)
        doctor = site.doctors.get(slot.doctor_id) if site is not None else None
        doctor_name = _titled(doctor.name if doctor else slot.doctor_id, DOCTOR_TITLES)
        site_name = _titled(site.name if site else slot.site_id, {"Sede": "la"})
        return (
            f"{date_text(local.date())} {time_text(local.time())} con {doctor_name} en {site_name}"
        )

    def slot_phrase(self, slot: Slot) -> Phrase:
        """``slot`` read out: ``slot_media`` for voice, ``slot_text`` for chat."""
        return Phrase("spoken", self.slot_text(slot), tuple(self.slot_media(slot)))

    async def find_slot(self, state: CallState, params: Mapping[str, object]) -> str:
        """The first slot, unless the patient already holds a pending appointment
        for this service (the line's ``booking.one_pending_per_service``):
        ``has_appointment``, with it in ``appointment_media`` to read out."""
        if self.ref.line.one_pending_per_service:
            cups = str(state.variables["cups"])
            try:
                pending = await self.slots.pending_for(str(state.variables["affiliate_id"]))
            except BookingUnavailable as exc:
                raise ActionFailed(f"pending bookings unavailable: {exc}") from exc
            same = next((b for b in pending if b.slot.cups == cups), None)
            if same is not None:
                self._has_appointment(state, same, "same_service")
                return "has_appointment"
        return await self._search(state)

    def _has_appointment(self, state: CallState, existing: Booking, reason: str) -> None:
        """Remember the appointment the caller is about to hear they already have."""
        logger.info(
            "call %s: patient already has booking %s (%s)",
            state.channel.call_id,
            existing.id,
            reason,
        )
        state.set("appointment_id", existing.id)
        state.set("appointment_reason", reason)
        state.set("appointment_starts_at", existing.slot.starts_at.astimezone(self.tz).isoformat())
        state.set("appointment_media", self.slot_phrase(existing.slot))

    async def next_slot(self, state: CallState, params: Mapping[str, object]) -> str:
        return await self._search(state)

    async def set_time_band(self, state: CallState, params: Mapping[str, object]) -> str:
        band = {"1": "morning", "2": "afternoon"}.get(str(state.variables.get("time_band_key")), "")
        state.set("time_band", band)
        return await self._search(state)

    async def other_doctor(self, state: CallState, params: Mapping[str, object]) -> str:
        state.set("exclude_doctor_id", state.variables.get("slot_doctor_id", ""))
        return await self._search(state)

    async def book_slot(self, state: CallState, params: Mapping[str, object]) -> str:
        slot_id = str(state.variables["slot_id"])
        try:
            booking = await self.slots.book(
                slot_id, affiliate_id=str(state.variables["affiliate_id"]), call_id=state.record.id
            )
        except SlotTaken:
            logger.info("call %s: slot %s taken by another caller", state.channel.call_id, slot_id)
            return "taken"
        except PatientHasAppointment as exc:
            # Lost the race to another call of the same patient, or the slot
            # overlaps an appointment they hold: they hear that one, no second.
            self._has_appointment(state, exc.existing, exc.reason)
            return "has_appointment"
        except (BookingUnavailable, BookingError) as exc:
            logger.warning("call %s: booking failed: %s", state.channel.call_id, exc)
            state.set("booking_error", str(exc))
            return "unavailable"
        state.set("booking_id", booking.id)
        return "booked"

    # --- digital redirect ---------------------------------------------------
    async def send_whatsapp_sms(self, state: CallState, params: Mapping[str, object]) -> str:
        """Queue one SMS with the WhatsApp link to the caller's mobile: ``queued``.

        The destination is the directory's phone if it is a mobile, else the caller
        ID if it is one (``ivr.phone.sms_destination``). With neither (withheld or
        fixed-line caller ID, no mobile in the directory) nothing is queued and the
        outcome is ``no_mobile``: the flow reads the assistant's number out
        (``whatsapp_number_media``, set first so that the flow's ``on_failure``
        path can read it too) and never promises an SMS.

        The link's prefilled text carries the call's reference (line.yaml
        ``whatsapp.prefilled_text``'s ``{ref}``; ``ivr.chat.callref``), stored in
        the record with the SMS's destination so the chat continues this call.
        """
        state.set("whatsapp_number_media", self.whatsapp_number_media)
        affiliate = await self._affiliate_of(state)
        listed = affiliate.phone if isinstance(affiliate, Affiliate) else None
        caller = state.channel.caller_number
        phone = sms_destination(listed) or sms_destination(caller)
        if phone is None:
            logger.info(
                "call %s: no mobile to text (directory %s, caller ID %s): number read out",
                state.channel.call_id,
                mask_number(listed),
                mask_number(caller),
            )
            state.set("sms", "no_mobile")
            return "no_mobile"
        line = self.ref.line
        # The chat opened from this SMS continues this call (ivr.chat.callref):
        # one code per call, kept if the node runs again.
        code = str(state.variables.get(REFERENCE_VARIABLE) or new_reference())
        state.set(REFERENCE_VARIABLE, code)
        state.set(DESTINATION_VARIABLE, phone)
        prefilled = line.whatsapp_prefilled.format(ref=code)
        text = line.sms_text.format(link=whatsapp_link(line.whatsapp_number, prefilled))
        # One SMS per call: a retried node or a replayed call must not send twice.
        # With the database down the message is held in memory and stored later:
        # the caller is about to hear that an SMS is coming.
        message_id = await self.outbox.enqueue_or_hold(
            to_number=phone, text=text, dedupe_key=f"whatsapp:{state.record.id}"
        )
        if message_id is None:
            state.set("sms", "held")
            return "queued"
        state.set("sms_id", message_id)
        state.set("sms", "queued")
        return "queued"

    # --- the patient's appointments (issue 10 §2) --------------------------------
    async def list_appointments(self, state: CallState, params: Mapping[str, object]) -> str:
        """The patient's pending appointments, earliest first: ``found`` or ``none``.

        Leaves ``appointments`` (JSON: one dict per appointment, what
        ``pick_appointment`` needs after a restart), ``appointments_count``,
        ``appointments_media`` (voice: each one as "Cita del <date> <time> con
        <doctor> en la sede <site>") and ``appointments_text`` (the same list as
        chat text, one numbered line each). Raises ``ActionFailed`` when the
        booking service is unavailable (the flow's ``on_failure``).
        """
        try:
            pending = await self.slots.pending_for(str(state.variables["affiliate_id"]))
        except BookingUnavailable as exc:
            raise ActionFailed(f"pending bookings unavailable: {exc}") from exc
        state.set("appointments", [_appointment_json(b) for b in pending])
        state.set("appointments_count", len(pending))
        state.set("appointment_index", -1)
        media: list[str] = []
        for booking in pending:
            media += ["sound:citas/appointment_item", *self.slot_media(booking.slot)]
        listing = "\n".join(
            f"{n}. {self.appointment_text(b.slot)}" for n, b in enumerate(pending, start=1)
        )
        # One spoken phrase: voice plays the media, a chat shows the numbered list.
        state.set("appointments_media", Phrase("spoken", listing, tuple(media)))
        state.set("appointments_text", listing)
        logger.info("call %s: %d pending appointments", state.channel.call_id, len(pending))
        return "found" if pending else "none"

    def appointment_text(self, slot: Slot) -> str:
        """``slot`` as a chat reads it: "lunes 10 de marzo, 8:00 a. m., Doctora Ana
        Gómez, Sede Norte" (the line's time zone; names from sites.yaml)."""
        local = slot.starts_at.astimezone(self.tz)
        site = self.ref.sites.get(slot.site_id)
        doctor = site.doctors.get(slot.doctor_id) if site is not None else None
        hour = local.hour % 12 or 12
        suffix = "a. m." if local.hour < 12 else "p. m."
        return ", ".join(
            [
                f"{_WEEKDAYS[local.weekday()]} {local.day} de {_MONTHS[local.month - 1]}",
                f"{hour}:{local.minute:02d} {suffix}",
                doctor.name if doctor is not None else slot.doctor_id,
                site.name if site is not None else slot.site_id,
            ]
        )

    async def pick_appointment(self, state: CallState, params: Mapping[str, object]) -> str:
        """The next of the listed appointments, to offer: ``single`` when the patient
        has only one (nothing to choose), ``found`` for the next of several,
        ``none`` when every one was offered. Leaves ``appointment_id``,
        ``appointment_starts_at``, ``appointment_media`` and ``appointment_text``."""
        listed = state.variables.get("appointments")
        appointments = listed if isinstance(listed, list) else []
        index = int(state.variables.get("appointment_index", -1)) + 1
        if index >= len(appointments):
            return "none"
        state.set("appointment_index", index)
        chosen = appointments[index]
        slot = _slot_from_json(chosen["slot"])
        state.set("appointment_id", str(chosen["id"]))
        state.set("appointment_starts_at", slot.starts_at.astimezone(self.tz).isoformat())
        text = self.appointment_text(slot)
        state.set("appointment_media", Phrase("spoken", text, tuple(self.slot_media(slot))))
        state.set("appointment_text", text)
        state.set("appointment_site_id", slot.site_id)
        state.set("appointment_cups", slot.cups)
        return "single" if len(appointments) == 1 else "found"

    async def cancel_appointment(self, state: CallState, params: Mapping[str, object]) -> str:
        """Cancel the picked appointment: ``cancelled`` (also when it already was:
        cancelling is idempotent), ``not_found`` (gone, not the caller's, or
        already started) or ``unavailable`` (the booking service failed)."""
        booking_id = str(state.variables["appointment_id"])
        try:
            await self.slots.cancel(
                booking_id,
                affiliate_id=str(state.variables["affiliate_id"]),
                call_id=state.record.id,
            )
        except (AppointmentNotFound, BookingRejected) as exc:
            logger.info("call %s: cannot cancel %s: %s", state.channel.call_id, booking_id, exc)
            return "not_found"
        except BookingError as exc:
            logger.warning("call %s: cancellation failed: %s", state.channel.call_id, exc)
            state.set("booking_error", str(exc))
            return "unavailable"
        state.set("cancelled_id", booking_id)
        return "cancelled"

    async def reschedule(self, state: CallState, params: Mapping[str, object]) -> str:
        """Start moving the picked appointment: the slot search of the booking
        path (``find_slot``'s offer, ``next_slot``, time band, other doctor) for
        the same service at the same site, with ``mode`` = ``reschedule`` so the
        flow accepts an offer with ``move_appointment``. ``found`` or ``none``."""
        state.set("mode", "reschedule")
        state.set("reschedule_id", str(state.variables["appointment_id"]))
        state.set("site_id", str(state.variables["appointment_site_id"]))
        state.set("cups", str(state.variables["appointment_cups"]))
        for name in ("offered_ids", "time_band", "exclude_doctor_id", EVIDENCE_VARIABLE):
            state.variables.pop(name, None)
        return await self._search(state)

    async def move_appointment(self, state: CallState, params: Mapping[str, object]) -> str:
        """Accept the offered slot for the appointment being rescheduled: the new
        slot booked and the old appointment cancelled in one transaction
        (``SlotSource.reschedule``). ``rescheduled``; ``taken`` (the old one
        stands); ``has_appointment`` (another of the patient's appointments is in
        the way, read out as for a booking); ``not_found`` (the old one was
        cancelled or moved meanwhile, by another call or chat); ``unavailable``."""
        slot_id = str(state.variables["slot_id"])
        old = str(state.variables["reschedule_id"])
        try:
            booking = await self.slots.reschedule(
                old,
                slot_id,
                affiliate_id=str(state.variables["affiliate_id"]),
                call_id=state.record.id,
            )
        except SlotTaken:
            logger.info("call %s: slot %s taken by another caller", state.channel.call_id, slot_id)
            return "taken"
        except PatientHasAppointment as exc:
            self._has_appointment(state, exc.existing, exc.reason)
            return "has_appointment"
        except AppointmentNotFound:
            logger.info("call %s: appointment %s gone meanwhile", state.channel.call_id, old)
            return "not_found"
        except BookingError as exc:
            logger.warning("call %s: reschedule failed: %s", state.channel.call_id, exc)
            state.set("booking_error", str(exc))
            return "unavailable"
        state.set("booking_id", booking.id)
        return "rescheduled"


_WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


def _appointment_json(booking: Booking) -> dict[str, object]:
    """What a flow variable keeps of an appointment (JSON, survives a restart)."""
    slot = booking.slot
    return {
        "id": booking.id,
        "slot": {
            "id": slot.id,
            "site_id": slot.site_id,
            "doctor_id": slot.doctor_id,
            "cups": slot.cups,
            "starts_at": slot.starts_at.isoformat(),
            "minutes": slot.length.total_seconds() / 60,
            "time_band": slot.time_band,
        },
    }


def _slot_from_json(item: Mapping[str, object]) -> Slot:
    return Slot(
        id=str(item["id"]),
        site_id=str(item["site_id"]),
        doctor_id=str(item["doctor_id"]),
        cups=str(item["cups"]),
        starts_at=datetime.fromisoformat(str(item["starts_at"])),
        time_band=str(item["time_band"]),
        length=timedelta(minutes=float(str(item["minutes"]))),
    )
