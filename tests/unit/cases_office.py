"""The back office over a real database for the unit tests: the case store, the
chats, the mail outbox and the answer delivery on one fake clock, and the ops
API with the cases extension over a real socket (aiohttp TestServer)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.cases.answers import AnswerDelivery
from ivr.cases.config import load_cases_config
from ivr.cases.http import cases_extension
from ivr.cases.model import Case, NewCase
from ivr.cases.store import CaseStore
from ivr.chat.store import ConversationStore, InboundMessage
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.mail.outbox import MailOutbox
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from tests.unit.databases import TEST_DB_TIMEOUT_S

# Monday 30 November 2026, 9:00 in Bogotá.
MONDAY = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
BOOTSTRAP = Actor("cli:test", Role.ADMIN)
SENDER = "Línea de citas <citas@example.org>"
WA = "573001234567"


class Clock:
    def __init__(self, now: datetime = MONDAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def new_case(affiliate: str = "1012345678", **kw: Any) -> NewCase:
    fields: dict[str, Any] = dict(
        affiliate_id=affiliate, specialty="general", service_id="mg_first", cups="890201",
        site_id="norte", channel="voice", summary="Cita de medicina general; no hay cupos.",
        journey_id=str(uuid.uuid4()), contact_email="paciente@example.org",
        contact_phone="+" + WA, consent=True,
        search_evidence=[{"time_band": "afternoon", "exclude_doctor_id": "d1", "found": 0,
                          "at": MONDAY.isoformat()}],
    )  # fmt: skip
    fields.update(kw)
    return NewCase(**fields)


@dataclass
class Office:
    db: Database
    clock: Clock
    cases: CaseStore
    chats: ConversationStore
    mail: MailOutbox
    answers: AnswerDelivery

    async def file(self, affiliate: str = "1012345678", **kw: Any) -> Case:
        return await self.cases.file(new_case(affiliate, **kw))

    async def writes(self, wa_id: str = WA, at: datetime | None = None) -> None:
        """The contact writes on WhatsApp (its message processed: the window opens)."""
        at = at or self.clock()
        await self.chats.receive(InboundMessage(f"wamid.{uuid.uuid4()}", wa_id, "text", at, text="hola"))  # fmt: skip
        async with self.chats.turn(wa_id):
            pass


def office_on(db: Database) -> Office:
    clock = Clock()
    config = load_cases_config()
    cases = CaseStore(db, config.calendar_for, config, clock=clock)
    chats = ConversationStore(db, flow="citas", clock=clock)
    mail = MailOutbox(db, timeout=TEST_DB_TIMEOUT_S, clock=clock)
    answers = AnswerDelivery(cases, mail, chats, sender=SENDER, tz=ZoneInfo(config.timezone))
    return Office(db, clock, cases, chats, mail, answers)


@dataclass
class Desk:
    office: Office
    client: TestClient[Any, Any]
    tokens: dict[str, str]

    async def call(self, who: str | None, method: str, path: str, body: Any = None) -> ClientResponse:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return await self.client.request(method, path, headers=headers, json=body)

    async def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        response = await self.call(who, method, path, body)
        answer = await response.json()
        assert response.status == 200, answer
        return answer


@asynccontextmanager
async def desk_on(db: Database) -> AsyncIterator[Desk]:
    office = office_on(db)
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    roles = {"ana": Role.OPERATOR, "beto": Role.OPERATOR, "vera": Role.VIEWER}
    tokens = {name: await service.create_token(BOOTSTRAP, name, role, "pruebas")
              for name, role in roles.items()}  # fmt: skip
    app = build_ops_app(
        service, Metrics(), readiness=lambda: {"database": True}, chats=office.chats,
        extensions=[cases_extension(office.cases, office.answers)],
    )  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Desk(office, client, tokens)


def at_utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)
