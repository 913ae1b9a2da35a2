"""The escalation call: ARI originate into our own Stasis app, the summary, "marque 1".

Why ARI originate and not AMI's ``Originate`` (issue 11 §3 asks us to choose):

- the answered call lands in the controller's Stasis app, where the dialogue
  machinery every caller already gets does the work: ``VoiceChannel`` plays the
  prompts and Asterisk's digit sounds, collects DTMF by ``ivr.dtmf``'s rules
  (RFC 4733 and SIP INFO), sees a hang-up as ``CallerHungUp``. With AMI the
  answered leg would run a dialplan of its own (Playback/Read) and report the
  key back through a ``UserEvent``: a second dialogue language to test;
- one connection, one set of credentials, one reconnect path: the ARI
  websocket that ``ivr serve`` already keeps (AMI would be a second
  long-lived connection that only this feature uses);
- the outcome is exact: we pick the channel id (``esc-<attempt id>``, written
  in the attempt row before dialling, so a second originate of the same
  attempt is refused by Asterisk), the app receives the channel's events from
  its creation, so "answered" is the ``StasisStart`` and "not answered" is the
  ``ChannelDestroyed`` with its Q.850 cause (busy 17, no answer 19, …), and
  the key pressed is the ``ChannelDtmfReceived`` on that same channel. AMI's
  ``OriginateResponse`` gives the answer/no-answer part only, with a coarser
  reason code.

The call: ``PJSIP/<extension>`` (``dial``; point it elsewhere, e.g. a trunk,
with another template) rings up to ``ring_timeout_s``; once answered the
summary (``ivr.escalation.summary``) is said with barge-in and a key is awaited
``answer_timeout_s``; without a 1 it is said once more; then "gracias" (1) or
"llamaremos a la siguiente persona" and hang-up. Outcomes
(``escalation_attempts.result``): ``acknowledged``; ``not_acknowledged``
(answered, no 1, or hung up first); ``no_answer``/``busy``/``failed`` by the
hang-up cause (:func:`result_for_cause`); ``failed`` when Asterisk refuses the
originate or the call gives no news within its safety deadline.

A limit: the answered call must reach the controller that placed it (one
websocket per app, as today); a ``StasisStart`` for an escalation channel this
controller did not place is hung up, and its placer records ``failed`` when its
deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.ari import AriClient, AriError, CallContext, ChannelDestroyed, Event
from ivr.channel import CallEnded, CallerHungUp, ChannelError, DigitRequest, EventsLost, Phrase
from ivr.escalation.order import CallOrder, CallOutcome
from ivr.escalation.summary import GOODBYE, THANKS
from ivr.escalation.tables import ACKNOWLEDGED, BUSY, FAILED, NO_ANSWER, NOT_ACKNOWLEDGED
from ivr.voice import LineSounds, VoiceChannel

logger = logging.getLogger(__name__)

# The first Stasis argument of an escalation call (the others are flows' names).
ESCALATION_ARG = "escalation"
# Beyond the ring timeout: the summary said twice with the waits for a key.
DIALOGUE_SAFETY_S = 120.0

# Q.850 causes of a call that never entered Stasis (chan_pjsip maps SIP answers
# onto them: 486/600 -> 17, 603/403 -> 21, 480 -> 19, 408 -> 18).
BUSY_CAUSES = frozenset({17, 21})  # user busy; call rejected (the person declined)
NO_ANSWER_CAUSES = frozenset({0, 16, 18, 19})  # ring timeout (0, 16), no response, no answer


def result_for_cause(cause: int) -> str:
    """``busy``, ``no_answer`` or ``failed`` (anything else: no route, endpoint
    offline, network failure) for the hang-up cause of an unanswered call.

    >>> [result_for_cause(c) for c in (17, 19, 34)]
    ['busy', 'no_answer', 'failed']
    """
    if cause in BUSY_CAUSES:
        return BUSY
    if cause in NO_ANSWER_CAUSES:
        return NO_ANSWER
    return FAILED


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Pending:
    order: CallOrder
    outcome: asyncio.Future[CallOutcome]
    answered: bool = False


@dataclass
class AriEscalationCalls:
    """``monitor.EscalationCalls`` over ARI. Wire ``on_event`` before the call
    router (it sees the unanswered channels' ``ChannelDestroyed``) and send the
    ``StasisStart`` of an escalation channel (``handles``) to ``handle``."""

    client: AriClient
    app: str
    line: LineSounds
    known_prompts: Collection[str]
    dial: str = "PJSIP/{extension}"
    ring_timeout_s: int = 30
    answer_timeout_s: float = 8.0
    caller_id: str = '"Alerta de casos" <4440000>'
    clock: Callable[[], datetime] = utcnow
    _pending: dict[str, _Pending] = field(default_factory=dict)

    async def place(self, order: CallOrder) -> CallOutcome:
        pending = _Pending(order, asyncio.get_running_loop().create_future())
        self._pending[order.channel_id] = pending
        try:
            try:
                await self.client.originate(
                    order.channel_id, endpoint=self.dial.format(extension=order.extension),
                    app=self.app, app_args=(ESCALATION_ARG, order.attempt_id),
                    caller_id=self.caller_id, timeout_s=self.ring_timeout_s,
                )  # fmt: skip
            except AriError as exc:
                logger.warning("escalation %s: originate refused: %s", order.channel_id, exc)
                return CallOutcome(FAILED, detail=f"Asterisk no pudo llamar: {exc}")
            deadline = self.ring_timeout_s + DIALOGUE_SAFETY_S
            try:
                return await asyncio.wait_for(asyncio.shield(pending.outcome), deadline)
            except TimeoutError:
                logger.error("escalation %s: no news within %.0fs", order.channel_id, deadline)
                await self._hangup(order.channel_id)
                return CallOutcome(FAILED, detail="La llamada no dio noticias a tiempo.")
        except asyncio.CancelledError:
            await asyncio.shield(self._hangup(order.channel_id))
            raise
        finally:
            del self._pending[order.channel_id]

    async def on_event(self, ev: Event) -> None:
        """An unanswered call's end: its ``ChannelDestroyed`` before any ``StasisStart``."""
        if not isinstance(ev, ChannelDestroyed):
            return
        pending = self._pending.get(ev.channel_id)
        if pending is None or pending.answered or pending.outcome.done():
            return
        result = result_for_cause(ev.cause)
        pending.outcome.set_result(CallOutcome(result, detail=f"causa {ev.cause} ({ev.cause_txt})"))

    @staticmethod
    def handles(ctx: CallContext) -> bool:
        """Whether a new Stasis channel is an escalation call (its first argument)."""
        return bool(ctx.args) and ctx.args[0] == ESCALATION_ARG

    async def handle(self, ctx: CallContext) -> None:
        """The answered call: the summary, "marque 1", the outcome to ``place``."""
        pending = self._pending.get(ctx.channel_id)
        if pending is None or pending.outcome.done():
            logger.warning("escalation %s: not placed by this controller; hanging up", ctx.channel_id)
            await self._hangup(ctx.channel_id)
            return
        pending.answered = True
        outcome = await self._dialogue(ctx, pending.order, answered_at=self.clock())
        if not pending.outcome.done():
            pending.outcome.set_result(outcome)

    async def _dialogue(self, ctx: CallContext, order: CallOrder, *, answered_at: datetime) -> CallOutcome:
        channel = VoiceChannel(ctx, line=self.line)
        phrases = order.summary.phrases(self.line.sound, self.known_prompts)
        request = DigitRequest(max_digits=1, first_digit_timeout=self.answer_timeout_s)
        logger.info("escalation %s: answered by %s; saying %s", ctx.channel_id, order.person, order.summary.text)
        try:
            for _ in range(2):  # said, then repeated once
                result = await channel.ask(phrases, request)
                if result.digits == "1":
                    acknowledged_at = self.clock()
                    with contextlib.suppress(CallEnded, ChannelError):
                        await channel.end([Phrase("prompt", THANKS)])
                    return CallOutcome(ACKNOWLEDGED, answered_at, acknowledged_at, "Marcó 1.")
            with contextlib.suppress(CallEnded, ChannelError):
                await channel.end([Phrase("prompt", GOODBYE)])
            return CallOutcome(NOT_ACKNOWLEDGED, answered_at, detail="Contestó y no marcó 1.")
        except CallerHungUp:
            return CallOutcome(NOT_ACKNOWLEDGED, answered_at, detail="Colgó sin marcar 1.")
        except (ChannelError, EventsLost) as exc:
            await self._hangup(ctx.channel_id)
            return CallOutcome(NOT_ACKNOWLEDGED, answered_at, detail=f"Falla en la llamada: {exc}")

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.client.hangup(channel_id)
