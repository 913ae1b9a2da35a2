"""The citas flow's actions: identify, decide eligibility, offer and book slots, SMS.

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
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.booking.model import (
    Booking,
    BookingError,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.source import SlotSource
from ivr.channel import Phrase
from ivr.citas.affiliates import Affiliate, AffiliateDirectory
from ivr.citas.eligibility import decide
from ivr.citas.flags import AGE_MAX, AGE_MIN, CUPS_IN_SCOPE, flag_registry, site_closure_flag
from ivr.citas.reference import EligibilityTables, Reference, Site
from ivr.flow.engine import Action, ActionFailed, CallState
from ivr.masking import mask_number
from ivr.ops.flags import FlagReader, StaticFlags
from ivr.phone import parse_e164, sms_destination, spoken_groups, whatsapp_digits
from ivr.sms.outbox import SmsOutbox
from ivr.speech import es as speech_es
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
}
# Actions that commit something the caller must have heard first (issue 9 §1).
COMMITS = frozenset({"book_slot"})
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
    ) -> None:
        self.ref = reference
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

    def registry(self) -> dict[str, Action]:
        return {name: getattr(self, name) for name in OUTCOMES}

    # --- identification -------------------------------------------------
    def _identified(self, state: CallState, affiliate: Affiliate, how: str) -> None:
        state.set("affiliate_id", affiliate.id)
        state.set("identified_by", how)
        state.set("site_id", affiliate.site_id)
        state.set("plan", affiliate.plan)
        state.set("age", affiliate.age_on(self.clock().date()))
        state.variables["_affiliate"] = affiliate

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
        affiliate = state.variables["_affiliate"]
        assert isinstance(affiliate, Affiliate)
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
        # Known now for any later hand-off (voice: __CITAS_SEGMENT… set at once).
        await state.channel.annotate(
            {"segment": result.segment, "affiliate": affiliate.id,
             "cups": str(state.variables["cups"]), "vdn_hint": vdn}
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
        try:
            found = await self.slots.find(
                site_id=str(state.variables["site_id"]),
                cups=str(state.variables["cups"]),
                time_band=state.variables.get("time_band") or None,
                exclude_doctor_id=state.variables.get("exclude_doctor_id") or None,
                exclude_ids=offered,
                limit=1,
            )
        except BookingUnavailable as exc:
            raise ActionFailed(f"slot search failed: {exc}") from exc
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
        """
        state.set("whatsapp_number_media", self.whatsapp_number_media)
        affiliate = state.variables.get("_affiliate")
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
        text = line.sms_text.format(
            link=whatsapp_link(line.whatsapp_number, line.whatsapp_prefilled)
        )
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
