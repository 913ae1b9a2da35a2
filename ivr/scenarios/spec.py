"""Tester scenarios as data: ``ivr/scenarios/<name>.yaml``.

A scenario says what the caller does (dial, wait, press keys, hang up), who
answers on the agent side, and what must have happened (the call record's
outcome, nodes, digits; the headers the agent received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.flow.yamlsrc import ConfigError, Located, load_yaml_file

SCENARIO_DIR = Path(__file__).parent
_KEYS = set("0123456789*#")


@dataclass(frozen=True)
class Step:
    kind: str  # wait | dtmf | hangup
    seconds: float = 0.0
    digits: str = ""
    mode: str = "rfc4733"  # rfc4733 | info


@dataclass(frozen=True)
class Expect:
    record: bool = True
    outcome: str | None = None
    nodes: tuple[str, ...] = ()
    digits: tuple[str, ...] = ()
    agent_headers: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    outcomes: tuple[str, ...] = ()  # several calls: their outcomes, in any order
    sms_sent: int | None = None  # SMS handed to the gateway for these calls


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    dial: str
    caller_ids: tuple[str, ...]  # one per call (sipp injection file when several)
    steps: tuple[Step, ...]
    ends_by: str  # ivr (we wait for the BYE) | caller (we send BYE)
    agent: bool
    controller: bool  # the scenario needs the controller running
    expect: Expect
    timeout: float = 90.0
    calls: int = 1
    seed: str | None = None  # demo data to reset before the call (e.g. "race")

    @property
    def caller_id(self) -> str:
        return self.caller_ids[0]


def _get(d: Located, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise ConfigError(d.file, d.line, key, "is required")
        return default
    value = d[key]
    if kind is float and isinstance(value, int):
        if abs(value) > 10**300:  # float() would raise OverflowError
            raise ConfigError(d.file, d.line_of(key), key, "is too large")
        value = float(value)
    if not isinstance(value, kind):
        raise ConfigError(
            d.file, d.line_of(key), key, f"has the wrong type ({type(value).__name__})"
        )
    return value


def load_scenario(path: Path) -> Scenario:
    data = load_yaml_file(path)
    if not isinstance(data, Located):
        raise ConfigError(str(path), 1, "scenario", "must be a mapping")
    steps = []
    for raw in _get(data, "steps", list, []):
        if not isinstance(raw, Located) or (len(raw) != 1 and "mode" not in raw):
            raise ConfigError(str(path), data.line_of("steps"), "steps", f"bad step {raw!r}")
        if "wait" in raw:
            wait = raw["wait"]
            if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
                raise ConfigError(
                    str(path), raw.line, "wait", f"must be seconds (a number), got {wait!r}"
                )
            steps.append(Step("wait", seconds=float(wait)))
        elif "dtmf" in raw:
            digits = str(raw["dtmf"])
            if not digits or set(digits) - _KEYS:
                raise ConfigError(
                    str(path), raw.line, "dtmf", f"keys must be 0-9 * #, got {digits!r}"
                )
            mode = str(raw.get("mode", _get(data, "dtmf_mode", str, "rfc4733")))
            if mode not in ("rfc4733", "info"):
                raise ConfigError(str(path), raw.line, "mode", "must be rfc4733 or info")
            steps.append(Step("dtmf", digits=digits, mode=mode))
        elif "hangup" in raw:
            steps.append(Step("hangup"))
        else:
            raise ConfigError(str(path), raw.line, "steps", f"unknown step {sorted(raw)}")
    exp = _get(data, "expect", Located)
    expect = Expect(
        record=_get(exp, "record", bool, True),
        outcome=_get(exp, "outcome", str, None),
        nodes=tuple(_get(exp, "nodes", list, [])),
        digits=tuple(str(d) for d in _get(exp, "digits", list, [])),
        agent_headers={
            str(k): str(v) for k, v in _get(exp, "agent_headers", Located, Located()).items()
        },
        variables={str(k): str(v) for k, v in _get(exp, "variables", Located, Located()).items()},
        outcomes=tuple(str(o) for o in _get(exp, "outcomes", list, [])),
        sms_sent=_get(exp, "sms_sent", int, None),
    )
    ends_by = _get(data, "ends_by", str, "ivr")
    if ends_by not in ("ivr", "caller"):
        raise ConfigError(str(path), data.line_of("ends_by"), "ends_by", "must be ivr or caller")
    return Scenario(
        name=_get(data, "name", str),
        description=_get(data, "description", str),
        dial=str(_get(data, "dial", (str, int))),
        caller_ids=_caller_ids(data),
        steps=tuple(steps),
        ends_by=ends_by,
        agent=_get(data, "agent", bool, False),
        controller=_get(data, "controller", bool, True),
        expect=expect,
        timeout=_get(data, "timeout", float, 90.0),
        calls=_get(data, "calls", int, 1),
        seed=_get(data, "seed", str, None),
    )


def _caller_ids(data: Located) -> tuple[str, ...]:
    raw = _get(data, "caller_id", (str, int, list), "3000000000")
    ids = tuple(str(c) for c in raw) if isinstance(raw, list) else (str(raw),)
    for c in ids:
        if not c.isdigit():
            raise ConfigError(
                data.file, data.line_of("caller_id"), "caller_id", f"{c!r} is not a number"
            )
    return ids


def list_scenarios(directory: Path = SCENARIO_DIR) -> dict[str, Scenario]:
    return {s.name: s for s in (load_scenario(p) for p in sorted(directory.glob("*.yaml")))}
