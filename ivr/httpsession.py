"""One lifecycle for our HTTP clients' aiohttp session (ARI, booking service, SMS gateway).

A client either borrows a session the caller owns (tests, a shared pool) or
creates its own on first use (aiohttp wants sessions built inside a running
loop) and closes only that one.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp


class OwnedSession:
    """``connections``/``keepalive_s``: the own session's connection pool (at most
    that many sockets to the server, idle ones closed after ``keepalive_s``);
    None keeps aiohttp's defaults (100 sockets, 15 s)."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        *,
        connections: int | None = None,
        keepalive_s: float | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._connections = connections
        self._keepalive_s = keepalive_s

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = None
            if self._connections is not None or self._keepalive_s is not None:
                connector = aiohttp.TCPConnector(
                    limit=self._connections or 100, keepalive_timeout=self._keepalive_s or 15.0
                )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session, only if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
