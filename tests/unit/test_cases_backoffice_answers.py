"""A case's answer on its channels (``ivr.cases.answers``) over a real database, the
e-mail sent to a real SMTP peer (aiosmtpd) by the real worker.

The kinds of fault: an answer sent twice or never (a crash between storing and
queuing, a retried request), a delivery whose outcome never reaches the case's
history (or reaches it twice), a WhatsApp message outside Meta's 24-hour
window. The window's edge is tested over its range (just inside, exactly 24 h,
after)."""

from __future__ import annotations

import doctest
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.cases import answers
from ivr.cases.answers import (
    ANSWER_FAILED,
    ANSWER_SENT,
    AnswerRefused,
    answer_key,
    email_text,
    parse_key,
)
from ivr.cases.model import Actor
from ivr.chat.tables import ChatOutboundRow
from ivr.mail.outbox import FAILED, MailMessage
from ivr.mail.smtp import SmtpMailer, SmtpServer
from ivr.mail.worker import MailWorker
from ivr.store.db import Database
from tests.unit.cases_office import MONDAY, SENDER, WA, Office, office_on
from tests.unit.mail_peer import Peer, smtp_peer

OPERATOR = Actor("token:ana", "operator")


@pytest.fixture
async def office(db: Database) -> Office:
    return office_on(db)


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[Peer]:
    async with smtp_peer(tmp_path) as running:
        yield running


def worker(office: Office, peer: Peer) -> MailWorker:
    mailer = SmtpMailer(SmtpServer("127.0.0.1", peer.port, "none", timeout=5))

    async def send(message: MailMessage) -> str:
        return await mailer.send(message.email())

    return MailWorker(office.mail, send, clock=office.clock, on_final=office.answers.on_mail_final)


async def outcomes(office: Office, number: str) -> list[tuple[str, str, str]]:
    return [(e.action, e.new["channel"], e.new["key"]) for e in await office.cases.events(number)
            if e.action in (ANSWER_SENT, ANSWER_FAILED)]  # fmt: skip


async def chat_rows(office: Office) -> list[ChatOutboundRow]:
    async def op(session: object) -> list[ChatOutboundRow]:
        return list(await session.scalars(select(ChatOutboundRow)))  # type: ignore[attr-defined]

    return await office.db.run("read chat outbound", op)  # type: ignore[arg-type]


async def test_an_email_answer_reaches_the_peer_once_and_its_sending_is_in_the_history(
    office: Office, peer: Peer
) -> None:
    case = await office.file()
    await office.answers.answer(case.number, text="Le asignamos cita el martes 1 de diciembre.",
                                channels=["email"], actor=OPERATOR)  # fmt: skip
    [answered] = [e for e in await office.cases.events(case.number) if e.action == "answered"]
    key = answer_key(case.number, answered.id)

    [queued] = await office.mail.list()
    assert queued.dedupe_key == key
    assert await worker(office, peer).run_once() == 1
    assert await office.answers.track() == 1
    assert await office.answers.track() == 0  # recorded once

    [got] = peer.received()
    assert got["to"] == "paciente@example.org" and got["from"] == SENDER
    assert got["subject"] == f"Respuesta a su caso n.º {case.number}"
    assert f"su caso n.º {case.number}, radicado el 30 de noviembre de 2026" in got["text"]
    assert "Le asignamos cita el martes 1 de diciembre." in got["text"]
    assert "Atentamente,\nLínea de citas" in got["text"]
    assert await outcomes(office, case.number) == [(ANSWER_SENT, "email", key)]
    [sent] = [e for e in await office.cases.events(case.number) if e.action == ANSWER_SENT]
    assert sent.new["to"] == "p***@example.org" and "queued as" in sent.detail
    assert (await office.cases.get(case.number)).state == "answered"  # type: ignore[union-attr]


async def test_a_refused_email_is_an_answer_failed_with_the_servers_reply(office: Office, peer: Peer) -> None:  # fmt: skip
    case = await office.file()
    peer.replies.append("550 5.1.1 Mailbox unknown")
    await office.answers.answer(case.number, text="Hola.", channels=["email"], actor=OPERATOR)

    await worker(office, peer).run_once()
    await office.answers.track()

    [(action, channel, _)] = await outcomes(office, case.number)
    assert (action, channel) == (ANSWER_FAILED, "email")
    [failed] = [e for e in await office.cases.events(case.number) if e.action == ANSWER_FAILED]
    assert "550" in failed.detail
    assert [m.status for m in await office.mail.list()] == [FAILED]


async def test_a_whatsapp_answer_inside_the_window_goes_to_the_chat_outbox(office: Office) -> None:
    case = await office.file()
    await office.writes(WA)
    office.clock.now += timedelta(hours=3)

    await office.answers.answer(case.number, text="Ya tiene cita.", channels=["whatsapp", "email"],
                                actor=OPERATOR)  # fmt: skip

    [row] = await chat_rows(office)
    assert parse_key(row.key) is not None and parse_key(row.key)[0] == case.number  # type: ignore[index]
    assert row.wa_id == WA
    assert (
        row.payload["text"]["body"] == f"Respuesta a su caso n.º {case.number}:\n\nYa tiene cita."
    )
    [mail] = await office.mail.list()
    assert mail.dedupe_key == row.key  # one key, both outboxes
    assert await office.answers.track() == 0  # neither sent yet
    await office.chats.mark_sent(row.id, "wamid.ABC")
    assert await office.answers.track() == 1
    assert await outcomes(office, case.number) == [(ANSWER_SENT, "whatsapp", row.key)]


@pytest.mark.parametrize(
    ("since_last_message", "open_"),
    [(timedelta(0), True), (timedelta(hours=23, minutes=59, seconds=59), True),
     (timedelta(hours=24), False), (timedelta(days=3), False)],
)  # fmt: skip
async def test_whatsapp_only_inside_the_24_hour_window(
    office: Office, since_last_message: timedelta, open_: bool
) -> None:
    case = await office.file()
    await office.writes(WA)
    office.clock.now = MONDAY + since_last_message

    window = await office.answers.window(case)
    assert window.open is open_
    assert window.ends_at == MONDAY + timedelta(hours=24)
    if open_:
        await office.answers.answer(
            case.number, text="Hola.", channels=["whatsapp"], actor=OPERATOR
        )
        assert len(await chat_rows(office)) == 1
    else:
        with pytest.raises(AnswerRefused, match="ventana de 24 horas de WhatsApp se cerró"):
            await office.answers.answer(case.number, text="Hola.", channels=["whatsapp"], actor=OPERATOR)  # fmt: skip
        assert await chat_rows(office) == []
        assert [e.action for e in await office.cases.events(case.number)] == ["filed"]


async def test_a_case_filed_in_the_chat_is_answered_on_its_wa_id(office: Office) -> None:
    other = "573009876543"
    case = await office.file(channel="chat", wa_id=other, contact_phone=None)
    await office.writes(other)

    await office.answers.answer(case.number, text="Hola.", channels=["whatsapp"], actor=OPERATOR)

    assert [r.wa_id for r in await chat_rows(office)] == [other]


async def test_an_answer_stored_but_never_queued_is_queued_by_the_tracker(office: Office, peer: Peer) -> None:  # fmt: skip
    # A crash between record_answer and the queuing: only the answered event exists.
    case = await office.file()
    await office.writes(WA)
    await office.cases.record_answer(case.number, text="Respuesta tras la caída.",
                                     channels=["email", "whatsapp"], actor=OPERATOR)  # fmt: skip
    assert await office.mail.list() == [] and await chat_rows(office) == []
    assert await office.answers.track() == 0  # its request may still be queuing it
    office.clock.now += timedelta(seconds=30)

    assert await office.answers.track() == 2
    assert await office.answers.track() == 0  # queued once: the keys

    [mail] = await office.mail.list()
    [row] = await chat_rows(office)
    assert mail.dedupe_key == row.key
    assert "Respuesta tras la caída." in email_text(case, "Respuesta tras la caída.", sender=SENDER,
                                                    tz=office.answers.tz)  # fmt: skip
    await worker(office, peer).run_once()
    await office.answers.track()
    assert [m["subject"] for m in peer.received()] == [f"Respuesta a su caso n.º {case.number}"]
    assert await outcomes(office, case.number) == [(ANSWER_SENT, "email", mail.dedupe_key)]


async def test_a_mended_whatsapp_answer_whose_window_closed_is_recorded_as_failed(office: Office) -> None:  # fmt: skip
    case = await office.file()
    await office.writes(WA)
    await office.cases.record_answer(case.number, text="Hola.", channels=["whatsapp"], actor=OPERATOR)  # fmt: skip
    office.clock.now += timedelta(hours=25)  # down for a day

    await office.answers.track()
    await office.answers.track()

    assert await chat_rows(office) == []
    [(action, channel, _)] = await outcomes(office, case.number)
    assert (action, channel) == (ANSWER_FAILED, "whatsapp")


async def test_two_answers_are_two_messages_and_a_repeated_dispatch_is_one(office: Office, peer: Peer) -> None:  # fmt: skip
    case = await office.file()
    await office.answers.answer(case.number, text="Primera.", channels=["email"], actor=OPERATOR)
    await office.answers.answer(case.number, text="Segunda.", channels=["email"], actor=OPERATOR)
    updated = await office.cases.get(case.number)
    assert updated is not None
    answered = [e for e in await office.cases.events(case.number) if e.action == "answered"]
    await office.answers._dispatch(updated, answered[0].id, "Primera.", ["email"])  # a replay

    assert len(await office.mail.list()) == 2
    await worker(office, peer).run_once()
    assert sorted(m["text"].split("\n\n")[2] for m in peer.received()) == ["Primera.", "Segunda."]
    await office.answers.track()
    assert [a for a, _, _ in await outcomes(office, case.number)] == [ANSWER_SENT, ANSWER_SENT]


@pytest.mark.parametrize(
    ("channels", "email", "message"),
    [([], "a@example.org", "Elija el canal"), (["sms"], "a@example.org", "Elija el canal"),
     (["email"], None, "no tiene correo de contacto"),
     (["email"], "no-es-un-correo", "no es una dirección válida")],
)  # fmt: skip
async def test_an_answer_that_cannot_go_writes_nothing(
    office: Office, channels: list[str], email: str | None, message: str
) -> None:
    case = await office.file(contact_email=email)

    with pytest.raises(AnswerRefused, match=message):
        await office.answers.answer(case.number, text="Hola.", channels=channels, actor=OPERATOR)

    assert [e.action for e in await office.cases.events(case.number)] == ["filed"]
    assert await office.mail.list() == []


def test_the_module_examples_run() -> None:
    result = doctest.testmod(answers)
    assert result.attempted >= 4 and result.failed == 0
