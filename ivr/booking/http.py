"""``HttpSlotSource``: the insurer's scheduling web service (contract in docs/booking-service.md).

Errors map onto the booking tree: a timeout, a connection failure, a 5xx or an
answer we cannot read is ``BookingUnavailable``; 409 is ``SlotTaken``, unless
its ``error`` is ``patient_has_appointment``: then ``PatientHasAppointment``
with the appointment in its ``booking``; 422 is ``BookingRejected`` with the
service's message; 404 on cancel or reschedule is ``AppointmentNotFound``
(the patient holds no such appointment).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
import uuid
from collections import OrderedDict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from ivr.booking.model import (
    CONFLICTS,
    DEFAULT_LENGTH,
    TIME_BANDS,
    AppointmentNotFound,
    Booking,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.failures import failure_text
from ivr.httpsession import OwnedSession

logger = logging.getLogger(__name__)

_KNOWN_SLOTS = 512  # slots remembered from find(), to describe what book() booked


class HttpSlotSource(OwnedSession):
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        super().__init__(session)
        self._known: OrderedDict[str, Slot] = OrderedDict()

    async def find(
        self,
        *,
        site_id: str,
        cups: str,
        after: datetime | None = None,
        time_band: str | None = None,
        doctor_id: str | None = None,
        exclude_doctor_id: str | None = None,
        exclude_ids: Collection[str] = (),
        limit: int = 1,
    ) -> list[Slot]:
        # The contract has no parameter for excluded slot ids: ask for enough
        # to drop them here and still fill the limit.
        params = {"site_id": site_id, "cups": cups, "limit": str(limit + len(exclude_ids))}
        optional = {
            "after": after.isoformat() if after is not None else None,
            "time_band": time_band,
            "doctor_id": doctor_id,
            "exclude_doctor_id": exclude_doctor_id,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        status, body = await self._request("GET", "/slots", params=params)
        if status != 200:
            raise _unexpected("find slots", status, body)
        slots = [s for s in _parse_slots(body) if s.id not in exclude_ids][:limit]
        for slot in slots:
            self._remember(slot)
        return slots

    async def book(self, slot_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        # Same call, same slot, same key: a retry after a lost answer cannot
        # book twice. Without a call there is nothing to retry against.
        key = f"{call_id}:{slot_id}" if call_id is not None else str(uuid.uuid4())
        payload = {"slot_id": slot_id, "affiliate_id": affiliate_id, "call_id": call_id}
        status, body = await self._request(
            "POST", "/bookings", payload=payload, headers={"Idempotency-Key": key}
        )
        if status == 409:
            raise _conflict(body, slot_id, affiliate_id)
        if status == 422:
            raise _rejected(body, "the booking service refused the booking")
        if status not in (200, 201):
            raise _unexpected(f"book slot {slot_id}", status, body)
        booking = self._booking(body, slot_id, affiliate_id, call_id)
        logger.info("call %s: booked slot %s as %s", call_id, slot_id, booking.id)
        return booking

    async def pending_for(self, affiliate_id: str) -> list[Booking]:
        status, body = await self._request(
            "GET", "/bookings", params={"affiliate_id": affiliate_id, "pending": "true"}
        )
        if status != 200:
            raise _unexpected("list pending bookings", status, body)
        try:
            return [_parse_booking(item, affiliate_id) for item in body["bookings"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise BookingUnavailable(
                f"unreadable bookings from the booking service: {exc!r}"
            ) from exc

    async def cancel(self, booking_id: str, *, affiliate_id: str, call_id: str | None) -> Booking:
        path = f"/bookings/{urllib.parse.quote(booking_id, safe='')}/cancel"
        payload = {"affiliate_id": affiliate_id, "call_id": call_id}
        # Cancelling is idempotent by itself: a retry returns the same cancellation.
        status, body = await self._request("POST", path, payload=payload)
        if status == 404:
            raise AppointmentNotFound(booking_id)
        if status == 422:
            raise _rejected(body, "the booking service refused the cancellation")
        if status != 200:
            raise _unexpected(f"cancel booking {booking_id}", status, body)
        try:
            cancelled = _parse_booking(body, affiliate_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise BookingUnavailable(
                f"booking {booking_id} may be cancelled but the answer is unreadable: {exc!r}"
            ) from exc
        if cancelled.cancelled_at is None:
            raise BookingUnavailable(f"booking {booking_id}: the service did not cancel it")
        logger.info("call %s: cancelled booking %s", call_id, booking_id)
        return cancelled

    async def reschedule(
        self, booking_id: str, slot_id: str, *, affiliate_id: str, call_id: str | None
    ) -> Booking:
        path = f"/bookings/{urllib.parse.quote(booking_id, safe='')}/reschedule"
        key = f"{call_id}:{booking_id}:{slot_id}" if call_id is not None else str(uuid.uuid4())
        payload = {"slot_id": slot_id, "affiliate_id": affiliate_id, "call_id": call_id}
        status, body = await self._request(
            "POST", path, payload=payload, headers={"Idempotency-Key": key}
        )
        if status == 404:
            raise AppointmentNotFound(booking_id)
        if status == 409:
            raise _conflict(body, slot_id, affiliate_id)
        if status == 422:
            raise _rejected(body, "the booking service refused the reschedule")
        if status not in (200, 201):
            raise _unexpected(f"move booking {booking_id} to slot {slot_id}", status, body)
        booking = self._booking(body, slot_id, affiliate_id, call_id)
        logger.info("call %s: moved booking %s to %s", call_id, booking_id, booking.id)
        return booking

    async def health(self) -> bool:
        try:
            status, _ = await self._request("GET", "/health")
        except BookingUnavailable as exc:
            logger.warning("booking service unhealthy: %s", exc)
            return False
        return status == 200

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        session = self._get_session()
        url = self.base_url + path
        try:
            async with asyncio.timeout(self.timeout):
                async with session.request(
                    method,
                    url,
                    params=params,
                    json=payload,
                    headers={**self._headers, **(headers or {})},
                ) as response:
                    if response.status >= 500:
                        raise BookingUnavailable(f"{method} {path}: HTTP {response.status}")
                    text = await response.text()
        except TimeoutError as exc:
            raise BookingUnavailable(f"{method} {path}: no answer in {self.timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise BookingUnavailable(f"{method} {path}: {failure_text(exc)}") from exc
        return response.status, _json_or_text(text)

    def _booking(self, body: Any, slot_id: str, affiliate_id: str, call_id: str | None) -> Booking:
        try:
            slot = _parse_slot(body["slot"]) if "slot" in body else self._known[slot_id]
            created_at = _aware(body["created_at"])
            return Booking(str(body["booking_id"]), slot, affiliate_id, call_id, created_at)
        except (KeyError, TypeError, ValueError) as exc:
            # The booking may well exist: say so, so an agent can check.
            raise BookingUnavailable(
                f"slot {slot_id} may be booked but the answer is unreadable: {exc!r}"
            ) from exc

    def _remember(self, slot: Slot) -> None:
        self._known[slot.id] = slot
        self._known.move_to_end(slot.id)
        while len(self._known) > _KNOWN_SLOTS:
            self._known.popitem(last=False)


def _parse_slots(body: Any) -> list[Slot]:
    try:
        return [_parse_slot(item) for item in body["slots"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BookingUnavailable(f"unreadable slots from the booking service: {exc!r}") from exc


def _parse_slot(item: Any) -> Slot:
    band = str(item["time_band"])
    if band not in TIME_BANDS:
        raise ValueError(f"unknown time_band {band!r}")
    starts_at = _aware(item["starts_at"])
    # ``ends_at`` is optional in the contract: without it, the default length.
    length = _aware(item["ends_at"]) - starts_at if "ends_at" in item else DEFAULT_LENGTH
    if length <= timedelta(0):
        raise ValueError(f"slot {item['id']!r} does not end after it starts")
    return Slot(
        id=str(item["id"]),
        site_id=str(item["site_id"]),
        doctor_id=str(item["doctor_id"]),
        cups=str(item["cups"]),
        starts_at=starts_at,
        time_band=band,
        length=length,
    )


def _parse_booking(item: Any, affiliate_id: str) -> Booking:
    call_id = item.get("call_id")
    cancelled_at = item.get("cancelled_at")  # optional: absent means not cancelled
    return Booking(
        str(item["booking_id"]),
        _parse_slot(item["slot"]),
        affiliate_id,
        None if call_id is None else str(call_id),
        _aware(item["created_at"]),
        None if cancelled_at is None else _aware(cancelled_at),
    )


def _rejected(body: Any, default: str) -> BookingRejected:
    message = body.get("message") if isinstance(body, dict) else None
    return BookingRejected(str(message or default))


def _conflict(body: Any, slot_id: str, affiliate_id: str) -> Exception:
    """A 409: the slot is taken, or the patient's own appointment is in the way."""
    if not isinstance(body, dict) or body.get("error") != "patient_has_appointment":
        return SlotTaken(slot_id)
    try:
        reason = str(body["reason"])
        if reason not in CONFLICTS:
            raise ValueError(f"unknown reason {reason!r}")
        return PatientHasAppointment(_parse_booking(body["booking"], affiliate_id), reason)
    except (KeyError, TypeError, ValueError) as exc:
        return BookingUnavailable(f"slot {slot_id}: unreadable patient_has_appointment: {exc!r}")


def _aware(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {value!r}")
    return parsed


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _unexpected(what: str, status: int, body: Any) -> BookingUnavailable:
    return BookingUnavailable(f"cannot {what}: unexpected HTTP {status}: {str(body)[:200]}")
