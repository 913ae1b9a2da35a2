"""The engine over a text channel: suspend and resume, voice-only nodes, the main menu.

``TextChannel`` is a scripted in-process chat ``CallChannel``: it writes what it
is told as text (a prompt's chat text, a spoken phrase's text) and, asked a
question with no reply waiting, sends it and raises ``AwaitingReply``, as the
WhatsApp channel does. ``converse`` drives one conversation the way the chat
runner does: run, catch ``Suspended``, deliver the next reply, resume.
The citas flow runs with the real ``CitasActions`` over SQLite.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.channel import (
    QUEUE_KEY,
    AwaitingReply,
    CallerHungUp,
    CallTransferred,
    ChannelKind,
    Choice,
    DigitRequest,
    DigitResult,
    HandOff,
    Phrase,
    ReturnToMenu,
    phrase_json,
)
from ivr.citas.flags import PROMO_AUDIO, flag_registry
from ivr.flow.engine import Action, CallState, FlowEngine, Resume, Suspended
from ivr.flow.loader import FlowLoader
from ivr.flow.model import Flow, Node, PromptPart, PromptTexts, chat_text
from ivr.flow.nodes.menu import MenuNode
from ivr.ops.flags import StaticFlags
from ivr.prompts import PromptText, load_prompt_texts
from ivr.settings import REPO_ROOT
from ivr.store.records import CallRecord
from tests.unit.lines import CITAS_VOICE
from tests.unit.test_chat_paths import reachable
from tests.unit.test_flow_engine import HANGS_UP, ScriptedChannel
from tests.unit.test_fuzz_dtmf import (
    CALLERS,
    CITAS,
    FLAGS,
    KNOWN_DOCUMENTS,
    REFERENCE,
    Line,
    open_line,
)

TEXTS = load_prompt_texts(REPO_ROOT / "prompts" / "prompts.yaml")
MENU_WORDS = ("menu", "menú")


@dataclass
class TextChannel:
    """A chat ``CallChannel`` in process: ``reply`` is the person's next message."""

    texts: Mapping[str, PromptTexts]
    contact: str | None = "3001234567"
    reply: str | None = None
    sent: list[str] = field(default_factory=list)
    offered: list[list[Choice]] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    handed: HandOff | None = None
    closed: bool = False

    @property
    def kind(self) -> ChannelKind:
        return "chat"

    @property
    def call_id(self) -> str:
        return "wa-1"

    @property
    def caller_number(self) -> str | None:
        return self.contact

    async def answer(self) -> None:
        pass  # nothing to pick up on a chat

    def rendered(self, phrases: Sequence[Phrase]) -> list[str]:
        out = []
        for p in phrases:
            if p.kind == "prompt":
                out.append(chat_text(self.texts[p.value]))
            elif p.kind != "sound" and p.value:
                out.append(p.value)
        return out

    def _send(self, phrases: Sequence[Phrase]) -> None:
        if text := " ".join(self.rendered(phrases)):
            self.sent.append(text)

    async def say(self, phrases: Sequence[Phrase], *, interruptible: bool) -> bool:
        self._send(phrases)
        return False

    def _answer(self, request: DigitRequest) -> DigitResult:
        if self.reply is None:
            raise AwaitingReply()
        reply, self.reply = self.reply.strip(), None
        if reply.lower() in MENU_WORDS:
            raise ReturnToMenu()
        digits = "".join(c for c in reply if c.isdigit())
        return DigitResult(digits, "complete") if digits else DigitResult("", "invalid")

    async def choose(
        self, prompt: Sequence[Phrase], choices: Sequence[Choice], request: DigitRequest
    ) -> DigitResult:
        if prompt:
            self._send(prompt)
            self.offered.append(list(choices))
        return self._answer(request)

    async def ask(self, prompt: Sequence[Phrase], request: DigitRequest) -> DigitResult:
        self._send(prompt)
        return self._answer(request)

    def flush_digits(self) -> None:
        pass

    async def annotate(self, context: Mapping[str, str]) -> None:
        self.context.update(context)

    async def hand_off(self, hand_off: HandOff) -> None:
        self.handed = hand_off
        raise CallTransferred(f"{self.call_id} -> {hand_off.queue}")

    async def end(self, phrases: Sequence[Phrase]) -> None:
        self._send(phrases)
        self.closed = True


def new_state(channel: Any, flow: Flow) -> CallState:
    record = CallRecord(
        str(uuid.uuid4()), channel.call_id, flow.name, None, None, datetime.now(UTC)
    )
    return CallState(channel, record, flow)


async def converse(
    engine: FlowEngine, state: CallState, replies: Sequence[str], *, must_end: bool = True
) -> list[Suspended]:
    """Run ``state``'s flow giving ``replies`` one per pause, to its end (``must_end``)
    or until they run out; the pauses."""
    pauses: list[Suspended] = []
    resume: Resume | None = None
    for reply in [None, *replies]:
        if reply is not None:
            state.channel.reply = reply  # type: ignore[attr-defined]
        try:
            await engine.run(state, resume=resume)
            return pauses
        except CallTransferred:
            return pauses
        except Suspended as pause:
            pauses.append(pause)
            resume = pause.resume
    if must_end:
        raise AssertionError(f"still waiting after every reply: {pauses[-1]}")
    return pauses


# --- the citas flow on chat -------------------------------------------------------------
@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    with open_line(tmp_path) as opened:
        yield opened


def citas_engine(line: Line, **flags: object) -> FlowEngine:
    static = StaticFlags(flag_registry(REFERENCE), {PROMO_AUDIO: True, **flags})  # type: ignore[arg-type]
    line.actions.flags = static
    return FlowEngine(
        line.actions.registry(), default_vdn="5550001", flags=static.value, texts=TEXTS
    )


def nodes(state: CallState) -> list[str]:
    return [str(s.detail["node"]) for s in state.record.path if s.kind == "node"]


def test_a_chat_books_the_first_slot_pausing_at_each_question(line: Line) -> None:
    channel = TextChannel(TEXTS)
    state = new_state(channel, CITAS)

    pauses = line.runner.run(converse(citas_engine(line), state, ["1", "1", "1"]))

    assert [(p.node_id, p.attempt) for p in pauses] == [
        ("main_menu", 0), ("ask_service", 0), ("offer_slot", 0),
    ]  # fmt: skip
    assert state.record.outcome == "booked" and channel.closed
    # The promotional audio and the keypad survey are voice-only: the chat passed through.
    assert "promo" in nodes(state)
    assert [s.detail for s in state.record.path if s.kind == "skip"] == [
        {"channel": "chat", "next": "identify_caller"},
        {"channel": "chat", "next": "served_goodbye"},
    ]
    assert chat_text(TEXTS["promo_digital_channels"]) not in " ".join(channel.sent)
    # Each question was sent once: resuming did not send it again.
    assert channel.sent.count(chat_text(TEXTS["ask_service"])) == 1
    [offer] = [t for t in channel.sent if t.startswith(chat_text(TEXTS["slot_offer_intro"]))]
    assert " con la doctora " in offer or " con el doctor " in offer
    assert " en la sede " in offer and "sound:" not in offer
    assert offer.endswith(chat_text(TEXTS["slot_options"]))
    # The menus offered their chat titles.
    assert [c.title for c in channel.offered[0]] == [  # the main menu
        "Pedir una cita", "Consultar mis citas", "Cancelar una cita", "Reprogramar una cita",
    ]  # fmt: skip
    assert [c.title for c in channel.offered[1]] == [
        "Medicina general 1.ª vez", "Control medicina general", "Pediatría 1.ª vez",
        "Control de pediatría", "Consulta no programada",
    ]  # fmt: skip
    assert (channel.offered[2][0].key, channel.offered[2][0].title) == ("1", "Aceptar esta cita")
    # The hand-off context was noted for the chat as the voice variables are set.
    assert channel.context["segment"] == "target" and channel.context["cups"] == "890201"
    assert channel.context[QUEUE_KEY] == REFERENCE.line.vdn_default  # a rescue's queue


def test_an_invalid_reply_is_told_then_the_question_waits_again_at_the_next_attempt(
    line: Line,
) -> None:
    channel = TextChannel(TEXTS)
    state = new_state(channel, CITAS)

    pauses = line.runner.run(converse(citas_engine(line), state, ["1", "hola", "9", "2", "0"]))

    assert [(p.node_id, p.attempt) for p in pauses][:4] == [
        ("main_menu", 0), ("ask_service", 0), ("ask_service", 1), ("ask_service", 2),
    ]  # fmt: skip
    assert channel.sent.count(chat_text(TEXTS["invalid_option"])) == 2
    assert channel.sent.count(chat_text(TEXTS["ask_service"])) == 3
    digits = [s.detail for s in state.record.path if s.kind == "digits"][1:4]
    assert [(d["attempt"], d["ended_by"]) for d in digits] == [
        (1, "invalid"), (2, "complete"), (3, "complete"),
    ]  # fmt: skip
    assert state.variables["service_key"] == "2"


def test_after_the_last_attempt_the_chat_goes_to_on_failure_a_person(line: Line) -> None:
    channel = TextChannel(TEXTS)
    state = new_state(channel, CITAS)

    line.runner.run(converse(citas_engine(line), state, ["x", "y", "z"]))

    assert channel.handed is not None and channel.handed.reason == "invalid-input"
    assert state.record.outcome == "transferred"
    assert channel.handed.context == {"segment": "unknown", "affiliate": "1010101010"}


def test_asking_for_the_menu_goes_back_to_the_main_menu_keeping_who_the_patient_is(
    line: Line,
) -> None:
    channel = TextChannel(TEXTS)
    state = new_state(channel, CITAS)

    pauses = line.runner.run(converse(citas_engine(line), state, ["1", "menú", "1", "1", "1"]))

    assert CITAS.menu == "start_over"
    assert [p.node_id for p in pauses] == [
        "main_menu", "ask_service", "main_menu", "ask_service", "offer_slot",
    ]  # fmt: skip
    assert [s.detail for s in state.record.path if s.kind == "main_menu"] == [
        {"next": "start_over"}
    ]
    # Not identified again: the caller ID was looked up once.
    assert nodes(state).count("identify_caller") == 1
    assert channel.sent.count(chat_text(TEXTS["main_menu"])) == 2
    assert state.record.outcome == "booked"


def test_the_menu_while_rescheduling_forgets_the_reschedule(line: Line) -> None:
    """Regression: "menú" in the middle of a reschedule kept ``mode`` = ``reschedule``
    (and the old appointment's site and offers) for the next task."""
    first = new_state(TextChannel(TEXTS), CITAS)
    line.runner.run(converse(citas_engine(line), first, ["1", "1", "1"]))
    assert first.record.outcome == "booked"
    home_site = first.variables["site_id"]

    channel = TextChannel(TEXTS)
    state = new_state(channel, CITAS)
    pauses = line.runner.run(converse(citas_engine(line), state, ["4"], must_end=False))
    assert pauses[-1].node_id == "offer_slot" and state.variables["mode"] == "reschedule"
    channel.reply = "menú"
    with pytest.raises(Suspended) as back:
        line.runner.run(citas_engine(line).run(state, resume=pauses[-1].resume))
    assert back.value.node_id == "main_menu"

    for name in ("mode", "reschedule_id", "offered_ids", "slot_id", "main_choice", "cups"):
        assert name not in state.variables and name not in state.record.variables, name
    assert state.variables["site_id"] == home_site
    assert state.variables["affiliate_id"] == first.variables["affiliate_id"]


def test_the_same_citas_flow_on_voice_plays_the_promo(line: Line) -> None:
    channel = ScriptedChannel(*[DigitResult("1", "complete")] * 3)
    state = new_state(channel, CITAS)

    line.runner.run(citas_engine(line).run(state))

    assert state.record.outcome == "booked"
    assert channel.log[1] == ("play-no-barge", f"sound:{CITAS_VOICE.sounds}/promo_digital_channels")
    assert not [s for s in state.record.path if s.kind == "skip"]


# --- a small flow: channel-only nodes, the main menu, variables kept between turns ---------
SMALL = """\
    flow: small
    start: hello
    menu: main
    nodes:
      hello:
        kind: play
        channels: [voice]
        prompt: welcome
        next: main
      main:
        kind: menu
        prompt: main_menu
        options:
          "1": {next: pick, title: pick_title}
          "2": bye
        on_failure: bye
      pick:
        kind: action
        action: pick
        outcomes: {ok: confirm}
        on_failure: bye
      confirm:
        kind: collect
        channels: [chat]
        skip_to: told
        prompt: [picked, "media:{picked}"]
        save_as: code
        max_digits: 4
        next: told
        on_failure: bye
      told:
        kind: hangup
        prompt: [picked, "media:{picked}", goodbye]
      bye:
        kind: hangup
        prompt: goodbye
"""
SMALL_TEXTS: dict[str, PromptText] = {
    "welcome": PromptText("welcome", "Bienvenido."),
    "main_menu": PromptText("main_menu", "Para elegir marque 1.", chat="¿Qué desea?"),
    "pick_title": PromptText("pick_title", "elegir", chat="Elegir"),
    "picked": PromptText("picked", "Eligió"),
    "goodbye": PromptText("goodbye", "Adiós."),
}


async def pick(state: CallState, params: Mapping[str, object]) -> str:
    state.set("picked", Phrase("spoken", "el lunes", ("sound:digits/day-1",)))
    return "ok"


def small_flow(tmp_path: Path, text: str = SMALL) -> Flow:
    path = tmp_path / "small.yaml"
    path.write_text(dedent(text))
    return FlowLoader(SMALL_TEXTS, {"pick": ("ok",)}).load(path)


def small_engine() -> FlowEngine:
    actions: dict[str, Action] = {"pick": pick}
    return FlowEngine(actions, default_vdn="5550001", texts=SMALL_TEXTS)


async def test_variables_survive_a_pause_as_json_and_media_is_said_from_them(
    tmp_path: Path,
) -> None:
    flow = small_flow(tmp_path)
    first = TextChannel(SMALL_TEXTS)
    state = new_state(first, flow)
    with pytest.raises(Suspended) as menu:
        await small_engine().run(state)
    first.reply = "1"
    with pytest.raises(Suspended) as confirm:
        await small_engine().run(state, resume=menu.value.resume)
    assert (confirm.value.node_id, confirm.value.attempt) == ("confirm", 0)
    assert first.sent == ["¿Qué desea?", "Eligió el lunes"]

    # Another process: only the variables, through JSON, and the resume point.
    kept = json.loads(json.dumps(phrase_json(state.variables)))
    second = TextChannel(SMALL_TEXTS, reply="1234")
    again = new_state(second, flow)
    again.variables.update(kept)
    await small_engine().run(again, resume=confirm.value.resume)

    assert second.sent == ["Eligió el lunes Adiós."]  # nothing asked again
    assert again.variables["code"] == "1234"
    assert [s.kind for s in again.record.path][:2] == ["resume", "digits"]


async def test_on_voice_the_chat_only_question_is_skipped_and_media_is_heard(
    tmp_path: Path,
) -> None:
    flow = small_flow(tmp_path)
    channel = ScriptedChannel(DigitResult("1", "complete"))
    state = new_state(channel, flow)

    await small_engine().run(state)

    assert channel.log == [
        ("answer",),
        ("play-no-barge", "sound:citas/welcome"),
        ("play", "sound:citas/main_menu"),
        ("collect",),
        ("play-no-barge", "sound:citas/picked", "sound:digits/day-1", "sound:citas/goodbye"),
        ("hangup",),
    ]
    assert [s.detail for s in state.record.path if s.kind == "skip"] == [
        {"channel": "voice", "next": "told"}
    ]
    assert state.record.variables["picked"] == {
        "phrase": "spoken", "value": "el lunes", "media": ["sound:digits/day-1"]
    }  # fmt: skip


async def test_the_main_menu_from_any_question_goes_to_the_flows_menu_node(
    tmp_path: Path,
) -> None:
    flow = small_flow(tmp_path)
    channel = TextChannel(SMALL_TEXTS)
    state = new_state(channel, flow)

    pauses = await converse(small_engine(), state, ["1", "menú", "2"])

    assert [(p.node_id, p.attempt) for p in pauses] == [("main", 0), ("confirm", 0), ("main", 0)]
    assert [s.detail for s in state.record.path if s.kind == "main_menu"] == [{"next": "main"}]
    assert channel.sent[-1] == "Adiós." and channel.closed
    assert [c.title for c in channel.offered[0]] == ["Elegir", ""]  # "2" has no chat title


async def test_resuming_a_node_that_asks_nothing_is_refused(tmp_path: Path) -> None:
    flow = small_flow(tmp_path)
    with pytest.raises(KeyError, match="asks nothing"):
        await small_engine().run(new_state(TextChannel(SMALL_TEXTS), flow), Resume("told", 0))


# --- the kind over its range: a chat and a caller giving the same answers go the same way --
class Caller(ScriptedChannel):
    """A voice caller who presses ``script`` (then hangs up) from ``number``."""

    def __init__(self, number: str | None, *script: DigitResult | str) -> None:
        super().__init__(*script)
        self.number = number

    @property
    def caller_number(self) -> str | None:
        return self.number


@pytest.fixture(scope="module")
def twin_lines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Line, Line]]:
    """Two lines whose databases stay alike while the calls on them go alike."""
    with (
        open_line(tmp_path_factory.mktemp("voice-twin")) as voice,
        open_line(tmp_path_factory.mktemp("chat-twin")) as chat,
    ):
        yield voice, chat


ANSWERS = st.lists(
    st.one_of(
        st.sampled_from("0123451"), st.sampled_from("0123451"),  # menu keys, mostly valid
        st.sampled_from(KNOWN_DOCUMENTS),
        st.text(alphabet="0123456789", min_size=1, max_size=14),  # anything in digits
    ),
    max_size=20,
)  # fmt: skip


def forks_for_chat(node: Node) -> bool:
    """A node a chat passes through to somewhere a caller cannot go from it."""
    return not node.runs_on("chat") and node.skip_to not in {t for _, t in node.own_targets()}


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(answers=ANSWERS, caller=CALLERS, flags=FLAGS)
def test_a_chat_goes_where_a_caller_pressing_the_same_keys_goes(
    twin_lines: tuple[Line, Line], answers: list[str], caller: str | None, flags: dict[str, Any]
) -> None:
    voice_line, chat_line = twin_lines
    voice = Caller(caller, *[DigitResult(a, "complete") for a in answers], HANGS_UP)
    voice_state = new_state(voice, CITAS)
    chat = TextChannel(TEXTS, contact=caller)
    chat_state = new_state(chat, CITAS)

    try:
        voice_line.runner.run(citas_engine(voice_line, **flags).run(voice_state))
    except (CallTransferred, CallerHungUp):
        pass
    pauses = chat_line.runner.run(
        converse(citas_engine(chat_line, **flags), chat_state, answers, must_end=False)
    )

    # Every pause is at a question, answered once; none when the chat is over.
    assert all(CITAS.node(p.node_id).asks for p in pauses)
    answered = [s for s in chat_state.record.path if s.kind == "digits"]
    over = chat.closed or chat.handed is not None
    assert len(pauses) == len(answered) + (0 if over else 1)
    # The same nodes in the same order, the same outcome and hand-off, unless the
    # call reached a node the flow keeps for the phone whose way through differs
    # on chat (the SMS to WhatsApp, a site closed for phone booking: both paths up
    # to it are the same; after it, tests/unit/test_chat_paths.py).
    voice_nodes, chat_nodes = nodes(voice_state), nodes(chat_state)
    fork = next((i for i, n in enumerate(voice_nodes) if forks_for_chat(CITAS.node(n))), None)
    if fork is not None:
        assert chat_nodes[: fork + 1] == voice_nodes[: fork + 1]
        assert chat_nodes[fork + 1 : fork + 2] == [CITAS.node(voice_nodes[fork]).skip_to]
        return
    assert chat_nodes == voice_nodes
    assert chat_state.record.outcome == voice_state.record.outcome
    if voice.log[-1][0] == "transfer":
        assert chat.handed is not None and chat.handed.queue == voice.log[-1][2]
    # A resumed question is not sent again: as many prompts as the caller heard,
    # less the voice-only promotional audio.
    promo = (
        1
        if ("play-no-barge", f"sound:{CITAS_VOICE.sounds}/promo_digital_channels") in voice.log
        else 0
    )
    said = [s for s in voice_state.record.path if s.kind == "prompt"]
    assert len([s for s in chat_state.record.path if s.kind == "prompt"]) == len(said) - promo


def test_the_shipped_citas_flow_fits_whatsapp_and_a_title_too_long_is_refused(
    tmp_path: Path,
) -> None:
    """The chat renderer's check (``ivr.chat.render.check_menu``) through the loader's hook."""
    from ivr.chat.render import check_menu
    from ivr.controller import load_line
    from ivr.settings import Settings
    from ivr.yamlsrc import ConfigError

    line = load_line(Settings())

    def loader(texts: Mapping[str, PromptText]) -> FlowLoader:
        names = line.flag_registry().names()
        return FlowLoader(texts, line.action_outcomes, names, line.commits, checks=[check_menu])

    flows = REPO_ROOT / "config" / "flows"
    assert loader(TEXTS).load(flows / "citas.yaml").node("offer_slot").asks
    long = {
        **TEXTS,
        "title_slot_next": PromptText("title_slot_next", "x", chat="Escuchar otra cita disponible"),
    }
    with pytest.raises(ConfigError) as caught:
        loader(long).load(flows / "citas.yaml")
    text = (flows / "citas.yaml").read_text().splitlines()
    assert caught.value.field == "nodes.offer_slot.options.2.title"
    assert "title_slot_next" in text[caught.value.line - 1]  # type: ignore[operator]


# --- the kind: no prompt a chat can be sent speaks of keys, calls, the line or listening ---
# Stems of voice-only wording ("marque 1", "su marcación", "Gracias por llamar", "por
# esta línea", "escuchar otra cita", "la tecla numeral", "digite").
VOICE_ONLY = re.compile(
    r"\b(marqu|marc|llam|l[ií]nea|escuch|tecla|numeral|digit|oprim|presion|o[ií]r\b)\w*",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    ("text", "voice_only"),
    [
        ("Para pedir una cita, marque 1.", True),
        ("No recibimos su marcación.", True),
        ("Gracias por llamar. Hasta pronto.", True),
        ("Por favor llame más tarde.", True),
        ("Por favor espere en línea.", True),
        ("no es posible asignar citas por esta linea", True),
        ("Para escuchar la siguiente, marque 2.", True),
        ("Al terminar, marque la tecla numeral.", True),
        ("Digite el número de documento.", True),
        ("El número que digitó no es válido.", True),
        ("Oprima 1.", True),
        ("Escriba el número de documento del paciente, solo los números.", False),
        ("¿Qué desea hacer?", False),
        ("Gracias por escribirnos. Hasta pronto.", False),
        ("Su cita es el", False),
    ],
)
def test_voice_only_wording_is_recognised(text: str, voice_only: bool) -> None:
    assert bool(VOICE_ONLY.search(text)) is voice_only


def chat_prompt_ids(flow: Flow) -> dict[str, str]:
    """Prompt id -> where the flow can send it on a chat: every prompt part of every
    node a chat can reach (from the start or the main menu) and runs there (its
    prompt, no-input and invalid prompts, whatever the kind calls them) and every
    menu option's title."""
    found: dict[str, str] = {}
    roots = [flow.start, *([flow.menu] if flow.menu else [])]
    on_chat = {n.id: n for root in roots for n in reachable(flow, "chat", root).values()}
    for node in on_chat.values():
        if not node.runs_on("chat"):
            continue
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            parts = value if isinstance(value, tuple) else (value,)
            for part in parts:
                if isinstance(part, PromptPart) and part.kind == "prompt":
                    found.setdefault(part.value, f"nodes.{node.id}.{f.name}")
        for key, option in getattr(node, "options", {}).items():
            if option.title is not None:
                found.setdefault(option.title, f"nodes.{node.id}.options.{key}.title")
    return found


def test_no_prompt_the_citas_flow_sends_on_a_chat_reads_as_a_phone_call() -> None:
    """Every prompt the citas flow can send on a chat reads, as a chat shows it
    (``chat`` text, else ``text``), without keys, calls, the line or listening."""
    sent = chat_prompt_ids(CITAS)
    # The walk reaches questions, their retries, titles and endings; not voice-only nodes.
    assert {"main_menu", "no_input_retry", "title_main_book", "goodbye"} <= sent.keys()
    assert "promo_digital_channels" not in sent
    assert "no_slots_whatsapp" not in sent  # behind the voice-only redirect_gate

    voice_only = {
        prompt_id: (where, chat_text(TEXTS[prompt_id]))
        for prompt_id, where in sent.items()
        if VOICE_ONLY.search(chat_text(TEXTS[prompt_id]))
    }
    assert voice_only == {}


def test_every_citas_menu_offers_chat_titles() -> None:
    """A chat menu without titles shows its voice prompt's list of keys."""
    untitled = [
        f"{node.id}.options.{key}"
        for node in CITAS.nodes.values()
        if isinstance(node, MenuNode) and node.runs_on("chat")
        for key, option in node.options.items()
        if option.title is None
    ]
    assert untitled == []
