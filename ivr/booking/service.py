"""The booking-service contract (docs/booking-service.md), served over any ``SlotSource``.

A reference implementation: several controllers can share one booking
service in front of the database (``ivr booking serve``), an integrator can
compare the insurer's service with it, and the end-to-end tests put a real
HTTP service between the controller and the slots (so the breaker meets real
timeouts and 5xx answers).

Idempotency keys are remembered in memory (the last 10 000): a retried POST
with the same key gets the first answer. A production service keeps them in
its database.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from ivr.booking.model import (
    TIME_BANDS,
    AppointmentNotFound,
    Booking,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.source import SlotSource

logger = logging.getLogger(__name__)

SOURCE = web.AppKey("source", SlotSource)
ANSWERS = web.AppKey("answers", OrderedDict[str, tuple[int, dict[str, Any]]])
MAX_KEYS = 10_000


def slot_json(slot: Slot) -> dict[str, Any]:
    return {
        "id": slot.id,
        "site_id": slot.site_id,
        "doctor_id": slot.doctor_id,
        "cups": slot.cups,
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
        "time_band": slot.time_band,
    }


def booking_json(booking: Booking) -> dict[str, Any]:
    cancelled_at = booking.cancelled_at
    return {
        "booking_id": booking.id,
        "created_at": booking.created_at.isoformat(),
        "call_id": booking.call_id,
        "cancelled_at": None if cancelled_at is None else cancelled_at.isoformat(),
        "slot": slot_json(booking.slot),
    }


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def find_slots(request: web.Request) -> web.Response:
    query = request.query
    missing = [p for p in ("site_id", "cups", "limit") if not query.get(p)]
    if missing:
        return _problem(400, f"missing query parameters: {', '.join(missing)}")
    try:
        limit = int(query["limit"])
        after = datetime.fromisoformat(query["after"]) if query.get("after") else None
    except ValueError as exc:
        return _problem(400, str(exc))
    if not 1 <= limit <= 100 or (after is not None and after.tzinfo is None):
        return _problem(400, "limit is 1 to 100; after needs an offset")
    band = query.get("time_band")
    if band is not None and band not in TIME_BANDS:
        return _problem(400, f"time_band is one of {', '.join(TIME_BANDS)}")
    try:
        slots = await request.app[SOURCE].find(
            site_id=query["site_id"], cups=query["cups"], after=after, time_band=band,
            doctor_id=query.get("doctor_id"), exclude_doctor_id=query.get("exclude_doctor_id"),
            limit=limit,
        )  # fmt: skip
    except BookingUnavailable as exc:
        return _problem(503, str(exc))
    return web.json_response({"slots": [slot_json(s) for s in slots]})


def _conflict_answer(exc: SlotTaken | PatientHasAppointment) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, SlotTaken):
        return 409, {"error": "slot_taken", "message": "slot already taken"}
    return 409, {
        "error": "patient_has_appointment",
        "reason": exc.reason,
        "message": "the patient already has an appointment",
        "booking": booking_json(exc.existing),
    }


def _not_found(exc: AppointmentNotFound) -> tuple[int, dict[str, Any]]:
    return 404, {"error": "not_found", "message": str(exc)}


Answer = tuple[int, dict[str, Any]]


async def _once(request: web.Request, answer: Callable[[Any], Awaitable[Answer]]) -> web.Response:
    """Answer a POST once per ``Idempotency-Key``: a retry gets the first answer.

    ``answer`` gets the JSON body; a ``web.Response`` it raises (a 400, a 503)
    is never remembered, so a retry may do better.
    """
    key = request.headers.get("Idempotency-Key", "")
    answers = request.app[ANSWERS]
    if key and key in answers:
        status, body = answers[key]
        return web.json_response(body, status=status)
    try:
        body = await request.json()
    except ValueError:
        return _problem(400, "the body is not JSON")
    try:
        status, result = await answer(body)
    except _Refusal as exc:
        return exc.response
    if key:
        answers[key] = (status, result)
        while len(answers) > MAX_KEYS:
            answers.popitem(last=False)
    return web.json_response(result, status=status)


class _Refusal(Exception):
    """An answer not to remember (bad request, service unavailable)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _fields(body: Any, *names: str) -> list[str]:
    try:
        return [str(body[name]) for name in names]
    except (KeyError, TypeError) as exc:
        raise _Refusal(_problem(400, f"body: {{{', '.join(names)}, call_id}}")) from exc


def _call_id(body: Any) -> str | None:
    value = body.get("call_id") if isinstance(body, dict) else None
    return None if value is None else str(value)


async def book(request: web.Request) -> web.Response:
    async def answer(body: Any) -> Answer:
        slot_id, affiliate_id = _fields(body, "slot_id", "affiliate_id")
        try:
            booking = await request.app[SOURCE].book(
                slot_id, affiliate_id=affiliate_id, call_id=_call_id(body)
            )
        except (SlotTaken, PatientHasAppointment) as exc:
            return _conflict_answer(exc)
        except BookingRejected as exc:
            return 422, {"message": exc.message}
        except BookingUnavailable as exc:
            raise _Refusal(_problem(503, str(exc))) from exc  # a retry may succeed
        return 201, booking_json(booking)

    return await _once(request, answer)


async def cancel(request: web.Request) -> web.Response:
    """``POST /bookings/{booking_id}/cancel`` ``{affiliate_id, call_id}``: 200 with the
    booking cancelled (again 200, unchanged, when it already was), 404 when the
    patient holds no such booking, 422 when it has started."""
    booking_id = request.match_info["booking_id"]

    async def answer(body: Any) -> Answer:
        [affiliate_id] = _fields(body, "affiliate_id")
        try:
            cancelled = await request.app[SOURCE].cancel(
                booking_id, affiliate_id=affiliate_id, call_id=_call_id(body)
            )
        except AppointmentNotFound as exc:
            return _not_found(exc)
        except BookingRejected as exc:
            return 422, {"message": exc.message}
        except BookingUnavailable as exc:
            raise _Refusal(_problem(503, str(exc))) from exc
        return 200, booking_json(cancelled)

    return await _once(request, answer)


async def reschedule(request: web.Request) -> web.Response:
    """``POST /bookings/{booking_id}/reschedule`` ``{slot_id, affiliate_id, call_id}``:
    201 with the new booking (the old one cancelled in the same transaction),
    404 when the patient holds no such live booking, 409 as for ``POST
    /bookings`` (the old booking stands), 422 when refused."""
    booking_id = request.match_info["booking_id"]

    async def answer(body: Any) -> Answer:
        slot_id, affiliate_id = _fields(body, "slot_id", "affiliate_id")
        try:
            booking = await request.app[SOURCE].reschedule(
                booking_id, slot_id, affiliate_id=affiliate_id, call_id=_call_id(body)
            )
        except AppointmentNotFound as exc:
            return _not_found(exc)
        except (SlotTaken, PatientHasAppointment) as exc:
            return _conflict_answer(exc)
        except BookingRejected as exc:
            return 422, {"message": exc.message}
        except BookingUnavailable as exc:
            raise _Refusal(_problem(503, str(exc))) from exc
        return 201, booking_json(booking)

    return await _once(request, answer)


async def pending_bookings(request: web.Request) -> web.Response:
    affiliate_id = request.query.get("affiliate_id", "")
    if not affiliate_id or request.query.get("pending") != "true":
        return _problem(400, "affiliate_id is required and pending must be true")
    try:
        bookings = await request.app[SOURCE].pending_for(affiliate_id)
    except BookingUnavailable as exc:
        return _problem(503, str(exc))
    return web.json_response({"bookings": [booking_json(b) for b in bookings]})


async def health(request: web.Request) -> web.Response:
    healthy = await request.app[SOURCE].health()
    return web.json_response({"healthy": healthy}, status=200 if healthy else 503)


def booking_service_app(source: SlotSource) -> web.Application:
    app = web.Application()
    app[SOURCE] = source
    app[ANSWERS] = OrderedDict()
    app.router.add_get("/slots", find_slots)
    app.router.add_post("/bookings", book)
    app.router.add_get("/bookings", pending_bookings)
    app.router.add_post("/bookings/{booking_id}/cancel", cancel)
    app.router.add_post("/bookings/{booking_id}/reschedule", reschedule)
    app.router.add_get("/health", health)
    return app
