"""The desk's errors. Every message is Spanish: agents and administrators read them.

DeskError
 ├── ContactNotFound        no contact with that id
 ├── ContactConflict        the contact's state forbids the change, or it changed meanwhile
 ├── DispositionRequired    closing without a disposition
 ├── ReasonRequired         escalating without a reason
 ├── ScriptInvalid          a script tree broke a rule (``details``: one line per rule)
 ├── ScriptVersionNotFound  no script version with that number
 ├── ScriptNotDraft         only a draft is edited (published and retired versions stay as they were)
 ├── UnknownAgent           no agent with that extension / user in desk.yaml
 └── AgentNotAllowed        the agent's profile forbids it (a queue, a call type, chat)

An HTTP layer maps ContactNotFound / ScriptVersionNotFound / UnknownAgent to 404,
ContactConflict and ScriptNotDraft to 409, AgentNotAllowed to 403 and the rest to 422, with ``str(error)``
as the message shown.
"""

from __future__ import annotations

from collections.abc import Sequence


class DeskError(RuntimeError):
    """A desk operation was refused; ``str(error)`` is Spanish."""


class ContactNotFound(DeskError):
    def __init__(self, contact_id: str) -> None:
        super().__init__(f"no existe el contacto {contact_id}")
        self.contact_id = contact_id


class ContactConflict(DeskError):
    """The contact's state does not allow the change (``state``), or another change
    was written since it was read (stale ``version``)."""

    def __init__(self, message: str, *, state: str | None = None) -> None:
        super().__init__(message)
        self.state = state


class DispositionRequired(DeskError):
    def __init__(self) -> None:
        super().__init__("para cerrar el contacto indique la tipificación (disposición)")


class ReasonRequired(DeskError):
    def __init__(self) -> None:
        super().__init__("para escalar el contacto indique el motivo")


class ScriptInvalid(DeskError):
    """A script tree broke the rules; ``details`` lists each problem (Spanish)."""

    def __init__(self, details: Sequence[str]) -> None:
        self.details = list(details)
        shown = "; ".join(self.details[:5]) + (" …" if len(self.details) > 5 else "")
        super().__init__(f"el guion no es válido: {shown}")


class ScriptVersionNotFound(DeskError):
    def __init__(self, version: int) -> None:
        super().__init__(f"no existe la versión {version} del guion")
        self.version = version


class ScriptNotDraft(DeskError):
    """Only a draft version is edited in place; a published or retired one stays as
    agents saw it (make a new draft from it instead)."""

    def __init__(self, version: int, state: str) -> None:
        shown = {"published": "publicada", "retired": "retirada"}.get(state, state)
        super().__init__(
            f"la versión {version} del guion está {shown}: solo se edita un borrador "
            "(cree una versión nueva a partir de ella)"
        )
        self.version = version
        self.state = state


class UnknownAgent(DeskError, LookupError):
    """No agent with that extension (or ops-API user) in desk.yaml."""

    def __init__(self, who: str) -> None:
        super().__init__(f"no hay un asesor {who!r} en la configuración del escritorio")
        self.who = who


class AgentNotAllowed(DeskError):
    """The agent's profile does not take this queue, call type or channel."""
