"""Interpret a ``Flow`` on one call.

The engine walks nodes until a transfer or a hang-up; every step lands in the
call record. Actions (identification, eligibility, booking, SMS …) are Python
callables registered by name; they get the call state and return an outcome
name that the flow maps to the next node.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.channel import CallChannel, DigitRequest, DigitResult
from ivr.flow.model import (
    ActionNode,
    CollectNode,
    DecideNode,
    Flow,
    HangupNode,
    MenuNode,
    PlayNode,
    PromptPart,
    TransferNode,
)
from ivr.masking import mask_number
from ivr.store.records import CallRecord

logger = logging.getLogger(__name__)

AGENT_CONTEXT = "citas-agents"
MAX_STEPS = 500  # a loop in a flow must not keep a caller forever


@dataclass
class CallState:
    """What the flow knows about this call; actions read and write it."""

    channel: CallChannel
    record: CallRecord
    flow: Flow
    variables: dict[str, Any] = field(default_factory=dict)

    def set(self, name: str, value: Any) -> None:
        self.variables[name] = value
        self.record.variables[name] = value


Action = Callable[[CallState, Mapping[str, object]], Awaitable[str]]
FlagLookup = Callable[[str], object]  # a live operations flag's value now


def _no_flags(name: str) -> object:
    raise LookupError(f"flag {name} read, but the engine was built without flags")


def decision_value(value: object) -> str:
    """How a variable or flag compares with a decide node's cases."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class ActionFailed(Exception):
    """An action could not decide (a service failed); the flow takes on_failure."""


class FlowLoopError(RuntimeError):
    pass


def media_for(part: PromptPart, variables: Mapping[str, Any]) -> list[str]:
    if part.kind == "media":
        value = variables.get(part.variables[0] if part.variables else part.value, [])
        return [str(m) for m in value] if isinstance(value, list | tuple) else []
    value = part.value
    for name in part.variables:
        value = value.replace("{" + name + "}", str(variables.get(name, "")))
    if part.kind == "prompt":
        return [f"sound:citas/{value}"]
    return [f"{part.kind}:{value}"]


class FlowEngine:
    def __init__(
        self,
        actions: Mapping[str, Action],
        *,
        default_vdn: str,
        flags: FlagLookup = _no_flags,
    ) -> None:
        self.actions = actions
        self.default_vdn = default_vdn
        self.flags = flags

    async def run(self, state: CallState) -> None:
        """Run until the call is handed over or hung up (``CallEnded`` unwinds it)."""
        flow, channel = state.flow, state.channel
        if flow.answer:
            await channel.answer()
            state.record.step("answer")
        node_id = flow.start
        for _ in range(MAX_STEPS):
            node = flow.node(node_id)
            state.record.step("node", node=node.id)
            logger.debug("call %s: node %s", channel.call_id, node.id)
            match node:
                case PlayNode():
                    await self._play(state, node.prompts, barge_in=node.barge_in)
                    node_id = node.next
                case MenuNode():
                    node_id = await self._menu(state, node)
                case CollectNode():
                    node_id = await self._collect(state, node)
                case DecideNode():
                    node_id = self._decide(state, node)
                case ActionNode():
                    node_id = await self._action(state, node)
                case TransferNode():
                    await self._transfer(state, node)
                    return
                case HangupNode():
                    await self._play(state, node.prompts, barge_in=False)
                    state.record.outcome = node.outcome
                    state.record.step("hangup", outcome=node.outcome)
                    await channel.hangup()
                    return
        raise FlowLoopError(f"flow {flow.name} ran {MAX_STEPS} steps without ending")

    def _decide(self, state: CallState, node: DecideNode) -> str:
        if node.flag is not None:
            value = decision_value(self.flags(node.flag))
            target = node.cases.get(value, node.default)
            state.record.step("decision", flag=node.flag, value=value, next=target)
            return target
        value = decision_value(state.variables.get(node.variable))
        target = node.cases.get(value, node.default)
        state.record.step("decision", variable=node.variable, value=value, next=target)
        return target

    async def _play(
        self, state: CallState, parts: tuple[PromptPart, ...], *, barge_in: bool
    ) -> bool:
        if not parts:
            return False
        media = [m for p in parts for m in media_for(p, state.variables)]
        if not media:
            return False
        state.record.step("prompt", media=media)
        interrupted = await state.channel.play(media, barge_in=barge_in)
        if interrupted:
            state.record.step("barge_in")
        return interrupted

    def _discard_typed_ahead(self, state: CallState, node: MenuNode | CollectNode) -> None:
        # A node without type-ahead hears only keys pressed after its prompt started.
        if not node.type_ahead:
            state.channel.flush_digits()

    async def _menu(self, state: CallState, node: MenuNode) -> str:
        self._discard_typed_ahead(state, node)
        request = DigitRequest(
            max_digits=1,
            first_digit_timeout=node.timeouts.first_digit,
            between_digits_timeout=node.timeouts.between_digits,
            total_timeout=node.timeouts.total,
        )
        for attempt in range(node.retries + 1):
            await self._play(state, node.prompts, barge_in=True)
            result = await state.channel.collect(request)
            self._record_digits(state, node.id, attempt, result)
            target = node.options.get(result.digits)
            if target is not None:
                if node.save_as:
                    state.set(node.save_as, result.digits)
                return target
            last = attempt == node.retries
            if not last:
                await self._play(
                    state,
                    node.no_input_prompts if result.no_input else node.invalid_prompts,
                    barge_in=True,
                )
        state.record.step("max_retries", node=node.id)
        return node.on_failure

    async def _collect(self, state: CallState, node: CollectNode) -> str:
        self._discard_typed_ahead(state, node)
        request = DigitRequest(
            max_digits=node.max_digits,
            min_digits=node.min_digits,
            terminator=node.terminator,
            first_digit_timeout=node.timeouts.first_digit,
            between_digits_timeout=node.timeouts.between_digits,
            total_timeout=node.timeouts.total,
        )
        for attempt in range(node.retries + 1):
            await self._play(state, node.prompts, barge_in=True)
            result = await state.channel.collect(request)
            self._record_digits(state, node.id, attempt, result, sensitive=node.sensitive)
            valid = (
                node.min_digits <= len(result.digits) <= node.max_digits and result.digits.isdigit()
            )
            if valid:
                if node.sensitive:
                    state.variables[node.save_as] = result.digits  # kept off the record
                else:
                    state.set(node.save_as, result.digits)
                return node.next
            if attempt < node.retries:
                await self._play(
                    state,
                    node.no_input_prompts if result.no_input else node.invalid_prompts,
                    barge_in=True,
                )
        state.record.step("max_retries", node=node.id)
        return node.on_failure

    def _record_digits(
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

    async def _action(self, state: CallState, node: ActionNode) -> str:
        action = self.actions[node.action]
        try:
            outcome = await action(state, node.params)
        except ActionFailed as exc:
            state.record.step("action", action=node.action, outcome="failed", error=str(exc))
            logger.warning("call %s: action %s failed: %s", state.channel.call_id, node.action, exc)
            return node.on_failure
        target = node.outcomes.get(outcome, node.on_failure)
        state.record.step("action", action=node.action, outcome=outcome, next=target)
        return target

    async def _transfer(self, state: CallState, node: TransferNode) -> None:
        vdn = node.vdn or str(
            state.variables.get("agent_vdn") or state.flow.agent_vdn or self.default_vdn
        )
        await self._play(state, node.prompts, barge_in=False)
        variables = {
            "__CITAS_REASON": node.reason,
            "__CITAS_SEGMENT": str(state.variables.get("segment", "unknown")),
        }
        for name in ("affiliate_id", "cups"):
            if state.variables.get(name):
                variables[f"__CITAS_{name.split('_')[0].upper()}"] = str(state.variables[name])
        await state.channel.set_variables(variables)
        state.record.outcome = "transferred"
        state.record.step("transfer", vdn=vdn, reason=node.reason)
        await state.channel.transfer(context=AGENT_CONTEXT, extension=vdn)
