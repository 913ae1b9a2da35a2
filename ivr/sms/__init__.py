"""SMS: a persistent outbox and a worker that sends each message once.

``outbox`` (the ``sms_outbox`` table and ``SmsOutbox``), ``gateways`` (where a
message goes: a file in the sandbox, an HTTP provider in production, and the
``SmsError`` tree), ``worker`` (claims due messages, sends, retries with
backoff).

Phone numbers in logs are masked with ``ivr.masking.mask_number``.
"""

from __future__ import annotations
