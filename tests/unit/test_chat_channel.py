"""The chat channel (``ivr.chat.channel``): a question without a reply is sent and
pauses the dialogue; with one, the reply is read; commands and media that are
not answers each take their own path (issue 10 §3)."""

from __future__ import annotations

import pytest

from ivr.channel import (
    AwaitingReply,
    CallTransferred,
    Choice,
    DigitRequest,
    HandOff,
    Phrase,
    ReturnToMenu,
)
from ivr.chat.channel import AgentAsked, ChatChannel, Inbound
from ivr.chat.render import Buttons, ListMenu, Text

TEXTS = {
    "ask_service": "¿Qué servicio necesita?",
    "svc_mg": "Medicina general",
    "svc_ped": "Pediatría",
    "ask_document": "Escriba su número de documento.",
    "chat_unsupported_media": "Por ahora solo leo texto.",
    "chat_handoff": "Un asesor le responderá.",
    "chat_list_button": "Ver opciones",
}
MENU = [Choice("1", "svc_mg"), Choice("2", "svc_ped")]
PROMPT = [Phrase("prompt", "ask_service")]
DOC = DigitRequest(min_digits=5, max_digits=12)


def channel(reply: Inbound | None = None) -> ChatChannel:
    return ChatChannel("conv-1", "573001234567", TEXTS, reply=reply)


async def test_a_question_without_a_reply_is_sent_as_buttons_and_pauses() -> None:
    chat = channel()
    with pytest.raises(AwaitingReply):
        await chat.choose(PROMPT, MENU, DigitRequest())
    (message,) = chat.outgoing
    assert isinstance(message, Buttons)
    assert [b.title for b in message.buttons] == ["Medicina general", "Pediatría"]
    assert message.body == "¿Qué servicio necesita?"


@pytest.mark.parametrize(
    ("reply", "key"),
    [
        (Inbound("Pediatría", reply_id="2", kind="interactive"), "2"),
        (Inbound("2"), "2"),
        (Inbound("dos"), "2"),
        (Inbound("medicina genral"), "1"),
        (Inbound("no sé"), ""),
        (Inbound("7"), ""),
    ],
)
async def test_the_pending_reply_answers_the_question_once(reply: Inbound, key: str) -> None:
    chat = channel(reply)
    result = await chat.choose(PROMPT, MENU, DigitRequest())
    assert result.digits == key and chat.outgoing == []
    with pytest.raises(AwaitingReply):  # asked again (a retry): the reply is used up
        await chat.choose(PROMPT, MENU, DigitRequest())


@pytest.mark.parametrize(
    ("text", "raised"),
    [
        ("0", ReturnToMenu),
        ("menú", ReturnToMenu),
        ("asesor", AgentAsked),
        ("hablar con un asesor", AgentAsked),
    ],
)
async def test_commands_leave_the_question(text: str, raised: type[Exception]) -> None:
    with pytest.raises(raised):
        await channel(Inbound(text)).choose(PROMPT, MENU, DigitRequest())
    with pytest.raises(raised):
        await channel(Inbound(text)).ask([Phrase("prompt", "ask_document")], DOC)


@pytest.mark.parametrize("ask", [True, False])
async def test_media_gets_a_polite_text_and_the_same_question(ask: bool) -> None:
    chat = channel(Inbound("", kind="unsupported"))
    with pytest.raises(AwaitingReply):
        if ask:
            await chat.ask([Phrase("prompt", "ask_document")], DOC)
        else:
            await chat.choose(PROMPT, MENU, DigitRequest())
    polite, again = chat.outgoing
    assert polite == Text("Por ahora solo leo texto.")
    assert again == Text("Escriba su número de documento.") if ask else isinstance(again, Buttons)


@pytest.mark.parametrize(
    ("text", "digits"),
    [("1.023.456.789", "1023456789"), ("1010101010", "1010101010"), ("CC abc", ""), ("12", "")],
)
async def test_a_document_is_read_from_text(text: str, digits: str) -> None:
    result = await channel(Inbound(text)).ask([Phrase("prompt", "ask_document")], DOC)
    assert result.digits == digits


@pytest.mark.parametrize(
    "text",
    [
        "me llamo María Pérez, vivo en la calle 45 # 12-30",
        "mi cédula es 1010101010 y la de mi hijo",
        "x" * 4096,
    ],
)
async def test_a_reply_that_is_no_document_leaves_its_words_out_of_the_log(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the review: the whole reply went into the log, numbers masked but
    # names and addresses kept. Only its length is logged now.
    caplog.set_level("DEBUG", logger="ivr.chat.channel")
    result = await channel(Inbound(text)).ask([Phrase("prompt", "ask_document")], DOC)
    assert result.ended_by == "invalid"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"a reply of {len(text)} characters" in logged
    for word in ("María", "calle", "1010101010", "hijo", "xxxx"):
        assert word not in logged


async def test_many_options_are_a_list() -> None:
    choices = [Choice(str(k), f"Opción {k}") for k in range(1, 6)]
    chat = channel()
    with pytest.raises(AwaitingReply):
        await chat.choose(PROMPT, choices, DigitRequest())
    assert isinstance(chat.outgoing[0], ListMenu)


async def test_hand_off_says_so_first_and_leaves_the_bot() -> None:
    chat = channel()
    handoff = HandOff("chat-agents", "asked", {"segment": "target"})
    with pytest.raises(CallTransferred):
        await chat.hand_off(handoff)
    assert chat.outgoing == [Text("Un asesor le responderá.")]
    assert chat.handed_off == handoff
    assert chat.caller_number == "+573001234567"


def test_the_shipped_prompts_have_every_text_the_assistant_sends_itself() -> None:
    from ivr.chat.runner import missing_prompts
    from ivr.prompts import load_prompt_texts
    from ivr.settings import REPO_ROOT

    texts = {
        p: t.text for p, t in load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml").items()
    }
    assert missing_prompts(texts) == []
    for prompt_id in ("chat_expired", "chat_handoff", "chat_unsupported_media"):
        assert missing_prompts({k: v for k, v in texts.items() if k != prompt_id}) == [prompt_id]
