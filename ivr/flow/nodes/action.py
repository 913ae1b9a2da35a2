"""``action``: run a named action (Python) whose outcome picks the next node.

YAML: ``action`` (a name the line registers), ``outcomes`` (outcome -> node;
only outcomes the action can return), ``on_failure`` (the action raised
``ActionFailed``, or returned an outcome the flow does not map), ``params``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ivr.flow.model import ActionFailed, Node
from ivr.yamlsrc import ConfigError, Located

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionNode(Node):
    """Runs a named action (Python) whose result picks the next node."""

    action: str
    outcomes: Mapping[str, str]
    on_failure: str
    params: Mapping[str, object] = field(default_factory=dict)

    kind: ClassVar[str] = "action"

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> ActionNode:
        action = f.get("action", str)
        if action not in loader.actions:
            raise f.error(
                "action", f"unknown action {action!r}; known: {', '.join(sorted(loader.actions))}"
            )
        outcomes: Located = f.get("outcomes", Located)
        for key in outcomes:
            if key not in loader.actions[action]:
                raise ConfigError(
                    f.data.file,
                    outcomes.line_of(key),
                    f"{f.where}.outcomes.{key}",
                    f"action {action} has no such outcome; it returns: "
                    f"{', '.join(sorted(loader.actions[action]))}",
                )
        return cls(
            node_id,
            f.data.line,
            action,
            {str(k): str(v) for k, v in outcomes.items()},
            f.get("on_failure", str),
            dict(f.get("params", Located, Located())),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [(f"outcomes.{k}", v) for k, v in self.outcomes.items()] + [
            ("on_failure", self.on_failure)
        ]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        action = engine.actions[self.action]
        try:
            outcome = await action(state, self.params)
        except ActionFailed as exc:
            state.record.step("action", action=self.action, outcome="failed", error=str(exc))
            logger.warning("call %s: action %s failed: %s", state.channel.call_id, self.action, exc)
            return self.on_failure
        target = self.outcomes.get(outcome, self.on_failure)
        state.record.step("action", action=self.action, outcome=outcome, next=target)
        return target
