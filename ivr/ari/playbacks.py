"""Playback ids a call's prompts take in turn, known to any controller.

A controller that dies mid-prompt leaves the playback running: Asterisk runs a
channel's Stasis commands one after another, so a ``move`` into another
controller's application (or the rescue message of a restarted controller)
waits until that prompt ends: up to the promo's 8 s of a caller nobody
drives. ARI has no "list a channel's playbacks" request, but ``DELETE
/playbacks/{id}`` stops one at once, whatever is queued behind it. So a call's
prompts take the ids ``<channel id>-pb0`` … ``-pb7`` in turn, and whoever
adopts the call stops all eight (404 for those not playing). Eight names: a
playback stopped on barge-in may linger a moment while the next starts; eight
in flight on one channel never happens (one prompt at a time).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ivr.ari.errors import AriError, AriNotFound

if TYPE_CHECKING:
    from ivr.ari.client import AriClient

logger = logging.getLogger(__name__)

PLAYBACK_ID_SLOTS = 8


def playback_id_of(channel_id: str, n: int) -> str:
    """The id of the ``n``-th prompt (0-based) played on ``channel_id``."""
    return f"{channel_id}-pb{n % PLAYBACK_ID_SLOTS}"


def playback_ids(channel_id: str) -> list[str]:
    """Every id a prompt on ``channel_id`` may have (``PLAYBACK_ID_SLOTS`` of them)."""
    return [playback_id_of(channel_id, n) for n in range(PLAYBACK_ID_SLOTS)]


async def stop_known_playbacks(client: AriClient, channel_id: str) -> None:
    """Stop whatever prompt a controller left playing on ``channel_id``: one
    ``DELETE /playbacks/{id}`` per known id, at once; not found is the usual
    answer, another error is logged. Never raises ``AriError``."""

    async def stop(playback_id: str) -> None:
        try:
            await client.stop_playback(playback_id)
        except AriNotFound:
            pass
        except AriError as exc:
            logger.info("channel %s: cannot stop playback %s: %s", channel_id, playback_id, exc)

    await asyncio.gather(*(stop(p) for p in playback_ids(channel_id)))
