"""The desk's Asterisk side as the sandbox renders it from desk.yaml (docs/desk/queues.md).

The kind of fault: a desk queue, agent or VDN that Asterisk would not build or
could not reach — a queue named as app_queue's reserved ``[general]`` section
(silently no queue: found on the first render of issue 12's desk.yaml), an
agent endpoint whose phone cannot register or whose port collides with another
port or sandbox, a queue that lets callers wait with nobody to answer, a VDN
that no longer reaches the tester agent. Each is checked over every queue and
agent of the shipped desk.yaml, at several port offsets, and on variants.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.sandbox.desk import (
    MAX_SANDBOX_AGENTS,
    QUEUE_MAX_WAIT_S,
    TESTER_MEMBER,
    TESTER_PENALTY,
    DeskLayout,
    desk_agent_port,
    load_layout,
)
from ivr.sandbox.errors import SandboxError
from ivr.sandbox.render import SUPPORT_EXTENSIONS, render_all, support_port, template_values
from ivr.settings import REPO_ROOT, Ports, Settings
from ivr.yamlsrc import ConfigError

DESK_YAML = REPO_ROOT / "config" / "citas" / "desk.yaml"
# DESK.md: the IVR context every queue event must carry.
CHANNELVARS = ("CITAS_CALL_ID,CITAS_FLOW,CITAS_SEGMENT,CITAS_REASON,CITAS_AFFILIATE,"
               "CITAS_CUPS,CITAS_VDN,CITAS_LEVEL,CITAS_DESK_PREV")  # fmt: skip


def sections(text: str) -> dict[str, list[dict[str, list[str]]]]:
    """An Asterisk .conf file: section name -> its sections (names repeat) -> key -> values."""
    out: dict[str, list[dict[str, list[str]]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            current = {}
            out.setdefault(line.strip("[]"), []).append(current)
        elif current is not None and "=" in line:
            key, value = (part.strip() for part in line.replace("=>", "=", 1).split("=", 1))
            current.setdefault(key, []).append(value)
    return out


def one(values: dict[str, list[str]], key: str) -> str:
    (value,) = values[key]
    return value


@pytest.fixture
def layout() -> DeskLayout:
    found = load_layout(Settings())
    assert found is not None
    return found


@pytest.fixture
def rendered(tmp_path: Path) -> dict[str, str]:
    render_all(tmp_path, template_values(Settings(), "/srv/x"))
    return {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.conf")}


def own_config(tmp_path: Path, desk_yaml: str | None) -> Settings:
    """Settings whose config dir is a copy of the shipped one with this desk.yaml (None: none)."""
    import shutil

    config = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "config", config)
    target = config / "citas" / "desk.yaml"
    if desk_yaml is None:
        target.unlink()
    else:
        target.write_text(desk_yaml, encoding="utf-8")
    return Settings.from_env({"CITAS_CONFIG_DIR": str(config)})


def test_the_shipped_desk_is_read(layout: DeskLayout) -> None:
    assert [q.id for q in layout.queues][:2] == ["l1_general", "incidentes"]
    assert {q.extension: q.level for q in layout.queues}["5550001"] == 1
    assert layout.agent_extensions[0] == "7001"
    assert (layout.ring_timeout_s, layout.wrapup_s) == (20, 0)


def test_every_desk_queue_is_an_app_queue_queue_that_never_keeps_a_caller_waiting_for_nobody(
    layout: DeskLayout, rendered: dict[str, str]
) -> None:
    queues = sections(rendered["queues.conf"])

    assert one(queues["general"][0], "persistentmembers") == "yes"
    assert set(queues) == {"general"} | {q.id for q in layout.queues}
    for q in layout.queues:
        (conf,) = queues[q.id]
        assert one(conf, "strategy") == "leastrecent", q.id
        assert one(conf, "timeout") == str(layout.ring_timeout_s)
        assert one(conf, "wrapuptime") == str(layout.wrapup_s)
        assert one(conf, "ringinuse") == "no"
        for option in ("joinempty", "leavewhenempty"):
            assert set(one(conf, option).split(",")) == {"paused", "unavailable", "invalid", "unknown"}
        assert one(conf, "announce-holdtime") == "no"
        assert one(conf, "autopause") == "no"
        members = conf.get("member", [])
        if q.level == 1:
            assert members == [f"{TESTER_MEMBER},{TESTER_PENALTY},Probador (sipp),,yes"], q.id
        else:
            assert members == [], q.id


def test_a_queue_named_like_app_queues_settings_section_is_refused_not_rendered(
    tmp_path: Path,
) -> None:
    # Rendered, [general] would be read as app_queue's settings: VDN 5550001 had no queue.
    text = DESK_YAML.read_text(encoding="utf-8").replace("  l1_general:   {", "  general:   {")
    settings = own_config(tmp_path, text)

    with pytest.raises(ConfigError, match="'general' is app_queue's settings section"):
        template_values(settings, "/srv/x")


def test_the_queue_extensions_queue_the_caller_with_the_level_and_the_headers(
    layout: DeskLayout, rendered: dict[str, str]
) -> None:
    dialplan = rendered["extensions.conf"]
    agents = dialplan[dialplan.index("[citas-agents]") : dialplan.index("[citas-queue]")]

    for q in layout.queues:
        assert (
            f"exten => {q.extension},1,Set(CITAS_QUEUE={q.id})\n"
            f" same => n,Set(__CITAS_LEVEL={q.level})\n"
            " same => n,Goto(citas-queue,${EXTEN},1)\n"
        ) in agents
    # A VDN with no desk queue still reaches the tester agent, with its headers.
    assert "exten => _X.,1,NoOp(" in agents
    assert "Dial(PJSIP/agent,30,b(citas-agent-headers^s^1))" in agents
    queue = dialplan[dialplan.index("[citas-queue]") :].split("\n\n", 1)[0]
    assert " same => n,Set(__CITAS_VDN=${EXTEN})\n" in queue
    assert (f" same => n,Queue(${{CITAS_QUEUE}},rb(citas-agent-headers^s^1),,,{QUEUE_MAX_WAIT_S})"
            in queue)  # fmt: skip
    assert queue.index("Queue(") < queue.index("Playback(citas/agents_unavailable)")


def test_every_agent_has_an_endpoint_that_takes_one_registered_contact(
    layout: DeskLayout, rendered: dict[str, str]
) -> None:
    pjsip = sections(rendered["pjsip.conf"])

    assert one(pjsip["global"][0], "endpoint_identifier_order") == "username,ip,anonymous"
    for ext in layout.agent_extensions:
        kinds = {one(s, "type"): s for s in pjsip[ext]}
        assert one(kinds["endpoint"], "aors") == ext
        assert one(kinds["endpoint"], "context") == "citas-agent-side"
        assert "contact" not in kinds["aor"]  # the phone registers it
        assert (one(kinds["aor"], "max_contacts"), one(kinds["aor"], "remove_existing")) == (
            "1",
            "yes",
        )


def test_queue_events_carry_the_ivr_context_and_app_queue_is_loaded(
    rendered: dict[str, str],
) -> None:
    manager = sections(rendered["manager.conf"])
    modules = sections(rendered["modules.conf"])

    assert one(manager["general"][0], "channelvars") == CHANNELVARS
    assert "app_queue.so" not in modules["modules"][0].get("noload", [])


def other_ports(settings: Settings) -> set[int]:
    p = settings.ports
    return {p.sip, p.http, p.ami, p.agi, p.agent_sip, p.ops_http, p.whatsapp_sim, p.smtp} | {
        support_port(settings, e) for e in SUPPORT_EXTENSIONS
    } | set(range(p.rtp_start, p.rtp_end + 1))  # fmt: skip


def offsets() -> Iterator[int]:
    yield from (0, 100, 1000, 1100, 2000, 2500, 12500)


@pytest.mark.parametrize("offset", list(offsets()))
def test_agent_ports_follow_the_offset_and_collide_with_nothing(
    offset: int, layout: DeskLayout
) -> None:
    settings = Settings.from_env({"CITAS_PORT_OFFSET": str(offset)})
    ports = [desk_agent_port(settings, ext, layout) for ext in layout.agent_extensions]

    assert ports[0] == 5091 + offset
    assert len(set(ports)) == len(ports)
    assert not set(ports) & other_ports(settings)
    for near in (offset - 100, offset + 100, offset + 500, offset + 1000):
        if near < 0:
            continue
        other = Settings.from_env({"CITAS_PORT_OFFSET": str(near)})
        theirs = {desk_agent_port(other, ext, layout) for ext in layout.agent_extensions}
        assert not set(ports) & (other_ports(other) | theirs), near


def test_the_most_agents_a_sandbox_has_ports_for_stay_in_its_own_block(layout: DeskLayout) -> None:
    many = replace(layout, agents={str(7000 + n): f"A{n}" for n in range(1, MAX_SANDBOX_AGENTS + 1)})
    settings = Settings()
    next_block = Settings.from_env({"CITAS_PORT_OFFSET": "100"})

    last = desk_agent_port(settings, many.agent_extensions[-1], many)

    assert last < next_block.ports.sip
    assert Ports().desk_sip + MAX_SANDBOX_AGENTS == last


def test_too_many_agents_for_the_sandbox_are_refused(tmp_path: Path) -> None:
    agents = "".join(f'  "{7000 + n}": {{name: A{n}, user: a{n}, profile: recepcion}}\n'
                     for n in range(1, MAX_SANDBOX_AGENTS + 2))  # fmt: skip
    text = DESK_YAML.read_text(encoding="utf-8")
    text = text[: text.index("agents:")] + "agents:\n" + agents

    with pytest.raises(SandboxError, match=f"ports for {MAX_SANDBOX_AGENTS} agents"):
        load_layout(own_config(tmp_path, text))


@pytest.mark.parametrize("extension", ["7099", "6001", "", "agent"])
def test_an_extension_that_is_not_a_desk_agent_has_no_port(
    extension: str, layout: DeskLayout
) -> None:
    with pytest.raises(SandboxError, match="is not a desk agent"):
        desk_agent_port(Settings(), extension, layout)


def test_without_desk_yaml_every_vdn_dials_the_tester_agent(tmp_path: Path) -> None:
    settings = own_config(tmp_path, None)
    out = tmp_path / "etc"
    render_all(out, template_values(settings, "/srv/x"))
    dialplan = (out / "extensions.conf").read_text(encoding="utf-8")
    queues = sections((out / "queues.conf").read_text(encoding="utf-8"))

    assert load_layout(settings) is None
    assert set(queues) == {"general"}
    assert "Dial(PJSIP/agent,30,b(citas-agent-headers^s^1))" in dialplan
    with pytest.raises(SandboxError, match=r"none: no desk\.yaml"):
        desk_agent_port(settings, "7001")


@pytest.mark.parametrize(("ring", "wrapup", "seconds"), [("20s", "0s", (20, 0)), ("2m", "15s", (120, 15))])
def test_ring_timeout_and_wrapup_become_the_queues_seconds(
    ring: str, wrapup: str, seconds: tuple[int, int], tmp_path: Path
) -> None:
    yaml_text = DESK_YAML.read_text(encoding="utf-8").replace(
        "ring_timeout: 20s", f"ring_timeout: {ring}"
    ).replace("wrapup: 0s", f"wrapup: {wrapup}")
    out = tmp_path / "etc"
    render_all(out, template_values(own_config(tmp_path, yaml_text), "/srv/x"))
    queues = sections((out / "queues.conf").read_text(encoding="utf-8"))

    for name, (conf,) in ((n, s) for n, s in queues.items() if n != "general"):
        assert (one(conf, "timeout"), one(conf, "wrapuptime")) == tuple(map(str, seconds)), name


def test_the_dialplan_still_parses_as_sections(rendered: dict[str, str]) -> None:
    dialplan = configparser.ConfigParser(strict=False, interpolation=None)
    dialplan.read_string(rendered["extensions.conf"].replace("=>", "="))

    assert {"citas-agents", "citas-queue", "citas-agent-headers"} <= set(dialplan.sections())


def test_a_sandbox_starts_with_no_agent_logged_in_nor_phone_registered(tmp_path: Path) -> None:
    """astdb keeps queue members and registrations (persistentmembers); a killed test's
    agent would take the next run's calls from the tester agent."""
    from ivr.sandbox.instance import InstanceState
    from ivr.sandbox.manager import _prepare_instance_dirs

    state = InstanceState(instance="probe", root=str(tmp_path), host="127.0.0.1", ports={},
                          asterisk_version="22", started_at=0.0)  # fmt: skip
    lib = state.inst_on_host / "lib"
    lib.mkdir(parents=True)
    (lib / "astdb.sqlite3").write_bytes(b"/Queue/PersistentMembers/l1_general PJSIP/7001")
    (lib / "keep.me").write_text("other state", encoding="utf-8")

    _prepare_instance_dirs(state)
    _prepare_instance_dirs(state)  # and again, with nothing to remove

    assert not (lib / "astdb.sqlite3").exists()
    assert (lib / "keep.me").exists()
