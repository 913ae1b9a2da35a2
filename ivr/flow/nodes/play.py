"""``play``: say prompts, then go on to ``next``.

YAML: ``prompt`` (one part or a list), ``next``, ``barge_in`` (voice: a key
stops the prompt and is kept for the next question; default false).

On a call, a ``play`` without barge-in whose ``next`` is a ``hangup`` with a prompt
says both in one media list: one ARI playback and one request fewer per call
(docs/perf/ari.md), with nothing to wait for in between. The hang-up then says
nothing again (``CallState.said_ahead``); a caller who leaves during its words
abandoned the call, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ivr.flow.model import Node, PromptPart
from ivr.flow.nodes.hangup import HangupNode

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine


@dataclass(frozen=True)
class PlayNode(Node):
    prompts: tuple[PromptPart, ...]
    next: str
    barge_in: bool = False

    kind: ClassVar[str] = "play"

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> PlayNode:
        return cls(
            node_id,
            f.data.line,
            loader.parts(f, "prompt"),
            f.get("next", str),
            f.get("barge_in", bool, False),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        ending = self._ending(state)
        if ending is None:
            await engine.say(state, self.prompts, interruptible=self.barge_in)
            return self.next
        await engine.say(state, (*self.prompts, *ending.prompts), interruptible=False)
        state.said_ahead = ending.id
        return self.next

    def _ending(self, state: CallState) -> HangupNode | None:
        """The hang-up node next, when its prompt can join this one's (a call, no
        barge-in, the node runs on calls and says something)."""
        kind = state.channel.kind
        if self.barge_in or kind != "voice":
            return None
        nxt = state.flow.node(self.next)
        if isinstance(nxt, HangupNode) and nxt.prompts and nxt.runs_on(kind):
            return nxt
        return None
