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
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ivr.booking.model import BookingError, BookingUnavailable, Slot, SlotTaken
from ivr.booking.source import SlotSource
from ivr.citas.affiliates import Affiliate, AffiliateDirectory
from ivr.citas.eligibility import decide
from ivr.citas.reference import EligibilityTables, Reference, flag_registry
from ivr.flow.engine import Action, ActionFailed, CallState
from ivr.masking import mask_number
from ivr.ops.flags import (
    AGE_MAX,
    AGE_MIN,
    CUPS_IN_SCOPE,
    FlagReader,
    StaticFlags,
    site_closure_flag,
)
from ivr.sms.outbox import SmsOutbox
from ivr.speech import es as speech_es

logger = logging.getLogger(__name__)

OUTCOMES: dict[str, tuple[str, ...]] = {
    "identify_by_caller_id": ("found", "not_found"),
    "identify_by_document": ("found", "not_found", "exhausted"),
    "select_service": ("ok",),
    "evaluate_eligibility": ("target_self_service", "target_digital", "non_target"),
    "find_slot": ("found", "none"),
    "next_slot": ("found", "none"),
    "set_time_band": ("found", "none"),
    "other_doctor": ("found", "none"),
    "book_slot": ("booked", "taken", "unavailable"),
    "send_whatsapp_sms": ("queued",),
}
# Actions that commit something the caller must have heard first (issue 9 §1).
COMMITS = frozenset({"book_slot"})
MAX_DOCUMENT_TRIES = 3


def whatsapp_link(number: str, prefilled: str) -> str:
    """A wa.me link that opens a chat with a prefilled message (the user opens it)."""
    return f"https://wa.me/{number}?text={urllib.parse.quote(prefilled)}"


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
        number = state.channel.caller_number
        if not number:
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
        await state.channel.set_variables(
            {"__CITAS_SEGMENT": result.segment, "__CITAS_AFFILIATE": affiliate.id,
             "__CITAS_CUPS": str(state.variables["cups"]), "__CITAS_VDN_HINT": vdn}
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
        state.set("slot_media", self.slot_media(slot))
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

    async def find_slot(self, state: CallState, params: Mapping[str, object]) -> str:
        return await self._search(state)

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
        except (BookingUnavailable, BookingError) as exc:
            logger.warning("call %s: booking failed: %s", state.channel.call_id, exc)
            state.set("booking_error", str(exc))
            return "unavailable"
        state.set("booking_id", booking.id)
        return "booked"

    # --- digital redirect ---------------------------------------------------
    async def send_whatsapp_sms(self, state: CallState, params: Mapping[str, object]) -> str:
        affiliate = state.variables.get("_affiliate")
        phone = (
            affiliate.phone if isinstance(affiliate, Affiliate) else None
        ) or state.channel.caller_number
        if not phone:
            state.set("sms", "no_number")
            return "queued"
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
