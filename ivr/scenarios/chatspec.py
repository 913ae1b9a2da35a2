"""Chat scenarios as data: ``ivr/scenarios/chat/<name>.yaml`` (issue 10 §8).

The same style as the call scenarios (``ivr.scenarios.spec``): what the WhatsApp
user does (send text, pick an option of the bot's menu, send media the bot
cannot read, wait, let the conversation expire) and what must be seen (a
regular expression on the bot's next messages, silence) or have happened at
the end (the conversation's outcome and state, a booking). Checked against
``ivr/schemas/chat_scenario.json``: an unknown key is refused, naming file,
line and field.

>>> scenario = load_chat_scenario(CHAT_SCENARIO_DIR / "book.yaml")
>>> scenario.steps[0]
ChatStep(kind='send', value='Hola', seconds=0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ivr.schemas import load_checked

CHAT_SCENARIO_DIR = Path(__file__).parent / "chat"
DEFAULT_CONTACT = "3001234567"  # Ana, the demo directory's affiliate with a mobile


@dataclass(frozen=True)
class ChatStep:
    """``kind``: send | pick | expect | expect_no_reply | media | wait | expire;
    ``value`` the text, option, regular expression or media kind; ``seconds``
    for wait and expect_no_reply."""

    kind: str
    value: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ChatExpect:
    outcome: str | None = None
    state: str | None = None
    booking: bool | None = None
    nodes: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    journey: bool | None = None


@dataclass(frozen=True)
class ChatScenario:
    name: str
    description: str
    contact: str
    steps: tuple[ChatStep, ...]
    expect: ChatExpect
    seed: str | None = None
    flags: dict[str, object] = field(default_factory=dict)
    from_call: str | None = None
    timeout: float = 30.0


_SECONDS = ("wait", "expect_no_reply")


def _step(raw: dict[str, object]) -> ChatStep:
    ((kind, value),) = raw.items()
    if kind in _SECONDS:
        assert isinstance(value, int | float)
        return ChatStep(kind, seconds=float(value))
    if kind == "expire":
        return ChatStep(kind)
    return ChatStep(kind, value=str(value))


def load_chat_scenario(path: Path) -> ChatScenario:
    """A chat scenario file; raises ``ConfigError`` (file, line, field) when it is wrong."""
    data = load_checked(path, "chat_scenario")
    exp = data.get("expect", {})
    return ChatScenario(
        name=data["name"],
        description=data["description"],
        contact=str(data.get("contact", DEFAULT_CONTACT)),
        steps=tuple(_step(dict(raw)) for raw in data["steps"]),
        expect=ChatExpect(
            outcome=exp.get("outcome"),
            state=exp.get("state"),
            booking=exp.get("booking"),
            nodes=tuple(exp.get("nodes", [])),
            variables={k: str(v) for k, v in exp.get("variables", {}).items()},
            journey=exp.get("journey"),
        ),
        seed=data.get("seed"),
        flags=dict(data.get("flags", {})),
        from_call=data.get("from_call"),
        timeout=float(data.get("timeout", 30.0)),
    )


def list_chat_scenarios(directory: Path | None = None) -> dict[str, ChatScenario]:
    """Every chat scenario in ``directory`` (default: the bundled ones), by name.

    Raises ``ConfigError`` for the first bad file."""
    files = sorted((directory or CHAT_SCENARIO_DIR).glob("*.yaml"))
    return {s.name: s for s in (load_chat_scenario(p) for p in files)}
