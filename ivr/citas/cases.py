"""Filing a case ("radicar caso", issue 11 §1) from the citas flow, on both channels.

A target caller (or chat user) who finds no slot, after the search tried the
other time band and another doctor, may file a case: a request the insurer's
people answer within 5 business days. These actions are the line's side of it;
the case itself (number, due date, clocks, the one-open-case rule in the
database) is the platform's ``ivr.cases`` store.

The actions (registered with the citas actions: ``ivr.citas.actions.OUTCOMES``):

- ``open_case_check`` (``open`` | ``none``): at the point the slot search would
  start, the affiliate's open case for the service's specialty, if any: the
  caller hears its number and due date instead of a search.
- ``widen_search`` (``found`` | ``tried`` | ``declined``): before giving up on
  slots, search again in each time band with any doctor (what a caller would
  otherwise do with options 3 and 4, one by one): ``found`` offers the slot;
  ``tried`` means the evidence shows both bands and every doctor tried, so a
  case may be offered. With ``params: {after: declined}`` (the caller pressed
  0, "none of these") it searches nothing: ``tried`` when the caller's own
  searches changed the band and the doctor (options 3 and 4), else
  ``declined`` (there were slots; the caller goes on as before: the WhatsApp
  redirect or the chat's neutral ending).
- ``case_contact`` (``on_file`` | ``mobile`` | ``none``): where the answer can
  go: the directory's e-mail for the affiliate (shown masked in a chat; never
  read aloud), else a mobile (the directory's, else the caller ID; a chat's
  WhatsApp number), else nowhere but the insurer's other records (the caller
  is told so, and keeps the number).
- ``file_case`` (``filed`` | ``open``): files it (``CaseStore.file``), with the
  consent, the contact e-mail, the phone, the service, CUPS, specialty, site,
  channel, journey and the search evidence; a voice caller's mobile gets the
  number by SMS (``SmsOutbox``, dedupe key ``case:<number>``). ``open`` when
  another call or chat of the same affiliate filed one for the specialty
  first (``OpenCaseExists``): the caller hears that one. It commits (``COMMITS``).

Search evidence (``search_evidence``, one dict per slot search the call or chat
made, in order: ``{"time_band": "morning"|"afternoon"|None, "exclude_doctor_id":
str|None, "found": int, "at": ISO 8601}``) is kept as a call variable by
``CitasActions._search`` and stored with the case. The rule that allows a case
(``search_allows_case``): every time band was searched with any doctor and found
nothing (``widen_search`` makes sure of it), or the caller asked for a time band
and for another doctor themselves.

What the person is told is in ``config/flows/citas.yaml`` and
``prompts/prompts.yaml`` (``# --- cases: filing ---``); the variables these
actions leave for it: ``case_number`` (7 digits), ``case_number_media`` (the
number digit by digit in two groups, "001 2345"; chat: the number),
``case_due_media`` (the due date, "lunes siete de diciembre" by
``ivr.speech.es``; chat: "lunes 7 de diciembre"), ``case_sent_media`` (voice:
"we sent it by SMS" when an SMS was queued, else nothing),
``email_masked_media`` (chat: the e-mail on file, masked).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from ivr.cases.model import Case, NewCase
from ivr.cases.store import CaseStore, OpenCaseExists
from ivr.channel import Phrase
from ivr.citas.affiliates import Affiliate
from ivr.citas.reference import Reference
from ivr.flow.model import Action, ActionFailed, CallState
from ivr.masking import mask_email, mask_number
from ivr.phone import sms_destination
from ivr.sms.outbox import SmsOutbox
from ivr.speech import es as speech_es

logger = logging.getLogger(__name__)

CASE_OUTCOMES: dict[str, tuple[str, ...]] = {
    "open_case_check": ("open", "none"),
    "widen_search": ("found", "tried", "declined"),
    "case_contact": ("on_file", "mobile", "none"),
    "file_case": ("filed", "open"),
}
CASE_COMMITS = frozenset({"file_case"})
TIME_BANDS = ("morning", "afternoon")
EVIDENCE_VARIABLE = "search_evidence"
# What the flow's menus leave (config/flows/citas.yaml): consent "1" = yes
# (Ley 1581 de 2012); e-mail "1" = keep the one on file; a typed address.
CONSENT_VARIABLE, CONSENT_YES = "case_consent", "1"
KEEP_EMAIL_VARIABLE, KEEP_EMAIL = "email_keep", "1"
TYPED_EMAIL_VARIABLE = "_contact_email"  # whole; "contact_email" has it masked (ask_text)
SENT_PROMPT = "case_sms_sent"
# The prompts these actions say by themselves (no flow node names them), for
# ivr.citas.actions.spoken_prompts: `ivr config check` and the start refuse a
# catalogue without them.
SPOKEN_PROMPTS = {SENT_PROMPT: "a filed case's SMS notice says it (ivr/citas/cases.py)"}
# The SMS a voice caller gets (Spanish: the caller reads it; 160 GSM-7 characters
# hold it with a 7-digit number and the longest date, "miércoles 30 de septiembre").
SMS_TEXT = (
    "Su caso {number} de citas médicas quedó radicado. Le responderemos a más tardar el {due}."
)


def evidence_entry(
    time_band: str | None, exclude_doctor_id: str | None, found: int, at: datetime
) -> dict[str, Any]:
    """One search as ``search_evidence`` keeps it (``at`` in UTC, ISO 8601)."""
    return {
        "time_band": time_band or None,
        "exclude_doctor_id": exclude_doctor_id or None,
        "found": found,
        "at": at.astimezone(UTC).isoformat(),
    }


def bands_exhausted(evidence: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every time band was searched with any doctor and nothing was
    found (a search with no band covers both)."""
    covered: set[str] = set()
    for search in evidence:
        if search.get("found") or search.get("exclude_doctor_id"):
            continue
        band = search.get("time_band")
        covered |= {str(band)} if band else set(TIME_BANDS)
    return covered >= set(TIME_BANDS)


def caller_tried(evidence: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the caller's own searches chose a time band and another doctor
    (offer_slot's options 3 and 4)."""
    return any(s.get("time_band") for s in evidence) and any(
        s.get("exclude_doctor_id") for s in evidence
    )


def search_allows_case(evidence: Sequence[Mapping[str, Any]]) -> bool:
    """The filing rule (issue 11 §1, the insurer's plan: a case only "after
    changing time band and doctor"): the searches tried show the other time
    band and another doctor, either because nothing was left in any band with
    any doctor, or because the caller asked for both.

    >>> t = datetime(2026, 11, 30, 12, tzinfo=UTC)
    >>> search_allows_case([evidence_entry("morning", None, 0, t), evidence_entry("afternoon", None, 0, t)])
    True
    >>> search_allows_case([evidence_entry(None, "dr_gomez", 0, t)])
    False
    """
    return bands_exhausted(evidence) or caller_tried(evidence)


def number_groups(number: str) -> list[str]:
    """A case number as it is read, digit by digit in two groups: 3 then 4
    (a run of 7 is too long to hold in the ear; phone numbers are read 3-3-4).

    >>> number_groups("0012345")
    ['001', '2345']
    """
    return [number[:3], number[3:]]


class CitasCases:
    """The case actions of the citas line, given by ``ivr.citas.actions.CitasActions``
    what they share with it: the reference tables, the SMS outbox, the line's
    time zone and clock, the identified affiliate (``affiliate_of``), one slot
    search of the call's variables (``search``: ``found`` or ``none``, the
    evidence kept) and a date as chat text (``day_text``). ``store`` None: cases
    not configured; the actions that need it raise ``ActionFailed`` and the flow
    takes their ``on_failure``."""

    def __init__(
        self,
        reference: Reference,
        outbox: SmsOutbox,
        *,
        tz: tzinfo,
        clock: Callable[[], datetime],
        affiliate_of: Callable[[CallState], Awaitable[Affiliate | None]],
        search: Callable[[CallState], Awaitable[str]],
        day_text: Callable[[date], str],
        store: CaseStore | None,
    ) -> None:
        self.ref = reference
        self.outbox = outbox
        self.tz = tz
        self.clock = clock
        self.affiliate_of = affiliate_of
        self.search = search
        self.day_text = day_text
        self.store = store

    def registry(self) -> dict[str, Action]:
        return {name: getattr(self, name) for name in CASE_OUTCOMES}

    def _store(self) -> CaseStore:
        if self.store is None:
            raise ActionFailed("cases are not configured (no case store)")
        return self.store

    # --- what the caller hears of a case -------------------------------------------
    def _tell(self, state: CallState, case: Case) -> None:
        """Leave the case's number and due date for the flow to say."""
        due = case.due_at.astimezone(self.tz).date()
        groups = number_groups(case.number)
        state.set("case_number", case.number)
        state.set("case_due_at", case.due_at.astimezone(UTC).isoformat())
        state.set(
            "case_number_media",
            Phrase("spoken", f"{case.number}.", tuple(f"digits:{g}" for g in groups)),
        )
        state.set(
            "case_due_media",
            Phrase("spoken", f"{self.day_text(due)}.", tuple(speech_es.date_media(due))),
        )

    # --- the actions -------------------------------------------------------------
    async def open_case_check(self, state: CallState, params: Mapping[str, object]) -> str:
        """``open`` (its number and due date left to say) when the affiliate has a
        case not yet closed for the chosen service's specialty, else ``none``.
        Raises ``ActionFailed`` when the store cannot answer (the flow goes on to
        the search: a case desk down must not stop booking)."""
        store = self._store()
        affiliate_id = str(state.variables["affiliate_id"])
        specialty = str(state.variables["specialty"])
        try:
            case = await store.open_for(affiliate_id, specialty)
        except Exception as exc:  # the store's database errors, whatever the driver
            raise ActionFailed(f"open case lookup failed: {exc}") from exc
        if case is None:
            return "none"
        logger.info(
            "call %s: affiliate %s has open case %s (%s)",
            state.channel.call_id, mask_number(affiliate_id), case.number, specialty,
        )  # fmt: skip
        self._tell(state, case)
        state.set("case_state", case.state)
        return "open"

    async def widen_search(self, state: CallState, params: Mapping[str, object]) -> str:
        """Before giving up on slots: see the module docstring. Leaves the slot's
        variables (as ``find_slot``) on ``found``. Raises ``ActionFailed`` when
        the booking service fails (``booking_down_route``)."""
        evidence = list(state.variables.get(EVIDENCE_VARIABLE, []))
        if params.get("after") == "declined":
            return "tried" if caller_tried(evidence) else "declined"
        offered = list(state.variables.get("offered_ids", []))
        if len(offered) >= self.ref.line.max_offers:
            return "declined"  # the caller heard as many slots as the line offers
        for band in TIME_BANDS:
            state.set("time_band", band)
            state.set("exclude_doctor_id", "")
            if await self.search(state) == "found":
                state.set("widened", band)
                return "found"
        return (
            "tried"
            if search_allows_case(state.variables.get(EVIDENCE_VARIABLE, []))
            else "declined"
        )

    async def case_contact(self, state: CallState, params: Mapping[str, object]) -> str:
        """``on_file`` when the directory has an e-mail for the affiliate (left
        masked in ``email_masked_media`` for a chat to show), else ``mobile``
        when there is a mobile to text (``ivr.phone.sms_destination``), else ``none``."""
        affiliate = await self.affiliate_of(state)
        email = affiliate.email if affiliate is not None else None
        if email:
            state.set("email_masked_media", Phrase("spoken", mask_email(email)))
            return "on_file"
        listed = affiliate.phone if affiliate is not None else None
        mobile = sms_destination(listed) or sms_destination(state.channel.caller_number)
        return "mobile" if mobile else "none"

    async def file_case(self, state: CallState, params: Mapping[str, object]) -> str:
        """File the case (module docstring): ``filed`` or ``open``.

        Raises ``ActionFailed`` without the caller's consent (the flow never
        comes here without it), for an unknown affiliate, or when the store
        fails (the flow's ``on_failure``: the caller is told it could not be filed)."""
        if state.variables.get(CONSENT_VARIABLE) != CONSENT_YES:
            raise ActionFailed("no consent to process personal data (Ley 1581 de 2012)")
        affiliate = await self.affiliate_of(state)
        if affiliate is None:
            raise ActionFailed(f"affiliate {state.variables.get('affiliate_id')!r} unknown")
        evidence = list(state.variables.get(EVIDENCE_VARIABLE, []))
        if not search_allows_case(evidence):
            raise ActionFailed("the search evidence does not show another band and doctor")
        channel = state.channel
        phone = sms_destination(affiliate.phone) or sms_destination(channel.caller_number)
        new = NewCase(
            affiliate_id=affiliate.id,
            specialty=str(state.variables["specialty"]),
            service_id=str(state.variables["service"]),
            cups=str(state.variables["cups"]),
            site_id=str(state.variables["site_id"]),
            channel=channel.kind,
            summary=self._summary(state),
            journey_id=str(state.variables.get("_journey_id") or state.record.id),
            call_id=state.record.id if channel.kind == "voice" else None,
            wa_id=(channel.caller_number or "").lstrip("+") or None
            if channel.kind == "chat"
            else None,
            contact_email=self._email(state, affiliate.email),
            contact_phone=phone or None,
            consent=True,
            consent_at=self.clock().astimezone(UTC),
            search_evidence=evidence,
        )
        try:
            case = await self._store().file(new)
        except OpenCaseExists as exc:
            logger.info(
                "call %s: another attempt filed case %s first",
                channel.call_id, exc.existing.number,
            )  # fmt: skip
            self._tell(state, exc.existing)
            return "open"
        except ActionFailed:
            raise
        except Exception as exc:  # the store's database errors, whatever the driver
            raise ActionFailed(f"filing failed: {exc}") from exc
        self._tell(state, case)
        await self._send_sms(state, case, phone)
        return "filed"

    def _email(self, state: CallState, on_file: str | None) -> str | None:
        typed = state.variables.get(TYPED_EMAIL_VARIABLE)
        if typed:
            return str(typed)
        if on_file and state.variables.get(KEEP_EMAIL_VARIABLE) == KEEP_EMAIL:
            return on_file
        return None

    def _summary(self, state: CallState) -> str:
        """What is asked, in Spanish, for the people who answer it."""
        ref = self.ref
        service_id = str(state.variables["service"])
        service = next((s for s in ref.services.values() if s.id == service_id), None)
        site = ref.sites.get(str(state.variables["site_id"]))
        return (
            f"Solicitud de cita de {service.name if service else service_id} "
            f"(CUPS {state.variables['cups']}) en la {site.name if site else 'sede'}: "
            "no hubo cupo en ninguna franja horaria ni con otro profesional."
        )

    async def _send_sms(self, state: CallState, case: Case, phone: str | None) -> None:
        """Voice: the number by SMS to the caller's mobile (none: nothing promised).
        A chat has it in the conversation already. ``sms`` (``queued``, ``held``:
        the database was down, stored later, or ``no_mobile``) and ``sms_id``, as
        ``send_whatsapp_sms`` leaves them: a case path sends no WhatsApp link."""
        if state.channel.kind != "voice":
            return
        if phone is None:
            state.set("sms", "no_mobile")
            return
        due = case.due_at.astimezone(self.tz).date()
        text = SMS_TEXT.format(number=case.number, due=self.day_text(due))
        message_id = await self.outbox.enqueue_or_hold(
            to_number=phone, text=text, dedupe_key=f"case:{case.number}"
        )
        state.set("sms", "queued" if message_id else "held")
        if message_id:
            state.set("sms_id", message_id)
        state.set("case_sent_media", Phrase("prompt", SENT_PROMPT))
