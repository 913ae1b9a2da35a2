"""E-mail: a persistent outbox, an SMTP client and a worker that sends each message once.

``message`` (builds the RFC 5322 message: Spanish plain text, optional HTML,
``Message-ID`` and ``Date``), ``outbox`` (the ``mail_outbox`` table and
``MailOutbox``), ``smtp`` (``SmtpMailer`` over aiosmtplib and the ``MailError``
tree), ``worker`` (claims due messages, sends, retries with backoff),
``testserver`` (the sandbox's local SMTP peer on aiosmtpd, which writes every
message it receives to ``<state>/<instance>/mail-received.jsonl``).

Addresses in logs are masked with :func:`mask_address`.
"""

from __future__ import annotations


def mask_address(address: str) -> str:
    """An e-mail address as a log shows it: the first letter of the local part
    and the domain (``ana.perez@example.org`` → ``a***@example.org``).

    >>> mask_address("ana.perez@example.org")
    'a***@example.org'
    >>> mask_address("sin-arroba")
    '***'
    """
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"
