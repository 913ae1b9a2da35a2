"""SmtpMailer against a real SMTP peer (aiosmtpd on loopback): delivery, and how
each kind of failure is classed — the kind: an SMTP reply code decides between
"try again" (4xx, and AUTH refused) and "never again" (5xx), RFC 5321 §4.2.1."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from ivr.mail.message import compose
from ivr.mail.smtp import MailError, MailPermanentError, SmtpMailer, SmtpServer, server_for
from ivr.mail.testserver import summary
from ivr.settings import Settings
from tests.unit.mail_peer import free_port, smtp_peer

AT = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def message(to: str = "ana@example.org") -> object:
    return compose(sender="Línea de citas <citas@example.org>", to=to,
                   subject="Respuesta a su caso n.º 0000013", text="Señora Ana: ya tiene cita.",
                   message_id="<m1@example.org>", date=AT)  # fmt: skip


def plain(port: int, timeout: float = 5.0) -> SmtpMailer:
    return SmtpMailer(SmtpServer("127.0.0.1", port, "none", timeout=timeout))


async def test_a_message_reaches_the_peer_as_written(tmp_path: Path) -> None:
    async with smtp_peer(tmp_path) as peer:
        reply = await plain(peer.port).send(message())  # type: ignore[arg-type]

    assert reply.startswith("2.0.0 Ok: queued as m1@example.org")
    (got,) = peer.received()
    assert (got["to"], got["subject"], got["message_id"]) == (
        "ana@example.org", "Respuesta a su caso n.º 0000013", "<m1@example.org>")  # fmt: skip
    assert got["envelope_to"] == ["ana@example.org"]
    assert got["from"] == "Línea de citas <citas@example.org>"
    assert got["text"].strip() == "Señora Ana: ya tiene cita."
    assert got["date"] == "Mon, 30 Nov 2026 13:00:00 +0000"


# Every class of reply code to DATA, and the class it must fall in.
REPLIES = [
    ("421 4.3.2 Service shutting down", MailError),
    ("450 4.2.1 Mailbox busy", MailError),
    ("451 4.3.0 Local error, try later", MailError),
    ("452 4.3.1 Insufficient storage", MailError),
    ("550 5.1.1 Mailbox unknown", MailPermanentError),
    ("552 5.3.4 Message too big", MailPermanentError),
    ("554 5.7.1 Rejected as spam", MailPermanentError),
]


@pytest.mark.parametrize(("reply", "kind"), REPLIES)
async def test_a_reply_code_decides_retry_or_give_up(tmp_path: Path, reply: str, kind: type[MailError]) -> None:  # fmt: skip
    async with smtp_peer(tmp_path) as peer:
        peer.replies.append(reply)
        with pytest.raises(MailError) as raised:
            await plain(peer.port).send(message())  # type: ignore[arg-type]

    assert type(raised.value) is kind
    assert reply.split()[0] in str(raised.value)
    assert peer.received() == []


async def test_a_refused_recipient_is_permanent(tmp_path: Path) -> None:
    class Refuse:
        async def handle_RCPT(self, server: object, session: object, envelope: object,
                              address: str, options: list[str]) -> str:  # fmt: skip
            return "550 5.1.1 No such user"

    from aiosmtpd.smtp import SMTP

    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(Refuse(), hostname="peer.test"), "127.0.0.1", port
    )
    try:
        with pytest.raises(MailPermanentError, match="550"):
            await plain(port).send(message("nadie@example.org"))  # type: ignore[arg-type]
    finally:
        server.close()
        await server.wait_closed()


async def test_no_server_listening_is_temporary() -> None:
    with pytest.raises(MailError) as raised:
        await plain(free_port()).send(message())  # type: ignore[arg-type]
    assert type(raised.value) is MailError


async def test_a_server_that_never_greets_times_out_as_temporary() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        with pytest.raises(MailError) as raised:
            await plain(silent.getsockname()[1], timeout=0.3).send(message())  # type: ignore[arg-type]
    finally:
        silent.close()
    assert type(raised.value) is MailError


def authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:  # fmt: skip
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"citas", b"s3creto")
    return AuthResult(success=ok)


# aiosmtpd warns that AUTH without TLS is unsafe: true, and this peer is on loopback.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_the_right_password_delivers_and_a_wrong_one_is_retried(
    tmp_path: Path,
) -> None:
    async with smtp_peer(tmp_path, authenticator=authenticator, auth_require_tls=False,
                         auth_required=True) as peer:  # fmt: skip
        good = SmtpMailer(SmtpServer("127.0.0.1", peer.port, "none", "citas", "s3creto"))
        bad = SmtpMailer(SmtpServer("127.0.0.1", peer.port, "none", "citas", "otra"))
        await good.send(message())  # type: ignore[arg-type]
        with pytest.raises(MailError) as raised:
            await bad.send(message())  # type: ignore[arg-type]

    assert type(raised.value) is MailError  # 535: a relay's configuration, fixed by an operator
    assert len(peer.received()) == 1


def test_a_server_needs_a_known_security() -> None:
    with pytest.raises(ValueError, match="starttls, tls, none"):
        SmtpServer("smtp.example.org", 587, "ssl")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("127.0.0.1", 2525, "none")),
        ({"CITAS_PORT_OFFSET": "1100"}, ("127.0.0.1", 3625, "none")),
        ({"CITAS_MAIL_HOST": "smtp.example.org"}, ("smtp.example.org", 587, "starttls")),
        ({"CITAS_MAIL_HOST": "smtp.example.org", "CITAS_MAIL_SECURITY": "tls"}, ("smtp.example.org", 465, "tls")),
        ({"CITAS_MAIL_HOST": "relay", "CITAS_MAIL_SECURITY": "none"}, ("relay", 25, "none")),
        ({"CITAS_MAIL_HOST": "relay", "CITAS_MAIL_PORT": "2587"}, ("relay", 2587, "starttls")),
    ],
)  # fmt: skip
def test_the_relay_comes_from_the_settings_else_the_sandbox_peer(env: dict[str, str], expected: tuple[str, int, str]) -> None:  # fmt: skip
    server = server_for(Settings.from_env(env))
    assert (server.host, server.port, server.security) == expected


def test_the_password_never_shows_in_repr() -> None:
    settings = Settings.from_env({"CITAS_MAIL_HOST": "relay", "CITAS_MAIL_USER": "citas",
                                  "CITAS_MAIL_PASSWORD": "s3creto"})  # fmt: skip
    assert "s3creto" not in repr(settings) and "s3creto" not in repr(server_for(settings))
    assert server_for(settings).password == "s3creto"


def test_the_peer_summarises_a_multipart_message() -> None:
    raw = compose(sender="citas@example.org", to="ana@example.org", subject="Caso", text="texto",
                  html="<p>texto</p>", message_id="<h@example.org>", date=AT).as_bytes()  # fmt: skip

    line = summary(raw, peer="127.0.0.1", envelope_from="citas@example.org", envelope_to=["ana@example.org"])  # fmt: skip

    assert (line["text"].strip(), line["html"].strip()) == ("texto", "<p>texto</p>")
