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
    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._owns_session = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
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
