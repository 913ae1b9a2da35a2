"""Personal numbers (phones, documents) as they may appear in logs and records.

One policy for the whole project: every digit but the last 3 is masked,
separators are kept, and a missing number shows as ``-``.

>>> mask_number("3001234567")
'*******567'
>>> mask_number("+57 300 123 4567")
'+** *** *** *567'
>>> mask_number(None)
'-'
"""

from __future__ import annotations

SHOWN_DIGITS = 3


def mask_number(number: str | None) -> str:
    if not number:
        return "-"
    shown_from = sum(c.isdigit() for c in number) - SHOWN_DIGITS
    seen = 0
    masked = []
    for char in number:
        if char.isdigit():
            masked.append(char if seen >= shown_from else "*")
            seen += 1
        else:
            masked.append(char)
    return "".join(masked)


def mask_email(address: str | None) -> str:
    """An e-mail address as a log line or a chat may show it: the first character
    of the mailbox and of the domain, the rest of each hidden, the top-level
    domain kept (the person recognises their own address; nobody else learns it).

    >>> mask_email("ana.gomez@example.org")
    'a***@e***.org'
    >>> mask_email("x@correo.com.co")
    'x***@c***.co'
    >>> mask_email(None)
    '-'
    """
    if not address or "@" not in address:
        return "-"
    local, _, domain = address.rpartition("@")
    head, _, tld = domain.rpartition(".")
    shown_domain = f"{(head or domain)[:1]}***" + (f".{tld}" if head else "")
    return f"{local[:1]}***@{shown_domain}"
