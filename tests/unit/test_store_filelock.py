"""The SQLite writers' turn across processes (ivr/store/filelock.py), with real processes."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.store.db import Database
from ivr.store.filelock import WriteLockFile

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_in_another_process(path: Path, seconds: float) -> subprocess.Popen[str]:
    """A child process holding ``path``'s lock for ``seconds``, returned once it holds it."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                             stdout=subprocess.PIPE, text=True, errors="replace")  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def ended(child: subprocess.Popen[str]) -> bool:
    """The holder exited cleanly (its pipe read and closed)."""
    child.communicate(timeout=5)
    return child.returncode == 0


def freed_within(path: Path, seconds: float) -> bool:
    """The lock comes free within ``seconds`` (polled from a thread that may not block the loop)."""
    end = time.monotonic() + seconds
    while not free(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def free(path: Path) -> bool:
    """Nobody holds the lock: a new description takes it at once."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


async def test_a_writer_waits_for_another_process_and_goes_the_moment_it_lets_go(
    tmp_path: Path,
) -> None:
    path = tmp_path / "citas.db.write-lock"
    child = hold_in_another_process(path, 0.5)
    lock = WriteLockFile(path)
    ticks = 0

    async def ticking() -> None:  # the event loop keeps serving while the writer waits
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    start = time.monotonic()
    async with lock.held():
        waited = time.monotonic() - start
        assert ended(child)
        assert not free(path)
    ticker.cancel()
    assert free(path)
    assert 0.3 <= waited < 2.0, waited
    assert ticks >= 20, ticks


async def test_two_holders_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    lock = WriteLockFile(tmp_path / "x.write-lock")
    inside: list[int] = []
    overlaps = 0

    async def one(k: int) -> None:
        nonlocal overlaps
        async with lock.held():
            inside.append(k)
            overlaps += len(inside) > 1
            await asyncio.sleep(0.02)
            inside.remove(k)

    await asyncio.gather(*(one(k) for k in range(5)))
    assert overlaps == 0


async def test_a_waiter_given_up_does_not_keep_the_lock_once_its_thread_gets_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "citas.db.write-lock"
    child = hold_in_another_process(path, 0.4)
    lock = WriteLockFile(path)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1), lock.held():
            pytest.fail("the lock was held by the other process")
    assert ended(child)
    assert await asyncio.to_thread(freed_within, path, 1.0)  # the abandoned thread lets it go
    async with asyncio.timeout(1), lock.held():  # and the next writer gets it
        assert not free(path)


async def test_the_database_takes_the_file_turn_for_a_file_and_none_in_memory(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'citas.db'}")
    lock_path = tmp_path / "citas.db.write-lock"
    try:
        async with db.write_turn():
            assert not free(lock_path)
        assert free(lock_path)
        # Another process holding it makes this process's writer wait.
        child = hold_in_another_process(lock_path, 0.3)
        start = time.monotonic()
        async with db.write_turn():
            assert time.monotonic() - start >= 0.15
        assert ended(child)
    finally:
        await db.close()
    memory = Database("sqlite+aiosqlite:///:memory:")
    try:
        async with memory.write_turn():
            pass
        assert memory._file_turn is None
    finally:
        await memory.close()


WAITER = """
import asyncio, sys
from pathlib import Path
from ivr.store.filelock import WriteLockFile

async def main():
    try:
        async with asyncio.timeout(0.2), WriteLockFile(Path(sys.argv[1])).held():
            print("got it", flush=True)
    except TimeoutError:
        print("gave up", flush=True)

asyncio.run(main())
"""


def test_a_waiter_still_blocked_in_flock_does_not_hold_up_the_process_exit(tmp_path: Path) -> None:
    path = tmp_path / "citas.db.write-lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held by this process for the whole test
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", WAITER, str(path)], capture_output=True,
                              text=True, errors="replace", timeout=20)  # fmt: skip
        assert done.returncode == 0 and done.stdout.strip() == "gave up", done
        assert time.monotonic() - start < 10
    finally:
        os.close(fd)


async def test_a_cancellation_that_lands_just_as_the_lock_comes_does_not_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: the thread got the lock and settle() handed it to the waiter, but the waiter's
    task was cancelled before it resumed (its deadline): nobody closed the description, and
    the file's lock was held for good by a writer that had given up."""
    path = tmp_path / "citas.db.write-lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[int]] = []
    plain = loop.create_future

    def future_that_cancels_its_waiter_when_done() -> asyncio.Future[object]:
        future = plain()
        if asyncio.current_task() is tasks[0]:  # the waiter's future, not this test's sleeps
            future.add_done_callback(lambda _: tasks[0].cancel())  # before the task's wake-up
        return future

    monkeypatch.setattr(loop, "create_future", future_that_cancels_its_waiter_when_done)
    tasks.append(asyncio.create_task(WriteLockFile(path)._acquire()))
    await asyncio.sleep(0.1)  # the waiter blocks in its thread
    monkeypatch.undo()
    os.close(holder)  # the lock comes: settle() gives it to the waiter, then the cancel lands
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await asyncio.to_thread(freed_within, path, 1.0)


def test_a_loop_closed_with_a_writer_waiting_leaves_no_lock_and_closes_nothing_twice(
    tmp_path: Path,
) -> None:
    """Review: the loop closed while a writer waited; the thread then got the lock. It
    closed the description itself, and the waiter's finaliser closed the same number again,
    by then another file's (a SQLite connection's, in a real process)."""
    import gc
    import warnings

    path = tmp_path / "citas.db.write-lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    loop = asyncio.new_event_loop()
    task = loop.create_task(WriteLockFile(path)._acquire())
    loop.run_until_complete(asyncio.sleep(0.1))  # the waiter blocks in its thread
    loop.close()  # with the waiter still in it (no asyncio.run to cancel it first)
    os.close(holder)
    assert freed_within(path, 1.0)  # the thread gets the lock, finds the loop closed, lets it go
    victim = os.open(tmp_path / "victim", os.O_RDWR | os.O_CREAT)  # may reuse the number
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Task was destroyed but it is pending"
        del task
        gc.collect()  # the waiter's coroutine is closed: it must not close `victim`
    os.fstat(victim)  # raises EBADF if it was closed behind our back
    os.close(victim)
