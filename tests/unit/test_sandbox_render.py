"""Rendering the Asterisk configuration templates of a sandbox instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.sandbox.errors import SandboxError
from ivr.sandbox.render import (
    DIALPLAN_SMOKE_NUMBER,
    SMOKE_NUMBER,
    TEMPLATE_DIR,
    entry_arguments,
    render_all,
    render_text,
    template_values,
)
from ivr.settings import Settings


@pytest.fixture
def values() -> dict[str, str]:
    return template_values(Settings.from_env({}), "/srv/citas/x")


def test_render_text_fills_placeholders_and_keeps_asterisk_variables() -> None:
    text = "exten => @@number@@,1,Stasis(${CITAS_APP})\n"

    assert render_text(text, {"number": "4441234"}, "t.conf") == (
        "exten => 4441234,1,Stasis(${CITAS_APP})\n"
    )


def test_render_text_names_file_and_line_of_an_unknown_placeholder() -> None:
    text = "[general]\nbind = @@host@@\nport = @@sip_prot@@\n"

    with pytest.raises(SandboxError, match=r"^pjsip\.conf:3: unknown placeholder @@sip_prot@@$"):
        render_text(text, {"host": "127.0.0.1"}, "pjsip.conf")


def test_template_values_follow_the_settings() -> None:
    settings = Settings.from_env({"CITAS_PORT_OFFSET": "10", "CITAS_INSTANCE": "b"})

    values = template_values(settings, "/srv/citas/b")

    assert values["instance"] == "b"
    assert values["inst"] == "/srv/citas/b"
    assert (values["sip_port"], values["http_port"], values["rtp_start"]) == (
        "5070",
        "8098",
        "10020",
    )
    assert values["smoke_number"] == SMOKE_NUMBER
    assert values["dialplan_smoke_number"] == DIALPLAN_SMOKE_NUMBER


def test_render_all_writes_every_template_with_no_placeholder_left(
    tmp_path: Path, values: dict[str, str]
) -> None:
    templates = sorted(p.name for p in TEMPLATE_DIR.glob("*.conf"))

    written = render_all(tmp_path / "etc", values)

    assert [p.name for p in written] == templates
    assert {"extensions.conf", "pjsip.conf", "ari.conf", "asterisk.conf"} <= set(templates)
    for path in written:
        assert path.parent == tmp_path / "etc"
        assert "@@" not in path.read_text(encoding="utf-8"), path.name


def test_rendered_dialplan_enters_stasis_and_falls_back_to_agents(
    tmp_path: Path, values: dict[str, str]
) -> None:
    render_all(tmp_path, values)
    dialplan = (tmp_path / "extensions.conf").read_text(encoding="utf-8")

    assert f"CITAS_APP = {values['app_name']}" in dialplan
    assert f"CITAS_AGENT_VDN = {values['agent_vdn']}" in dialplan
    # Slot 1 is ${CITAS_APP}, slot i ${CITAS_APP}-i; the first slot is random and a
    # failed Stasis() tries the next one, CITAS_CONTROLLERS (default 1) in all.
    assert "\nCITAS_CONTROLLERS = 1\n" in dialplan
    assert "Set(LOCAL(slot)=${RAND(1,${CITAS_CONTROLLERS})})" in dialplan
    assert (
        "same => n(slot),Stasis(${CITAS_APP}${IF($[${slot} > 1]?-${slot})},${ARG1},${CITAS_CALL_ID})"
        in dialplan
    )
    assert "GotoIf($[${tries} >= ${CITAS_CONTROLLERS}]?controller-down)" in dialplan
    assert "Set(LOCAL(slot)=$[${slot} % ${CITAS_CONTROLLERS} + 1])" in dialplan
    # Both flows answer (the default): answered in the dialplan, before Stasis().
    assert f"exten => {values['citas_number']},1,Gosub(citas-ivr,s,1(citas,answer))" in dialplan
    assert f"exten => {SMOKE_NUMBER},1,Gosub(citas-ivr,s,1(smoke,answer))" in dialplan
    entry = dialplan[dialplan.index("[citas-ivr]") : dialplan.index("n(slot),Stasis")]
    assert 'same => n,ExecIf($["${ARG2}" = "answer"]?Answer(,i))' in entry
    # Controller down: Stasis returns FAILED and the dialplan sends the caller to agents.
    assert 'GotoIf($["${STASISSTATUS}" != "FAILED"]?done)' in dialplan
    fallback = dialplan[dialplan.index("n(controller-down)") :]
    assert "Set(__CITAS_REASON=ivr-unavailable)" in fallback
    assert "Goto(citas-agents,${CITAS_AGENT_VDN},1)" in fallback


def test_rendered_pjsip_agent_contact_keeps_the_at_sign(
    tmp_path: Path, values: dict[str, str]
) -> None:
    render_all(tmp_path, values)
    pjsip = (tmp_path / "pjsip.conf").read_text(encoding="utf-8")

    assert f"contact = sip:agent@{values['host']}:{values['agent_sip_port']}" in pjsip
    assert f"bind = {values['host']}:{values['sip_port']}" in pjsip


def test_rendered_asterisk_conf_keeps_the_instance_inside_its_directory(
    tmp_path: Path, values: dict[str, str]
) -> None:
    render_all(tmp_path, values)
    conf = (tmp_path / "asterisk.conf").read_text(encoding="utf-8")

    assert "astetcdir => /srv/citas/x/etc" in conf
    assert "astrundir => /srv/citas/x/run" in conf
    # The docker image's Asterisk plays the prompts copied into the package's directory.
    assert "astdatadir => /usr/share/asterisk\n" in conf


def test_a_sandbox_instance_reads_its_own_data_directory(tmp_path: Path) -> None:
    """Its prompts never go into the shared root (tests/unit/test_sandbox_data_dir.py)."""
    values = template_values(Settings.from_env({}), "/srv/citas/x", "/srv/citas/x/data")
    render_all(tmp_path, values)
    conf = (tmp_path / "asterisk.conf").read_text(encoding="utf-8")

    assert "astdatadir => /srv/citas/x/data\n" in conf
    assert "astagidir => /usr/share/asterisk/agi-bin\n" in conf


def test_render_all_refuses_an_empty_template_directory(
    tmp_path: Path, values: dict[str, str]
) -> None:
    with pytest.raises(SandboxError, match="no Asterisk templates"):
        render_all(tmp_path / "out", values, template_dir=tmp_path)
    assert not (tmp_path / "out").exists()


def test_render_all_stops_at_a_template_with_an_unknown_placeholder(
    tmp_path: Path, values: dict[str, str]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "bad.conf").write_text("; ok\nx = @@nope@@\n", encoding="utf-8")

    with pytest.raises(SandboxError, match=r"bad\.conf:2: unknown placeholder @@nope@@"):
        render_all(tmp_path / "out", values, template_dir=templates)


def test_a_flow_that_does_not_answer_is_entered_ringing(tmp_path: Path) -> None:
    """``answer: false`` leaves the answer to the controller, and so does a flow
    the dialplan names but no file defines (a deployment without the smoke flow)."""
    from ivr.flow.loader import flow_answers

    flows = tmp_path / "flows"
    flows.mkdir()
    src = (Settings.from_env({}).flows_dir / "smoke.yaml").read_text(encoding="utf-8")
    (flows / "smoke.yaml").write_text(
        src.replace("start: welcome", "answer: false\nstart: welcome")
    )
    answers = flow_answers(flows)

    assert answers == {"smoke": False}
    assert entry_arguments("smoke", answers) == "smoke,ring"
    assert entry_arguments("citas", answers) == "citas,ring"
