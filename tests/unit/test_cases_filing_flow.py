"""Where the shipped citas flow can file a case, walked over its graph per channel
(as ``test_chat_paths`` does for the SMS).

The kind: a case filed where the issue says it must not be (without the
caller's consent, without the widened search's "tried", for a non-target
caller, after the booking service failed, on the phone of a site closed for
phone booking), a slot search for a specialty with an open case, an e-mail read
aloud or typed on a keypad, or a path that used to end the call its way (the
WhatsApp redirect on the phone, the neutral ending on chat) lost. The walk
follows every answer, outcome and flag value, with a node's skip on the other
channel, so it covers the whole range; ``cut`` removes one edge to show that
every path goes through it.
"""

from __future__ import annotations

import pytest

from ivr.controller import load_all_flows
from ivr.flow.model import Flow, Node
from ivr.flow.nodes import ActionNode, AskTextNode, DecideNode, HangupNode, MenuNode

CHANNELS = ("voice", "chat")
FILE = "file_case"


def reachable(
    flow: Flow,
    channel: str,
    start: str | None = None,
    *,
    cuts: tuple[tuple[str, str], ...] = (),
    segment: str | None = None,
) -> dict[str, Node]:
    """The nodes a call on ``channel`` can reach from ``start``, without the edges
    ``cuts`` (node id, field), and with ``segment`` fixed when given (decide nodes
    on it take only their case for that value)."""
    seen: dict[str, Node] = {}
    todo = [start or flow.start]
    while todo:
        node = flow.node(todo.pop())
        if node.id in seen:
            continue
        seen[node.id] = node
        if not node.runs_on(channel):
            assert node.skip_to is not None
            todo.append(node.skip_to)
            continue
        if segment is not None and isinstance(node, DecideNode) and node.variable == "segment":
            todo.append(node.cases.get(segment, node.default))
            continue
        todo.extend(t for name, t in node.own_targets() if (node.id, name) not in cuts)
    return seen


def runs(nodes: dict[str, Node], channel: str) -> dict[str, Node]:
    """Of ``nodes``, those that run (not skip) on ``channel``."""
    return {k: n for k, n in nodes.items() if n.runs_on(channel)}


@pytest.fixture(scope="module")
def citas() -> Flow:
    return load_all_flows()["citas"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_target_person_with_no_slot_can_file_a_case(citas: Flow, channel: str) -> None:
    after = reachable(citas, channel, "no_slots_route", segment="target")
    assert FILE in after
    ends = {n.id for n in after.values() if isinstance(n, HangupNode) and n.runs_on(channel)}
    suffix = "" if channel == "voice" else "_chat"
    assert {f"case_filed{suffix}", f"case_open{suffix}"} <= ends


WIDENED = ("widen_search", "outcomes.tried")
DECLINED_TRIED = ("declined_case_check", "outcomes.tried")


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_case_without_consent(citas: Flow, channel: str) -> None:
    assert FILE not in reachable(citas, channel, cuts=(("case_consent", "options.1"),))


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_case_without_the_search_rule_saying_tried(citas: Flow, channel: str) -> None:
    # Two ways in: the widened search (no slot left), the decline check (the
    # caller changed band and doctor); each alone reaches filing, neither: none.
    assert FILE in reachable(citas, channel, cuts=(WIDENED,))
    assert FILE in reachable(citas, channel, cuts=(DECLINED_TRIED,))
    assert FILE not in reachable(citas, channel, cuts=(WIDENED, DECLINED_TRIED))


def test_both_ways_in_are_the_one_search_rule(citas: Flow) -> None:
    widen = citas.node("widen_search")
    declined = citas.node("declined_case_check")
    assert isinstance(widen, ActionNode) and isinstance(declined, ActionNode)
    assert declined.action == widen.action == "widen_search"
    assert declined.params == {"after": "declined"}
    assert widen.outcomes["found"] == "offer_slot"


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("segment", ["non_target", "unknown"])
def test_a_non_target_person_never_reaches_a_case(citas: Flow, channel: str, segment: str) -> None:
    nodes = reachable(citas, channel, segment=segment)
    assert "case_offer" not in nodes and FILE not in nodes
    assert "agent_non_target" in nodes  # they still go to the agents


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_booking_service_down_files_no_case(citas: Flow, channel: str) -> None:
    assert FILE not in reachable(citas, channel, "booking_down_route")


def test_a_site_closed_for_phone_booking_files_no_case_on_the_phone(citas: Flow) -> None:
    eligibility = citas.node("eligibility")
    assert isinstance(eligibility, ActionNode)
    closed = eligibility.outcomes["target_digital"]
    assert FILE not in reachable(citas, "voice", closed)
    assert FILE in reachable(citas, "chat", closed)  # the chat books, and may file


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_new_search_first_hears_an_open_case(citas: Flow, channel: str) -> None:
    none, failed = ("open_case_check", "outcomes.none"), ("open_case_check", "on_failure")
    assert "find_slot" in reachable(citas, channel, cuts=(none,))  # the case desk down: search
    assert "find_slot" not in reachable(citas, channel, cuts=(none, failed))
    check = citas.node("open_case_check")
    assert isinstance(check, ActionNode)
    opened = check.outcomes["open"]
    assert reachable(citas, channel, opened).keys() & {"case_open", "case_open_chat"}


def test_the_phone_keeps_the_whatsapp_redirect_and_the_chat_its_neutral_ending(
    citas: Flow,
) -> None:
    offer = citas.node("case_offer")
    assert isinstance(offer, MenuNode)
    for target in (offer.options["2"].next, offer.on_failure):
        voice = runs(reachable(citas, "voice", target), "voice")
        chat = runs(reachable(citas, "chat", target), "chat")
        assert "whatsapp_redirect" in voice and FILE not in voice
        assert "chat_not_booked" in chat and "whatsapp_redirect" not in chat
    no_consent = citas.node("case_consent")
    assert isinstance(no_consent, MenuNode)
    assert "whatsapp_redirect" in reachable(citas, "voice", no_consent.options["2"].next)


def test_the_phone_never_asks_to_type_nor_shows_the_email(citas: Flow) -> None:
    voice = runs(reachable(citas, "voice"), "voice")
    assert not [n for n in voice.values() if isinstance(n, AskTextNode)]
    shown = [
        n.id
        for n in voice.values()
        for part in getattr(n, "prompts", ())
        if "email_masked_media" in part.value
    ]
    assert shown == []
    chat = runs(reachable(citas, "chat"), "chat")
    assert [n.id for n in chat.values() if isinstance(n, AskTextNode)] == ["case_ask_email"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_key_that_files_was_pressed_after_its_question(citas: Flow, channel: str) -> None:
    nodes = runs(reachable(citas, channel), channel)
    into_file = [
        n
        for n in nodes.values()
        if n.asks and any(t == FILE for _, t in n.own_targets())  # type: ignore[attr-defined]
    ]
    assert into_file
    assert all(getattr(n, "type_ahead", True) is False for n in into_file)
