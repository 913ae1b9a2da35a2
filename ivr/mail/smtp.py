"""``SmtpMailer``: hands one message to an SMTP server (aiosmtplib), with a timeout.

Where the server is and how to talk to it is a :class:`SmtpServer`: host,
port, ``security`` (``starttls``: plain connection upgraded with STARTTLS,
RFC 3207, usually port 587; ``tls``: TLS from the first byte, "implicit TLS"
of RFC 8314, port 465; ``none``: plain, only for a local peer such as the
sandbox's), and credentials for AUTH (RFC 4954) when the relay wants them.

The exception tree (what the worker decides on)::

    MailError                 temporary: try again later (connection refused or
     │                        dropped, timeout, 4xx reply, TLS or AUTH failure —
     │                        a relay's configuration is fixed without losing mail)
     └── MailPermanentError   the server refused this message for good (a 5xx
                              reply to the sender, a recipient or the data):
                              sending it again cannot succeed

Why a 5xx is final and a 4xx is not: RFC 5321 §4.2.1 (4yz "transient negative
completion", 5yz "permanent negative completion").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

from ivr.failures import failure_text
from ivr.settings import Settings

logger = logging.getLogger(__name__)

SECURITIES = ("starttls", "tls", "none")


class MailError(Exception):
    """The message was not handed over; it may be tried again."""


class MailPermanentError(MailError):
    """The server refused the message for good (5xx)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0  # seconds, for connecting and for each SMTP command

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security is one of {', '.join(SECURITIES)}, not {self.security!r}")


class SmtpMailer:
    """Sends through one :class:`SmtpServer`, a new connection per message
    (a contact centre sends a few answers a minute: no pool to keep alive)."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` over; returns the server's reply to it (its queue id,
        e.g. ``250 2.0.0 Ok: queued as 4F2…``). Raises the ``MailError`` tree."""
        server = self.server
        try:
            refused, reply = await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",
                username=server.user or None,
                password=server.password or None if server.user else None,
                timeout=server.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _by_code(min(r.code for r in exc.recipients), str(exc)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = failure_text(exc, deadline_s=server.timeout)
            raise MailError(f"{type(exc).__name__}: {reason}") from exc
        if refused:
            worst = min(code for code, _ in refused.values())
            raise _by_code(worst, "; ".join(f"{code} {text}" for code, text in refused.values()))
        return reply


def _by_code(code: int, text: str) -> MailError:
    # AUTH refused (535) is a relay's configuration, fixed by an operator: retried.
    if 500 <= code < 600 and code not in (530, 534, 535, 538):
        return MailPermanentError(text)
    return MailError(text)


DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def server_for(settings: Settings) -> SmtpServer:
    """The relay of ``settings.mail``; with no host, the sandbox's SMTP peer
    (``ivr.mail.testserver`` on ``settings.ports.smtp``, plain SMTP on loopback)."""
    mail = settings.mail
    if not mail.host:
        return SmtpServer(settings.host, settings.ports.smtp, "none", timeout=mail.timeout)
    port = mail.port or DEFAULT_PORTS[mail.security]
    return SmtpServer(mail.host, port, mail.security, mail.user, mail.password, mail.timeout)
