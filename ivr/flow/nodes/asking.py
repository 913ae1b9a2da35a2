"""What the input kinds (menu, collect) share: ask, judge the answer, retry.

On each attempt the node's prompt is said with the question (interruptible);
an answer the node refuses is followed by its ``invalid_prompt`` (or its
``no_input_prompt`` when nothing came) and the next attempt; after
``retries`` more attempts the call goes to ``on_failure``. A chat question
without its reply yet raises ``Suspended`` at this attempt; resumed there, the
prompt is not said again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ivr.channel import AwaitingReply, DigitResult, Phrase
from ivr.flow.model import PromptPart, Suspended, Timeouts

if TYPE_CHECKING:
    from ivr.flow.model import CallState, Engine


class Asking(Protocol):
    """The fields an input node has (``MenuNode``, ``CollectNode``)."""

    @property
    def id(self) -> str: ...
    @property
    def prompts(self) -> tuple[PromptPart, ...]: ...
    @property
    def on_failure(self) -> str: ...
    @property
    def timeouts(self) -> Timeouts: ...
    @property
    def retries(self) -> int: ...
    @property
    def no_input_prompts(self) -> tuple[PromptPart, ...]: ...
    @property
    def invalid_prompts(self) -> tuple[PromptPart, ...]: ...
    @property
    def type_ahead(self) -> bool: ...


Question = Callable[[Sequence[Phrase]], Awaitable[DigitResult]]


async def ask_until_answered(
    engine: Engine,
    state: CallState,
    node: Asking,
    question: Question,
    accept: Callable[[DigitResult], str | None],
    *,
    sensitive: bool = False,
    shown: Callable[[str], str] | None = None,
) -> str:
    """Ask ``question`` (given the prompt's phrases) until ``accept`` returns the next
    node for an answer, or the retries run out (``node.on_failure``). Raises
    ``Suspended`` when the channel has no reply yet (``AwaitingReply``).

    The call record keeps each answer masked when ``sensitive`` (a document
    number: ``ivr.masking.mask_number``), or as ``shown`` gives it (a typed
    e-mail address: ``ivr.masking.mask_email``)."""
    resume = state.take_resume(node.id)
    first = 0 if resume is None else resume.attempt
    if resume is None and not node.type_ahead:
        # A node without type-ahead hears only keys pressed after its prompt started.
        state.channel.flush_digits()
    for attempt in range(first, node.retries + 1):
        prompt: list[Phrase] = []
        if resume is None or attempt > first:
            prompt = engine.phrases(state, node.prompts)
            engine.record_prompt(state, prompt)
        try:
            result = await question(prompt)
        except AwaitingReply:
            state.record.step("awaiting_reply", node=node.id, attempt=attempt + 1)
            raise Suspended(node.id, attempt) from None
        recorded = result if shown is None else DigitResult(shown(result.digits), result.ended_by)
        engine.record_digits(state, node.id, attempt, recorded, sensitive=sensitive)
        target = accept(result)
        if target is not None:
            return target
        if attempt < node.retries:
            again = node.no_input_prompts if result.no_input else node.invalid_prompts
            await engine.say(state, again, interruptible=True)
    state.record.step("max_retries", node=node.id)
    return node.on_failure
