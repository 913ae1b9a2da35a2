"""VoiceChannel over a fake ARI client and a real per-call event queue.

Events are built by ``parse_event`` from messages shaped like Asterisk 22's.
Timeouts are small deadlines; every await is bounded by ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from ivr import dtmf as dtmf_module
from ivr import voice
from ivr.ari import (
    AriConflict,
    AriError,
    AriNotFound,
    AriServerError,
    CallContext,
    Channel,
    ChannelDtmfReceived,
    Event,
    parse_event,
)
from ivr.channel import (
    CallerHungUp,
    CallTransferred,
    ChannelError,
    Choice,
    DigitRequest,
    DigitResult,
    HandOff,
    Phrase,
)
from ivr.line import LineVoice
from ivr.masking import mask_number
from ivr.voice import HANGUP_SETTLE_S, VoiceChannel
from tests.unit.lines import CITAS_VOICE

T = TypeVar("T")
CHANNEL_ID = "1700000000.1"
CHANNEL: dict[str, Any] = {
    "id": CHANNEL_ID,
    "name": "PJSIP/caller-00000001",
    "state": "Up",
    "caller": {"name": "", "number": "3001234567"},
    "connected": {"name": "", "number": ""},
    "dialplan": {"context": "citas-entry", "exten": "4440001", "priority": 5},
    "language": "es",
}


def message(type_: str, **fields: Any) -> Event:
    return parse_event(
        {
            "type": type_,
            "application": "citas-ivr",
            "timestamp": "2024-05-02T10:00:01.123-0500",
            "asterisk_id": "02:42:ac:11:00:02",
            **fields,
        }
    )


def dtmf(digit: str) -> Event:
    return message("ChannelDtmfReceived", digit=digit, duration_ms=120, channel=CHANNEL)


def finished(playback_id: str) -> Event:
    playback = {
        "id": playback_id,
        "media_uri": "sound:citas/smoke_welcome",
        "target_uri": f"channel:{CHANNEL_ID}",
        "language": "es",
        "state": "done",
    }
    return message("PlaybackFinished", playback=playback)


def stasis_end() -> Event:
    return message("StasisEnd", channel=CHANNEL)


def destroyed() -> Event:
    return message("ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=CHANNEL)


def hangup_request() -> Event:
    """Filtered out (ivr.ari.events.EVENT_FILTER); an Asterisk that refused the
    filter sends it before the StasisEnd."""
    return message("ChannelHangupRequest", cause=16, soft=False, channel=CHANNEL)


class FakeAri:
    """The AriClient calls VoiceChannel makes, recorded; ``on_play`` says what Asterisk sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.events: asyncio.Queue[Event] | None = None
        self.on_play: Callable[[str], list[Event]] = lambda pid: [finished(pid)]
        self.fail: dict[str, AriError] = {}
        self.last_playback_id = ""
        self.variables: dict[str, str] = {}  # the channel's, as set

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise self.fail[call[0]]

    async def play(self, channel_id: str, media: list[str], *, playback_id: str, lang: str) -> None:
        self._call("play", channel_id, tuple(media), lang)
        assert self.events is not None
        for event in self.on_play(playback_id):
            self.events.put_nowait(event)
        self.last_playback_id = playback_id

    async def stop_playback(self, playback_id: str) -> None:
        self._call("stop_playback", playback_id)

    async def answer(self, channel_id: str) -> None:
        self._call("answer", channel_id)

    async def hangup(self, channel_id: str) -> None:
        self._call("hangup", channel_id)

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        self._call("set_variable", channel_id, variable, value)
        self.variables[variable] = value

    async def get_variable(self, channel_id: str, variable: str) -> str:
        self._call("get_variable", channel_id, variable)
        if variable not in self.variables:  # Asterisk 22's answer for a variable never set
            raise AriNotFound(404, "GET", "/channels/x/variable", "Provided variable was not found")
        return self.variables[variable]

    async def continue_in_dialplan(
        self, channel_id: str, *, context: str, extension: str, priority: int
    ) -> None:
        self._call("continue_in_dialplan", channel_id, context, extension, priority)


def not_found(path: str) -> AriNotFound:
    return AriNotFound(404, "POST", path, "Channel not found")


@pytest.fixture
def ari() -> FakeAri:
    return FakeAri()


@pytest.fixture
def call(ari: FakeAri) -> VoiceChannel:
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=("smoke", "sip-1"), client=ari)  # type: ignore[arg-type]
    ari.events = ctx.events
    return VoiceChannel(ctx, line=CITAS_VOICE)


def queue_of(call: VoiceChannel) -> asyncio.Queue[Event]:
    return call.ctx.events


async def within(aw: Awaitable[T], seconds: float = 2.0) -> T:
    return await asyncio.wait_for(aw, seconds)


def request(**kw: Any) -> DigitRequest:
    values = {"first_digit_timeout": 2.0, "between_digits_timeout": 2.0, "total_timeout": 5.0}
    return DigitRequest(**{**values, **kw})


async def test_play_waits_for_its_own_playback_finished(call: VoiceChannel, ari: FakeAri) -> None:
    ari.on_play = lambda pid: [finished("another-playback"), finished(pid)]

    interrupted = await within(call.play(["sound:citas/smoke_welcome", "digits:7"], barge_in=True))

    assert interrupted is False
    # Both events were consumed: it did not stop at the other playback's end.
    assert queue_of(call).empty()
    assert ari.calls == [("play", CHANNEL_ID, ("sound:citas/smoke_welcome", "digits:7"), "es")]


async def test_barge_in_stops_the_prompt_and_keeps_the_key(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: [dtmf("5"), finished(pid)]

    interrupted = await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))
    result = await within(call.collect(request(max_digits=1)))

    assert interrupted is True
    assert ("stop_playback", ari.last_playback_id) in ari.calls
    assert result == DigitResult("5", "complete")


async def test_keys_typed_ahead_skip_the_next_barge_in_prompt(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: [dtmf("1"), finished(pid)]
    await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))
    plays_before = len([c for c in ari.calls if c[0] == "play"])

    assert await within(call.play(["sound:citas/goodbye"], barge_in=True)) is True
    assert len([c for c in ari.calls if c[0] == "play"]) == plays_before
    call.flush_digits()
    assert await within(call.collect(request(first_digit_timeout=0.05))) == DigitResult(
        "", "no_input"
    )


async def test_without_barge_in_a_key_is_discarded(call: VoiceChannel, ari: FakeAri) -> None:
    ari.on_play = lambda pid: [dtmf("5"), finished(pid)]

    interrupted = await within(call.play(["sound:citas/goodbye"], barge_in=False))
    result = await within(call.collect(request(first_digit_timeout=0.05)))

    assert interrupted is False
    assert not [c for c in ari.calls if c[0] == "stop_playback"]
    assert result == DigitResult("", "no_input")


async def test_a_playback_that_never_finishes_is_stopped(
    call: VoiceChannel, ari: FakeAri, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voice, "PLAYBACK_SAFETY_S", 0.05)
    ari.on_play = lambda pid: []

    assert await within(call.play(["sound:citas/goodbye"], barge_in=False)) is False
    assert ari.calls[-1] == ("stop_playback", ari.last_playback_id)


def typed(call: VoiceChannel, keys: str) -> None:
    for key in keys:
        queue_of(call).put_nowait(dtmf(key))


async def test_collect_ends_at_the_terminator(call: VoiceChannel) -> None:
    typed(call, "12#3")

    result = await within(call.collect(request(max_digits=8, terminator="#")))

    assert result == DigitResult("12", "terminator")
    assert queue_of(call).qsize() == 1  # "3" stays for the next question


async def test_collect_ends_at_max_digits(call: VoiceChannel) -> None:
    typed(call, "1234")

    result = await within(call.collect(request(max_digits=3)))

    assert result == DigitResult("123", "complete")


async def test_terminator_is_a_digit_when_the_request_has_none(call: VoiceChannel) -> None:
    typed(call, "1#")

    assert await within(call.collect(request(max_digits=2))) == DigitResult("1#", "complete")


async def test_silence_before_the_first_key_is_no_input(call: VoiceChannel) -> None:
    result = await within(call.collect(request(max_digits=4, first_digit_timeout=0.05)))

    assert result == DigitResult("", "no_input")
    assert result.no_input


async def test_silence_after_a_key_ends_by_between_digits(call: VoiceChannel) -> None:
    typed(call, "4")

    result = await within(call.collect(request(max_digits=4, between_digits_timeout=0.05)))

    assert result == DigitResult("4", "between_digits")
    assert not result.no_input


async def test_the_total_timeout_ends_a_slow_entry(call: VoiceChannel) -> None:
    typed(call, "4")

    result = await within(
        call.collect(request(max_digits=4, between_digits_timeout=5, total_timeout=0.1))
    )

    assert result == DigitResult("4", "total")


async def test_total_shorter_than_first_digit_is_still_no_input(call: VoiceChannel) -> None:
    result = await within(call.collect(request(first_digit_timeout=5, total_timeout=0.05)))

    assert result == DigitResult("", "no_input")


async def test_a_terminator_right_after_a_full_entry_is_dropped(call: VoiceChannel) -> None:
    # Issue 9: a document of the maximum length, then '#': the '#' is the document's.
    typed(call, "12#3")

    assert await within(call.collect(request(max_digits=2, terminator="#"))) == DigitResult(
        "12", "complete"
    )
    assert await within(call.collect(request(max_digits=1))) == DigitResult("3", "complete")


async def test_a_key_queued_before_a_node_without_type_ahead_is_dropped(
    call: VoiceChannel, ari: FakeAri
) -> None:
    # Pressed while the previous node's actions ran: still in the event queue at the flush.
    typed(call, "1")
    call.flush_digits()

    assert await within(call.play(["sound:citas/slot_options"], barge_in=True)) is False
    assert not [c for c in ari.calls if c[0] == "stop_playback"]
    assert await within(call.collect(request(first_digit_timeout=0.05))) == DigitResult(
        "", "no_input"
    )


async def test_without_type_ahead_a_key_as_the_prompt_starts_is_dropped(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: [dtmf("1"), finished(pid)]  # 0.2 s in, in the observation
    call.flush_digits()

    assert await within(call.play(["sound:citas/slot_options"], barge_in=True)) is False
    assert await within(call.collect(request(first_digit_timeout=0.05))) == DigitResult(
        "", "no_input"
    )


async def test_without_type_ahead_a_key_after_hearing_the_prompt_barges_in(
    call: VoiceChannel, ari: FakeAri
) -> None:
    def later(pid: str) -> list[Event]:
        # Reported REACTION_S + its 120 ms + a margin after the prompt started.
        loop = asyncio.get_running_loop()
        loop.call_later(dtmf_module.REACTION_S + 0.25, queue_of(call).put_nowait, dtmf("1"))
        loop.call_later(5.0, queue_of(call).put_nowait, finished(pid))
        return []

    ari.on_play = later
    call.flush_digits()

    assert await within(call.play(["sound:citas/slot_options"], barge_in=True)) is True
    assert ("stop_playback", ari.last_playback_id) in ari.calls
    assert await within(call.collect(request())) == DigitResult("1", "complete")


@pytest.mark.parametrize("ending", [stasis_end, destroyed])
async def test_hang_up_during_play_raises(
    call: VoiceChannel, ari: FakeAri, ending: Callable[[], Event]
) -> None:
    ari.on_play = lambda pid: [ending()]

    with pytest.raises(CallerHungUp):
        await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))
    # The call stays over: the next wait fails at once, with nothing queued.
    with pytest.raises(CallerHungUp):
        await within(call.collect(request()), 0.5)


@pytest.mark.parametrize("ending", [stasis_end, destroyed])
async def test_hang_up_during_collect_raises(
    call: VoiceChannel, ending: Callable[[], Event]
) -> None:
    typed(call, "1")
    queue_of(call).put_nowait(ending())

    with pytest.raises(CallerHungUp):
        await within(call.collect(request(max_digits=4)))


async def test_a_hangup_request_is_not_the_end_its_stasis_end_is(call: VoiceChannel) -> None:
    queue_of(call).put_nowait(hangup_request())
    typed(call, "1")

    assert await within(call.collect(request(max_digits=1))) == DigitResult("1", "complete")
    queue_of(call).put_nowait(hangup_request())
    queue_of(call).put_nowait(stasis_end())
    with pytest.raises(CallerHungUp):
        await within(call.collect(request(max_digits=4)))


async def test_channel_gone_on_play_is_a_hang_up(call: VoiceChannel, ari: FakeAri) -> None:
    ari.fail["play"] = not_found(f"/channels/{CHANNEL_ID}/play")

    with pytest.raises(CallerHungUp):
        await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))


def not_in_stasis(path: str) -> AriConflict:
    return AriConflict(409, "POST", path, "Channel not in Stasis application")


async def test_a_409_then_the_stasis_end_is_a_hang_up(call: VoiceChannel, ari: FakeAri) -> None:
    # The caller hung up as the request went out: Asterisk refuses it (409) and the
    # StasisEnd follows (the hang-up request itself is filtered out).
    ari.fail["play"] = not_in_stasis(f"/channels/{CHANNEL_ID}/play")
    asyncio.get_running_loop().call_later(0.05, call.ctx.gone.set)

    with pytest.raises(CallerHungUp):
        await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))


async def test_a_409_with_the_channel_still_in_stasis_is_a_channel_error(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.fail["play"] = not_in_stasis(f"/channels/{CHANNEL_ID}/play")
    started = time.monotonic()

    with pytest.raises(ChannelError, match=f"play failed on {CHANNEL_ID}"):
        await within(call.play(["sound:citas/smoke_welcome"], barge_in=True))
    assert time.monotonic() - started >= HANGUP_SETTLE_S  # it waited for a StasisEnd first


async def test_other_ari_errors_are_channel_errors(ari: FakeAri) -> None:
    ari.fail["answer"] = AriServerError(500, "POST", f"/channels/{CHANNEL_ID}/answer", "boom")
    ringing = Channel.from_json({**CHANNEL, "state": "Ring"})  # not answered in the dialplan
    call = VoiceChannel(CallContext(channel=ringing, args=(), client=ari), line=CITAS_VOICE)  # type: ignore[arg-type]

    with pytest.raises(ChannelError, match=f"answer failed on {CHANNEL_ID}"):
        await within(call.answer())


async def test_transfer_continues_in_the_dialplan_then_raises(
    call: VoiceChannel, ari: FakeAri
) -> None:
    await within(call.set_variables({"__CITAS_REASON": "no-id", "__CITAS_SEGMENT": "unknown"}))

    with pytest.raises(CallTransferred, match="citas-agents/5550001"):
        await within(call.transfer(context="citas-agents", extension="5550001"))

    assert ari.calls == [
        ("set_variable", CHANNEL_ID, "__CITAS_REASON", "no-id"),
        ("set_variable", CHANNEL_ID, "__CITAS_SEGMENT", "unknown"),
        ("continue_in_dialplan", CHANNEL_ID, "citas-agents", "5550001", 1),
    ]


async def test_hangup_of_a_gone_channel_is_quiet_and_final(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.fail["hangup"] = AriNotFound(404, "DELETE", f"/channels/{CHANNEL_ID}", "gone")

    await within(call.hangup())

    with pytest.raises(CallerHungUp):
        await within(call.collect(request()), 0.5)


def test_call_id_and_caller_number(call: VoiceChannel) -> None:
    assert (call.call_id, call.caller_number) == (CHANNEL_ID, "3001234567")


@pytest.mark.parametrize(
    ("number", "masked"),
    [("3001234567", "*******567"), ("1234", "*234"), ("567", "567"), ("", "-"), (None, "-")],
)
def test_mask_number_keeps_only_the_last_three_digits(number: str | None, masked: str) -> None:
    assert mask_number(number) == masked


# --- the dialogue (ivr.channel) rendered as telephony --------------------------------------
SLOT = Phrase("spoken", "lunes 30 de noviembre", ("sound:digits/day-1", "sound:digits/30"))


@pytest.mark.parametrize(
    ("line", "phrases", "media"),
    [
        (CITAS_VOICE, [Phrase("prompt", "goodbye")], ["sound:citas/goodbye"]),
        (LineVoice("otra", "otra-agents", "OTRA_"), [Phrase("prompt", "goodbye")],
         ["sound:otra/goodbye"]),
        (CITAS_VOICE, [Phrase("number", "12")], ["number:12"]),
        (CITAS_VOICE, [Phrase("digits", "300")], ["digits:300"]),
        (CITAS_VOICE, [Phrase("sound", "beep")], ["sound:beep"]),
        (CITAS_VOICE, [SLOT], ["sound:digits/day-1", "sound:digits/30"]),
        (CITAS_VOICE, [Phrase("spoken", "sin audio")], []),
        (CITAS_VOICE, [Phrase("prompt", "slot_offer_intro"), SLOT, Phrase("prompt", "slot_options")],
         ["sound:citas/slot_offer_intro", "sound:digits/day-1", "sound:digits/30",
          "sound:citas/slot_options"]),
        (CITAS_VOICE, [], []),
    ],
)  # fmt: skip
def test_phrases_render_as_the_lines_media(
    ari: FakeAri, line: LineVoice, phrases: list[Phrase], media: list[str]
) -> None:
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=(), client=ari)  # type: ignore[arg-type]
    assert VoiceChannel(ctx, line=line).rendered(phrases) == media


async def test_say_plays_the_rendered_phrases_and_nothing_for_none(
    call: VoiceChannel, ari: FakeAri
) -> None:
    assert await within(call.say([Phrase("spoken", "sin audio")], interruptible=True)) is False
    assert ari.calls == []  # nothing to hear: no playback at all

    await within(
        call.say([Phrase("prompt", "goodbye"), Phrase("digits", "7")], interruptible=False)
    )

    assert ari.calls == [("play", CHANNEL_ID, ("sound:citas/goodbye", "digits:7"), "es")]


async def test_choose_plays_the_prompt_with_barge_in_then_takes_the_key(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: [dtmf("2"), finished(pid)]

    result = await within(
        call.choose([Phrase("prompt", "ask_service")], [Choice("1", "Medicina"), Choice("2", "Odonto")],
                    request(max_digits=1))
    )  # fmt: skip

    assert result == DigitResult("2", "complete")
    assert ari.calls[0] == ("play", CHANNEL_ID, ("sound:citas/ask_service",), "es")
    assert ("stop_playback", ari.last_playback_id) in ari.calls


async def test_ask_collects_digits_after_the_prompt(call: VoiceChannel, ari: FakeAri) -> None:
    ari.on_play = lambda pid: [finished(pid), dtmf("4"), dtmf("2"), dtmf("#")]

    result = await within(
        call.ask([Phrase("prompt", "ask_document")], request(max_digits=8, terminator="#"))
    )

    assert result == DigitResult("42", "terminator")


@pytest.mark.parametrize("line", [CITAS_VOICE, LineVoice("otra", "otra-agents", "OTRA_")])
async def test_hand_off_sets_the_lines_variables_then_continues_in_its_agent_context(
    ari: FakeAri, line: LineVoice
) -> None:
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=(), client=ari)  # type: ignore[arg-type]
    ari.events = ctx.events
    call = VoiceChannel(ctx, line=line)
    context = {"segment": "target", "affiliate": "1010101010", "cups": "890201"}

    with pytest.raises(CallTransferred, match=f"{line.agent_context}/5550001"):
        await within(call.hand_off(HandOff("5550001", "non-target", context)))

    p = line.variable_prefix
    assert ari.calls == [
        ("set_variable", CHANNEL_ID, f"__{p}SEGMENT", "target"),
        ("set_variable", CHANNEL_ID, f"__{p}AFFILIATE", "1010101010"),
        ("set_variable", CHANNEL_ID, f"__{p}CUPS", "890201"),
        ("set_variable", CHANNEL_ID, f"__{p}REASON", "non-target"),
        ("continue_in_dialplan", CHANNEL_ID, line.agent_context, "5550001", 1),
    ]


async def test_annotate_keeps_the_context_in_one_variable_in_one_request(
    call: VoiceChannel, ari: FakeAri
) -> None:
    await within(call.annotate({"segment": "target", "affiliate": "1010101010", "cups": "890201"}))

    # One request however many keys (citas' eligibility: three), not inherited.
    assert ari.calls == [
        ("set_variable", CHANNEL_ID, "CITAS_CONTEXT",
         "affiliate=1010101010&cups=890201&segment=target"),
    ]  # fmt: skip
    # A later annotate keeps the earlier keys; a key told again takes its new value.
    await within(call.annotate({"segment": "non_target", "reason_hint": "a&b=c,d|e"}))
    assert ari.calls[-1][2:] == (
        "CITAS_CONTEXT",
        "affiliate=1010101010&cups=890201&reason_hint=a%26b%3Dc%2Cd%7Ce&segment=non_target",
    )
    assert await within(call.annotated()) == {
        "affiliate": "1010101010",
        "cups": "890201",
        "reason_hint": "a&b=c,d|e",
        "segment": "non_target",
    }


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"segment": "target"},
        {"segment": "", "affiliate": "CC 1.010.101.010"},
        {"a": '=&%+ ,|;ñáé"', "b": "x" * 300},
    ],
)
def test_the_context_variable_reads_back_as_it_was_set(context: dict[str, str]) -> None:
    assert voice.decode_context(voice.encode_context(context)) == context


async def test_annotated_is_empty_when_nothing_was_annotated_or_it_cannot_be_read(
    call: VoiceChannel, ari: FakeAri
) -> None:
    assert await within(call.annotated()) == {}  # 404: never set
    ari.variables["CITAS_CONTEXT"] = "segment=target"
    ari.fail["get_variable"] = AriServerError(500, "GET", "/channels/x/variable", "Internal")
    assert await within(call.annotated()) == {}  # best effort: the rescue goes on
    del ari.fail["get_variable"]
    assert await within(call.annotated()) == {"segment": "target"}


async def test_annotated_puts_this_controllers_own_context_over_the_channels(
    call: VoiceChannel, ari: FakeAri
) -> None:
    """A later annotate whose request failed still counts; a dead controller's keys
    this one never told are kept; an unreadable channel gives this one's own."""
    ari.variables["CITAS_CONTEXT"] = "affiliate=1010101010&segment=target"
    ari.fail["set_variable"] = AriServerError(500, "POST", "/channels/x/variable", "Internal")
    with pytest.raises(ChannelError):
        await within(call.annotate({"segment": "non_target", "cups": "890201"}))
    assert await within(call.annotated()) == {
        "affiliate": "1010101010", "segment": "non_target", "cups": "890201",
    }  # fmt: skip
    ari.fail["get_variable"] = AriServerError(500, "GET", "/channels/x/variable", "Internal")
    assert await within(call.annotated()) == {"segment": "non_target", "cups": "890201"}


async def test_annotated_gives_up_on_a_read_that_does_not_answer(
    call: VoiceChannel, ari: FakeAri, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voice, "READ_BACK_S", 0.05)
    never = asyncio.Event()

    async def hung(channel_id: str, variable: str) -> str:
        await never.wait()
        return ""

    monkeypatch.setattr(ari, "get_variable", hung)
    assert await within(call.annotated(), 1.0) == {}  # not the client's own 5 s timeout


async def test_end_says_the_phrases_without_barge_in_then_hangs_up(
    call: VoiceChannel, ari: FakeAri
) -> None:
    ari.on_play = lambda pid: [dtmf("1"), finished(pid)]

    await within(call.end([Phrase("prompt", "goodbye")]))

    assert ari.calls == [
        ("play", CHANNEL_ID, ("sound:citas/goodbye",), "es"),
        ("hangup", CHANNEL_ID),
    ]
    assert call.kind == "voice"


@pytest.mark.parametrize(("state", "requests"), [("Up", []), ("Ring", [("answer", CHANNEL_ID)])])
async def test_answer_sends_a_request_only_for_a_channel_not_yet_up(
    ari: FakeAri, state: str, requests: list[tuple[str, str]]
) -> None:
    # Up: the dialplan answered before Stasis() (extensions.conf, [citas-ivr]).
    ctx = CallContext(channel=Channel.from_json({**CHANNEL, "state": state}), args=(), client=ari)  # type: ignore[arg-type]
    await within(VoiceChannel(ctx, line=CITAS_VOICE).answer())

    assert ari.calls == requests


class SlowVariables(FakeAri):
    """set_variable requests that finish only when the test says: how many are in
    flight at once shows whether they went out together."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.in_flight = 0
        self.most_in_flight = 0
        self.all_sent = asyncio.Event()  # ``expected`` requests in flight at once
        self.release = asyncio.Event()

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight == self.expected:
            self.all_sent.set()
        await self.release.wait()
        self.in_flight -= 1
        await super().set_variable(channel_id, variable, value)


@pytest.mark.parametrize("count", [1, 2, 4, 9])
async def test_variables_go_out_together_and_the_transfer_waits_for_all(count: int) -> None:
    ari = SlowVariables(count)
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=(), client=ari)  # type: ignore[arg-type]
    call = VoiceChannel(ctx, line=CITAS_VOICE)
    context = {f"k{i}": str(i) for i in range(count - 1)}  # + the reason
    hand_off = asyncio.create_task(call.hand_off(HandOff("5550001", "non-target", context)))

    await within(ari.all_sent.wait())
    assert ari.calls == []  # nothing continued while a variable was still being set
    ari.release.set()
    with pytest.raises(CallTransferred):
        await within(hand_off)

    assert ari.most_in_flight == count
    assert len(ari.calls) == count + 1 and ari.calls[-1][0] == "continue_in_dialplan"


async def test_a_failed_variable_is_raised_after_the_others_were_sent(ari: FakeAri) -> None:
    ari.fail["set_variable"] = not_found("/channels/x/variable")
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=(), client=ari)  # type: ignore[arg-type]
    call = VoiceChannel(ctx, line=CITAS_VOICE)

    with pytest.raises(CallerHungUp):
        await within(call.set_variables({"__CITAS_SEGMENT": "target", "__CITAS_CUPS": "890201",
                                         "__CITAS_REASON": "x"}))  # fmt: skip

    assert [c[0] for c in ari.calls] == ["set_variable"] * 3  # each was tried


async def test_an_event_already_queued_is_taken_even_when_the_wait_is_over(
    call: VoiceChannel,
) -> None:
    # A key that reached the controller before the entry's time ran out is the
    # caller's, even when the call's task gets to it only at the deadline.
    queue_of(call).put_nowait(dtmf("7"))
    ev = await within(call._next_event(0.0))
    assert isinstance(ev, ChannelDtmfReceived) and ev.digit == "7"
    ev = await within(call._next_event(-1.0))  # nothing queued and no time left
    assert ev is None
    loop = asyncio.get_running_loop()
    asked = loop.time()
    assert await within(call._next_event(0.05)) is None  # waits its time, then None
    assert loop.time() - asked >= 0.04
