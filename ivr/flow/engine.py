"""Interpret a ``Flow`` on one call or conversation.

The engine walks nodes until a hand-off or an end; every step lands in the
call record. What a node does is its kind's (``ivr.flow.nodes``: each node's
``run``); the engine resolves prompt parts to ``Phrase``s for the channel,
passes through nodes meant for another channel (``channels``/``skip_to``),
and turns a chat's pauses into ``Suspended`` and its "main menu" into a jump to
the flow's ``menu``. Actions (identification, eligibility, booking, SMS …) are
Python callables registered by name; they get the call state and return an
outcome name that the flow maps to the next node.

Suspend and resume (chat): when ``choose``/``ask`` raises
``ivr.channel.AwaitingReply`` the engine raises ``Suspended(node_id, attempt)``;
``run(state, resume=Resume(node_id, attempt))`` later enters that node at that
attempt without saying its prompt again and asks the channel, which has the
reply by then. Only ``state.variables`` survives in between.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ivr.channel import DigitResult, Phrase, ReturnToMenu
from ivr.flow.model import (
    Action,
    ActionFailed,
    CallState,
    FlagLookup,
    FlowLoopError,
    PromptPart,
    PromptTexts,
    Resume,
    Suspended,
    chat_text,
    decision_value,
    phrases_for,
)
from ivr.masking import mask_number

# The vocabulary actions and channels' runners use, defined with the node kinds
# (``ivr.flow.model``) and imported from here too.
__all__ = [
    "MAX_STEPS",
    "Action",
    "ActionFailed",
    "CallState",
    "FlagLookup",
    "FlowEngine",
    "FlowLoopError",
    "Resume",
    "Suspended",
    "decision_value",
    "phrases_for",
]

logger = logging.getLogger(__name__)

MAX_STEPS = 500  # a loop in a flow must not keep a caller forever


def _no_flags(name: str) -> object:
    raise LookupError(f"flag {name} read, but the engine was built without flags")


class FlowEngine:
    def __init__(
        self,
        actions: Mapping[str, Action],
        *,
        default_vdn: str,
        flags: FlagLookup = _no_flags,
        texts: Mapping[str, PromptTexts] | None = None,
    ) -> None:
        """``default_vdn``: where a transfer with no VDN of its own goes;
        ``texts``: the prompt catalogue (id -> voice and chat text), for the chat
        titles of menu options."""
        self.actions = actions
        self.default_vdn = default_vdn
        self.flags = flags
        self.texts: Mapping[str, PromptTexts] = texts or {}

    async def run(self, state: CallState, resume: Resume | None = None) -> None:
        """Run until the call is handed over or ended (``CallEnded`` unwinds it).

        Raises ``Suspended`` when a chat question waits for its reply; with
        ``resume``, starts at that question instead of the flow's start (no answer).
        Raises ``FlowLoopError`` after ``MAX_STEPS`` nodes, ``KeyError`` when
        ``resume`` names no input node of the flow.
        """
        flow, channel = state.flow, state.channel
        if resume is None:
            if flow.answer:
                await channel.answer()
                state.record.step("answer")
            node_id = flow.start
        else:
            if not flow.node(resume.node_id).asks:
                raise KeyError(f"{resume.node_id} of flow {flow.name} asks nothing to resume")
            state.resume = resume
            state.record.step("resume", node=resume.node_id, attempt=resume.attempt + 1)
            node_id = resume.node_id
        entered = resume is not None  # the resumed question was entered before its pause
        for _ in range(MAX_STEPS):
            node = flow.node(node_id)
            if not entered:
                state.record.step("node", node=node.id)
            entered = False
            logger.debug("call %s: node %s", channel.call_id, node.id)
            if not node.runs_on(channel.kind):
                assert node.skip_to is not None  # the loader's rule
                state.record.step("skip", channel=channel.kind, next=node.skip_to)
                node_id = node.skip_to
                continue
            try:
                next_id = await node.run(self, state)
            except ReturnToMenu:
                next_id = flow.menu or flow.start
                state.record.step("main_menu", next=next_id)
            finally:
                state.resume = None
            if next_id is None:
                return
            node_id = next_id
        raise FlowLoopError(f"flow {flow.name} ran {MAX_STEPS} steps without ending")

    # --- what node kinds share -------------------------------------------------------
    def phrases(self, state: CallState, parts: Sequence[PromptPart]) -> list[Phrase]:
        return [p for part in parts for p in phrases_for(part, state.variables)]

    def record_prompt(self, state: CallState, phrases: Sequence[Phrase]) -> bool:
        """Record what the person is told (as the channel renders it); False when
        that is nothing."""
        rendered = state.channel.rendered(phrases)
        if not rendered:
            return False
        state.record.step("prompt", media=rendered)
        return True

    async def say(
        self, state: CallState, parts: Sequence[PromptPart], *, interruptible: bool
    ) -> bool:
        """Say ``parts`` on the channel; True when the person interrupted."""
        phrases = self.phrases(state, parts)
        if not self.record_prompt(state, phrases):
            return False
        interrupted = await state.channel.say(phrases, interruptible=interruptible)
        if interrupted:
            state.record.step("barge_in")
        return interrupted

    def title(self, prompt_id: str) -> str:
        """The chat text of a prompt (a menu option's title); the id when the engine
        was given no catalogue."""
        prompt = self.texts.get(prompt_id)
        return chat_text(prompt) if prompt is not None else prompt_id

    def record_digits(
        self,
        state: CallState,
        node_id: str,
        attempt: int,
        result: DigitResult,
        *,
        sensitive: bool = False,
    ) -> None:
        digits = mask_number(result.digits) if sensitive and result.digits else result.digits
        state.record.step(
            "digits", node=node_id, attempt=attempt + 1, digits=digits, ended_by=result.ended_by
        )
