"""What ``ivr desk agent`` and ``ivr desk agents|login|pause…`` print (Spanish, masked).

The kind of fault: a person's number on a terminal (the affiliate's document in
the X-Citas-Affiliate header), an agent's state said wrong. Every state an agent
can be in, and every header a call carries.
"""

from __future__ import annotations

import pytest

from ivr.cli import build_parser
from ivr.desk.agents_cli import _line
from ivr.desk.ami import AgentStatus
from ivr.masking import mask_number
from ivr.scenarios.deskcli import _show_new_calls


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (AgentStatus("7001", "Ana Gómez", False, False, None, "unknown", False, ()), "sin sesión"),
        (AgentStatus("7001", "Ana Gómez", True, False, None, "not_inuse", False, ("l1_general",)), "disponible"),
        (AgentStatus("7001", "Ana Gómez", True, False, None, "inuse", True, ("l1_general",)), "en llamada"),
        (AgentStatus("7001", "Ana Gómez", True, True, "Almuerzo", "not_inuse", False, ("l1_general",)), "en pausa (Almuerzo)"),
        (AgentStatus("7001", "Ana Gómez", True, False, None, "unavailable", False, ("l1_general",)), "sin registrar"),
    ],
)  # fmt: skip
def test_each_agent_state_in_spanish(status: AgentStatus, words: str) -> None:
    line = _line(status)

    assert line.startswith("7001  Ana Gómez") and words in line
    assert ("colas: l1_general" if status.queues else "colas: —") in line


def test_a_calls_headers_are_shown_with_the_document_masked(capsys: pytest.CaptureFixture[str]) -> None:
    calls = [
        {"X-Citas-Reason": "non-target", "X-Citas-Affiliate": "2020202020", "X-Citas-Vdn": "5550001"},
        {},
    ]

    assert _show_new_calls(calls, 0) == 2
    assert _show_new_calls(calls, 2) == 2  # nothing new: nothing printed again
    out = capsys.readouterr().out

    assert "2020202020" not in out and f"Affiliate={mask_number('2020202020')}," in out
    assert "call 1: Reason=non-target" in out and "call 2: no X-Citas-* headers" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["desk", "agent", "7001", "--answer-after", "2", "--talk", "5", "--calls", "1"],
        ["desk", "agents", "--json"], ["desk", "login", "7001"], ["desk", "logout", "7001"],
        ["desk", "pause", "7001", "almuerzo"], ["desk", "unpause", "7001"],
        ["desk", "contacts"],  # core's, in the same group
    ],
)  # fmt: skip
def test_the_desk_commands_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)

    assert args.desk_command == argv[1] and callable(args.func)
