"""What a line registers with the platform.

The platform (the flow engine, the voice and chat channels, operations) names
no line. A line (the citas appointments line: ``ivr.citas.line``) describes
itself with an object that fits :class:`Line`; the composition roots
(``ivr.controller``, ``ivr.cli``) load it and hand each platform part the
piece it needs: the flow loader its outcomes, commits and flag names, the ops
runtime and ``ivr flags`` its flag registry, the voice channel and the
controller's rescue its :class:`LineVoice`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from ivr.ops.flags import FlagRegistry

# The forms line.yaml's ``voice`` accepts (ivr/schemas/line.json says the same).
SOUNDS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
CONTEXT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9_]*_$")


@dataclass(frozen=True)
class LineVoice:
    """The line on the phone: ``voice:`` in its ``line.yaml``.

    ``sounds``: the directory under Asterisk's sounds that holds the line's
    prompts (``prompt:<id>`` plays ``sound:<sounds>/<id>``). ``agent_context``:
    the dialplan context where a caller handed to the agents continues, at the
    VDN's extension. ``variable_prefix``: the prefix of the channel variables
    the line's dialplan reads on a hand-off (``__<prefix>REASON``...). The
    dialplan (``dialplans/asterisk/extensions.conf``) must use the same names.
    Raises ValueError for a value outside those forms.

    >>> voice = LineVoice("citas", "citas-agents", "CITAS_")
    >>> voice.sound("service_unavailable_agent")
    'sound:citas/service_unavailable_agent'
    >>> voice.variable("reason"), voice.dialplan_variable("call_id")
    ('__CITAS_REASON', 'CITAS_CALL_ID')
    >>> LineVoice("citas", "citas-agents", "citas")
    Traceback (most recent call last):
    ...
    ValueError: variable_prefix 'citas': upper-case letters, digits and _, ending in _
    """

    sounds: str
    agent_context: str
    variable_prefix: str

    def __post_init__(self) -> None:
        if not SOUNDS_RE.match(self.sounds):
            raise ValueError(f"sounds {self.sounds!r}: lower-case letters, digits, _ and -")
        if not CONTEXT_RE.match(self.agent_context):
            raise ValueError(f"agent_context {self.agent_context!r}: letters, digits, _ and -")
        if not PREFIX_RE.match(self.variable_prefix):
            raise ValueError(
                f"variable_prefix {self.variable_prefix!r}: "
                "upper-case letters, digits and _, ending in _"
            )

    def sound(self, name: str) -> str:
        """The media URI of the line's sound ``name`` (a prompt id)."""
        return f"sound:{self.sounds}/{name}"

    def variable(self, key: str) -> str:
        """The channel variable a hand-off sets for context key ``key`` (``reason`` ->
        ``__<prefix>REASON``): inherited by the agent's leg (the ``__``), where the
        dialplan turns it into a SIP header."""
        return f"__{self.dialplan_variable(key)}"

    def dialplan_variable(self, key: str) -> str:
        """The name the dialplan reads or sets for ``key`` (``flow`` -> ``<prefix>FLOW``)."""
        return f"{self.variable_prefix}{key.upper()}"


class Line(Protocol):
    """A line, as the platform sees it (the citas line: ``ivr.citas.line.CitasLine``)."""

    @property
    def name(self) -> str:
        """The line's name (``citas``): its default flow, its logs."""
        ...

    @property
    def voice(self) -> LineVoice: ...

    @property
    def default_vdn(self) -> str:
        """The general agents' VDN: where a rescued caller goes when the flow had not
        chosen one of ``agent_queues`` (``ivr.channel.QUEUE_KEY`` in its annotated context)."""
        ...

    @property
    def agent_queues(self) -> Collection[str]:
        """Every VDN the line's flows hand over to (``default_vdn`` among them): the
        only ones a rescue takes from a channel's context."""
        ...

    @property
    def action_outcomes(self) -> Mapping[str, Collection[str]]:
        """Each action the line's flows may call, with the outcomes it returns."""
        ...

    @property
    def commits(self) -> Collection[str]:
        """The actions that commit something (a booking): the flow loader checks them."""
        ...

    def flag_registry(self) -> FlagRegistry:
        """The line's operations flags (with the platform's own: ``PLATFORM_FLAGS``)."""
        ...
