"""SMS: a persistent outbox and a worker that sends each message once.

``outbox`` (the ``sms_outbox`` table and ``SmsOutbox``), ``gateways`` (where a
message goes: a file in the sandbox, an HTTP provider in production, and the
``SmsError`` tree), ``worker`` (claims due messages, sends, retries with
backoff).

This module only holds ``mask_phone``, so the submodules can import it without
a cycle.
"""

from __future__ import annotations


def mask_phone(number: str) -> str:
    """A phone number fit for a log line: every digit but the last 3 is masked.

    >>> mask_phone("3001234567")
    '*******567'
    >>> mask_phone("+57 300 123 4567")
    '+** *** *** *567'
    """
    digits = sum(c.isdigit() for c in number)
    shown_from = digits - 3
    seen = 0
    masked = []
    for char in number:
        if char.isdigit():
            masked.append(char if seen >= shown_from else "*")
            seen += 1
        else:
            masked.append(char)
    return "".join(masked)
