"""Wait for a condition with a deadline (for state that moves in background tasks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    predicate: Callable[[], bool], within: float = 2.0, step: float = 0.005
) -> None:
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(step)
