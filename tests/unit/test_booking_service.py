"""The reference booking service and the HTTP adapter agree on the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from aiohttp.test_utils import TestServer

from ivr.booking import AppointmentNotFound, PatientHasAppointment, SlotTaken
from ivr.booking.db import DbSlotSource
from ivr.booking.http import HttpSlotSource
from ivr.booking.seed import demo_slots
from ivr.booking.service import booking_service_app
from ivr.citas.reference import CITAS_DIR, load_sites
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S


@pytest.fixture
async def adapter(db: Database) -> AsyncIterator[HttpSlotSource]:
    source = DbSlotSource(db, timeout=TEST_DB_TIMEOUT_S)
    await source.seed_slots(demo_slots(date.today(), load_sites(CITAS_DIR / "sites.yaml")))
    async with TestServer(booking_service_app(source)) as server:
        async with HttpSlotSource(str(server.make_url("")), token=None, timeout=5) as http:
            yield http


async def test_find_book_and_a_second_booking_of_the_same_slot_is_taken(
    adapter: HttpSlotSource,
) -> None:
    [slot] = await adapter.find(site_id="norte", cups="890201", limit=1)
    morning = await adapter.find(site_id="norte", cups="890201", time_band="morning", limit=3)
    assert all(s.time_band == "morning" for s in morning)

    booking = await adapter.book(slot.id, affiliate_id="1001", call_id="call-1")
    assert booking.slot == slot
    again = await adapter.book(slot.id, affiliate_id="1001", call_id="call-1")  # a retry
    assert again.id == booking.id
    with pytest.raises(SlotTaken):
        await adapter.book(slot.id, affiliate_id="2002", call_id="call-2")
    assert slot.id not in [
        s.id for s in await adapter.find(site_id="norte", cups="890201", limit=50)
    ]
    assert await adapter.health()


async def test_the_patient_s_own_appointment_crosses_the_contract(adapter: HttpSlotSource) -> None:
    """A 409 patient_has_appointment carries the booking held; GET /bookings lists it."""
    [first] = await adapter.find(site_id="norte", cups="890201", limit=1)
    held = await adapter.book(first.id, affiliate_id="1001", call_id="call-1")
    [control] = [
        s
        for s in await adapter.find(site_id="norte", cups="890301", limit=20)
        if s.starts_at == first.starts_at
    ]  # another doctor, another service, the same time

    with pytest.raises(PatientHasAppointment) as overlap:
        await adapter.book(control.id, affiliate_id="1001", call_id="call-2")
    [later] = await adapter.find(site_id="norte", cups="890201", after=first.ends_at, limit=1)
    with pytest.raises(PatientHasAppointment) as same_service:
        await adapter.book(later.id, affiliate_id="1001", call_id="call-3")

    assert (overlap.value.reason, same_service.value.reason) == ("overlap", "same_service")
    assert overlap.value.existing == same_service.value.existing == held
    assert await adapter.pending_for("1001") == [held]
    assert await adapter.pending_for("2002") == []
    assert (await adapter.book(control.id, affiliate_id="2002", call_id="call-4")).slot == control


async def test_pending_bookings_need_an_affiliate(adapter: HttpSlotSource) -> None:
    status, body = await adapter._request("GET", "/bookings", params={"pending": "true"})
    assert (status, body["message"]) == (400, "affiliate_id is required and pending must be true")


# --- cancel and reschedule across the contract (issue 10 §2) ----------------------


async def test_cancel_crosses_the_contract_once_and_for_the_holder_only(
    adapter: HttpSlotSource,
) -> None:
    [first] = await adapter.find(site_id="norte", cups="890201", limit=1)
    held = await adapter.book(first.id, affiliate_id="1001", call_id="call-1")

    with pytest.raises(AppointmentNotFound):
        await adapter.cancel(held.id, affiliate_id="2002", call_id="call-2")
    with pytest.raises(AppointmentNotFound):
        await adapter.cancel("no/such?booking", affiliate_id="1001", call_id="call-2")
    assert await adapter.pending_for("1001") == [held]

    cancelled = await adapter.cancel(held.id, affiliate_id="1001", call_id="call-2")
    again = await adapter.cancel(held.id, affiliate_id="1001", call_id="call-3")

    assert cancelled.cancelled_at is not None
    assert again == cancelled
    assert await adapter.pending_for("1001") == []
    assert first in await adapter.find(site_id="norte", cups="890201", limit=3)


async def test_reschedule_crosses_the_contract_and_a_taken_slot_keeps_the_old_one(
    adapter: HttpSlotSource,
) -> None:
    first, second, third = await adapter.find(site_id="norte", cups="890201", limit=3)
    held = await adapter.book(first.id, affiliate_id="1001", call_id="call-1")
    await adapter.book(third.id, affiliate_id="2002", call_id="call-2")

    with pytest.raises(SlotTaken):
        await adapter.reschedule(held.id, third.id, affiliate_id="1001", call_id="call-3")
    assert await adapter.pending_for("1001") == [held]
    with pytest.raises(AppointmentNotFound):
        await adapter.reschedule(held.id, second.id, affiliate_id="2002", call_id="call-9")

    moved = await adapter.reschedule(held.id, second.id, affiliate_id="1001", call_id="call-3")
    retried = await adapter.reschedule(held.id, second.id, affiliate_id="1001", call_id="call-3")

    assert (moved.slot, retried) == (second, moved)  # the retry got the first answer
    assert await adapter.pending_for("1001") == [moved]
    with pytest.raises(AppointmentNotFound):  # a new attempt: the old one is gone
        await adapter.reschedule(held.id, first.id, affiliate_id="1001", call_id="call-4")


@pytest.mark.parametrize("action", ["cancel", "reschedule"])
async def test_cancel_and_reschedule_need_a_patient(adapter: HttpSlotSource, action: str) -> None:
    status, body = await adapter._request("POST", f"/bookings/x/{action}", payload={})
    assert status == 400 and "affiliate_id" in body["message"]
