"""Filing a case (issue 11 §1): the pure rules, table-driven and by hypothesis.

The kinds:
- a case filed without the search having tried the other time band and another
  doctor (``search_allows_case``), or refused when it had: every combination
  of searches, by the rule's definition computed another way;
- a contact e-mail the answer cannot reach stored, or a good one refused
  (``normalize_email``), and an address shown whole where it must be masked
  (``mask_email``);
- a chat's free-text answer taken for a command, or a command for an answer
  (``read_text``), and a text question asked where nobody can type
  (``ask_text`` on voice: refused at load).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.channel import (
    AwaitingReply,
    DigitResult,
    Phrase,
    ReturnToMenu,
    TextQuestions,
    TextRequest,
)
from ivr.chat.channel import AgentAsked, ChatChannel, Inbound
from ivr.chat.replies import Agent, MainMenu, NoMatch, Typed, read_text
from ivr.chat.runner import persistable
from ivr.citas.cases import (
    TIME_BANDS,
    bands_exhausted,
    evidence_entry,
    number_groups,
    search_allows_case,
)
from ivr.contact_email import normalize_email
from ivr.controller import flow_loader
from ivr.flow.engine import FlowEngine
from ivr.flow.model import CallState, Resume
from ivr.masking import mask_email
from ivr.store.records import CallRecord
from ivr.yamlsrc import ConfigError

AT = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def search(band: str | None, doctor: str | None, found: int) -> dict[str, object]:
    return evidence_entry(band, doctor, found, AT)


# --- the filing rule ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("evidence", "allowed"),
    [
        pytest.param([], False, id="no search at all"),
        pytest.param([search(None, None, 0)], True, id="nothing in any band with any doctor"),
        pytest.param(
            [search("morning", None, 0), search("afternoon", None, 0)], True, id="widened"
        ),
        pytest.param([search("morning", None, 0)], False, id="one band only"),
        pytest.param(
            [search("morning", None, 0), search("afternoon", None, 1)],
            False,
            id="the afternoon had a slot",
        ),
        pytest.param(
            [search("morning", "dr_gomez", 0), search("afternoon", "dr_gomez", 0)],
            True,
            id="a band and another doctor, chosen by the caller",
        ),
        pytest.param(
            [search(None, None, 1), search("afternoon", None, 1), search(None, "dr_gomez", 1)],
            True,
            id="the caller pressed 3 and 4 (slots found, declined)",
        ),
        pytest.param(
            [search(None, None, 1), search("afternoon", None, 1)], False, id="band only (3)"
        ),
        pytest.param([search(None, None, 1), search(None, "dr_gomez", 1)], False, id="doctor only"),
    ],
)
def test_a_case_is_allowed_only_after_another_band_and_doctor(
    evidence: list[dict[str, object]], allowed: bool
) -> None:
    assert search_allows_case(evidence) is allowed


searches = st.lists(
    st.builds(
        search,
        st.sampled_from([None, *TIME_BANDS]),
        st.sampled_from([None, "dr_gomez", "dr_rojas"]),
        st.integers(0, 2),
    ),
    max_size=6,
)


@given(searches)
def test_the_rule_is_both_bands_empty_with_any_doctor_or_the_callers_band_and_doctor(
    evidence: list[dict[str, object]],
) -> None:
    empty_any_doctor = [s for s in evidence if not s["found"] and not s["exclude_doctor_id"]]
    morning = any(s["time_band"] in (None, "morning") for s in empty_any_doctor)
    afternoon = any(s["time_band"] in (None, "afternoon") for s in empty_any_doctor)
    chose_band = any(s["time_band"] for s in evidence)
    other_doctor = any(s["exclude_doctor_id"] for s in evidence)
    assert bands_exhausted(evidence) is (morning and afternoon)
    assert search_allows_case(evidence) is (
        (morning and afternoon) or (chose_band and other_doctor)
    )


@given(searches, searches)
def test_more_searches_never_take_the_right_to_file_away(
    first: list[dict[str, object]], more: list[dict[str, object]]
) -> None:
    if search_allows_case(first):
        assert search_allows_case(first + more)


def test_evidence_is_json_with_utc_instants() -> None:
    bogota = datetime(2026, 11, 30, 10, 0).astimezone()
    entry = evidence_entry("", "", 0, bogota)
    assert entry["time_band"] is None and entry["exclude_doctor_id"] is None
    assert datetime.fromisoformat(str(entry["at"])).utcoffset() is not None
    assert str(entry["at"]).endswith("+00:00")


@pytest.mark.parametrize("number", ["0000000", "0012345", "9999999", "1234567"])
def test_a_case_number_is_read_in_two_groups_of_all_its_digits(number: str) -> None:
    groups = number_groups(number)
    assert "".join(groups) == number
    assert [len(g) for g in groups] == [3, 4]


# --- the contact e-mail --------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("ana@example.org", "ana@example.org"),
        ("  Ana.Gomez@Example.ORG ", "Ana.Gomez@example.org"),
        ("nombre+citas@correo.com.co", "nombre+citas@correo.com.co"),
        ("pedro@ñandú.co", "pedro@ñandú.co"),  # an internationalised domain travels as IDNA
        ("ana@@example.org", None),
        ("ana@localhost", None),  # no dot: no Internet domain
        ("ana @example.org", None),
        ("ana.example.org", None),
        ("josé@example.org", None),  # a non-ASCII mailbox needs SMTPUTF8: refused
        ("", None),
        ("a" * 65 + "@example.org", None),  # the mailbox is at most 64 characters
        ("1", None),  # a menu key typed where the address belongs
    ],
)
def test_an_address_is_kept_only_when_mail_can_reach_it(typed: str, kept: str | None) -> None:
    assert normalize_email(typed) == kept


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("carla@example.org", "c***@e***.org"),
        ("x@correo.com.co", "x***@c***.co"),
        ("a.b@sub.dominio.gov.co", "a***@s***.co"),
        ("sin-arroba", "-"),
        ("", "-"),
    ],
)
def test_an_address_is_shown_masked(address: str, shown: str) -> None:
    assert mask_email(address) == shown


@given(st.emails())
def test_a_masked_address_never_shows_the_mailbox_or_the_domain_name(address: str) -> None:
    local, _, domain = address.rpartition("@")
    masked = mask_email(address)
    assert masked.count("***") == 2
    if len(local) > 3:
        assert local not in masked
    host = domain.rpartition(".")[0]
    if len(host) > 3:
        assert host not in masked


# --- a chat's text answer --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("carla@example.org", Typed("carla@example.org")),
        ("  menu@empresa.co ", Typed("menu@empresa.co")),  # a command word inside: an answer
        ("asesor@empresa.co", Typed("asesor@empresa.co")),
        ("Menú", MainMenu()),
        ("0", MainMenu()),
        ("volver al menú", MainMenu()),
        ("ASESOR", Agent()),
        ("hablar con un asesor", Agent()),
        ("   ", NoMatch("the reply is empty")),
    ],
)
def test_a_text_answer_is_a_command_only_when_it_is_the_whole_reply(
    text: str, reply: object
) -> None:
    assert read_text(text) == reply


def test_a_text_answer_longer_than_asked_is_no_answer() -> None:
    assert isinstance(read_text("a" * 255, max_length=254), NoMatch)
    assert read_text("a" * 254, max_length=254) == Typed("a" * 254)


TEXTS = {"case_ask_email": "Escriba su correo.", "chat_unsupported_media": "Solo texto."}
ASK = [Phrase("prompt", "case_ask_email")]


async def test_the_chat_asks_for_text_then_reads_the_reply() -> None:
    chat = ChatChannel("conv-1", "573003333333", TEXTS)
    assert isinstance(chat, TextQuestions)
    with pytest.raises(AwaitingReply):
        await chat.ask_text(ASK, TextRequest())
    assert [m.body for m in chat.outgoing] == ["Escriba su correo."]  # type: ignore[union-attr]
    chat = ChatChannel("conv-1", "573003333333", TEXTS, reply=Inbound(" carla@example.org "))
    assert await chat.ask_text(ASK, TextRequest()) == DigitResult("carla@example.org", "complete")


@pytest.mark.parametrize(
    ("reply", "raised"),
    [(Inbound("menú"), ReturnToMenu), (Inbound("asesor"), AgentAsked)],
)
async def test_commands_at_a_text_question_leave_it(reply: Inbound, raised: type) -> None:
    chat = ChatChannel("conv-1", "573003333333", TEXTS, reply=reply)
    with pytest.raises(raised):
        await chat.ask_text(ASK, TextRequest())


async def test_media_at_a_text_question_asks_again_politely() -> None:
    chat = ChatChannel("conv-1", "573003333333", TEXTS, reply=Inbound("", kind="unsupported"))
    with pytest.raises(AwaitingReply):
        await chat.ask_text(ASK, TextRequest())
    assert [m.body for m in chat.outgoing] == ["Solo texto.", "Escriba su correo."]  # type: ignore[union-attr]


# --- ask_text in a flow file ------------------------------------------------------------
FLOW = """
flow: t
start: ask
nodes:
  ask:
    kind: ask_text
{channels}    prompt: goodbye
    save_as: contact_email
    next: bye
    on_failure: bye
  bye:
    kind: hangup
    prompt: goodbye
"""


@pytest.mark.parametrize(
    "channels",
    [
        pytest.param("", id="every channel"),
        pytest.param("    channels: [voice]\n    skip_to: bye\n", id="voice"),
        pytest.param("    channels: [voice, chat]\n", id="both"),
    ],
)
def test_a_text_question_on_the_phone_is_refused_at_load(tmp_path: Path, channels: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(FLOW.format(channels=channels), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        flow_loader().load(path)
    assert "nodes.ask.channels" in str(caught.value)
    assert "chat only" in str(caught.value)


def test_a_text_question_on_the_chat_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(FLOW.format(channels="    channels: [chat]\n    skip_to: bye\n"), "utf-8")
    flow = flow_loader().load(path)
    assert flow.node("ask").runs_on("chat") and not flow.node("ask").runs_on("voice")


def test_an_unknown_text_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    text = FLOW.format(channels="    channels: [chat]\n    skip_to: bye\n")
    path.write_text(text.replace("save_as:", "format: phone\n    save_as:"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        flow_loader().load(path)
    assert "format" in str(caught.value)


async def test_a_typed_address_is_kept_whole_only_for_the_turn_and_recorded_masked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(FLOW.format(channels="    channels: [chat]\n    skip_to: bye\n"), "utf-8")
    flow = flow_loader().load(path)
    texts = {"goodbye": "Hasta pronto.", "chat_unsupported_media": "Solo texto."}
    chat = ChatChannel("conv-1", "573001414141", texts, reply=Inbound("Mateo@Example.ORG"))
    record = CallRecord("conv-1", "whatsapp:conv-1", "t", None, chat.caller_number, AT)
    state = CallState(chat, record, flow)

    await FlowEngine({}, default_vdn="1").run(state, resume=Resume("ask", 0))

    assert state.variables["_contact_email"] == "Mateo@example.org"
    assert state.variables["contact_email"] == record.variables["contact_email"] == "M***@e***.org"
    (answer,) = [s.detail for s in record.path if s.kind == "digits"]
    assert answer["digits"] == "M***@E***.ORG"  # as typed, masked
    assert "_contact_email" not in persistable(state.variables)


async def test_a_reply_that_is_no_address_is_asked_again_then_fails_over(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    text = FLOW.format(channels="    channels: [chat]\n    skip_to: bye\n")
    path.write_text(text.replace("    next: bye", "    next: bye\n    retries: 0"), "utf-8")
    flow = flow_loader().load(path)
    texts = {"goodbye": "Hasta pronto.", "chat_unsupported_media": "Solo texto."}
    chat = ChatChannel("conv-1", "573001414141", texts, reply=Inbound("mateo@correo"))
    record = CallRecord("conv-1", "whatsapp:conv-1", "t", None, chat.caller_number, AT)
    state = CallState(chat, record, flow)

    await FlowEngine({}, default_vdn="1").run(state, resume=Resume("ask", 0))

    assert "contact_email" not in state.variables
    kinds = [s.kind for s in record.path]
    assert "max_retries" in kinds and record.outcome == "completed"  # on_failure: bye
