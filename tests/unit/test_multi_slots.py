"""Controller slots (ivr.multi.slots): real flock locks held by real processes.

The kind: a slot must be owned by exactly one living process, and free the
instant its owner dies (SIGKILL included), so the adopter and a restarted
owner can take it. Tested over 1-4 slots with the owner killed at each.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.multi.slots import SlotLock, Slots, slot_app, slots_dir
from ivr.settings import Settings
from tests.unit.slotholder import Holder, holding


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    with holding() as made:
        yield made



@pytest.mark.parametrize(
    ("slot", "app"), [(1, "citas-ivr"), (2, "citas-ivr-2"), (3, "citas-ivr-3"), (64, "citas-ivr-64")]
)
def test_slot_1_is_the_app_name_and_the_others_carry_their_number(slot: int, app: str) -> None:
    assert slot_app("citas-ivr", slot) == app


@pytest.mark.parametrize("slot", [0, -1])
def test_there_is_no_slot_below_1(slot: int) -> None:
    with pytest.raises(ValueError, match="slot"):
        slot_app("citas-ivr", slot)


def test_the_locks_live_in_the_instance_state_dir(tmp_path: Path) -> None:
    s = Settings.from_env({"CITAS_STATE_DIR": str(tmp_path), "CITAS_INSTANCE": "x",
                           "CITAS_CONTROLLERS": "3"})  # fmt: skip
    slots = Slots.of(s)

    assert slots_dir(s) == tmp_path / "x" / "controllers"
    assert (slots.directory, slots.count) == (tmp_path / "x" / "controllers", 3)
    assert slots.lock(3).path == tmp_path / "x" / "controllers" / "slot-3.lock"
    with pytest.raises(ValueError, match="slot 4"):
        slots.lock(4)


def test_two_lock_objects_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    slots = Slots(tmp_path, 2)
    first, second = slots.lock(1), slots.lock(1)

    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.owner_pid() == os.getpid()
    first.release()
    assert second.try_acquire()
    second.release()


def test_an_adopters_brief_hold_does_not_write_its_pid(tmp_path: Path) -> None:
    slots = Slots(tmp_path, 2)
    owner = slots.lock(2)
    assert owner.try_acquire()
    owner.release()
    (tmp_path / "slot-2.lock").write_text("12345\n")

    adopter = slots.lock(2)
    assert adopter.try_acquire(owner=False)
    assert adopter.owner_pid() == 12345
    adopter.release()


@pytest.mark.parametrize(("count", "slot"), [(1, 1), (2, 1), (2, 2), (3, 2), (4, 4)])
def test_a_slot_held_by_another_process_frees_the_instant_it_is_killed(
    tmp_path: Path, holders: list[Holder], count: int, slot: int
) -> None:
    slots = Slots(tmp_path, count)
    holders.append(Holder(tmp_path, count, slot))
    lock = slots.lock(slot)
    assert not lock.try_acquire()
    assert lock.owner_pid() == holders[0].proc.pid

    reaped = holders[0].kill()
    assert lock.try_acquire()  # no retry needed: the kernel released it with the process
    print(f"\nslot {slot}/{count} taken {1000 * (time.monotonic() - reaped):.2f} ms after the reap")
    lock.release()


def test_claim_takes_the_first_free_candidate_and_none_when_all_are_held(
    tmp_path: Path, holders: list[Holder]
) -> None:
    slots = Slots(tmp_path, 3)
    holders.append(Holder(tmp_path, 3, 2))

    got = slots.claim([2, 3])
    assert got is not None and got.slot == 3
    assert slots.claim([2, 3]) is None
    got.release()


async def test_a_standby_takes_the_slot_when_its_owner_dies(
    tmp_path: Path, holders: list[Holder]
) -> None:
    slots = Slots(tmp_path, 2)
    holders.append(Holder(tmp_path, 2, 2))
    waiting = asyncio.ensure_future(slots.wait_claim([2], poll=0.02))
    await asyncio.sleep(0.1)
    assert not waiting.done()

    holders[0].kill()
    lock: SlotLock = await asyncio.wait_for(waiting, 2.0)
    assert lock.slot == 2 and lock.held and lock.owner_pid() == os.getpid()
    lock.release()
