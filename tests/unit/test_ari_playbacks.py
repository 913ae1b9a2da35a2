"""The playback ids any controller can stop after another died (ivr.ari.playbacks)."""

from __future__ import annotations

import pytest

from ivr.ari.playbacks import PLAYBACK_ID_SLOTS, playback_id_of, playback_ids


@pytest.mark.parametrize("channel_id", ["1700000000.12", "esc-3f2a", "a-pb1"])
def test_every_prompt_of_a_call_has_one_of_the_calls_known_ids(channel_id: str) -> None:
    known = playback_ids(channel_id)

    assert len(set(known)) == PLAYBACK_ID_SLOTS
    for n in range(5 * PLAYBACK_ID_SLOTS):
        assert playback_id_of(channel_id, n) in known
    # Consecutive prompts never share an id (a barged-in one may still linger).
    assert all(
        playback_id_of(channel_id, n) != playback_id_of(channel_id, n + 1) for n in range(64)
    )


def test_two_calls_never_share_a_playback_id() -> None:
    assert not set(playback_ids("1700000000.1")) & set(playback_ids("1700000000.12"))
