"""HttpSlotSource against an in-process server that follows docs/booking-service.md."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from ivr.booking import (
    AppointmentNotFound,
    Booking,
    BookingRejected,
    BookingUnavailable,
    PatientHasAppointment,
    Slot,
    SlotTaken,
)
from ivr.booking.http import HttpSlotSource
from ivr.booking.seed import BOGOTA

TOKEN = "s3cret"
SLOT_A = {
    "id": "a",
    "site_id": "norte",
    "doctor_id": "dr_gomez",
    "cups": "890201",
    "starts_at": "2025-03-10T08:00:00-05:00",
    "time_band": "morning",
}
SLOT_B = {**SLOT_A, "id": "b", "doctor_id": "dr_rojas", "starts_at": "2025-03-10T14:00:00-05:00"}
SLOT_B["time_band"] = "afternoon"
A = Slot("a", "norte", "dr_gomez", "890201", datetime(2025, 3, 10, 8, 0, tzinfo=BOGOTA), "morning")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeScheduling:
    """Answers per (method, path) as configured; records every request."""

    url: str = ""
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def reply(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        self.replies[(method, path)] = (status, body)


@pytest.fixture
async def fake() -> AsyncIterator[FakeScheduling]:
    state = FakeScheduling()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        state.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if state.hang:
            await state.release.wait()
        status, reply = state.replies.get((request.method, request.path), (404, {}))
        if isinstance(reply, str):
            return web.Response(status=status, text=reply)
        return web.json_response(reply, status=status)

    app = web.Application()
    app.router.add_route("*", "/api/{tail:.*}", handle)
    server = TestServer(app)
    await server.start_server()
    state.url = str(server.make_url("/api/"))
    try:
        yield state
    finally:
        state.release.set()
        await server.close()


@pytest.fixture
async def source(fake: FakeScheduling) -> AsyncIterator[HttpSlotSource]:
    async with HttpSlotSource(fake.url, token=TOKEN, timeout=2.0) as slots:
        yield slots


async def test_find_sends_the_filters_and_parses_slots(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    fake.reply("GET", "/api/slots", body={"slots": [SLOT_A, SLOT_B]})
    after = datetime(2025, 3, 7, 12, 0, tzinfo=UTC)

    found = await source.find(
        site_id="norte",
        cups="890201",
        after=after,
        time_band="morning",
        doctor_id="dr_gomez",
        exclude_doctor_id="dr_rojas",
        limit=2,
    )

    assert found[0] == A
    assert [s.id for s in found] == ["a", "b"]
    [seen] = fake.seen
    assert seen.query == {
        "site_id": "norte",
        "cups": "890201",
        "after": "2025-03-07T12:00:00+00:00",
        "time_band": "morning",
        "doctor_id": "dr_gomez",
        "exclude_doctor_id": "dr_rojas",
        "limit": "2",
    }
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_find_drops_excluded_ids_and_still_fills_the_limit(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    fake.reply("GET", "/api/slots", body={"slots": [SLOT_A, SLOT_B]})

    found = await source.find(site_id="norte", cups="890201", exclude_ids={"a"})

    assert [s.id for s in found] == ["b"]
    assert fake.seen[0].query == {"site_id": "norte", "cups": "890201", "limit": "2"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": "boom"}),
        (503, "maintenance"),
        (401, {"error": "bad token"}),
        (200, {"items": []}),
        (200, "not json"),
        (200, {"slots": [{**SLOT_A, "starts_at": "2025-03-10T08:00:00"}]}),  # no offset
        (200, {"slots": [{**SLOT_A, "time_band": "night"}]}),
    ],
)
async def test_find_failures_are_unavailable(
    fake: FakeScheduling, source: HttpSlotSource, status: int, body: Any
) -> None:
    fake.reply("GET", "/api/slots", status, body)

    with pytest.raises(BookingUnavailable):
        await source.find(site_id="norte", cups="890201")


async def test_book_posts_with_an_idempotency_key(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    fake.reply("GET", "/api/slots", body={"slots": [SLOT_A]})
    created = {"booking_id": "bk-1", "created_at": "2025-03-07T12:00:01+00:00"}
    fake.reply("POST", "/api/bookings", 201, created)

    [slot] = await source.find(site_id="norte", cups="890201")
    booking = await source.book(slot.id, affiliate_id="1001", call_id="call-1")

    created_at = datetime(2025, 3, 7, 12, 0, 1, tzinfo=UTC)
    assert booking == Booking("bk-1", A, "1001", "call-1", created_at)
    post = fake.seen[-1]
    assert post.body == {"slot_id": "a", "affiliate_id": "1001", "call_id": "call-1"}
    assert post.headers["Idempotency-Key"] == "call-1:a"
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_book_uses_the_slot_in_the_answer_when_given(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    created = {"booking_id": "bk-2", "created_at": "2025-03-07T12:00:01+00:00", "slot": SLOT_A}
    fake.reply("POST", "/api/bookings", 201, created)

    booking = await source.book("a", affiliate_id="1001", call_id=None)

    assert booking.slot == A
    assert booking.call_id is None
    assert fake.seen[0].headers["Idempotency-Key"]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (409, {"message": "taken"}, SlotTaken),
        (409, {"error": "slot_taken", "message": "taken"}, SlotTaken),
        (409, {"error": "patient_has_appointment"}, BookingUnavailable),  # no booking in it
        (
            409,
            {"error": "patient_has_appointment", "reason": "lunes", "booking": {}},
            BookingUnavailable,
        ),
        (422, {"message": "El afiliado ya tiene una cita ese día"}, BookingRejected),
        (500, {"message": "boom"}, BookingUnavailable),
        (502, "bad gateway", BookingUnavailable),
        (400, {"message": "bad request"}, BookingUnavailable),
        (201, {"booking_id": "bk-3"}, BookingUnavailable),  # unreadable success
    ],
)
async def test_book_errors_map_onto_the_booking_tree(
    fake: FakeScheduling, source: HttpSlotSource, status: int, body: Any, error: type[Exception]
) -> None:
    fake.reply("POST", "/api/bookings", status, body)

    with pytest.raises(error) as raised:
        await source.book("a", affiliate_id="1001", call_id="call-1")

    if isinstance(raised.value, BookingRejected):
        assert raised.value.message == "El afiliado ya tiene una cita ese día"


async def test_a_silent_service_times_out_as_unavailable(fake: FakeScheduling) -> None:
    fake.hang = True
    async with HttpSlotSource(fake.url, token=None, timeout=0.2) as source:
        with pytest.raises(BookingUnavailable, match="no answer"):
            await source.book("a", affiliate_id="1001", call_id="call-1")
        assert await source.health() is False
    assert "Authorization" not in fake.seen[0].headers


async def test_an_unreachable_service_is_unavailable() -> None:
    url = f"http://127.0.0.1:{unused_port()}/api"
    async with HttpSlotSource(url, token=None, timeout=2.0) as source:
        with pytest.raises(BookingUnavailable):
            await source.find(site_id="norte", cups="890201")
        assert await source.health() is False


async def test_health(fake: FakeScheduling, source: HttpSlotSource) -> None:
    fake.reply("GET", "/api/health", 200, {"status": "ok"})
    assert await source.health() is True
    fake.reply("GET", "/api/health", 500, {})
    assert await source.health() is False


async def test_a_given_session_is_not_closed(fake: FakeScheduling) -> None:
    fake.reply("GET", "/api/health", 200, {})
    async with aiohttp.ClientSession() as session:
        async with HttpSlotSource(fake.url, token=None, timeout=2.0, session=session) as source:
            assert await source.health() is True
        assert not session.closed


HELD = {
    "booking_id": "bk-held",
    "created_at": "2025-03-07T11:00:00+00:00",
    "call_id": "call-0",
    "slot": {**SLOT_B, "ends_at": "2025-03-10T14:30:00-05:00"},
}


@pytest.mark.parametrize("reason", ["overlap", "same_service"])
async def test_patient_has_appointment_carries_the_appointment_held(
    fake: FakeScheduling, source: HttpSlotSource, reason: str
) -> None:
    body = {"error": "patient_has_appointment", "reason": reason, "booking": HELD}
    fake.reply("POST", "/api/bookings", 409, body)

    with pytest.raises(PatientHasAppointment) as refused:
        await source.book("a", affiliate_id="1001", call_id="call-1")

    held = refused.value.existing
    assert (held.id, held.affiliate_id, held.call_id, refused.value.reason) == (
        "bk-held", "1001", "call-0", reason,
    )  # fmt: skip
    assert held.slot.ends_at - held.slot.starts_at == timedelta(minutes=30)


async def test_pending_bookings_are_asked_for_by_affiliate(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    fake.reply("GET", "/api/bookings", body={"bookings": [HELD]})

    [held] = await source.pending_for("1001")

    assert (held.id, held.slot.id) == ("bk-held", "b")
    assert fake.seen[-1].query == {"affiliate_id": "1001", "pending": "true"}
    fake.reply("GET", "/api/bookings", body={"bookings": [{"booking_id": "x"}]})
    with pytest.raises(BookingUnavailable, match="unreadable"):
        await source.pending_for("1001")
    fake.reply("GET", "/api/bookings", 404, {})
    with pytest.raises(BookingUnavailable):
        await source.pending_for("1001")


@pytest.mark.parametrize(
    ("ends_at", "length"),
    [
        (None, timedelta(minutes=20)),  # not given: the default length
        ("2025-03-10T08:45:00-05:00", timedelta(minutes=45)),
        ("2025-03-10T13:45:00+00:00", timedelta(minutes=45)),  # another offset, same instant
    ],
)
async def test_a_slot_ends_when_it_says_or_after_the_default_length(
    fake: FakeScheduling, source: HttpSlotSource, ends_at: str | None, length: timedelta
) -> None:
    item = SLOT_A if ends_at is None else {**SLOT_A, "ends_at": ends_at}
    fake.reply("GET", "/api/slots", body={"slots": [item]})

    [slot] = await source.find(site_id="norte", cups="890201")

    assert slot.length == length


@pytest.mark.parametrize("ends_at", ["2025-03-10T08:00:00-05:00", "2025-03-10T07:00:00-05:00"])
async def test_a_slot_that_does_not_last_is_unreadable(
    fake: FakeScheduling, source: HttpSlotSource, ends_at: str
) -> None:
    fake.reply("GET", "/api/slots", body={"slots": [{**SLOT_A, "ends_at": ends_at}]})

    with pytest.raises(BookingUnavailable, match="does not end after it starts"):
        await source.find(site_id="norte", cups="890201")


BOOKED = {
    "booking_id": "bk-1",
    "created_at": "2025-03-07T12:00:00+00:00",
    "call_id": "call-1",
    "slot": SLOT_A,
}


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"error": "not_found"}, AppointmentNotFound),
        (422, {"message": "La cita ya empezó"}, BookingRejected),
        (200, {**BOOKED, "cancelled_at": None}, BookingUnavailable),  # said 200, not cancelled
        (200, {"booking_id": "bk-1"}, BookingUnavailable),  # unreadable success
        (409, {"error": "slot_taken"}, BookingUnavailable),
        (503, {"message": "down"}, BookingUnavailable),
        (400, {"message": "bad request"}, BookingUnavailable),
    ],
)
async def test_cancel_errors_map_onto_the_booking_tree(
    fake: FakeScheduling, source: HttpSlotSource, status: int, body: Any, error: type[Exception]
) -> None:
    fake.reply("POST", "/api/bookings/bk-1/cancel", status, body)

    with pytest.raises(error):
        await source.cancel("bk-1", affiliate_id="1001", call_id="call-2")

    assert fake.seen[-1].body == {"affiliate_id": "1001", "call_id": "call-2"}


async def test_cancel_parses_the_cancelled_booking(
    fake: FakeScheduling, source: HttpSlotSource
) -> None:
    fake.reply(
        "POST",
        "/api/bookings/bk-1/cancel",
        200,
        {**BOOKED, "cancelled_at": "2025-03-08T09:00:00+00:00"},
    )

    cancelled = await source.cancel("bk-1", affiliate_id="1001", call_id="call-2")

    assert cancelled.cancelled_at == datetime(2025, 3, 8, 9, 0, tzinfo=UTC)
    assert (cancelled.id, cancelled.slot, cancelled.affiliate_id) == ("bk-1", A, "1001")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"error": "not_found"}, AppointmentNotFound),
        (409, {"error": "slot_taken"}, SlotTaken),
        (
            409,
            {"error": "patient_has_appointment", "reason": "overlap", "booking": BOOKED},
            PatientHasAppointment,
        ),
        (422, {"message": "No se puede"}, BookingRejected),
        (500, {"message": "boom"}, BookingUnavailable),
        (201, {"booking_id": "bk-2"}, BookingUnavailable),  # unreadable success
    ],
)
async def test_reschedule_errors_map_onto_the_booking_tree(
    fake: FakeScheduling, source: HttpSlotSource, status: int, body: Any, error: type[Exception]
) -> None:
    fake.reply("POST", "/api/bookings/bk-1/reschedule", status, body)

    with pytest.raises(error):
        await source.reschedule("bk-1", "b", affiliate_id="1001", call_id="call-2")

    seen = fake.seen[-1]
    assert seen.body == {"slot_id": "b", "affiliate_id": "1001", "call_id": "call-2"}
    assert seen.headers["Idempotency-Key"] == "call-2:bk-1:b"
