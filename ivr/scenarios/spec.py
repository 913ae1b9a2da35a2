"""Tester scenarios as data: ``ivr/scenarios/<name>.yaml``.

A scenario says what the caller does (dial, wait, press keys, hang up), who
answers on the agent side, and what must have happened (the call record's
outcome, nodes, digits; the headers the agent received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ivr.schemas import load_checked
from ivr.yamlsrc import Located

SCENARIO_DIR = Path(__file__).parent


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


def load_scenario(path: Path) -> Scenario:
    """A scenario file checked against ``ivr/schemas/scenario.json``.

    Raises ``ConfigError`` naming file, line and field (an unknown key, such as
    a misspelled ``outcom:`` under ``expect``, is refused, not ignored)."""
    data = load_checked(path, "scenario")
    file_mode = data.get("dtmf_mode", "rfc4733")
    exp = data["expect"]
    raw_ids = data.get("caller_id", "3000000000")
    return Scenario(
        name=data["name"],
        description=data["description"],
        dial=str(data["dial"]),
        caller_ids=tuple(str(c) for c in (raw_ids if isinstance(raw_ids, list) else [raw_ids])),
        steps=tuple(_step(raw, file_mode) for raw in data.get("steps", [])),
        ends_by=data.get("ends_by", "ivr"),
        agent=data.get("agent", False),
        controller=data.get("controller", True),
        expect=Expect(
            record=exp.get("record", True),
            outcome=exp.get("outcome"),
            nodes=tuple(exp.get("nodes", [])),
            digits=tuple(str(d) for d in exp.get("digits", [])),
            agent_headers={k: str(v) for k, v in exp.get("agent_headers", {}).items()},
            variables={k: str(v) for k, v in exp.get("variables", {}).items()},
            outcomes=tuple(exp.get("outcomes", [])),
            sms_sent=exp.get("sms_sent"),
        ),
        timeout=float(data.get("timeout", 90.0)),
        calls=data.get("calls", 1),
        seed=data.get("seed"),
    )


def _step(raw: Located, file_mode: str) -> Step:
    if "wait" in raw:
        return Step("wait", seconds=float(raw["wait"]))
    if "dtmf" in raw:
        return Step("dtmf", digits=str(raw["dtmf"]), mode=raw.get("mode", file_mode))
    return Step("hangup")


def list_scenarios(directory: Path | None = None) -> dict[str, Scenario]:
    """Every scenario in ``directory`` (default: the bundled ones), by name.

    Raises ``ConfigError`` for the first bad file."""
    files = sorted((directory or SCENARIO_DIR).glob("*.yaml"))
    return {s.name: s for s in (load_scenario(p) for p in files)}
