"""The chat channel: the flow's dialogue as WhatsApp messages (issue 10 §3).

A ``ChatChannel`` lives for one turn: one inbound message of one conversation.
What the flow says is rendered (``ivr.chat.render``) and queued in
``outgoing``; the runner (``ivr.chat.runner``) stores it in the durable outbox
after the turn. A question (``choose``, ``ask``) is answered by the turn's
inbound message when it has not been used yet (the conversation was suspended
at that question); otherwise the question is queued and ``AwaitingReply``
pauses the dialogue until the next message.

A reply that is not an answer:
- "0" / "menú" (``ivr.chat.replies.MainMenu``): ``ReturnToMenu``: the runner
  starts the flow's main menu;
- "asesor" (``Agent``): ``AgentAsked``: the runner hands the conversation to
  a person, with the flow's context;
- audio, an image, a sticker, a location... (``Inbound.kind == "unsupported"``):
  the polite text ``chat_unsupported_media`` and the same question again, which
  costs the person no attempt;
- anything else the question cannot read: the empty answer, so the flow's own
  retry rules apply (its invalid-input prompt, then the question again).

Prompt ids this channel sends by itself (``CHANNEL_PROMPTS``) have their text
in ``prompts/prompts.yaml`` (``# --- lina: chat channel ---``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ivr.channel import (
    AwaitingReply,
    CallTransferred,
    Choice,
    DigitRequest,
    DigitResult,
    HandOff,
    Phrase,
    ReturnToMenu,
    TextRequest,
)
from ivr.chat.render import LIST_BUTTON_PROMPT, Message, Text, chat_text, render_menu
from ivr.chat.replies import (
    Agent,
    Digits,
    MainMenu,
    NoMatch,
    Picked,
    Typed,
    read_choice,
    read_digits,
    read_text,
)

logger = logging.getLogger(__name__)

UNSUPPORTED_PROMPT = "chat_unsupported_media"
HANDOFF_PROMPT = "chat_handoff"
AGAIN_PROMPT = "chat_answer_again"
CHANNEL_PROMPTS = (UNSUPPORTED_PROMPT, HANDOFF_PROMPT, AGAIN_PROMPT, LIST_BUTTON_PROMPT)
DEFAULT_LIST_BUTTON = "Ver opciones"

InboundKind = Literal["text", "interactive", "unsupported"]


class AgentAsked(Exception):
    """The person asked for a person ("asesor") instead of answering."""


@dataclass(frozen=True)
class Inbound:
    """The person's message a turn answers with: ``text`` (a typed text, or an
    interactive reply's title), ``reply_id`` (an interactive reply's id: the
    choice key), ``kind`` (``unsupported`` for media the bot cannot read)."""

    text: str
    reply_id: str | None = None
    kind: InboundKind = "text"


@dataclass
class ChatChannel:
    """One turn of one conversation. ``conversation_id`` names it in logs and
    records; ``wa_id`` is the contact's number as Meta sends it (E.164 digits
    without ``+``); ``texts`` maps prompt id -> chat text."""

    conversation_id: str
    wa_id: str
    texts: Mapping[str, str]
    reply: Inbound | None = None
    outgoing: list[Message] = field(default_factory=list)
    handed_off: HandOff | None = None
    ended: bool = False
    kind: Literal["chat"] = "chat"

    # --- identity (the engine's and the actions' view) ------------------------
    @property
    def call_id(self) -> str:
        return self.conversation_id

    @property
    def caller_number(self) -> str | None:
        return f"+{self.wa_id}" if self.wa_id else None

    # --- saying -----------------------------------------------------------------
    def text(self, phrases: Sequence[Phrase]) -> str:
        return chat_text(phrases, self.texts)

    def rendered(self, phrases: Sequence[Phrase]) -> list[str]:
        """What the record keeps of ``phrases``: the text sent (nothing when empty)."""
        body = self.text(phrases)
        return [body] if body else []

    async def answer(self) -> None:
        """Nothing to pick up in a chat."""

    async def annotate(self, context: Mapping[str, str]) -> None:
        """Nothing to keep: the ``HandOff`` carries the context to the agents' queue."""

    async def say(self, phrases: Sequence[Phrase], *, interruptible: bool = False) -> bool:
        body = self.text(phrases)
        if body:
            self.outgoing.append(Text(body))
        return False

    async def end(self, phrases: Sequence[Phrase] = ()) -> None:
        await self.say(phrases)
        self.ended = True

    # --- asking -----------------------------------------------------------------
    def _take_reply(self) -> Inbound | None:
        reply, self.reply = self.reply, None
        return reply

    def _choices(self, choices: Sequence[Choice]) -> list[Choice]:
        # A title may be a prompt id (the flow's `title: slot_accept`) or already text.
        return [
            Choice(c.key, self.texts.get(c.title, c.title), self.texts.get(c.description, ""))
            if c.title
            else c
            for c in choices
        ]

    def _menu(self, prompt: Sequence[Phrase], choices: Sequence[Choice]) -> Message:
        # A resumed question has no prompt (it was sent in an earlier turn): asked
        # again (after media), its options come under a short generic line.
        body = self.text(prompt) or self.texts.get(AGAIN_PROMPT, "")
        return render_menu(
            body,
            choices,
            list_button=self.texts.get(LIST_BUTTON_PROMPT, DEFAULT_LIST_BUTTON),
        )

    def _unsupported(self, question: Message) -> AwaitingReply:
        self.outgoing.append(Text(self.texts.get(UNSUPPORTED_PROMPT, "")))
        self.outgoing.append(question)
        return AwaitingReply()

    async def choose(
        self, prompt: Sequence[Phrase], choices: Sequence[Choice], request: DigitRequest
    ) -> DigitResult:
        """The key of the option the pending reply picks (``ended_by`` ``complete``),
        or ``""`` (``ended_by`` ``invalid``) when it picks none.

        Raises ``AwaitingReply`` (question queued), ``ReturnToMenu``, ``AgentAsked``."""
        shown = self._choices(choices)
        reply = self._take_reply()
        if reply is None:
            self.outgoing.append(self._menu(prompt, shown))
            raise AwaitingReply()
        if reply.kind == "unsupported":
            raise self._unsupported(self._menu(prompt, shown))
        match read_choice(reply.text, shown, reply_id=reply.reply_id):
            case Picked(choice=choice):
                return DigitResult(choice.key, "complete")
            case MainMenu():
                raise ReturnToMenu()
            case Agent():
                raise AgentAsked()
            case NoMatch(reason=reason):
                logger.info("conversation %s: no option read: %s", self.conversation_id, reason)
                return DigitResult("", "invalid")

    async def ask(self, prompt: Sequence[Phrase], request: DigitRequest) -> DigitResult:
        """Digits typed for a digits request (a document number; separators dropped),
        or ``""`` (``ended_by`` ``invalid``) when the reply is not such a number.

        Raises ``AwaitingReply``, ``ReturnToMenu``, ``AgentAsked``."""
        reply = self._take_reply()
        if reply is None:
            await self.say(prompt)
            raise AwaitingReply()
        if reply.kind == "unsupported":
            raise self._unsupported(Text(self.text(prompt) or self.texts.get(AGAIN_PROMPT, "")))
        match read_digits(reply.text, min_digits=request.min_digits, max_digits=request.max_digits):
            case Digits(value=value):
                return DigitResult(value, "complete")
            case MainMenu():
                raise ReturnToMenu()
            case Agent():
                raise AgentAsked()
            case NoMatch():
                # Only the reply's length: what a person writes where a document
                # number belongs (their name, an address) stays out of the log.
                logger.info(
                    "conversation %s: a reply of %d characters is not a number of %d-%d digits",
                    self.conversation_id,
                    len(reply.text),
                    request.min_digits,
                    request.max_digits,
                )
                return DigitResult("", "invalid")

    async def ask_text(self, prompt: Sequence[Phrase], request: TextRequest) -> DigitResult:
        """The text typed for a text question (``ivr.channel.TextQuestions``; an
        e-mail address), in ``digits``; ``""`` (``ended_by`` ``invalid``) when the
        reply is empty or too long.

        Raises ``AwaitingReply``, ``ReturnToMenu``, ``AgentAsked``."""
        reply = self._take_reply()
        if reply is None:
            await self.say(prompt)
            raise AwaitingReply()
        if reply.kind == "unsupported":
            raise self._unsupported(Text(self.text(prompt) or self.texts.get(AGAIN_PROMPT, "")))
        match read_text(reply.text, max_length=request.max_length):
            case Typed(value=value):
                return DigitResult(value, "complete")
            case MainMenu():
                raise ReturnToMenu()
            case Agent():
                raise AgentAsked()
            case NoMatch():
                logger.info(
                    "conversation %s: a reply of %d characters answers no text question",
                    self.conversation_id,
                    len(reply.text),
                )
                return DigitResult("", "invalid")

    def flush_digits(self) -> None:
        """Nothing typed ahead in a chat: each message answers the question before it."""

    # --- a person ---------------------------------------------------------------
    async def hand_off(self, hand_off: HandOff) -> None:
        """Tell the person that a person will answer in this chat, then leave the
        bot: the runner queues the conversation for agents with ``hand_off``'s
        context. Raises ``CallTransferred``."""
        await self.say([Phrase("prompt", HANDOFF_PROMPT)])
        self.handed_off = hand_off
        raise CallTransferred(hand_off.queue)
