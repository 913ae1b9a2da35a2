"""The controller's reaction time: a DTMF event in, the next ARI command out.

``VoiceChannel`` tells the timer when a key arrives for a channel
(``dtmf_received``) and when it issues an ARI request for that channel
(``command_sent``). Two samples come out of one key press:

- ``reaction``: key → the first request for that channel, whatever it is
  (for a barge-in, stopping the prompt);
- ``response``: key → the first request that makes the caller hear or go
  somewhere (a new prompt, a continue to the dialplan, a hang-up), which
  includes the flow's own work in between (lookups, the database).

Keys the call ignores (typed during a prompt without barge-in) and keys
followed by a digit timeout are dropped with ``discard``, so a sample never
contains a prompt's length or a timeout.

The timer does nothing unless ``CITAS_REACTION_LOG=<path>`` is set (each
sample becomes a JSON line there, for ``ivr bench``) or an observer is set
(a callback given each reaction in seconds, e.g. a metrics histogram).

The log is the bench's measuring instrument, so it costs the loop as little as
it can: samples are kept in memory and a thread of the timer's own appends them
every ``FLUSH_EVERY_S`` (and at ``close``), whole lines in one ``write`` on an
``O_APPEND`` file, so several controllers share one log without a line cut in
two. Before, each sample was a line-buffered write on the loop (run d1: 3.9 %
of a busy citas controller's loop, three keys a call, two samples a key).

>>> seen: list[float] = []
>>> timer = ReactionTimer(observer=seen.append, clock=iter([1.0, 1.25]).__next__)
>>> timer.dtmf_received("chan-1")
>>> timer.command_sent("chan-1", "stop playback")
>>> seen
[0.25]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

ENV_VAR = "CITAS_REACTION_LOG"
# Commands after which the caller hears something new or leaves the IVR.
RESPONSE_COMMANDS = frozenset({"play", "continue", "hangup"})
# Keys whose channel never issues a command again (hung up) are pruned.
MAX_PENDING = 4096
STALE_S = 120.0
# The log's samples are appended at most this late (s); the bench reads a step's
# samples after its calls have ended, seconds after the last judged one.
FLUSH_EVERY_S = 0.5

Observer = Callable[[float], None]


class ReactionTimer:
    def __init__(
        self,
        log_path: Path | None = None,
        *,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self._lines: list[str] = []  # samples not yet appended
        self._stop_flusher: threading.Event | None = None  # set: the flusher thread ends
        self._observer = observer
        self._clock = clock
        self._lock = threading.Lock()
        # channel id -> (when the key arrived, Asterisk's event time as epoch seconds)
        self._first: dict[str, tuple[float, float | None]] = {}
        self._response: dict[str, tuple[float, float | None]] = {}
        self.enabled = log_path is not None or observer is not None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, observer: Observer | None = None
    ) -> ReactionTimer:
        raw = (os.environ if env is None else env).get(ENV_VAR, "")
        return cls(Path(raw) if raw else None, observer=observer)

    def set_observer(self, observer: Observer | None) -> None:
        """Give each reaction (seconds) to ``observer`` too (None: stop)."""
        self._observer = observer
        self.enabled = self._log_path is not None or observer is not None

    def dtmf_received(self, channel_id: str, asterisk_timestamp: str | None = None) -> None:
        """A key arrived for ``channel_id`` (the latest key wins)."""
        if not self.enabled:
            return
        now = self._clock()
        sent_at = _epoch(asterisk_timestamp) if asterisk_timestamp else None
        if len(self._first) > MAX_PENDING or len(self._response) > MAX_PENDING:
            self._prune(now)
        self._first[channel_id] = (now, sent_at)
        self._response[channel_id] = (now, sent_at)

    def discard(self, channel_id: str) -> None:
        """The key was ignored or a timeout follows it: no sample."""
        if not self.enabled:
            return
        self._first.pop(channel_id, None)
        self._response.pop(channel_id, None)

    def command_sent(self, channel_id: str, command: str = "") -> None:
        """An ARI request for ``channel_id`` is about to go out."""
        if not self.enabled:
            return
        first = self._first.pop(channel_id, None)
        response = self._response.pop(channel_id, None) if command in RESPONSE_COMMANDS else None
        if first is None and response is None:
            return
        now = self._clock()
        wall = time.time()
        if first is not None:
            elapsed = now - first[0]
            self._write("reaction", channel_id, command, elapsed, first[1], wall)
            if self._observer is not None:
                try:
                    self._observer(elapsed)
                except Exception:  # a metrics bug must never cost a call
                    logger.exception("reaction observer failed")
        if response is not None:
            self._write("response", channel_id, command, now - response[0], response[1], wall)

    def close(self) -> None:
        """Append what is pending and close the log (the flusher thread ends; a later
        sample opens it again)."""
        with self._lock:
            self._end_flusher()
            self._flush()
            if self._log is not None:
                self._log.close()
                self._log = None

    def _write(
        self,
        kind: str,
        channel_id: str,
        command: str,
        elapsed: float,
        sent_at: float | None,
        wall: float,
    ) -> None:
        if self._log_path is None:
            return
        sample: dict[str, object] = {
            "t": round(wall, 4),
            "kind": kind,
            "channel": channel_id,
            "command": command,
            "ms": round(elapsed * 1000, 3),
        }
        if sent_at is not None:
            # From Asterisk stamping the event (1 ms resolution, same host clock):
            # adds the websocket hop and the controller's queueing to ``ms``.
            sample["from_asterisk_ms"] = round((wall - sent_at) * 1000, 1)
        line = json.dumps(sample, separators=(",", ":")) + "\n"
        with self._lock:
            if self._log_path is None:  # given up meanwhile (by the flusher)
                return
            if self._log is None:  # opened here: an unusable path is known at once
                try:
                    self._log_path.parent.mkdir(parents=True, exist_ok=True)
                    self._log = self._log_path.open("ab", buffering=0)
                except OSError as exc:
                    self._give_up(exc)
                    return
            if self._stop_flusher is None:  # the first sample since the start or a close
                self._stop_flusher = threading.Event()
                threading.Thread(
                    target=self._flush_every, args=(self._stop_flusher,),
                    name="reaction-log", daemon=True,
                ).start()  # fmt: skip
            self._lines.append(line)

    def _flush_every(self, stop: threading.Event) -> None:
        while not stop.wait(FLUSH_EVERY_S):
            with self._lock:
                self._flush()

    def _flush(self) -> None:
        """Append the pending samples, under ``_lock``: one ``write`` of whole lines."""
        if not self._lines or self._log is None or self._log_path is None:
            return
        data = memoryview("".join(self._lines).encode("utf-8"))
        self._lines.clear()
        try:
            while data:  # unbuffered: a short write (a full disk) leaves the rest
                written = self._log.write(data)
                if not written:
                    raise OSError("the reaction log takes no more bytes")
                data = data[written:]
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        logger.warning("reaction log %s: %s; no more samples", self._log_path, exc)
        self._log_path = None
        self._lines.clear()
        self.enabled = self._observer is not None
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        self._end_flusher()

    def _end_flusher(self) -> None:
        """The flusher thread ends at its next wake-up; the next sample starts another."""
        if self._stop_flusher is not None:
            self._stop_flusher.set()
            self._stop_flusher = None

    def _prune(self, now: float) -> None:
        for table in (self._first, self._response):
            for channel_id in [c for c, (at, _) in table.items() if now - at > STALE_S]:
                del table[channel_id]


def _epoch(timestamp: str) -> float | None:
    """Asterisk's ``2024-01-01T12:00:00.123+0000`` as epoch seconds (``fromisoformat``
    takes it from Python 3.11 on: 0.4 µs against ``strptime``'s 11-17, once per key);
    None for what is not a date and time with its offset (a naive one would be read
    as this machine's local time)."""
    try:
        stamp = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None
