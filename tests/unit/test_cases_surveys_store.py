"""SurveyStore on SQLite and PostgreSQL (``db`` runs each test on both): one survey
per call and per case in the database, the dialogue's steps, expiry, and the
migration matching the table."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import IntegrityError

from ivr.masking import mask_number
from ivr.store.db import Database, alembic_config
from ivr.store.models import Base
from ivr.surveys.store import COMMENT_TTL, RATING_TTL, Survey, SurveyNotFound, SurveyStore
from ivr.surveys.tables import (
    ANSWERED,
    CASE,
    EXPIRED,
    PENDING,
    SENT,
    STEP_COMMENT,
    STEP_DONE,
    STEP_RATING,
    SurveyRow,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
WA = "573001234567"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


async def sent_survey(
    db: Database, clock: Clock, *, contact: str = WA, number: str = "0123456"
) -> str:
    """A case survey already sent on WhatsApp (the worker's part is tested with cases)."""
    survey_id = str(uuid.uuid4())
    async with db.sessions.begin() as session:
        session.add(
            SurveyRow(
                id=survey_id, kind=CASE, case_id=str(uuid.uuid4()), case_number=number,
                channel="whatsapp", state=SENT, step=STEP_RATING, contact=contact, attempts=0,
                created_at=clock.now, sent_at=clock.now,
            )
        )  # fmt: skip
    return survey_id


async def test_a_call_is_rated_once_even_by_concurrent_writers(db: Database) -> None:
    store = SurveyStore(db, clock=Clock())
    first, second = await asyncio.gather(
        store.record_call_rating(call_id="call-1", rating=9, agent="ana", journey_id="call-1"),
        store.record_call_rating(call_id="call-1", rating=3),
    )
    assert first.id == second.id
    stored = await store.for_call("call-1")
    assert stored is not None and stored.rating in (9, 3)
    assert (stored.kind, stored.channel, stored.state, stored.step) == (
        "call",
        "voice",
        ANSWERED,
        STEP_DONE,
    )
    assert len(await store.list(kind="call")) == 1


@pytest.mark.parametrize("rating", [0, 11, -1])
async def test_a_call_rating_outside_1_to_10_is_refused(db: Database, rating: int) -> None:
    with pytest.raises(ValueError):
        await SurveyStore(db).record_call_rating(call_id="call-x", rating=rating)
    assert await SurveyStore(db).for_call("call-x") is None


async def test_the_database_refuses_a_second_survey_of_a_case(db: Database) -> None:
    clock = Clock()
    survey_id = await sent_survey(db, clock)
    survey = await SurveyStore(db).get(survey_id)
    with pytest.raises(IntegrityError):
        async with db.sessions.begin() as session:
            session.add(
                SurveyRow(id=str(uuid.uuid4()), kind=CASE, case_id=survey.case_id, state=PENDING,
                          step=STEP_RATING, attempts=0, created_at=T0)
            )  # fmt: skip
    # A call survey may name the same case: the uniqueness is per kind.
    await SurveyStore(db).record_call_rating(call_id="c", rating=5, case_id=survey.case_id)


async def test_rating_then_comment_then_nothing_more(db: Database) -> None:
    clock = Clock()
    store = SurveyStore(db, clock=clock)
    survey_id = await sent_survey(db, clock)
    active = await store.active_for([WA])
    assert active is not None and active.id == survey_id
    await store.rate(survey_id, 9, message_id="m1")
    rated = await store.get(survey_id)
    assert (rated.state, rated.step, rated.rating, rated.answered_at) == (
        ANSWERED,
        STEP_COMMENT,
        9,
        T0,
    )
    assert (await store.active_for([WA])) == rated
    await store.comment(survey_id, "Muy amables", message_id="m2")
    done = await store.get(survey_id)
    assert (done.step, done.comment, done.last_message_id) == (STEP_DONE, "Muy amables", "m2")
    assert await store.active_for([WA]) is None
    await store.rate(survey_id, 2, message_id="m3")  # late: changes nothing
    assert (await store.get(survey_id)).rating == 9


async def test_two_replies_without_a_rating_expire_the_survey(db: Database) -> None:
    clock = Clock()
    store = SurveyStore(db, clock=clock)
    survey_id = await sent_survey(db, clock)
    assert await store.not_a_rating(survey_id, message_id="m1", give_up_after=2) is False
    assert (await store.get(survey_id)).attempts == 1
    assert await store.not_a_rating(survey_id, message_id="m2", give_up_after=2) is True
    assert (await store.get(survey_id)).state == EXPIRED
    assert await store.active_for([WA]) is None


@pytest.mark.parametrize(
    ("after", "expired"),
    [(RATING_TTL - timedelta(seconds=1), False), (RATING_TTL, True), (RATING_TTL * 2, True)],
)
async def test_an_unanswered_survey_expires_after_the_rating_window(
    db: Database, after: timedelta, expired: bool
) -> None:
    clock = Clock()
    store = SurveyStore(db, clock=clock)
    survey_id = await sent_survey(db, clock)
    clock.now = T0 + after
    assert (await store.active_for([WA]) is None) is expired
    assert await store.expire_due() == int(expired)
    assert (await store.get(survey_id)).state == (EXPIRED if expired else SENT)


@pytest.mark.parametrize(
    ("after", "open_"), [(COMMENT_TTL - timedelta(seconds=1), True), (COMMENT_TTL, False)]
)
async def test_the_comment_is_awaited_for_its_window_only(
    db: Database, after: timedelta, open_: bool
) -> None:
    clock = Clock()
    store = SurveyStore(db, clock=clock)
    survey_id = await sent_survey(db, clock)
    await store.rate(survey_id, 7, message_id="m1")
    clock.now = T0 + after
    assert (await store.active_for([WA]) is not None) is open_
    await store.expire_due()
    survey = await store.get(survey_id)
    assert (survey.state, survey.rating) == (ANSWERED, 7)  # the rating stands either way
    assert survey.step == (STEP_COMMENT if open_ else STEP_DONE)


async def test_the_latest_survey_of_a_contact_takes_its_messages(db: Database) -> None:
    clock = Clock()
    store = SurveyStore(db, clock=clock)
    await sent_survey(db, clock, number="0000001")
    clock.now = T0 + timedelta(minutes=5)
    newer = await sent_survey(db, clock, number="0000002")
    active = await store.active_for([WA, f"+{WA}"])
    assert active is not None and active.id == newer
    assert await store.active_for(["573000000000"]) is None


async def test_an_unknown_survey_is_not_found(db: Database) -> None:
    with pytest.raises(SurveyNotFound):
        await SurveyStore(db).get("nope")


def test_json_masks_the_contact() -> None:
    survey = Survey(
        "s", CASE, "c", "0123456", None, None, None, "whatsapp", SENT, STEP_RATING, None, None,
        WA, 0, None, None, T0, T0, None, None,
    )  # fmt: skip
    assert WA not in str(survey.as_json()) and survey.as_json()["contact"] == mask_number(WA)


def _survey_diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = []
    for diff in compare_metadata(context, Base.metadata):
        items = diff if isinstance(diff, list) else [diff]
        for item in items:
            names = {getattr(x, "name", None) for x in item[1:]} | {
                getattr(getattr(x, "table", None), "name", None) for x in item[1:]
            } | {x for x in item[1:] if isinstance(x, str)}  # fmt: skip
            if "surveys" in names or any(
                str(n).startswith(("uq_surveys", "ix_surveys")) for n in names
            ):
                found.append(item)
    return found


async def test_migration_0009_matches_the_table_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        assert await conn.run_sync(_survey_diffs) == []
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "-1"))
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert "surveys" not in names and "conversations" in names
    await db.migrate()
    await SurveyStore(db).record_call_rating(call_id="after-upgrade", rating=10)
