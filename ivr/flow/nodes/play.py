"""``play``: say prompts, then go on to ``next``.

YAML: ``prompt`` (one part or a list), ``next``, ``barge_in`` (voice: a key
stops the prompt and is kept for the next question; default false).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ivr.flow.model import Node, PromptPart

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
        await engine.say(state, self.prompts, interruptible=self.barge_in)
        return self.next
