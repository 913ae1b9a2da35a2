"""One process of the two-process turn tests (tests/unit/test_chat_turns.py).

Usage: python -m tests.unit.chat_turn_worker SPEC.json

SPEC: {"url", "wa_id", "messages": [[message_id, unix_ts], ...] in this process's
arrival order, "ready": path, "go": path, "out": path, "hold_s", "limit"}.

Receives every message (the other process receives the same ones: Meta's
retries), says ready, waits for go, then takes turns until its contact has
nothing left. Each message handled is written to ``out`` as a JSON line
``{"message_id", "pid", "start", "end"}`` the moment it is handled (before the
turn commits, so a turn that rolled back would show as a second handling).
The last line is ``{"new": n}``: how many messages this process stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ivr.chat.store import ConversationStore, InboundMessage
from ivr.store.db import Database

DEADLINE_S = 60.0


def wait_for(path: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path}")
        time.sleep(0.005)


async def main(spec: dict[str, object]) -> None:
    db = Database(str(spec["url"]), timeout=10.0)
    store = ConversationStore(db, flow="citas", lock_timeout=30.0)
    wa_id = str(spec["wa_id"])
    out = str(spec["out"])
    hold = float(str(spec["hold_s"]))
    limit = int(str(spec["limit"]))
    new = 0
    try:
        messages = spec["messages"]
        assert isinstance(messages, list)
        for message_id, ts in messages:
            stored = await store.receive(
                InboundMessage(
                    message_id,
                    wa_id,
                    "text",
                    datetime.fromtimestamp(ts, UTC),
                    text=f"mensaje {message_id}",
                )
            )
            new += stored is not None
        os.close(os.open(str(spec["ready"]), os.O_CREAT | os.O_WRONLY, 0o600))
        await asyncio.to_thread(wait_for, str(spec["go"]))
        log = os.open(out, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            while True:
                async with store.turn(wa_id, limit=limit) as turn:
                    for message in turn.inbound:
                        start = time.time()
                        await asyncio.sleep(hold)
                        seen = list(turn.conversation.variables.get("seen", []))
                        turn.conversation.variables["seen"] = [*seen, message.message_id]
                        turn.queue_outbound(f"reply:{message.message_id}", {"text": "ok"})
                        record = {"message_id": message.message_id, "pid": os.getpid(),
                                  "start": start, "end": time.time()}  # fmt: skip
                        os.write(log, (json.dumps(record) + "\n").encode())
                    handled = len(turn.inbound)
                if not handled:
                    break
                await asyncio.sleep(0.06)  # longer than a waiter's poll: let the other in
            os.write(log, (json.dumps({"new": new}) + "\n").encode())
        finally:
            os.close(log)
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
