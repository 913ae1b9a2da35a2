"""``decide``: pick the next node by a call variable, or by a live operations flag.

YAML: ``variable`` or ``flag`` (exactly one), ``cases`` (value -> node),
``default``. A flag is read at the moment the call reaches the node, so a
change applies to the next decision; booleans compare as ``"true"``/``"false"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ivr.flow.model import Node, decision_value
from ivr.yamlsrc import Located

if TYPE_CHECKING:
    from ivr.flow.fields import Builder, Fields
    from ivr.flow.model import CallState, Engine


@dataclass(frozen=True)
class DecideNode(Node):
    """Picks the next node by a call variable, or by a live operations flag."""

    variable: str
    cases: Mapping[str, str]
    default: str
    flag: str | None = None  # when set, the value comes from this flag, not a variable

    kind: ClassVar[str] = "decide"

    @classmethod
    def build(cls, node_id: str, f: Fields, loader: Builder) -> DecideNode:
        cases: Located = f.get("cases", Located)
        return cls(
            node_id,
            f.data.line,
            f.get("variable", str, None) or "",
            {str(k): str(v) for k, v in cases.items()},
            f.get("default", str),
            f.get("flag", str, None, check=loader.known_flag),
        )

    def own_targets(self) -> list[tuple[str, str]]:
        return [(f"cases.{k}", v) for k, v in self.cases.items()] + [("default", self.default)]

    async def run(self, engine: Engine, state: CallState) -> str | None:
        if self.flag is not None:
            value = decision_value(engine.flags(self.flag))
            target = self.cases.get(value, self.default)
            state.record.step("decision", flag=self.flag, value=value, next=target)
            return target
        value = decision_value(state.variables.get(self.variable))
        target = self.cases.get(value, self.default)
        state.record.step("decision", variable=self.variable, value=value, next=target)
        return target
