"""The e-mail a message becomes: ``email.message.EmailMessage`` (RFC 5322 / MIME).

Plain text always (``text/plain; charset=utf-8``), HTML as its alternative when
given (``multipart/alternative``: a mail reader shows the last part it can
render, RFC 2046 §5.1.4). ``Message-ID`` is fixed when the message is queued,
so a retried send carries the same id and a receiving system can tell it is
the same message; ``Date`` is when it was queued (RFC 5322 §3.6.1: when the
message was ready to enter the mail system).

>>> from datetime import UTC, datetime
>>> m = compose(
...     sender="Línea de citas <citas@example.org>", to="ana@example.org",
...     subject="Respuesta a su caso 0123453", text="Buenos días.",
...     message_id="<a1@example.org>", date=datetime(2026, 11, 30, 13, 0, tzinfo=UTC),
... )
>>> m["Subject"], m["Message-ID"], m["Date"]
('Respuesta a su caso 0123453', '<a1@example.org>', 'Mon, 30 Nov 2026 13:00:00 +0000')
>>> m.get_content_type()
'text/plain'
"""

from __future__ import annotations

from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid


class InvalidAddress(ValueError):
    """Not one e-mail address (``local@domain``)."""


def require_address(value: str) -> str:
    """``value`` if it is one address (``ana@example.org`` or ``Ana <ana@example.org>``),
    else ``InvalidAddress``. Syntax only (the standard library's RFC 5322 parser):
    whether the mailbox exists is the receiving server's answer.

    >>> require_address("ana@example.org")
    'ana@example.org'
    >>> require_address("ana@")
    Traceback (most recent call last):
    ...
    ivr.mail.message.InvalidAddress: no es una dirección de correo: 'ana@'
    """
    pairs = getaddresses([value])
    written = value.rpartition("<")[2].partition(">")[0] if "<" in value else value.strip()
    if len(pairs) != 1 or pairs[0][1] != written or not _valid_spec(written):
        raise InvalidAddress(f"no es una dirección de correo: {value!r}")
    return value


def _valid_spec(spec: str) -> bool:
    local, at, domain = spec.rpartition("@")
    if not (at and local and "." in domain) or any(c.isspace() for c in spec):
        return False
    try:
        Address(addr_spec=spec)
    except (ValueError, IndexError, TypeError, HeaderParseError):
        return False
    return not domain.startswith(".") and not domain.endswith(".")


def domain_of(address: str) -> str:
    """The domain of an address, for ``Message-ID`` (``localhost`` if none)."""
    _, at, domain = getaddresses([address])[0][1].rpartition("@")
    return domain if at and domain else "localhost"


def new_message_id(sender: str) -> str:
    """A fresh ``<…@domain>`` id in the sender's domain (RFC 5322 §3.6.4)."""
    return make_msgid(domain=domain_of(sender))


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    message_id: str,
    date: datetime,
    html: str | None = None,
    reply_to: str | None = None,
) -> EmailMessage:
    """The message to hand to SMTP. ``date`` must be aware (ValueError otherwise)."""
    if date.tzinfo is None:
        raise ValueError("the Date header needs an aware datetime")
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message.set_content(text, subtype="plain", charset="utf-8")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
    return message
