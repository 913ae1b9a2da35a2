"""Chat scenarios as data (``ivr/scenarios/chat/*.yaml``) and the pieces of their
runner that read what the bot sent (``ivr.chat.tester``, ``ivr.scenarios.chatrunner``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.chat.tester import BotMessage, NoSuchOption, Option, SimulatedUser
from ivr.scenarios.chatrunner import (
    ChatReport,
    ChatScenarioRunner,
    ScenarioFailed,
    contact_wa_id,
    prefilled_text,
)
from ivr.scenarios.chatspec import (
    CHAT_SCENARIO_DIR,
    ChatExpect,
    ChatScenario,
    list_chat_scenarios,
    load_chat_scenario,
)
from ivr.scenarios.spec import list_scenarios
from ivr.whatsapp.messages import ListRow, ListSection, ReplyButton, buttons_message, list_message
from ivr.yamlsrc import ConfigError

BUNDLED = (
    "book", "no-slots", "cancel", "reschedule", "list", "hand-off", "expired-session",
    "incident-mode", "resumed-from-sms", "unsupported-media",
)  # fmt: skip


def test_every_chat_scenario_the_issue_names_is_bundled_and_valid() -> None:
    scenarios = list_chat_scenarios()
    assert set(BUNDLED) <= set(scenarios)
    files = {p.stem for p in CHAT_SCENARIO_DIR.glob("*.yaml")}
    assert files == set(scenarios)  # the file name is the scenario's name
    calls = list_scenarios()
    for scenario in scenarios.values():
        assert scenario.steps
        if scenario.from_call:
            assert scenario.from_call in calls  # a call scenario that exists


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("  - sned: hola\n", "unknown step"),
        ("  - {send: hola, expect: x}\n", "a step does one thing"),
        ("  - expect_no_reply: 99\n", "steps[0].expect_no_reply"),
    ],
)
def test_a_bad_step_is_refused_naming_file_line_and_field(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(f"name: mine\ndescription: d\nsteps:\n{text}", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_chat_scenario(path)
    assert "mine.yaml:4" in str(err.value) and problem in str(err.value)


def test_the_sms_link_s_prefilled_text_is_what_the_chat_opens_with() -> None:
    sms = (
        "Agende su cita médica por WhatsApp con nuestro asistente: "
        "https://wa.me/573001112233?text=Hola%2C%20quiero%20agendar%20una%20cita%20m%C3%A9dica%20%28ref.%20K7Q2M%29"
    )
    assert prefilled_text(sms) == "Hola, quiero agendar una cita médica (ref. K7Q2M)"
    assert prefilled_text("Sin enlace") is None


@pytest.mark.parametrize(
    ("contact", "wa_id"),
    [
        ("3001234567", "573001234567"),
        ("+573001234567", "573001234567"),
        (3001234567, "573001234567"),
    ],
)
def test_a_contact_is_written_as_meta_writes_a_wa_id(contact: object, wa_id: str) -> None:
    assert contact_wa_id(str(contact)) == wa_id


MENU = BotMessage.from_payload(
    3,
    list_message(
        "573001234567", "¿Qué tipo de cita necesita?", "Ver opciones",
        [ListSection([ListRow("1", "Medicina general 1.ª vez"), ListRow("3", "Pediatría 1.ª vez")])],
    ),
)  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "picked"),
    [("1", "1"), ("3", "3"), ("2", "3"), ("pediatría 1.ª vez", "3"), ("PEDIATRIA 1.ª VEZ", "3")],
)
def test_pick_finds_an_option_by_id_then_position_then_title(choice: str, picked: str) -> None:
    assert SimulatedUser.option(MENU, choice).id == picked


def test_pick_of_no_option_says_which_there_are() -> None:
    with pytest.raises(NoSuchOption) as err:
        SimulatedUser.option(MENU, "odontología")
    assert "Medicina general 1.ª vez" in str(err.value)


def test_a_bot_message_is_rendered_as_text_with_its_options_numbered() -> None:
    buttons = BotMessage.from_payload(
        0,
        buttons_message(
            "573001234567", "¿Confirma?", [ReplyButton("1", "Sí"), ReplyButton("2", "No")]
        ),
    )
    assert buttons.rendered() == "¿Confirma?\n  [1] Sí\n  [2] No"
    assert buttons.options == (Option("1", "Sí"), Option("2", "No"))
    assert buttons.interactive == "button"
    assert MENU.list_button == "Ver opciones"


def scenario(**expect: object) -> ChatScenario:
    return ChatScenario("s", "d", "3001234567", (), ChatExpect(**expect))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expect", "facts", "failure"),
    [
        ({"outcome": "booked"}, {"outcome": "booked"}, None),
        ({"outcome": "booked"}, {"outcome": "handed_off"}, "outcome: expected 'booked'"),
        ({"booking": True}, {"booking": False}, "booking: expected True"),
        ({"journey": True}, {"journey_id": None}, "journey: expected True"),
        ({"nodes": ("find_slot",)}, {"nodes": ["main_menu"]}, "nodes ['find_slot'] not visited"),
        ({"state": "agent"}, {"state": "agent"}, None),
    ],
)
def test_final_expectations_are_judged_on_the_conversation(
    expect: dict[str, object], facts: dict[str, object], failure: str | None
) -> None:
    report = ChatReport("s", conversation=facts)
    if failure is None:
        ChatScenarioRunner._judge(scenario(**expect), report)
        return
    with pytest.raises(ScenarioFailed) as err:
        ChatScenarioRunner._judge(scenario(**expect), report)
    assert failure in str(err.value)
