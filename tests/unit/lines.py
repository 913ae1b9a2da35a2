"""The citas line's voice as the shipped ``config/citas/line.yaml`` says it: what the
unit tests' voice channels render prompts and hand-offs with (``sound:citas/<id>``,
the ``citas-agents`` context, ``__CITAS_*`` variables), as the controller does."""

from __future__ import annotations

from ivr.controller import load_line
from ivr.line import LineVoice
from ivr.settings import Settings

CITAS_VOICE: LineVoice = load_line(Settings()).voice
