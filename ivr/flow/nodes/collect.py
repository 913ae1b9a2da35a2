"""``collect``: ask for digits (a document number) into a variable.

YAML: ``prompt``, ``save_as``, ``next``, ``on_failure``, ``min_digits``,
``max_digits``, ``terminator`` (``#``/``*``), ``timeouts``, ``retries``,
``no_input_prompt``, ``invalid_prompt``, ``sensitive`` (kept off the call
record, masked in its digits step), ``type_ahead`` (``ivr.flow.model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ivr.channel import DigitRequest, DigitResult
from ivr.flow.model import Node, PromptPart, Timeouts, targets
from ivr.flow.nodes.asking import ask_until_answered
from ivr.yamlsrc import Located

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine


@dataclass(frozen=True)
class CollectNode(Node):
    prompts: tuple[PromptPart, ...]
    next: str
    on_failure: str
    save_as: str
    min_digits: int = 1
    max_digits: int = 1
    terminator: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 2
    no_input_prompts: tuple[PromptPart, ...] = ()
    invalid_prompts: tuple[PromptPart, ...] = ()
    sensitive: bool = False  # a document number: recorded masked
    type_ahead: bool = True  # keys pressed before its prompt answer it (ivr.flow.model)

    kind: ClassVar[str] = "collect"
    asks: ClassVar[bool] = True

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> CollectNode:
        max_digits = f.get("max_digits", int, 1)
        return cls(
            node_id,
            f.data.line,
            loader.parts(f, "prompt"),
            f.get("next", str),
            f.get("on_failure", str),
            f.get("save_as", str),
            f.get(
                "min_digits",
                int,
                1,
                check=lambda v: None if 1 <= v <= max_digits else f"must be 1-{max_digits}",
            ),
            max_digits,
            f.get("terminator", str, None),
            loader.timeouts(f.get("timeouts", Located, None)),
            f.get("retries", int, 2),
            loader.parts(f, "no_input_prompt", required=False),
            loader.parts(f, "invalid_prompt", required=False),
            f.get("sensitive", bool, False),
            f.get("type_ahead", bool, True),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]

    def silent_targets(self) -> list[tuple[str, str]]:
        return [(name, t) for name, t in targets(self) if name != "next"]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        request = DigitRequest(
            max_digits=self.max_digits,
            min_digits=self.min_digits,
            terminator=self.terminator,
            first_digit_timeout=self.timeouts.first_digit,
            between_digits_timeout=self.timeouts.between_digits,
            total_timeout=self.timeouts.total,
        )

        def accept(result: DigitResult) -> str | None:
            digits = result.digits
            if not (self.min_digits <= len(digits) <= self.max_digits and digits.isdigit()):
                return None
            if self.sensitive:
                state.variables[self.save_as] = digits  # kept off the record
            else:
                state.set(self.save_as, digits)
            return self.next

        return await ask_until_answered(
            engine,
            state,
            self,
            lambda prompt: state.channel.ask(prompt, request),
            accept,
            sensitive=self.sensitive,
        )
