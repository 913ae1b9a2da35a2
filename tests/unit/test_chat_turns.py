"""One contact's burst handled by two real OS processes (issue 10 §4): each message
exactly once, in Meta-timestamp order, never two at the same time; on SQLite
and on PostgreSQL (``db`` runs the test on each)."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ivr.chat.store import ConversationStore
from ivr.chat.tables import ChatInboundRow, ChatOutboundRow
from ivr.store.db import Database

ROOT = Path(__file__).resolve().parents[2]
BURST = 20
WA_ID = "573001234567"
T0 = 1_790_000_000  # a Meta timestamp (seconds)


def spawn(spec: dict[str, Any], path: Path) -> subprocess.Popen[bytes]:
    path.write_text(json.dumps(spec))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.chat_turn_worker", str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_files(paths: list[Path], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None and proc.returncode != 0:
                _, err = proc.communicate()
                raise AssertionError(f"worker failed: {err.decode()[-2000:]}")
        assert time.monotonic() < deadline, "workers not ready in time"
        time.sleep(0.01)


async def test_two_processes_handle_one_contacts_burst_once_in_order_never_together(
    db: Database, tmp_path: Path
) -> None:
    # Meta timestamps 0..19 s apart; each process receives all twenty (Meta's
    # retries reach both) in its own shuffled order.
    messages = [(f"wamid.burst{i:02d}", T0 + i) for i in range(BURST)]
    expected = [m for m, _ in messages]
    procs, ready, outs = [], [], []
    go = tmp_path / "go"
    for n in range(2):
        arrival = list(messages)
        random.Random(n).shuffle(arrival)
        ready.append(tmp_path / f"ready{n}")
        outs.append(tmp_path / f"out{n}.jsonl")
        spec = {"url": db.url, "wa_id": WA_ID, "messages": arrival, "ready": str(ready[-1]),
                "go": str(go), "out": str(outs[-1]), "hold_s": 0.03, "limit": 2}  # fmt: skip
        procs.append(spawn(spec, tmp_path / f"spec{n}.json"))
    try:
        wait_files(ready, procs, 60)
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    lines = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
    handled = sorted((r for r in lines if "message_id" in r), key=lambda r: r["start"])
    # Exactly once and in Meta-timestamp order, though both received all in shuffled orders.
    assert [r["message_id"] for r in handled] == expected
    # Never two at the same time: each one ends before the next one starts.
    for before, after in itertools.pairwise(handled):
        assert before["end"] <= after["start"], (before, after)
    # Both processes took turns (the lock was contended, not just uncontested).
    assert len({r["pid"] for r in handled}) == 2
    # Each message stored once: the two processes stored twenty between them.
    assert sum(r["new"] for r in lines if "new" in r) == BURST

    store = ConversationStore(db, flow="citas")
    conversation = await store.conversation(WA_ID)
    assert conversation is not None
    # No lost update: every turn read what the previous one wrote.
    assert conversation.variables["seen"] == expected
    assert conversation.last_inbound_at is not None
    assert int(conversation.last_inbound_at.timestamp()) == T0 + BURST - 1
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChatInboundRow)) == BURST
        pending = select(func.count()).where(ChatInboundRow.processed_at.is_(None))
        assert await session.scalar(pending) == 0
        keys = list(await session.scalars(select(ChatOutboundRow.key).order_by(ChatOutboundRow.id)))
    assert keys == [f"reply:{m}" for m in expected]
