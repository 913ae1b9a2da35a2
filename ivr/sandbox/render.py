"""Render the Asterisk configuration of one sandbox instance from `dialplans/asterisk/`.

The templates ship with the package (``ivr/defaults/dialplans``, in a checkout a
link to ``dialplans/asterisk/``); the line's number and general agents' VDN come
from the deployment's ``line.yaml`` (``CITAS_CONFIG_DIR``).

Templates use ``@@name@@`` placeholders: Asterisk's own ``${VAR}`` syntax must
pass through untouched, so ``string.Template`` would not do. A placeholder with
no value is an error naming the file, never an empty string in a dialplan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ivr.ari.client import ari_sessions_needed
from ivr.sandbox.desk import template_values as desk_template_values
from ivr.sandbox.errors import SandboxError
from ivr.settings import MAX_CONTROLLERS, TEMPLATE_DIR, Settings

_PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")

# The sandbox's support extensions (the people an escalation call rings):
# extension 600N is a PJSIP endpoint whose contact is port support_sip + N.
SUPPORT_EXTENSIONS = ("6001", "6002", "6003", "6004")

SMOKE_NUMBER = "4440001"
# Asterisk's data directory (sounds, ARI's rest-api, documentation) as the
# package installs it; a sandbox instance has its own (``manager.link_data_dir``).
ASTERISK_DATA_DIR = "/usr/share/asterisk"
DIALPLAN_SMOKE_NUMBER = "4440002"


def template_values(
    settings: Settings, instance_dir_in_root: str, data_dir: str = ASTERISK_DATA_DIR
) -> dict[str, str]:
    """Every placeholder's value; raises ``ConfigError`` if ``line.yaml`` is invalid.

    ``data_dir`` is ``astdatadir`` (where ``sound:citas/<id>`` is looked up): the
    package's directory by default (the docker image copies the prompts there), the
    instance's own in a sandbox, so instances sharing a root never share prompts."""
    from ivr.citas.reference import load_line
    from ivr.flow.loader import flow_answers

    line = load_line(settings.citas_dir / "line.yaml")
    answers = flow_answers(settings.flows_dir)
    p = settings.ports
    return {
        "instance": settings.instance,
        "inst": instance_dir_in_root,
        "data_dir": data_dir,
        "host": settings.host,
        "sip_port": str(p.sip),
        "http_port": str(p.http),
        # Every controller's REST pool and websocket (ivr.ari.client.ari_sessions_needed).
        "http_session_limit": str(ari_sessions_needed(MAX_CONTROLLERS)),
        "ami_port": str(p.ami),
        "agi_port": str(p.agi),
        "rtp_start": str(p.rtp_start),
        "rtp_end": str(p.rtp_end),
        "agent_sip_port": str(p.agent_sip),
        "support_endpoints": support_endpoints(settings),
        "ops_port": str(p.ops_http),
        "ari_user": settings.ari_user,
        "ari_password": settings.ari_password,
        "ami_user": settings.ami_user,
        "ami_password": settings.ami_password,
        "app_name": settings.app_name,
        "citas_number": line.number,
        "agent_vdn": line.vdn_default,
        "smoke_number": SMOKE_NUMBER,
        # How [citas-ivr] enters each flow: answered in the dialplan before Stasis()
        # (one ARI request less per call, docs/perf/ari.md) unless it says answer: false.
        "citas_entry": entry_arguments("citas", answers),
        "smoke_entry": entry_arguments("smoke", answers),
        "dialplan_smoke_number": DIALPLAN_SMOKE_NUMBER,
        **desk_template_values(settings),
    }


def entry_arguments(flow: str, answers: Mapping[str, bool]) -> str:
    """The arguments of ``Gosub(citas-ivr,s,1(...))`` for ``flow``: its name, then
    ``answer`` when it answers calls (``Flow.answer``), or ``ring`` when the controller
    decides: a flow that says ``answer: false``, or one the flows directory does not
    have (the controller's business then, as before the dialplan answered).

    >>> entry_arguments("smoke", {"smoke": True}), entry_arguments("q", {"q": False})
    ('smoke,answer', 'q,ring')
    >>> entry_arguments("smoke", {})
    'smoke,ring'
    """
    return f"{flow},{'answer' if answers.get(flow, False) else 'ring'}"


def support_port(settings: Settings, extension: str) -> int:
    """The loopback port where the sandbox's support extension listens
    (``support_sip`` + its last digit): ``6001`` -> 5081 at offset 0."""
    if extension not in SUPPORT_EXTENSIONS:
        raise SandboxError(
            f"{extension} is not a sandbox support extension ({', '.join(SUPPORT_EXTENSIONS)})"
        )
    return settings.ports.support_sip + SUPPORT_EXTENSIONS.index(extension) + 1


def support_endpoints(settings: Settings) -> str:
    """pjsip.conf sections for ``SUPPORT_EXTENSIONS``: one endpoint and AOR each,
    named by the extension (what ``PJSIP/<extension>`` dials)."""
    sections = []
    for ext in SUPPORT_EXTENSIONS:
        sections.append(
            f"[{ext}]\ntype = endpoint\ntransport = transport-udp\ncontext = citas-support-side\n"
            "disallow = all\nallow = ulaw,alaw\ndtmf_mode = auto_info\ndirect_media = no\n"
            f"rtp_symmetric = yes\nlanguage = es\naors = {ext}\n\n"
            f"[{ext}]\ntype = aor\n"
            f"contact = sip:{ext}@{settings.host}:{support_port(settings, ext)}\n"
        )
    return "\n".join(sections)


def render_text(text: str, values: Mapping[str, str], source: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            raise SandboxError(f"{source}:{line}: unknown placeholder @@{name}@@")
        return values[name]

    return _PLACEHOLDER.sub(substitute, text)


def render_all(
    out_dir: Path, values: Mapping[str, str], template_dir: Path = TEMPLATE_DIR
) -> list[Path]:
    """Write every template into ``out_dir``; returns the files written."""
    templates = sorted(template_dir.glob("*.conf"))
    if not templates:
        raise SandboxError(f"no Asterisk templates in {template_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for template in templates:
        rendered = render_text(template.read_text(encoding="utf-8"), values, str(template))
        target = out_dir / template.name
        target.write_text(rendered, encoding="utf-8")
        written.append(target)
    return written
