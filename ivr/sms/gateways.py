"""Where an SMS goes, and the gateway boundary's exception tree.

SmsError
 ├── SmsTemporaryError   try again later (timeout, connection, 429, 5xx)
 └── SmsPermanentError   never retry (the provider refused the message)

``FileSmsGateway`` is the embedded default: the sandbox and the tests read the
file to see what would have been sent. ``HttpSmsGateway`` posts to a provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp

from ivr.failures import failure_text
from ivr.httpsession import OwnedSession
from ivr.masking import mask_number
from ivr.sms.outbox import OutboxMessage

logger = logging.getLogger(__name__)


class SmsError(RuntimeError):
    """Sending an SMS failed."""


class SmsTemporaryError(SmsError):
    """The send may work later: retry with backoff."""


class SmsPermanentError(SmsError):
    """The send will never work: do not retry."""


class SmsGateway(Protocol):
    async def send(self, msg: OutboxMessage) -> str:
        """Send the message; returns the provider's id for it.

        Raises ``SmsTemporaryError`` or ``SmsPermanentError``.
        """
        ...


class FileSmsGateway:
    """Appends one JSON line per send: ``{id, dedupe_key, to, text, at}``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    async def send(self, msg: OutboxMessage) -> str:
        line = json.dumps(
            {
                "id": msg.id,
                "dedupe_key": msg.dedupe_key,
                "to": msg.to_number,
                "text": msg.text,
                "at": datetime.now(UTC).isoformat(),
            },
            ensure_ascii=False,
        )
        try:
            await asyncio.to_thread(self._append, line + "\n")
        except OSError as exc:
            raise SmsTemporaryError(f"cannot write {self.path}: {exc}") from exc
        return f"file-{msg.id}"

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND file: lines from several workers never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


class HttpSmsGateway(OwnedSession):
    """Posts ``{to, text, reference}`` to a provider with an ``Idempotency-Key``.

    The key is the outbox id, so a retry after a lost answer does not send
    twice at a provider that honours it.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        super().__init__(session)

    async def send(self, msg: OutboxMessage) -> str:
        session = self._get_session()
        payload = {"to": msg.to_number, "text": msg.text, "reference": msg.id}
        headers = {**self._auth, "Idempotency-Key": msg.id}
        try:
            async with asyncio.timeout(self.timeout):
                async with session.post(self.url, json=payload, headers=headers) as response:
                    status = response.status
                    body = await response.text()
        except TimeoutError as exc:
            raise SmsTemporaryError(f"sms {msg.id}: no answer in {self.timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise SmsTemporaryError(f"sms {msg.id}: {failure_text(exc)}") from exc
        if 200 <= status < 300:
            return self._provider_id(msg, body)
        problem = f"sms {msg.id} to {mask_number(msg.to_number)}: HTTP {status}: {body[:200]}"
        if status == 429 or status >= 500 or status < 400:
            raise SmsTemporaryError(problem)
        raise SmsPermanentError(problem)

    @staticmethod
    def _provider_id(msg: OutboxMessage, body: str) -> str:
        try:
            provider_id = json.loads(body)["id"]
        except (ValueError, KeyError, TypeError):
            provider_id = None
        if provider_id is None:
            # Accepted all the same: retrying would risk a second SMS.
            logger.warning("sms %s: provider accepted it without an id: %.200s", msg.id, body)
            return f"unknown-{msg.id}"
        return str(provider_id)
