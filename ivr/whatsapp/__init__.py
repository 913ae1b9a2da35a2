"""Meta's WhatsApp Cloud API, as protocol and HTTP only (no flows, no database).

- ``events``: the webhook payload parsed into typed events.
- ``webhook``: the aiohttp routes Meta calls (verify token, X-Hub-Signature-256).
- ``limits``: Meta's length/count limits and the checker that raises.
- ``messages``: outbound message builders (text, list, reply buttons, template).
- ``client``: the messages endpoint with timeouts, retries and per-process idempotency.
- ``simulator``: Meta played on loopback, for tests, the sandbox and the benchmark.

Exceptions: ``WhatsAppLimitError`` (a ``ValueError``) from the builders;
``WebhookPayloadError`` (a ``ValueError``) from parsing; ``WhatsAppError`` and
its two kinds from the client (see ``ivr.whatsapp.client``).
"""
