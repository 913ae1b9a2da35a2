"""The node kinds of a flow, one module each, registered in ``KINDS``.

A kind's module holds its dataclass (an ``ivr.flow.model.Node``), how the loader
builds it from YAML (``build``: the structure is checked before by
``ivr/schemas/flow.json``, where each kind has its sub-schema), where it can go
(``own_targets``) and what it does on a call (``run``). ``ivr.flow.loader`` builds
nodes by ``KINDS``, ``ivr.flow.model.targets`` and ``ivr.flow.engine`` use the
nodes' own methods: adding a kind is one module, one line here and its schema.
"""

from __future__ import annotations

from ivr.flow.nodes.action import ActionNode
from ivr.flow.nodes.ask_text import AskTextNode
from ivr.flow.nodes.collect import CollectNode
from ivr.flow.nodes.decide import DecideNode
from ivr.flow.nodes.hangup import HangupNode
from ivr.flow.nodes.menu import MenuNode, MenuOption
from ivr.flow.nodes.play import PlayNode
from ivr.flow.nodes.transfer import TransferNode

KINDS = {
    kind.kind: kind
    for kind in (
        PlayNode,
        MenuNode,
        CollectNode,
        AskTextNode,
        DecideNode,
        ActionNode,
        TransferNode,
        HangupNode,
    )
}

__all__ = [
    "KINDS",
    "ActionNode",
    "AskTextNode",
    "CollectNode",
    "DecideNode",
    "HangupNode",
    "MenuNode",
    "MenuOption",
    "PlayNode",
    "TransferNode",
]
