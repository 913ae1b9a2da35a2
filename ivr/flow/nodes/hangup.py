"""``hangup``: say the last prompts (not interruptible), then end the call.

YAML: ``outcome`` (the call record's), ``prompt``. Without ``outcome`` the one
an action set earlier stands (``call_served`` before a survey: a caller who hung
up during it was served), else ``completed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ivr.flow.model import Node, PromptPart

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine


@dataclass(frozen=True)
class HangupNode(Node):
    outcome: str | None = None
    prompts: tuple[PromptPart, ...] = ()

    kind: ClassVar[str] = "hangup"
    ends: ClassVar[bool] = True

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> HangupNode:
        return cls(
            node_id,
            f.data.line,
            f.get("outcome", str, None),
            loader.parts(f, "prompt", required=False),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return []

    async def run(self, engine: Engine, state: CallState) -> str | None:
        # Said before the outcome is set: a caller who leaves during it abandoned the
        # call. A play node before may have said it already, in its own media list.
        if state.said_ahead == self.id:
            state.said_ahead = None
        else:
            await engine.say(state, self.prompts, interruptible=False)
        outcome = self.outcome or state.record.outcome or "completed"
        state.record.outcome = outcome
        state.record.step("hangup", outcome=outcome)
        await state.channel.end(())
        return None
