"""The orphan adopter (ivr.multi.adopter): a dead slot's channels moved into ours.

Pure logic over a fake ARI (the real Asterisk is tests/e2e/test_controllers.py),
with real flock locks and a real process as the living owner. The kind: a
dead controller's callers must be moved exactly once into a living controller,
the slot held while moves are pending (a move waits for the channel's running
playback) and released once they are done. Over 2-4 slots, each dead in turn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ivr.ari.errors import AriNotFound
from ivr.multi.adopter import ADOPTED_ARG, OrphanAdopter
from ivr.multi.slots import Slots, slot_app
from tests.unit.slotholder import Holder, holding

APP = "citas-ivr"

@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    with holding() as made:
        yield made



class FakeAri:
    """Applications and their channel ids; a move is accepted at once but the
    channel leaves its app only when ``execute_moves()`` runs (Asterisk runs a move
    after the channel's current playback)."""

    def __init__(self, apps: dict[str, list[str]], playing: dict[str, str] | None = None) -> None:
        self.apps = apps
        self.playing = playing or {}  # channel id -> the playback id it is running
        self.stopped: list[str] = []
        self.moves: list[tuple[str, str, tuple[str, ...]]] = []
        self.hung_up: list[str] = []
        self._pending: list[tuple[str, str]] = []

    async def application_channel_ids(self, app: str) -> list[str]:
        if app not in self.apps:
            raise AriNotFound(404, "GET", f"/applications/{app}", "Application not found")
        return list(self.apps[app])

    async def move(self, channel_id: str, app: str, app_args: Sequence[str] = ()) -> None:
        self.moves.append((channel_id, app, tuple(app_args)))
        self._pending.append((channel_id, app))

    async def stop_playback(self, playback_id: str) -> None:
        for channel_id, running in list(self.playing.items()):
            if running == playback_id:
                del self.playing[channel_id]
                self.stopped.append(playback_id)
                return
        raise AriNotFound(404, "DELETE", f"/playbacks/{playback_id}", "Playback not found")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.hung_up.append(channel_id)
        for ids in self.apps.values():
            if channel_id in ids:
                ids.remove(channel_id)

    def execute_moves(self) -> None:
        """Asterisk runs each pending move, except on a channel still playing."""
        waiting = [(c, a) for c, a in self._pending if c in self.playing]
        for channel_id, app in [(c, a) for c, a in self._pending if c not in self.playing]:
            for ids in self.apps.values():
                if channel_id in ids:
                    ids.remove(channel_id)
            self.apps.setdefault(app, []).append(channel_id)
        self._pending = waiting


async def args_of(channel_id: str) -> tuple[str, ...]:
    if channel_id.startswith("esc-"):
        return ()
    return ("citas", f"sip-{channel_id}")


def adopter(tmp_path: Path, ari: FakeAri, count: int, own: int) -> OrphanAdopter:
    slots = Slots(tmp_path, count)
    lock = slots.lock(own)
    assert lock.try_acquire()
    return OrphanAdopter(slots, lock, ari, APP, args_of, poll=0.01)  # type: ignore[arg-type]


@pytest.mark.parametrize(("count", "own", "dead"), [(2, 1, 2), (2, 2, 1), (3, 1, 3), (4, 3, 2)])
async def test_a_dead_slots_channels_are_moved_once_and_the_slot_released_when_they_left(
    tmp_path: Path, holders: list[Holder], count: int, own: int, dead: int
) -> None:
    # Every other slot has a living owner except `dead`.
    for slot in range(1, count + 1):
        if slot not in (own, dead):
            holders.append(Holder(tmp_path, count, slot))
    dead_app = slot_app(APP, dead)
    ari = FakeAri({dead_app: ["c1", "c2"], **{slot_app(APP, s): [f"live-{s}"]
                                             for s in range(1, count + 1) if s != dead}})  # fmt: skip
    a = adopter(tmp_path, ari, count, own)

    assert await a.sweep() == 2
    assert sorted(ari.moves) == [
        (c, slot_app(APP, own), ("citas", f"sip-{c}", ADOPTED_ARG)) for c in ("c1", "c2")
    ]
    # Moves pending (the dead controller's prompts still play): held, nothing moved twice.
    assert not Slots(tmp_path, count).lock(dead).try_acquire()
    assert await a.sweep() == 0 and len(ari.moves) == 2
    # The moves ran: the slot is free for a restarted owner.
    ari.execute_moves()
    await a.sweep()
    restarted = Slots(tmp_path, count).lock(dead)
    assert restarted.try_acquire()
    restarted.release()
    assert a.adopted == 2
    # Living owners' channels were never touched.
    assert {c for c, _, _ in ari.moves} == {"c1", "c2"}


async def test_a_channel_arriving_in_a_dead_slot_later_is_moved_too(tmp_path: Path) -> None:
    ari = FakeAri({APP: [], slot_app(APP, 2): ["c1"]})
    a = adopter(tmp_path, ari, 2, 1)

    await a.sweep()
    ari.execute_moves()
    ari.apps[slot_app(APP, 2)].append("c9")  # entered Stasis before Asterisk saw the death
    await a.sweep()

    assert [c for c, _, _ in ari.moves] == ["c1", "c9"]


async def test_an_escalation_call_in_a_dead_slot_is_hung_up_not_sent_to_the_agents(
    tmp_path: Path,
) -> None:
    ari = FakeAri({APP: [], slot_app(APP, 2): ["esc-1", "c1"]})
    a = adopter(tmp_path, ari, 2, 1)

    assert await a.sweep() == 1
    assert ari.hung_up == ["esc-1"] and [c for c, _, _ in ari.moves] == ["c1"]


async def test_a_never_registered_slot_is_released_at_once(tmp_path: Path) -> None:
    ari = FakeAri({APP: []})  # slot 2's app unknown to Asterisk: 404
    a = adopter(tmp_path, ari, 2, 1)

    assert await a.sweep() == 0
    other = Slots(tmp_path, 2).lock(2)
    assert other.try_acquire()
    other.release()


async def test_a_slot_still_held_by_a_living_owner_is_left_alone(
    tmp_path: Path, holders: list[Holder]
) -> None:
    holders.append(Holder(tmp_path, 2, 2))
    ari = FakeAri({APP: [], slot_app(APP, 2): ["c1"]})
    a = adopter(tmp_path, ari, 2, 1)

    assert await a.sweep() == 0 and ari.moves == []
    holders[0].kill()
    assert await a.sweep() == 1


@pytest.mark.parametrize("prompt_number", [0, 1, 7, 8, 13])
async def test_the_prompt_a_dead_controller_left_playing_is_stopped_so_the_move_runs_now(
    tmp_path: Path, prompt_number: int
) -> None:
    # Observed: adopted callers waited for the dead worker's promo to end (5-9 s)
    # before their move ran. Whichever prompt of the call was playing, its id is one
    # of playback_ids(channel) and the adopter stops it.
    from ivr.ari.playbacks import playback_id_of, playback_ids

    ari = FakeAri(
        {APP: ["live"], slot_app(APP, 2): ["c1"]},
        playing={"c1": playback_id_of("c1", prompt_number), "live": playback_id_of("live", 0)},
    )
    a = adopter(tmp_path, ari, 2, 1)

    assert await a.sweep() == 1
    assert ari.stopped == [playback_id_of("c1", prompt_number)]
    assert playback_id_of("c1", prompt_number) in playback_ids("c1")
    ari.execute_moves()
    assert ari.apps[APP] == ["live", "c1"]  # moved now, not after the prompt
    assert ari.playing == {"live": playback_id_of("live", 0)}  # a living call's untouched
