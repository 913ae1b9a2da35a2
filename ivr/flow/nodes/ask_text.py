"""``ask_text``: ask for free text (an e-mail address) into a variable; chat only.

YAML: ``prompt``, ``save_as``, ``next``, ``on_failure``, ``format`` (what the
answer must be: ``email``, one address by ``ivr.contact_email``'s rule; the
variable gets it normalised), ``retries``, ``no_input_prompt``,
``invalid_prompt``, and ``channels: [chat]`` with ``skip_to`` (required: a
keypad types no address, ``Node.only_on``). The variable ``save_as`` (and the
call record, and a conversation's stored variables) holds the answer masked
(``ivr.masking.mask_email``); ``_<save_as>`` holds it whole for the action that
uses it in the same turn, and like every ``_`` variable is never stored. Keys typed ahead do not exist on a chat, so the node
counts as ``type_ahead: false`` for the commit rule (``ivr.flow.model``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ivr.channel import ChannelError, DigitResult, TextQuestions, TextRequest
from ivr.contact_email import normalize_email
from ivr.flow.model import Node, PromptPart, Timeouts, targets
from ivr.flow.nodes.asking import ask_until_answered
from ivr.masking import mask_email

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine

# format -> (the check: the value kept, or None to refuse; how the record shows it)
FORMATS: dict[str, tuple[Callable[[str], str | None], Callable[[str], str]]] = {
    "email": (normalize_email, mask_email),
}


def _known_format(value: str) -> str | None:
    return None if value in FORMATS else f"unknown format; known: {', '.join(sorted(FORMATS))}"


@dataclass(frozen=True)
class AskTextNode(Node):
    prompts: tuple[PromptPart, ...]
    next: str
    on_failure: str
    save_as: str
    format: str = "email"
    retries: int = 2
    no_input_prompts: tuple[PromptPart, ...] = ()
    invalid_prompts: tuple[PromptPart, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)  # unused: a chat has no timeouts

    kind: ClassVar[str] = "ask_text"
    asks: ClassVar[bool] = True
    only_on: ClassVar[tuple[str, ...]] = ("chat",)
    type_ahead: ClassVar[bool] = False

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> AskTextNode:
        return cls(
            node_id,
            f.data.line,
            loader.parts(f, "prompt"),
            f.get("next", str),
            f.get("on_failure", str),
            f.get("save_as", str),
            f.get("format", str, "email", check=_known_format),
            f.get("retries", int, 2),
            loader.parts(f, "no_input_prompt", required=False),
            loader.parts(f, "invalid_prompt", required=False),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]

    def silent_targets(self) -> list[tuple[str, str]]:
        return [(name, t) for name, t in targets(self) if name != "next"]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        channel = state.channel
        if not isinstance(channel, TextQuestions):
            # The loader keeps the kind on chat: only a channel without text gets here.
            raise ChannelError(f"node {self.id}: the {channel.kind} channel takes no text")
        check, shown = FORMATS[self.format]
        request = TextRequest()

        def accept(result: DigitResult) -> str | None:
            value = check(result.digits) if result.digits else None
            if value is None:
                return None
            state.variables[f"_{self.save_as}"] = value
            state.set(self.save_as, shown(value))
            return self.next

        return await ask_until_answered(
            engine,
            state,
            self,
            lambda prompt: channel.ask_text(prompt, request),
            accept,
            shown=shown,
        )
