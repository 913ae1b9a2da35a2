"""Where the shipped citas flow can take a chat, walked over its graph.

The phone line's answer to "no slot" (and to a site that no longer books by
phone) is to send the caller to the WhatsApp assistant by SMS. On the chat the
person is already there: no path a chat can take may reach the SMS action, and
a site closed for phone booking books in the chat. The walk follows each node's
targets on its channel (``Node.runs_on``: a node for another channel only
passes to its ``skip_to``), so it covers every answer, outcome and flag value.
"""

from __future__ import annotations

import pytest

from ivr.controller import load_all_flows
from ivr.flow.model import Flow, Node
from ivr.flow.nodes import ActionNode, DecideNode, HangupNode

SMS_ACTION = "send_whatsapp_sms"


def reachable(flow: Flow, channel: str, start: str | None = None) -> dict[str, Node]:
    """The nodes a conversation on ``channel`` can reach from ``start`` (default the flow's)."""
    seen: dict[str, Node] = {}
    todo = [start or flow.start]
    while todo:
        node = flow.node(todo.pop())
        if node.id in seen:
            continue
        seen[node.id] = node
        if node.runs_on(channel):
            todo.extend(t for name, t in node.own_targets())
        else:
            assert node.skip_to is not None
            todo.append(node.skip_to)
    return seen


@pytest.fixture(scope="module")
def citas() -> Flow:
    return load_all_flows()["citas"]


def sms_nodes(nodes: dict[str, Node]) -> list[str]:
    return [n.id for n in nodes.values() if isinstance(n, ActionNode) and n.action == SMS_ACTION]


def test_no_path_of_a_chat_sends_the_whatsapp_sms(citas: Flow) -> None:
    assert sms_nodes(reachable(citas, "chat")) == []


def test_a_caller_can_still_be_sent_the_sms(citas: Flow) -> None:
    # The walk can find it: on the phone, no slot ends with the SMS.
    assert sms_nodes(reachable(citas, "voice")) == ["whatsapp_redirect"]


@pytest.mark.parametrize(
    ("channel", "ends_at"),
    [("chat", {"chat_not_booked"}), ("voice", {"whatsapp_bye", "whatsapp_number_bye"})],
)
def test_no_slot_for_a_target_person_ends_on_each_channel_its_own_way(
    citas: Flow, channel: str, ends_at: set[str]
) -> None:
    after = reachable(citas, channel, "no_slots_route")
    hangups = {n.id for n in after.values() if isinstance(n, HangupNode)}
    assert ends_at <= hangups
    assert not ({"whatsapp_bye", "chat_not_booked"} - ends_at) & hangups


def test_a_site_closed_for_phone_booking_books_in_the_chat(citas: Flow) -> None:
    eligibility = citas.node("eligibility")
    assert isinstance(eligibility, ActionNode)
    closed = eligibility.outcomes["target_digital"]
    on_chat = reachable(citas, "chat", closed)
    on_voice = reachable(citas, "voice", closed)
    assert "find_slot" in on_chat and "redirect_gate" in on_voice
    gate = citas.node(closed)
    assert isinstance(gate, DecideNode) and not gate.runs_on("chat")
