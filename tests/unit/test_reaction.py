"""ReactionTimer: DTMF in → next ARI command out, and how VoiceChannel feeds it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import reaction
from ivr.ari import CallContext, Channel
from ivr.reaction import ReactionTimer
from ivr.voice import VoiceChannel
from tests.unit.lines import CITAS_VOICE
from tests.unit.test_voice import CHANNEL, FakeAri, dtmf, finished, request


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_disabled_without_log_or_observer_records_nothing(tmp_path: Path) -> None:
    timer = ReactionTimer()
    assert not timer.enabled
    timer.dtmf_received("c1")
    timer.command_sent("c1", "play")
    assert not list(tmp_path.iterdir())


def test_from_env_reads_the_log_path(tmp_path: Path) -> None:
    assert not ReactionTimer.from_env({}).enabled
    timer = ReactionTimer.from_env({reaction.ENV_VAR: str(tmp_path / "r.jsonl")})
    assert timer.enabled


def test_reaction_and_response_samples(tmp_path: Path) -> None:
    clock = Clock()
    seen: list[float] = []
    log = tmp_path / "sub" / "r.jsonl"
    timer = ReactionTimer(log, observer=seen.append, clock=clock)
    timer.dtmf_received("c1")
    clock.now += 0.002
    timer.command_sent("c1", "stop playback")  # first command: the reaction
    clock.now += 0.010
    timer.command_sent("c1", "set variable")  # neither: not a response command
    clock.now += 0.020
    timer.command_sent("c1", "play")  # the response: the caller hears something
    timer.command_sent("c1", "play")  # nothing pending any more
    timer.close()
    samples = lines(log)
    assert [(s["kind"], s["command"]) for s in samples] == [
        ("reaction", "stop playback"),
        ("response", "play"),
    ]
    assert samples[0]["ms"] == pytest.approx(2.0)
    assert samples[1]["ms"] == pytest.approx(32.0)
    assert seen == [pytest.approx(0.002)]  # the observer gets reactions only, in seconds


def test_a_response_command_first_gives_both_samples(tmp_path: Path) -> None:
    clock = Clock()
    timer = ReactionTimer(tmp_path / "r.jsonl", clock=clock)
    timer.dtmf_received("c1")
    clock.now += 0.005
    timer.command_sent("c1", "continue")
    timer.close()
    assert [(s["kind"], s["ms"]) for s in lines(tmp_path / "r.jsonl")] == [
        ("reaction", 5.0),
        ("response", 5.0),
    ]


def test_the_latest_key_wins_and_channels_are_separate(tmp_path: Path) -> None:
    clock = Clock()
    timer = ReactionTimer(tmp_path / "r.jsonl", clock=clock)
    timer.dtmf_received("c1")
    timer.dtmf_received("c2")
    clock.now += 0.5
    timer.dtmf_received("c1")  # typed ahead: measured from the last key
    clock.now += 0.001
    timer.command_sent("c1", "play")
    clock.now += 0.001
    timer.command_sent("c2", "hangup")
    timer.close()
    got = {(s["channel"], s["kind"]): s["ms"] for s in lines(tmp_path / "r.jsonl")}
    assert got[("c1", "reaction")] == pytest.approx(1.0)
    assert got[("c2", "reaction")] == pytest.approx(502.0)


def test_discard_drops_the_pending_key(tmp_path: Path) -> None:
    timer = ReactionTimer(tmp_path / "r.jsonl")
    timer.dtmf_received("c1")
    timer.discard("c1")
    timer.command_sent("c1", "play")
    assert not (tmp_path / "r.jsonl").exists()


def test_asterisk_timestamp_gives_from_asterisk_ms(tmp_path: Path) -> None:
    timer = ReactionTimer(tmp_path / "r.jsonl")
    timer.dtmf_received("c1", "2024-05-02T10:00:01.123-0500")
    timer.command_sent("c1", "play")
    timer.close()
    sample = lines(tmp_path / "r.jsonl")[0]
    assert isinstance(sample["from_asterisk_ms"], float)  # a real date: a large figure
    timer = ReactionTimer(tmp_path / "s.jsonl")
    timer.dtmf_received("c1", "not a time")
    timer.command_sent("c1", "play")
    timer.close()
    assert "from_asterisk_ms" not in lines(tmp_path / "s.jsonl")[0]


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2024-05-02T10:00:01.123-0500", 1714662001.123),  # Asterisk's ARI timestamp
        ("2024-05-02T15:00:01.123+0000", 1714662001.123),
        ("2024-05-02T15:00:01.000+0000", 1714662001.0),
        ("2024-05-02T15:00:01.123", None),  # no offset: not read as local time
        ("not a time", None),
        ("", None),
    ],
)
def test_asterisk_timestamps_are_read_exactly(stamp: str, epoch: float | None) -> None:
    got = reaction._epoch(stamp)
    assert got == pytest.approx(epoch) if epoch is not None else got is None


def test_a_failing_observer_does_not_raise() -> None:
    def broken(_: float) -> None:
        raise RuntimeError("metrics down")

    timer = ReactionTimer(observer=broken)
    timer.dtmf_received("c1")
    timer.command_sent("c1", "play")  # logged, not raised


def test_set_observer_enables_and_disables() -> None:
    timer = ReactionTimer()
    seen: list[float] = []
    timer.set_observer(seen.append)
    assert timer.enabled
    timer.dtmf_received("c1")
    timer.command_sent("c1", "play")
    timer.set_observer(None)
    assert not timer.enabled
    assert len(seen) == 1


def test_unwritable_log_stops_logging(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    timer = ReactionTimer(blocker / "r.jsonl")  # its parent is a file
    timer.dtmf_received("c1")
    timer.command_sent("c1", "play")
    assert not timer.enabled


def test_stale_pending_keys_are_pruned() -> None:
    clock = Clock()
    timer = ReactionTimer(observer=lambda _: None, clock=clock)
    for i in range(reaction.MAX_PENDING + 1):
        timer.dtmf_received(f"c{i}")
    clock.now += reaction.STALE_S + 1
    timer.dtmf_received("fresh")
    assert list(timer._first) == ["fresh"]


def test_samples_leave_the_callers_path_and_reach_the_log_within_the_flush_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reaction, "FLUSH_EVERY_S", 1.0)
    log = tmp_path / "r.jsonl"
    timer = ReactionTimer(log)
    try:
        timer.dtmf_received("c1")
        timer.command_sent("c1", "play")
        assert log.read_bytes() == b""  # nothing written on the loop: kept for the flusher
        deadline = time.monotonic() + 5.0
        while not log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(s["kind"], s["command"]) for s in lines(log)] == [
            ("reaction", "play"),
            ("response", "play"),
        ]  # without a close: the bench reads the log while the controller runs
    finally:
        timer.close()


def test_timers_sharing_a_log_append_whole_lines(tmp_path: Path) -> None:
    """Two controllers (two timers, two O_APPEND files), four threads each: every
    line is one sample, none lost or cut."""
    log = tmp_path / "r.jsonl"
    timers = [ReactionTimer(log), ReactionTimer(log)]

    def keys(timer: ReactionTimer, worker: int) -> None:
        for i in range(300):
            channel = f"c{id(timer)}-{worker}-{i}-" + "x" * 200  # long lines
            timer.dtmf_received(channel)
            timer.command_sent(channel, "stop playback")
            if i % 50 == 0:
                time.sleep(0.01)  # let a flush fall between samples

    threads = [threading.Thread(target=keys, args=(t, w)) for t in timers for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for timer in timers:
        timer.close()
    samples = lines(log)  # a cut line would not parse
    assert len(samples) == 2 * 4 * 300
    assert len({s["channel"] for s in samples}) == len(samples)


def test_a_sample_after_a_close_opens_the_log_again(tmp_path: Path) -> None:
    timer = ReactionTimer(tmp_path / "r.jsonl")
    for channel in ("c1", "c2"):
        timer.dtmf_received(channel)
        timer.command_sent(channel, "stop playback")
        timer.close()
    assert [s["channel"] for s in lines(tmp_path / "r.jsonl")] == ["c1", "c2"]


# -- wired into VoiceChannel --------------------------------------------------------


@pytest.fixture
def timer(tmp_path: Path) -> Iterator[ReactionTimer]:
    t = ReactionTimer(tmp_path / "r.jsonl")
    yield t
    t.close()


def voice_call(ari: FakeAri, timer: ReactionTimer) -> VoiceChannel:
    ctx = CallContext(channel=Channel.from_json(CHANNEL), args=("smoke", "sip-1"), client=ari)  # type: ignore[arg-type]
    ari.events = ctx.events
    return VoiceChannel(ctx, line=CITAS_VOICE, reaction=timer)


def test_from_env_logs_to_the_file_named_and_feeds_the_observer(tmp_path: Path) -> None:
    seen: list[float] = []
    timer = ReactionTimer.from_env(
        {reaction.ENV_VAR: str(tmp_path / "r.jsonl")}, observer=seen.append
    )
    timer.dtmf_received("c1")
    timer.command_sent("c1", "stop playback")
    timer.close()
    assert len(seen) == 1 and lines(tmp_path / "r.jsonl")[0]["command"] == "stop playback"
    assert not ReactionTimer.from_env({}).enabled


async def test_barge_in_then_next_prompt(timer: ReactionTimer, tmp_path: Path) -> None:
    ari = FakeAri()
    ari.on_play = lambda pid: [dtmf("1")]  # a key during the prompt
    call = voice_call(ari, timer)
    assert await asyncio.wait_for(call.play(["sound:a"], barge_in=True), 2)
    ari.on_play = lambda pid: [finished(pid)]
    await asyncio.wait_for(call.play(["sound:b"], barge_in=False), 2)
    timer.close()
    got = [(s["kind"], s["command"]) for s in lines(tmp_path / "r.jsonl")]
    assert got == [("reaction", "stop playback"), ("response", "play")]


async def test_ignored_key_and_timeout_make_no_sample(timer: ReactionTimer, tmp_path: Path) -> None:
    ari = FakeAri()
    ari.on_play = lambda pid: [dtmf("5"), finished(pid)]  # a key during a no-barge-in prompt
    call = voice_call(ari, timer)
    await asyncio.wait_for(call.play(["sound:a"], barge_in=False), 2)
    ari.on_play = lambda pid: [finished(pid)]
    await asyncio.wait_for(call.play(["sound:b"], barge_in=False), 2)
    call.ctx.events.put_nowait(dtmf("7"))
    result = await asyncio.wait_for(
        call.collect(request(max_digits=3, between_digits_timeout=0.05)), 2
    )
    assert result.digits == "7"
    await asyncio.wait_for(call.play(["sound:c"], barge_in=False), 2)
    timer.close()
    assert not (tmp_path / "r.jsonl").exists()
