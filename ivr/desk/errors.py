"""Placeholder until the core part's ``ivr.desk.errors`` lands (merge: take core's)."""

from __future__ import annotations


class DeskError(Exception):
    pass


class ScriptInvalid(DeskError):
    def __init__(self, details: list[str]) -> None:
        super().__init__("el guion no es válido: " + "; ".join(details))
        self.details = list(details)


class AgentNotAllowed(DeskError):
    pass
