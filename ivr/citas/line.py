"""The citas line as the platform sees it (``ivr.line.Line``): what it registers.

>>> line = CitasLine(load_reference())
>>> line.name, line.voice.sound("welcome"), line.default_vdn
('citas', 'sound:citas/welcome', '5550001')
>>> "book_slot" in line.commits and "book_slot" in line.action_outcomes
True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.citas.actions import COMMITS, OUTCOMES
from ivr.citas.flags import flag_registry
from ivr.citas.reference import CITAS_DIR, Reference, load_reference
from ivr.line import Line, LineVoice
from ivr.ops.flags import FlagRegistry


@dataclass(frozen=True)
class CitasLine:
    """The citas line built from its reference tables (``config/citas/``)."""

    reference: Reference
    name: str = "citas"

    @property
    def voice(self) -> LineVoice:
        return self.reference.line.voice

    @property
    def default_vdn(self) -> str:
        return self.reference.line.vdn_default

    @property
    def agent_queues(self) -> Collection[str]:
        """line.yaml's ``agent_vdn``: default, non-target, incident."""
        line = self.reference.line
        return frozenset({line.vdn_default, line.vdn_non_target, line.vdn_incident})

    @property
    def action_outcomes(self) -> Mapping[str, Collection[str]]:
        return OUTCOMES

    @property
    def commits(self) -> Collection[str]:
        return COMMITS

    def flag_registry(self) -> FlagRegistry:
        return flag_registry(self.reference)


def citas_line(directory: Path = CITAS_DIR) -> CitasLine:
    """The citas line from ``directory`` (``Settings.citas_dir``); ``ConfigError`` on a bad file."""
    return CitasLine(load_reference(directory))


_: type[Line] = CitasLine  # mypy checks that CitasLine fits the platform's Line
