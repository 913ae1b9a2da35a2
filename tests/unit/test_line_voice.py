"""The line's voice identity (``voice:`` in line.yaml): loaded, checked, and used.

The kind of fault: a line's specific (its sounds directory, agents' context,
channel-variable prefix) written as a constant in platform code, or a value
the loader accepts that the platform cannot use. The shipped values are
today's behaviour and the dialplan's; the schema and ``LineVoice`` accept the
same forms; the controller's rescue, reject and reconnect read the line's
values (checked with a voice that is not citas').
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ivr.citas.line
import ivr.line
from ivr.ari.counters import AriCounters
from ivr.channel import QUEUE_KEY, CallTransferred, DigitRequest, DigitResult
from ivr.citas.line import CitasLine, citas_line
from ivr.citas.reference import CITAS_DIR, DEFAULT_VOICE, load_line, load_reference
from ivr.controller import Controller
from ivr.line import CONTEXT_RE, PREFIX_RE, SOUNDS_RE, LineVoice
from ivr.settings import REPO_ROOT, Settings
from ivr.voice import VoiceDialogue
from ivr.yamlsrc import ConfigError

SCHEMA = json.loads((REPO_ROOT / "ivr" / "schemas" / "line.json").read_text(encoding="utf-8"))
VOICE_SCHEMA = SCHEMA["properties"]["voice"]["properties"]
DIALPLAN = (REPO_ROOT / "dialplans" / "asterisk" / "extensions.conf").read_text(encoding="utf-8")
LINE_YAML = (CITAS_DIR / "line.yaml").read_text(encoding="utf-8")
OTHER = LineVoice(sounds="otra", agent_context="otra-agentes", variable_prefix="OTRA_")


@pytest.mark.parametrize("module", [ivr.line, ivr.citas.line])
def test_docstring_examples_run(module: Any) -> None:
    import doctest

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_the_shipped_voice_is_todays_and_the_dialplans() -> None:
    voice = load_reference().line.voice

    assert voice == DEFAULT_VOICE == LineVoice("citas", "citas-agents", "CITAS_")
    assert f"\n[{voice.agent_context}]\n" in DIALPLAN
    assert f"Playback({voice.sounds}/service_unavailable_agent)" in DIALPLAN
    for name in ("reason", "segment", "flow", "call_id"):
        assert f"Set({voice.variable(name)}=" in DIALPLAN, name


def without_voice(text: str) -> str:
    return text[: text.index("\nvoice:")] + "\n"


@pytest.mark.parametrize(
    ("voice_yaml", "expected"),
    [
        (None, DEFAULT_VOICE),
        ("voice: {}\n", DEFAULT_VOICE),
        ("voice: {sounds: otra}\n", LineVoice("otra", "citas-agents", "CITAS_")),
        ("voice: {agent_context: otra-agentes}\n", LineVoice("citas", "otra-agentes", "CITAS_")),
        ("voice: {variable_prefix: OTRA_}\n", LineVoice("citas", "citas-agents", "OTRA_")),
        (
            "voice: {sounds: otra, agent_context: otra-agentes, variable_prefix: OTRA_}\n",
            OTHER,
        ),
    ],
)
def test_each_voice_field_defaults_to_todays(
    tmp_path: Path, voice_yaml: str | None, expected: LineVoice
) -> None:
    path = tmp_path / "line.yaml"
    path.write_text(without_voice(LINE_YAML) + (voice_yaml or ""), encoding="utf-8")

    assert load_line(path).voice == expected


BAD = [
    ("sounds", "Citas", "must be a directory name"),
    ("sounds", "citas/prompts", "must be a directory name"),
    ("sounds", "", "must be a directory name"),
    ("agent_context", "citas agents", "must be a dialplan context name"),
    ("agent_context", "citas,agents", "must be a dialplan context name"),
    ("variable_prefix", "CITAS", "ending in _"),
    ("variable_prefix", "citas_", "ending in _"),
    ("variable_prefix", "_CITAS_", "ending in _"),
    ("color", "rojo", "unknown field"),
]


@pytest.mark.parametrize(("field", "value", "problem"), BAD)
def test_a_bad_voice_value_is_refused_naming_file_line_and_field(
    tmp_path: Path, field: str, value: str, problem: str
) -> None:
    path = tmp_path / "line.yaml"
    text = without_voice(LINE_YAML) + f'voice:\n  {field}: "{value}"\n'
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_line(path)

    lines = text.splitlines()
    assert caught.value.line == lines.index(f'  {field}: "{value}"') + 1
    assert caught.value.field == f"voice.{field}"
    assert problem in caught.value.problem


def test_the_schema_and_line_voice_accept_the_same_forms() -> None:
    assert VOICE_SCHEMA["sounds"]["pattern"] == SOUNDS_RE.pattern
    assert VOICE_SCHEMA["agent_context"]["pattern"] == CONTEXT_RE.pattern
    assert VOICE_SCHEMA["variable_prefix"]["pattern"] == PREFIX_RE.pattern
    defaults = {name: spec["default"] for name, spec in VOICE_SCHEMA.items()}
    assert LineVoice(**defaults) == DEFAULT_VOICE


@given(st.text(alphabet="aZz09_-/ .", max_size=8))
def test_line_voice_refuses_exactly_what_its_forms_refuse(word: str) -> None:
    for field, pattern in (
        ("sounds", SOUNDS_RE),
        ("agent_context", CONTEXT_RE),
        ("variable_prefix", PREFIX_RE),
    ):
        values = {
            "sounds": "citas",
            "agent_context": "citas-agents",
            "variable_prefix": "CITAS_",
            field: word,
        }
        if re.match(pattern, word):
            assert getattr(LineVoice(**values), field) == word
        else:
            with pytest.raises(ValueError, match=f"^{field} "):
                LineVoice(**values)


def test_the_citas_line_registers_its_flags_outcomes_and_commits() -> None:
    line = citas_line()

    assert line.name == "citas" and line.voice == DEFAULT_VOICE
    assert line.default_vdn == load_reference().line.vdn_default
    assert "incident_mode" in line.flag_registry() and "promo_audio" in line.flag_registry()
    assert set(line.commits) <= set(line.action_outcomes)


# --- the controller reads the line's values -----------------------------------------------------
class FakeClient:
    def __init__(self, variables: dict[str, str] | None = None) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.variables = variables or {}
        self.counters = AriCounters()  # the Controller hands them to its EventStream

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.log.append(("set", channel_id, name, value))

    async def continue_in_dialplan(self, channel_id: str, *, context: str, extension: str) -> None:
        self.log.append(("continue", channel_id, context, extension))

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self.log.append(("get", channel_id, name))
        return self.variables.get(name)


class FakeChannel(VoiceDialogue):
    """The voice dialogue (rendered by ``VoiceDialogue`` with ``voice``, as the
    controller's ``VoiceChannel`` is) over logged telephony primitives."""

    def __init__(self, voice: LineVoice) -> None:
        super().__init__(voice)
        self.log: list[tuple[Any, ...]] = []

    @property
    def call_id(self) -> str:
        return "chan-1"

    @property
    def caller_number(self) -> str | None:
        return None

    async def answer(self) -> None:
        self.log.append(("answer",))

    def flush_digits(self) -> None:
        self.log.append(("flush",))

    async def play(self, media: Sequence[str], *, barge_in: bool) -> bool:
        self.log.append(("play", *media))
        return True

    async def collect(self, request: DigitRequest) -> DigitResult:
        raise AssertionError("a rescue asks nothing")

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        self.log.append(("vars", dict(variables)))

    async def transfer(self, *, context: str, extension: str) -> None:
        self.log.append(("transfer", context, extension))
        raise CallTransferred(f"{self.call_id} -> {context}/{extension}")

    async def hangup(self) -> None:
        self.log.append(("hangup",))


class FakeRecord:
    outcome: str | None = None

    def __init__(self) -> None:
        self.steps: list[tuple[str, dict[str, Any]]] = []

    def step(self, name: str, **fields: Any) -> None:
        self.steps.append((name, fields))


def controller(client: FakeClient, voice: LineVoice) -> Controller:
    reference = load_reference()
    line = CitasLine(replace(reference, line=replace(reference.line, voice=voice)))
    engine = SimpleNamespace(default_vdn="5550009")
    return Controller(Settings(), client, None, {}, engine, line)  # type: ignore[arg-type]


@pytest.mark.parametrize("voice", [DEFAULT_VOICE, OTHER], ids=["citas", "other"])
async def test_a_rescued_caller_hears_and_goes_where_the_line_says(voice: LineVoice) -> None:
    channel, record = FakeChannel(voice), FakeRecord()

    await controller(FakeClient(), voice)._rescue(channel, record, "ivr-error")  # type: ignore[arg-type]

    prefix = voice.variable_prefix
    assert channel.log == [
        ("play", f"sound:{voice.sounds}/service_unavailable_agent"),
        ("vars", {f"__{prefix}REASON": "ivr-error", f"__{prefix}SEGMENT": "unknown"}),
        ("transfer", voice.agent_context, "5550009"),
    ]
    assert record.outcome == "transferred"


@pytest.mark.parametrize("voice", [DEFAULT_VOICE, OTHER], ids=["citas", "other"])
async def test_a_rescued_caller_keeps_the_context_the_flow_annotated(voice: LineVoice) -> None:
    """Eligibility's segment, affiliate and CUPS reach the agents' variables, not a
    segment ``unknown`` over the known one (before: every rescue said ``unknown``)."""
    channel, record = FakeChannel(voice), FakeRecord()
    await channel.annotate({"segment": "non_target", "affiliate": "1010101010"})
    await channel.annotate({"cups": "890201"})
    channel.log.clear()

    await controller(FakeClient(), voice)._rescue(channel, record, "ivr-restarted")  # type: ignore[arg-type]

    p = voice.variable_prefix
    assert channel.log[1] == ("vars", {
        f"__{p}REASON": "ivr-restarted", f"__{p}SEGMENT": "non_target",
        f"__{p}AFFILIATE": "1010101010", f"__{p}CUPS": "890201",
    })  # fmt: skip
    assert channel.log[2] == ("transfer", voice.agent_context, "5550009")


async def test_a_rescue_carries_only_a_transfers_keys_and_its_own_reason() -> None:
    """Whatever else the channel's context holds (another program's keys, a
    ``reason``) never reaches the agents' variables nor replaces the rescue's reason."""
    channel, record = FakeChannel(DEFAULT_VOICE), FakeRecord()
    await channel.annotate({"segment": "target", "reason": "forged", "queue": "9", "level": "3"})
    channel.log.clear()

    await controller(FakeClient(), DEFAULT_VOICE)._rescue(channel, record, "ivr-error")  # type: ignore[arg-type]

    p = DEFAULT_VOICE.variable_prefix
    assert channel.log[1] == ("vars", {f"__{p}REASON": "ivr-error", f"__{p}SEGMENT": "target"})
    # "9" is no queue of the line's: the rescue goes to the default VDN.
    assert channel.log[2] == ("transfer", DEFAULT_VOICE.agent_context, "5550009")


def line_queues() -> list[str]:
    return sorted(CitasLine(load_reference()).agent_queues)


@pytest.mark.parametrize(
    ("annotated", "expected"),
    [*((queue, queue) for queue in line_queues()),
     ("", "5550009"), ("5550001 ", "5550009"), ("s@evil/5550001", "5550009"), (None, "5550009")],
)  # fmt: skip
async def test_a_rescue_goes_to_the_queue_the_flow_chose_if_it_is_the_lines(
    annotated: str | None, expected: str
) -> None:
    """A non-target caller rescued after eligibility reaches the non-target agents, as
    the flow would have sent them (before: always the default VDN); any other value
    of the context's queue (another program's, empty, none) goes to the default."""
    channel, record = FakeChannel(DEFAULT_VOICE), FakeRecord()
    context = {"segment": "non_target"} | ({} if annotated is None else {QUEUE_KEY: annotated})
    await channel.annotate(context)
    channel.log.clear()

    await controller(FakeClient(), DEFAULT_VOICE)._rescue(channel, record, "ivr-error")  # type: ignore[arg-type]

    assert channel.log[2] == ("transfer", DEFAULT_VOICE.agent_context, expected)
    assert QUEUE_KEY not in {k.removeprefix(f"__{DEFAULT_VOICE.variable_prefix}").lower()
                             for k in channel.log[1][1]}  # fmt: skip
    assert record.steps == [("transfer", {"vdn": expected, "reason": "ivr-error"})]


def test_the_citas_lines_queues_are_line_yamls_agent_vdns() -> None:
    reference = load_reference()
    apart = replace(reference.line, vdn_default="1", vdn_non_target="2", vdn_incident="3")
    assert CitasLine(replace(reference, line=apart)).agent_queues == {"1", "2", "3"}
    line = reference.line
    assert set(line_queues()) == {line.vdn_default, line.vdn_non_target, line.vdn_incident}


@pytest.mark.parametrize("voice", [DEFAULT_VOICE, OTHER], ids=["citas", "other"])
async def test_a_call_rejected_at_shutdown_goes_to_the_lines_agents(voice: LineVoice) -> None:
    client = FakeClient()

    await controller(client, voice).reject(SimpleNamespace(id="chan-2"))  # type: ignore[arg-type]

    assert client.log == [
        ("set", "chan-2", f"__{voice.variable_prefix}REASON", "ivr-shutdown"),
        ("continue", "chan-2", voice.agent_context, "5550009"),
    ]


@pytest.mark.parametrize("voice", [DEFAULT_VOICE, OTHER], ids=["citas", "other"])
async def test_an_orphan_is_adopted_with_the_lines_variables(voice: LineVoice) -> None:
    prefix = voice.variable_prefix
    found = FakeClient({f"{prefix}FLOW": "smoke", f"{prefix}CALL_ID": "sip-1"})
    bare = FakeClient()

    assert await controller(found, voice)._stasis_args("chan-3") == ("smoke", "sip-1")
    # Without the dialplan's variables: the line's own flow.
    assert await controller(bare, voice)._stasis_args("chan-3") == ("citas",)
    assert [entry[2] for entry in bare.log] == [f"{prefix}FLOW", f"{prefix}CALL_ID"]
