"""``transfer``: hand the person to the agents (voice: the line's agent context at a
VDN, with the line's channel variables; chat: the agents' queue).

YAML: ``reason`` (carried to the agent), ``prompt`` (said first, not
interruptible), ``vdn`` (else the ``agent_vdn`` variable an action chose, else
the flow's ``agent_vdn``, else the engine's default). The hand-off's context is
the call's ``segment`` (``unknown`` when not set), ``affiliate_id`` and ``cups``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ivr.channel import HandOff
from ivr.flow.model import Node, PromptPart

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine

# The hand-off context: key -> the call variable it comes from.
CONTEXT_VARIABLES = {"affiliate": "affiliate_id", "cups": "cups"}


@dataclass(frozen=True)
class TransferNode(Node):
    reason: str
    prompts: tuple[PromptPart, ...] = ()
    vdn: str | None = None

    kind: ClassVar[str] = "transfer"
    ends: ClassVar[bool] = True

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> TransferNode:
        return cls(
            node_id,
            f.data.line,
            f.get("reason", str),
            loader.parts(f, "prompt", required=False),
            f.get("vdn", str, None),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return []

    async def run(self, engine: Engine, state: CallState) -> str | None:
        variables = state.variables
        vdn = self.vdn or str(
            variables.get("agent_vdn") or state.flow.agent_vdn or engine.default_vdn
        )
        await engine.say(state, self.prompts, interruptible=False)
        context = {"segment": str(variables.get("segment", "unknown"))}
        context |= {
            key: str(variables[name])
            for key, name in CONTEXT_VARIABLES.items()
            if variables.get(name)
        }
        state.record.outcome = "transferred"
        state.record.step("transfer", vdn=vdn, reason=self.reason)
        # The agent's screen pop reads this record when the agent answers: written first.
        await state.record.checkpoint()
        await state.channel.hand_off(HandOff(vdn, self.reason, context))
        return None
