"""``menu``: offer options, one key each; the key pressed picks the next node.

YAML: ``prompt``, ``options`` (key -> node, or key -> ``{next: node, title:
prompt id}``: the title's chat text is what a chat shows for the option),
``on_failure``, ``timeouts``, ``retries``, ``no_input_prompt``,
``invalid_prompt``, ``save_as`` (the key pressed, into a variable),
``type_ahead`` (``ivr.flow.model``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ivr.channel import Choice, DigitRequest, DigitResult
from ivr.flow.model import Node, PromptPart, Timeouts, targets
from ivr.flow.nodes.asking import ask_until_answered
from ivr.yamlsrc import Located

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine


@dataclass(frozen=True)
class MenuOption:
    """Where a key goes, and the prompt id whose chat text titles it (None: no title;
    a chat then shows the prompt's own list of keys)."""

    next: str
    title: str | None = None


@dataclass(frozen=True)
class MenuNode(Node):
    prompts: tuple[PromptPart, ...]
    options: Mapping[str, MenuOption]
    on_failure: str
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 2
    no_input_prompts: tuple[PromptPart, ...] = ()
    invalid_prompts: tuple[PromptPart, ...] = ()
    save_as: str | None = None
    type_ahead: bool = True  # keys pressed before its prompt answer it (ivr.flow.model)

    kind: ClassVar[str] = "menu"
    asks: ClassVar[bool] = True

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> MenuNode:
        raw: Located = f.get("options", Located)
        options: dict[str, MenuOption] = {}
        for key, value in raw.items():
            if isinstance(value, str):
                options[str(key)] = MenuOption(value)
                continue
            title = value.get("title")
            if title is not None and title not in loader.prompt_ids:
                raise loader.error_at(
                    f,
                    ("options", key, "title"),
                    f"prompt {title!r} has no text in the prompt catalogue",
                )
            options[str(key)] = MenuOption(str(value["next"]), title)
        return cls(
            node_id,
            f.data.line,
            loader.parts(f, "prompt"),
            options,
            f.get("on_failure", str),
            loader.timeouts(f.get("timeouts", Located, None)),
            f.get("retries", int, 2),
            loader.parts(f, "no_input_prompt", required=False),
            loader.parts(f, "invalid_prompt", required=False),
            f.get("save_as", str, None),
            f.get("type_ahead", bool, True),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [(f"options.{k}", v.next) for k, v in self.options.items()] + [
            ("on_failure", self.on_failure)
        ]

    def silent_targets(self) -> list[tuple[str, str]]:
        return [(name, t) for name, t in targets(self) if not name.startswith("options.")]

    def choices(self, engine: Engine) -> list[Choice]:
        """The options as the channel offers them (titles in the engine's catalogue)."""
        return [
            Choice(key, engine.title(option.title) if option.title else "")
            for key, option in self.options.items()
        ]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        request = DigitRequest(
            max_digits=1,
            first_digit_timeout=self.timeouts.first_digit,
            between_digits_timeout=self.timeouts.between_digits,
            total_timeout=self.timeouts.total,
        )
        choices = self.choices(engine)

        def accept(result: DigitResult) -> str | None:
            option = self.options.get(result.digits)
            if option is None:
                return None
            if self.save_as:
                state.set(self.save_as, result.digits)
            return option.next

        return await ask_until_answered(
            engine,
            state,
            self,
            lambda prompt: state.channel.choose(prompt, choices, request),
            accept,
        )
