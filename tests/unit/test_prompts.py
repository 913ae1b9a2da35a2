"""Prompt texts (validation) and prompt audio (a real espeak-ng + sox build)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ivr.prompts import (
    DEFAULT_TEXTS,
    MANIFEST,
    BuildReport,
    PromptFileError,
    PromptText,
    _synthesized_key,
    build_prompts,
    load_prompt_texts,
    missing_tools,
)

needs_tools = pytest.mark.skipif(
    bool(missing_tools()), reason=f"prompt build tools missing: {missing_tools()}"
)

TWO_PROMPTS = {
    "goodbye": PromptText("goodbye", "Gracias por llamar. Hasta pronto."),
    "slot_at": PromptText("slot_at", "a las", voice_rate=140),
}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "prompts.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_both_forms_load_and_text_is_single_spaced(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'goodbye: "Gracias por llamar. Hasta pronto."\n'
        "ask_time_band:\n"
        "  text: >-\n"
        "    Para citas en la mañana, marque 1.\n"
        "    Para citas en la tarde, marque 2.\n"
        "  voice_rate: 140\n",
    )
    texts = load_prompt_texts(path)
    assert texts["goodbye"] == PromptText("goodbye", "Gracias por llamar. Hasta pronto.")
    assert texts["ask_time_band"].text == (
        "Para citas en la mañana, marque 1. Para citas en la tarde, marque 2."
    )
    assert texts["ask_time_band"].voice_rate == 140


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'ok: "Hola."\nSmoke-Welcome: "Hola."\n',
            r"prompts\.yaml:2: Smoke-Welcome: a prompt id uses lower-case letters",
        ),
        ('ok: "Hola."\ngoodbye: "  "\n', r"prompts\.yaml:2: goodbye: text is empty"),
        ("goodbye:\n  voice_rate: 150\n", r"prompts\.yaml:2: goodbye\.text: is required"),
        (
            'goodbye: {text: "Adiós.", voice_rate: fast}\n',
            r"goodbye\.voice_rate: 'fast' is not a whole number of words per minute",
        ),
        (
            'goodbye: {text: "Adiós.", voice: es}\n',
            r"goodbye\.voice: unknown field; did you mean 'voice_rate'",
        ),
        (
            'goodbye: "Adiós."\ngoodbye: "Chao."\n',
            r"prompts\.yaml:2: goodbye: duplicate key",
        ),
        ('- "Hola."\n', r"prompts\.yaml:1: prompts: must be a mapping, got list"),
        ('goodbye: "Adiós.\n', r"prompts\.yaml:2: yaml: found unexpected end of stream"),
    ],
)
def test_invalid_file_names_file_line_and_prompt(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(PromptFileError, match=expected):
        load_prompt_texts(write(tmp_path, body))


def test_missing_file_is_a_prompt_file_error(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match="cannot read"):
        load_prompt_texts(tmp_path / "absent.yaml")


def test_project_prompts_cover_the_flows_and_the_dialplan() -> None:
    texts = load_prompt_texts(DEFAULT_TEXTS)
    required = {
        "smoke_welcome", "smoke_you_pressed", "smoke_no_input", "goodbye", "agent_transfer",
        "service_unavailable_agent", "promo_digital_channels", "ask_document",
        "document_invalid", "document_not_found", "no_input_retry", "invalid_option",
        "ask_service", "slot_offer_intro", "slot_with_doctor", "slot_at_site",
        "slot_options", "ask_time_band", "booking_confirmed", "booking_failed_retry",
        "no_slots_whatsapp", "no_more_slots", "incident_agents", "max_retries_agent",
        # Played by dialplans/asterisk/extensions.conf without the controller.
        "invalid_number", "agents_unavailable",
    }  # fmt: skip
    assert required <= texts.keys()
    assert texts["smoke_welcome"].text == (
        "Bienvenido a la línea de pruebas de citas médicas. Marque un dígito."
    )
    assert "tecla numeral" in texts["ask_document"].text
    assert (
        "le enviamos un mensaje de texto con el enlace" in texts["no_slots_whatsapp"].text.lower()
    )


def test_missing_tools_reports_what_is_not_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert missing_tools() == ["espeak-ng", "sox"]


@needs_tools
def test_build_writes_three_formats_and_skips_when_current(tmp_path: Path) -> None:
    out = tmp_path / "build"
    report = build_prompts(TWO_PROMPTS, out, recorded_dir=None)
    assert sorted(report.synthesized) == ["goodbye", "slot_at"]
    for prompt_id in TWO_PROMPTS:
        ulaw = (out / f"{prompt_id}.ulaw").stat().st_size
        assert 0.5 <= ulaw / 8000 <= 15, f"{prompt_id}: {ulaw / 8000:.2f} s"
        assert (out / f"{prompt_id}.alaw").stat().st_size == ulaw
        assert (out / f"{prompt_id}.sln").stat().st_size == 2 * ulaw
    assert (out / MANIFEST).is_file()
    built = {path.name: path.read_bytes() for path in out.iterdir()}

    again = build_prompts(TWO_PROMPTS, out, recorded_dir=None)
    assert again.synthesized == []
    assert sorted(again.up_to_date) == ["goodbye", "slot_at"]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == built
    assert not [p for p in out.iterdir() if p.name.startswith(".build-")]


@needs_tools
def test_changed_text_or_rate_rebuilds_only_that_prompt(tmp_path: Path) -> None:
    out = tmp_path / "build"
    build_prompts(TWO_PROMPTS, out, recorded_dir=None)
    changed = {**TWO_PROMPTS, "slot_at": PromptText("slot_at", "a las", voice_rate=120)}
    report = build_prompts(changed, out, recorded_dir=None)
    assert report.synthesized == ["slot_at"]
    assert report.up_to_date == ["goodbye"]


@needs_tools
def test_build_is_reproducible(tmp_path: Path) -> None:
    first = build_prompts(TWO_PROMPTS, tmp_path / "a", recorded_dir=None).out_dir
    second = build_prompts(TWO_PROMPTS, tmp_path / "b", recorded_dir=None).out_dir
    for name in ("goodbye.ulaw", "goodbye.alaw", "goodbye.sln"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@needs_tools
def test_recording_replaces_its_file_and_feeds_the_other_formats(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    one_second_of_ulaw_silence = b"\xff" * 8000
    (recorded / "goodbye.ulaw").write_bytes(one_second_of_ulaw_silence)
    out = tmp_path / "build"

    report = build_prompts(TWO_PROMPTS, out, recorded_dir=recorded)

    assert report.recorded == ["goodbye"]
    assert report.synthesized == ["slot_at"]
    assert (out / "goodbye.ulaw").read_bytes() == one_second_of_ulaw_silence
    assert (out / "goodbye.alaw").stat().st_size == 8000
    assert (out / "goodbye.sln").read_bytes() == b"\x00\x00" * 8000

    assert build_prompts(TWO_PROMPTS, out, recorded_dir=recorded).recorded == []
    (recorded / "goodbye.ulaw").write_bytes(b"\xff" * 16000)
    assert build_prompts(TWO_PROMPTS, out, recorded_dir=recorded).recorded == ["goodbye"]
    assert (out / "goodbye.ulaw").stat().st_size == 16000


def test_a_chat_text_is_read_and_leaves_the_audio_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.prompts._tool_versions", lambda: {"espeak-ng": "1", "sox": "1"})
    path = write(
        tmp_path,
        "ask_service:\n"
        "  text: Para medicina general, marque 1.\n"
        "  voice_rate: 140\n"
        "  chat: |-\n"
        "    ¿Qué tipo de cita necesita?\n"
        "    Elija una opción.\n"
        "goodbye: Adiós.\n",
    )
    texts = load_prompt_texts(path)

    assert texts["ask_service"] == PromptText(
        "ask_service",
        "Para medicina general, marque 1.",
        140,
        chat="¿Qué tipo de cita necesita?\nElija una opción.",  # line breaks kept for a chat
    )
    assert texts["goodbye"].chat is None
    voice_only = PromptText("ask_service", "Para medicina general, marque 1.", 140)
    assert _synthesized_key(texts["ask_service"]) == _synthesized_key(voice_only)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('goodbye: {text: "Adiós.", chat: ""}\n', r"prompts\.yaml:1: goodbye\.chat: text is empty"),
        ('goodbye: {text: "Adiós.", chat: 3}\n', r"prompts\.yaml:1: goodbye\.chat: "),
        ('goodbye: {chat: "Adiós."}\n', r"prompts\.yaml:1: goodbye\.text: is required"),
    ],
)
def test_a_bad_chat_text_names_file_line_and_prompt(
    tmp_path: Path, body: str, expected: str
) -> None:
    with pytest.raises(PromptFileError, match=expected):
        load_prompt_texts(write(tmp_path, body))


def test_the_citas_menus_have_chat_texts_without_keys_to_press() -> None:
    texts = load_prompt_texts(DEFAULT_TEXTS)
    for prompt_id in ("ask_service", "slot_options", "ask_time_band", "ask_document"):
        chat = texts[prompt_id].chat
        assert chat and "marque" not in chat.lower(), prompt_id


def test_builders_of_one_directory_take_turns(tmp_path: Path) -> None:
    """Observed kind: two e2e workers start their sandboxes at once and both build
    the checkout's prompts into one directory; each read the empty manifest,
    synthesized every prompt and wrote its manifest over the other's. Now the
    second waits for the first and finds its build up to date: every prompt is
    synthesized exactly once, whichever starts first, for any number of builders."""
    out = tmp_path / "build"
    three = {**TWO_PROMPTS, "hello": PromptText("hello", "Hola.")}
    start = threading.Barrier(3)
    reports: list[BuildReport] = []

    def build() -> None:
        start.wait(timeout=10)
        reports.append(build_prompts(three, out, recorded_dir=None))

    builders = [threading.Thread(target=build) for _ in range(3)]
    for thread in builders:
        thread.start()
    for thread in builders:
        thread.join(timeout=60)
    assert len(reports) == 3
    synthesized = [p for report in reports for p in report.synthesized]
    assert sorted(synthesized) == sorted(three)  # each once, none twice
    assert sum(len(r.up_to_date) for r in reports) == 2 * len(three)
    assert json.loads((out / MANIFEST).read_text())["prompts"].keys() == three.keys()
