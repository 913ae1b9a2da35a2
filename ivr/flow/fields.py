"""Reading one node's YAML for its kind: ``Fields`` (values with errors naming file,
line and field) and ``Builder``, what a kind's ``build`` may ask of the flow loader
(``ivr.flow.loader.FlowLoader``): prompt parts, timeouts, known actions and flags."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from ivr.flow.model import PromptPart, Timeouts
from ivr.yamlsrc import ConfigError, Located, LocatedList


class Fields:
    """Access to one schema-checked YAML mapping, with errors naming file, line and field."""

    def __init__(self, data: Located, where: str) -> None:
        self.data, self.where = data, where

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.data.file, self.data.line_of(key), f"{self.where}.{key}", problem)

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """The value of ``key`` (types are the schema's: ``kind`` only turns an
        int into a float); ``check`` returns a problem for what the schema cannot say."""
        if key not in self.data:
            if default is ...:  # the schema requires it: only a schema/builder mismatch gets here
                raise ConfigError(
                    self.data.file, self.data.line, f"{self.where}.{key}", "is required"
                )
            return default
        value = self.data[key]
        if kind is float:
            value = float(value)
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(key, problem)
        return value


def line_at(data: Located, path: Sequence[str | int]) -> int:
    """The line of the deepest key of ``path`` found under ``data`` (its own line if none)."""
    line = data.line
    current: Any = data
    for key in path:
        if isinstance(current, Located) and key not in current and str(key).isdigit():
            key = int(key)  # an unquoted YAML key: 1, not "1"
        if isinstance(current, Located) and key in current:
            line = current.line_of(key)  # type: ignore[arg-type]
            current = current[key]  # type: ignore[index]
        elif isinstance(current, LocatedList) and isinstance(key, int) and key < len(current):
            line = current.line_of(key)
            current = current[key]
        else:
            break
    return line


class Builder(Protocol):
    """What a node kind's ``build`` asks of the flow loader."""

    @property
    def prompt_ids(self) -> Collection[str]:
        """The prompt catalogue's ids."""
        ...

    @property
    def actions(self) -> Mapping[str, Collection[str]]:
        """Each action a flow may call, with the outcomes it returns."""
        ...

    def known_flag(self, name: str) -> str | None:
        """None for a flag a decide node may read, else the problem."""
        ...

    def parts(self, f: Fields, key: str, *, required: bool = True) -> tuple[PromptPart, ...]:
        """The prompt parts of ``key``; raises ``ConfigError`` for an unknown prompt."""
        ...

    def timeouts(self, raw: Located | None) -> Timeouts:
        """The flow's timeouts with the fields ``raw`` sets."""
        ...

    def error_at(self, f: Fields, path: Sequence[str | int], problem: str) -> ConfigError:
        """An error at ``path`` under ``f``'s mapping."""
        ...
