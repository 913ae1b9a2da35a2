"""A ladder's call as the monitor orders it, and how it ended (``ivr.escalation.call``
places it over ARI; the unit tests give the monitor a scripted stand-in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ivr.escalation.summary import Summary

# Every escalation channel's id starts so (the controller's reconcile tells them
# from callers by it: an orphan escalation call is hung up, never sent to agents).
CHANNEL_PREFIX = "esc-"


@dataclass(frozen=True)
class CallOrder:
    """One call of the ladder: the attempt row's id, whom to call, what to say."""

    attempt_id: str
    case_number: str
    clock: str
    step: int
    person: str
    extension: str
    summary: Summary

    @property
    def channel_id(self) -> str:
        """The Asterisk channel id the call is originated with (ours, so the
        attempt row names it before the call exists)."""
        return f"{CHANNEL_PREFIX}{self.attempt_id}"


@dataclass(frozen=True)
class CallOutcome:
    """How a call ended: ``result`` (``escalation_attempts.result``), when it was
    answered and acknowledged (None if not), and a ``detail`` for the log
    (the hang-up cause of an unanswered call)."""

    result: str
    answered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    detail: str = ""


class EscalationCalls(Protocol):
    """Places a ladder's call and says how it ended (``ivr.escalation.call``);
    never raises for a call that failed: that is an outcome (``failed``)."""

    async def place(self, order: CallOrder) -> CallOutcome: ...
