"""What operations can switch: each flag's name, type, default, description and role.

Flags are typed data. The registry is built once by the line (the citas
line's: ``ivr.citas.flags``, defaults from ``config/citas/``), so a flag's
default is whatever the YAML says and the database only holds what
operations changed. This module is the platform's core: the types, the
registry, the rules machinery, and the few flags platform code reads by name
(``PLATFORM_FLAGS``); it names no line's flag. A value from the API, the
CLI or the database goes through :meth:`FlagDef.parse`; a wrong type or an
unknown name is refused with a message that names the flag.

>>> reg = FlagRegistry([FlagDef("promo_audio", "bool", True, "Promotional audio.")])
>>> reg.get("promo_audio").parse_text("off")
False
>>> reg.get("promo_audio").parse(3)
Traceback (most recent call last):
...
ivr.ops.flags.FlagValueError: promo_audio: expected true or false, got 3
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

FlagValue = bool | int | str | list[str] | None
Values = Mapping[str, FlagValue]  # every flag's value at one instant
Kind = Literal["bool", "int", "enum", "date", "codes"]

CUPS_RE = re.compile(r"^[0-9]{6,8}$")
_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


class Role(enum.IntEnum):
    """Who may do what: each role includes the ones below it."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r} (viewer, operator, admin)") from None


class FlagValueError(ValueError):
    """A value does not fit its flag; the message starts with the flag's name."""


class UnknownFlag(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown flag {self.name!r}"


@dataclass(frozen=True)
class FlagDef:
    name: str
    kind: Kind
    default: FlagValue
    description: str
    min_role: Role = Role.OPERATOR  # the role needed to change it
    group: str = "behaviour"
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False

    def parse(self, raw: object) -> FlagValue:
        """A JSON value (API, database) → the flag's value, or FlagValueError."""
        if raw is None:
            if self.nullable:
                return None
            raise FlagValueError(f"{self.name}: a value is required")
        match self.kind:
            case "bool":
                if isinstance(raw, bool):
                    return raw
                raise FlagValueError(f"{self.name}: expected true or false, got {raw!r}")
            case "int":
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise FlagValueError(f"{self.name}: expected an integer, got {raw!r}")
                if self.minimum is not None and raw < self.minimum:
                    raise FlagValueError(f"{self.name}: {raw} is below the minimum {self.minimum}")
                if self.maximum is not None and raw > self.maximum:
                    raise FlagValueError(f"{self.name}: {raw} is above the maximum {self.maximum}")
                return raw
            case "enum":
                if isinstance(raw, str) and raw in self.choices:
                    return raw
                raise FlagValueError(
                    f"{self.name}: expected one of {', '.join(self.choices)}, got {raw!r}"
                )
            case "date":
                if isinstance(raw, str):
                    try:
                        return date.fromisoformat(raw).isoformat()
                    except ValueError:
                        pass
                raise FlagValueError(f"{self.name}: expected a date YYYY-MM-DD, got {raw!r}")
            case "codes":
                if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
                    raise FlagValueError(f"{self.name}: expected a list of CUPS codes, got {raw!r}")
                bad = [c for c in raw if not CUPS_RE.match(c)]
                if bad:
                    raise FlagValueError(
                        f"{self.name}: not CUPS codes (6 to 8 digits): {', '.join(bad)}"
                    )
                if not raw:
                    raise FlagValueError(f"{self.name}: at least one CUPS code is required")
                return sorted(set(raw))
        raise FlagValueError(f"{self.name}: unsupported kind {self.kind}")  # pragma: no cover

    def parse_text(self, text: str) -> FlagValue:
        """A command-line word → the flag's value (``on``/``off``, ``none``, ``a,b``)."""
        word = text.strip()
        if self.nullable and word.lower() in ("none", "null", ""):
            return None
        match self.kind:
            case "bool":
                if word.lower() in _TRUE:
                    return True
                if word.lower() in _FALSE:
                    return False
                raise FlagValueError(f"{self.name}: expected on or off, got {text!r}")
            case "int":
                try:
                    number = int(word)
                except ValueError:
                    raise FlagValueError(
                        f"{self.name}: expected an integer, got {text!r}"
                    ) from None
                return self.parse(number)
            case "codes":
                return self.parse([c.strip() for c in word.split(",") if c.strip()])
            case _:
                return self.parse(word)

    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of this flag's value (for the OpenAPI description)."""
        schema: dict[str, Any]
        match self.kind:
            case "bool":
                schema = {"type": "boolean"}
            case "int":
                schema = {"type": "integer"}
                if self.minimum is not None:
                    schema["minimum"] = self.minimum
                if self.maximum is not None:
                    schema["maximum"] = self.maximum
            case "enum":
                schema = {"type": "string", "enum": list(self.choices)}
            case "date":
                schema = {"type": "string", "format": "date"}
            case "codes":
                schema = {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": CUPS_RE.pattern},
                }
        if self.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "description": self.description,
            "min_role": self.min_role.label,
            "group": self.group,
            "nullable": self.nullable,
        }
        if self.choices:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True)
class FlagRule:
    """A rule across flags, which must hold at every instant (``ivr.ops.timeline``).

    ``check`` gets every flag's value at one instant and returns what is wrong
    (Spanish, for the operator) or None. ``rule_id`` is stable (the API's
    ``details[].rule``); ``summary`` says the rule in Spanish. ``reads`` names
    the flags ``check`` looks at: only a change to one of them is judged by the
    rule, so an unrelated change (the incident switch) is never held up by it.
    """

    rule_id: str
    summary: str
    reads: tuple[str, ...]
    check: Callable[[Values], str | None]


@dataclass
class FlagRegistry:
    """The flags of a line, and the rules across them (both plugged in by the line)."""

    defs: Iterable[FlagDef]
    rules: tuple[FlagRule, ...] = ()
    _by_name: dict[str, FlagDef] = field(init=False)

    def __post_init__(self) -> None:
        self._by_name = {}
        for d in self.defs:
            if d.name in self._by_name:
                raise ValueError(f"flag {d.name} defined twice")
            if d.default is not None or not d.nullable:
                d.parse(d.default)  # a default that does not fit its own type is a bug
            self._by_name[d.name] = d
        if problems := self.problems(self.defaults()):
            raise ValueError(f"the defaults break a rule: {problems[0]}")

    def defaults(self) -> dict[str, FlagValue]:
        return {d.name: d.default for d in self._by_name.values()}

    def rules_reading(self, name: str) -> tuple[FlagRule, ...]:
        """The rules a change to flag ``name`` must satisfy."""
        return tuple(r for r in self.rules if name in r.reads)

    def problems(self, values: Values) -> list[str]:
        """What the rules find wrong with ``values`` (one instant); empty when all is well."""
        return [p for rule in self.rules if (p := rule.check(values)) is not None]

    def get(self, name: str) -> FlagDef:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownFlag(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[FlagDef]:
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return list(self._by_name)


# --- the platform's own flags ------------------------------------------------------
# Platform code reads these by name, so every line's registry includes them:
# the incident switch (``FlagService.set_incident``, ``ivr incident``, the API's
# incident route) and the booking-service circuit breaker (``ivr.ops.runtime``).

INCIDENT_MODE = "incident_mode"
BREAKER_THRESHOLD = "booking_breaker.failure_threshold"
BREAKER_OPEN_SECONDS = "booking_breaker.open_seconds"

INCIDENT_FLAG = FlagDef(
    INCIDENT_MODE, "bool", False,
    "Incident switch: every new caller hears the incident message and goes "
    "straight to the agents.",
)  # fmt: skip
BREAKER_FLAGS = (
    FlagDef(BREAKER_THRESHOLD, "int", 5,
            "Consecutive booking-service failures (errors or timeouts) that open the "
            "circuit breaker.", min_role=Role.ADMIN, group="breaker", minimum=1, maximum=100),
    FlagDef(BREAKER_OPEN_SECONDS, "int", 30,
            "Seconds the breaker stays open before probing the booking service again.",
            min_role=Role.ADMIN, group="breaker", minimum=1, maximum=3600),
)  # fmt: skip
PLATFORM_FLAGS = (INCIDENT_MODE, BREAKER_THRESHOLD, BREAKER_OPEN_SECONDS)


def missing_platform_flags(registry: FlagRegistry) -> list[str]:
    """The platform's flags (``PLATFORM_FLAGS``) that ``registry`` lacks; empty when complete."""
    return [name for name in PLATFORM_FLAGS if name not in registry]


class FlagReader(Protocol):
    """What call logic needs from the flags: a value now (``LiveFlags`` in production)."""

    def value(self, name: str) -> FlagValue: ...


class StaticFlags:
    """Every flag at its default, or at a fixed value (tools, tests, no database)."""

    def __init__(self, registry: FlagRegistry, values: dict[str, FlagValue] | None = None) -> None:
        self.registry = registry
        self.values = dict(values or {})

    def value(self, name: str) -> FlagValue:
        definition = self.registry.get(name)
        return self.values.get(name, definition.default)


# What a person reads for a role (the console's words, as common.js ROLE_LABEL) with the
# name `ivr ops token create --role` takes: "operador (operator)".
ROLE_WORDS: dict[Role, str] = {
    Role.VIEWER: "consulta (viewer)", Role.OPERATOR: "operador (operator)", Role.ADMIN: "administrador (admin)",
}
