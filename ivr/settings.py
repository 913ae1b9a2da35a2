"""Runtime settings: ports, credentials, paths and the database URL.

Everything has a default that works for the embedded sandbox; every value can
be overridden with a ``CITAS_*`` environment variable. Ports come in one block
(``CITAS_PORT_OFFSET`` shifts them all) so two sandboxes can run side by side.

A deployment's own files live outside the code: ``CITAS_CONFIG_DIR`` (the
line's flows and tables, laid out like the repository's ``config/``:
``flows/*.yaml``, ``citas/*.yaml``) and ``CITAS_PROMPTS_DIR`` (``prompts.yaml``,
``recorded/``, and ``build/`` where the audio is built). Their defaults are the
files shipped in the package (``ivr/defaults/``), which in a checkout are the
repository's own ``config/`` and ``prompts/`` (symbolic links), so a
``pip install .`` serves the demo line with nothing else.

>>> s = Settings.from_env({"CITAS_PORT_OFFSET": "1000"})
>>> (s.ports.sip, s.ports.http, s.ports.ami, s.ports.agi)
(6060, 9088, 6038, 5573)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

# The checkout's root, for tests and developer tools only: the package finds
# its files through Settings (config_dir, prompts_dir), never through this.
REPO_ROOT = Path(__file__).resolve().parent.parent
# Shipped as package data (pyproject.toml); in a checkout, links to config/,
# prompts/ and dialplans/asterisk/ (resolved, so errors name the real file).
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
DEFAULT_CONFIG_DIR = (DEFAULTS_DIR / "config").resolve()
DEFAULT_PROMPTS_DIR = (DEFAULTS_DIR / "prompts").resolve()
TEMPLATE_DIR = (DEFAULTS_DIR / "dialplans").resolve()


ARI_REST_TRANSPORTS = ("websocket", "http")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Ports:
    sip: int = 5060
    http: int = 8088
    ami: int = 5038
    agi: int = 4573
    rtp_start: int = 10000
    rtp_end: int = 10999
    agent_sip: int = 5070
    ops_http: int = 8080
    whatsapp_sim: int = 8095  # the WhatsApp Cloud API simulator (sandbox, demo, tests)
    # The sandbox's support extensions 6001-6004 (escalation calls): sipp or a
    # softphone listens on support_sip + 1..4 (ivr/defaults/dialplans/pjsip.conf).
    support_sip: int = 5080
    smtp: int = 2525  # the sandbox's SMTP peer (ivr.mail.testserver)
    # The sandbox's desk agents (desk.yaml's agents, in extension order): the sipp
    # agent of the Nth listens on desk_sip + N (ivr/sandbox/render.py: desk_agent_port).
    desk_sip: int = 5090

    def shifted(self, offset: int) -> Ports:
        return Ports(
            sip=self.sip + offset,
            http=self.http + offset,
            ami=self.ami + offset,
            agi=self.agi + offset,
            rtp_start=self.rtp_start + offset * 2,
            rtp_end=self.rtp_end + offset * 2,
            agent_sip=self.agent_sip + offset,
            ops_http=self.ops_http + offset,
            whatsapp_sim=self.whatsapp_sim + offset,
            support_sip=self.support_sip + offset,
            smtp=self.smtp + offset,
            desk_sip=self.desk_sip + offset,
        )


@dataclass(frozen=True)
class ChatSettings:
    """The assistant on WhatsApp (``ivr.chat``); the Cloud API number itself is
    ``Settings.whatsapp_*`` (README "Connecting a real WhatsApp Business number")."""

    template: str = "citas_retomar"  # approved template, the only message outside 24 h
    template_language: str = "es"
    idle_minutes: float = 30.0  # a conversation idle this long is closed, with a message
    enabled: bool = True  # serve the webhook and the assistant in `ivr serve`


@dataclass(frozen=True)
class MailSettings:
    """E-mail by SMTP (``ivr.mail``: case answers). ``host`` empty: the sandbox's
    SMTP peer (``Ports.smtp``, plain SMTP on loopback); a real relay names its
    host, ``port`` (0: 587 for ``starttls``, 465 for ``tls``, 25 for ``none``),
    ``security`` and, when it wants AUTH, ``user`` and ``password``.
    ``sender``: the line's From address (docs/cases/backoffice.md)."""

    host: str = ""
    port: int = 0
    security: str = "starttls"  # starttls | tls | none
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "Línea de citas <citas@example.org>"
    timeout: float = 10.0  # seconds: connecting and each SMTP command


@dataclass(frozen=True)
class Settings:
    instance: str = "default"
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    ari_user: str = "citas"
    ari_password: str = "citas-sandbox"
    ami_user: str = "citas"
    ami_password: str = "citas-sandbox"
    app_name: str = "citas-ivr"
    cache_dir: Path = Path("/var/cache/citas-ivr")
    state_dir: Path = Path("/var/lib/citas-ivr")
    db_url: str = ""
    config_dir: Path = DEFAULT_CONFIG_DIR  # flows/*.yaml, citas/*.yaml (CITAS_CONFIG_DIR)
    prompts_dir: Path = DEFAULT_PROMPTS_DIR  # prompts.yaml, recorded/, build/ (CITAS_PROMPTS_DIR)
    request_timeout: float = 5.0
    # How the controller sends its ARI requests (CITAS_ARI_REST): over the event
    # websocket (ivr.ari.wsrest; HTTP until its filter is set and a probe came back
    # over it) or always over HTTP.
    ari_rest: str = "websocket"
    seed_demo: bool = True  # seed the demo slots (sandbox/demo); off in production
    booking_url: str = ""  # the scheduling web service; empty: slots in our own database
    booking_token: str = ""
    sms_url: str = ""  # the SMS provider (HttpSmsGateway); empty: <state>/<instance>/sms-sent.jsonl
    sms_token: str = ""
    sms_retry_s: float = 2.0  # first SMS retry delay, doubling up to 5 min
    # How often each process polls the change feed's versions (ivr.store.changes):
    # on SQLite the delay of a change made by another process; PostgreSQL notifies.
    changes_poll_s: float = 0.5
    # WhatsApp Cloud API (ivr.whatsapp; docs/whatsapp.md). The API base is the
    # simulator's URL in the sandbox and tests. Secrets stay out of repr/logs.
    whatsapp_api_base: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v25.0"
    whatsapp_phone_number_id: str = ""
    whatsapp_token: str = field(default="", repr=False)
    whatsapp_app_secret: str = field(default="", repr=False)
    whatsapp_verify_token: str = field(default="", repr=False)
    chat: ChatSettings = field(default_factory=ChatSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    # Controller processes sharing this Asterisk (CITAS_CONTROLLERS: N >= 1, or
    # "auto" = the cores): `ivr serve` plus N-1 voice workers (docs/perf/multi.md).
    controllers: int = 1

    @property
    def ari_url(self) -> str:
        return f"http://{self.host}:{self.ports.http}/ari"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.state_dir / self.instance / 'citas.db'}"

    @property
    def flows_dir(self) -> Path:
        """The flow files (``*.yaml``), one flow each."""
        return self.config_dir / "flows"

    @property
    def citas_dir(self) -> Path:
        """The citas line's tables: line, services, sites, eligibility, affiliates."""
        return self.config_dir / "citas"

    @property
    def prompts_file(self) -> Path:
        return self.prompts_dir / "prompts.yaml"

    @property
    def recorded_dir(self) -> Path:
        """Voice-talent recordings that replace synthesized prompts (prompts/README.md)."""
        return self.prompts_dir / "recorded"

    @property
    def prompts_build_dir(self) -> Path:
        """Where ``ivr prompts build`` and ``ivr sandbox up`` write the prompt audio."""
        return self.prompts_dir / "build"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        if os.geteuid() != 0:
            home = Path.home()
            base = replace(
                base,
                cache_dir=home / ".cache" / "citas-ivr",
                state_dir=home / ".local" / "state" / "citas-ivr",
            )
        ports = base.ports.shifted(_int(env, "CITAS_PORT_OFFSET", 0))
        ports = Ports(
            sip=_int(env, "CITAS_SIP_PORT", ports.sip),
            http=_int(env, "CITAS_HTTP_PORT", ports.http),
            ami=_int(env, "CITAS_AMI_PORT", ports.ami),
            agi=_int(env, "CITAS_AGI_PORT", ports.agi),
            rtp_start=_int(env, "CITAS_RTP_START", ports.rtp_start),
            rtp_end=_int(env, "CITAS_RTP_END", ports.rtp_end),
            agent_sip=_int(env, "CITAS_AGENT_SIP_PORT", ports.agent_sip),
            ops_http=_int(env, "CITAS_OPS_PORT", ports.ops_http),
            whatsapp_sim=_int(env, "CITAS_WHATSAPP_SIM_PORT", ports.whatsapp_sim),
            support_sip=ports.support_sip,
            smtp=_int(env, "CITAS_SMTP_PORT", ports.smtp),
            desk_sip=ports.desk_sip,
        )
        for name, value in vars(ports).items():
            if not 0 < value <= 65535:
                raise SettingsError(
                    f"port {name}={value} is out of range (check CITAS_PORT_OFFSET)"
                )
        if ports.rtp_start >= ports.rtp_end:
            raise SettingsError(f"RTP range {ports.rtp_start}-{ports.rtp_end} is empty")
        return replace(
            base,
            instance=env.get("CITAS_INSTANCE", base.instance),
            ports=ports,
            ari_user=env.get("CITAS_ARI_USER", base.ari_user),
            ari_password=env.get("CITAS_ARI_PASSWORD", base.ari_password),
            ami_user=env.get("CITAS_AMI_USER", base.ami_user),
            ami_password=env.get("CITAS_AMI_PASSWORD", base.ami_password),
            app_name=env.get("CITAS_APP", base.app_name),
            cache_dir=Path(env.get("CITAS_CACHE_DIR", str(base.cache_dir))),
            state_dir=Path(env.get("CITAS_STATE_DIR", str(base.state_dir))),
            db_url=env.get("CITAS_DB_URL", base.db_url),
            config_dir=_dir(env, "CITAS_CONFIG_DIR", base.config_dir, CONFIG_LAYOUT),
            prompts_dir=_dir(env, "CITAS_PROMPTS_DIR", base.prompts_dir, PROMPTS_LAYOUT),
            request_timeout=_float(env, "CITAS_REQUEST_TIMEOUT", base.request_timeout),
            ari_rest=_one_of(env, "CITAS_ARI_REST", base.ari_rest, ARI_REST_TRANSPORTS),
            seed_demo=env.get("CITAS_SEED_DEMO", "1") not in ("0", "false", "no"),
            booking_url=env.get("CITAS_BOOKING_URL", base.booking_url),
            booking_token=env.get("CITAS_BOOKING_TOKEN", base.booking_token),
            sms_url=env.get("CITAS_SMS_URL", base.sms_url),
            sms_token=env.get("CITAS_SMS_TOKEN", base.sms_token),
            sms_retry_s=_float(env, "CITAS_SMS_RETRY_S", base.sms_retry_s),
            changes_poll_s=_float(env, "CITAS_CHANGES_POLL_S", base.changes_poll_s),
            whatsapp_api_base=env.get("CITAS_WHATSAPP_API_BASE") or base.whatsapp_api_base,
            whatsapp_api_version=_api_version(env, base.whatsapp_api_version),
            whatsapp_phone_number_id=env.get(
                "CITAS_WHATSAPP_PHONE_NUMBER_ID", base.whatsapp_phone_number_id
            ),
            whatsapp_token=env.get("CITAS_WHATSAPP_TOKEN", base.whatsapp_token),
            whatsapp_app_secret=env.get("CITAS_WHATSAPP_APP_SECRET", base.whatsapp_app_secret),
            whatsapp_verify_token=env.get(
                "CITAS_WHATSAPP_VERIFY_TOKEN", base.whatsapp_verify_token
            ),
            chat=_chat(env, base.chat),
            mail=_mail(env, base.mail),
            controllers=_controllers(env),
        )


MAX_CONTROLLERS = 64  # CITAS_CONTROLLERS' bound (Asterisk's HTTP sessionlimit covers it)


def _controllers(env: Mapping[str, str]) -> int:
    """``CITAS_CONTROLLERS``: an integer >= 1, or ``auto`` (the default) = the
    cores this process may run on (``os.sched_getaffinity``). Raises
    ``SettingsError`` naming the variable otherwise."""
    raw = (env.get("CITAS_CONTROLLERS") or "auto").strip()
    if raw == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"CITAS_CONTROLLERS={raw!r} is not an integer or 'auto'") from None
    if not 1 <= value <= MAX_CONTROLLERS:
        raise SettingsError(f"CITAS_CONTROLLERS={raw!r} is out of range 1-{MAX_CONTROLLERS}")
    return value


def _chat(env: Mapping[str, str], base: ChatSettings) -> ChatSettings:
    return ChatSettings(
        template=env.get("CITAS_WHATSAPP_TEMPLATE", base.template),
        template_language=env.get("CITAS_WHATSAPP_TEMPLATE_LANGUAGE", base.template_language),
        idle_minutes=_float(env, "CITAS_CHAT_IDLE_MINUTES", base.idle_minutes),
        enabled=env.get("CITAS_CHAT", "1") not in ("0", "false", "no"),
    )


MAIL_SECURITIES = ("starttls", "tls", "none")


def _mail(env: Mapping[str, str], base: MailSettings) -> MailSettings:
    security = _one_of(env, "CITAS_MAIL_SECURITY", base.security, MAIL_SECURITIES)
    return MailSettings(
        host=env.get("CITAS_MAIL_HOST", base.host),
        port=_int(env, "CITAS_MAIL_PORT", base.port),
        security=security,
        user=env.get("CITAS_MAIL_USER", base.user),
        password=env.get("CITAS_MAIL_PASSWORD", base.password),
        sender=env.get("CITAS_MAIL_FROM") or base.sender,
        timeout=_float(env, "CITAS_MAIL_TIMEOUT", base.timeout),
    )


# What a directory given in CITAS_CONFIG_DIR / CITAS_PROMPTS_DIR must hold,
# checked at start so a typo fails with the variable's name, not mid-load.
CONFIG_LAYOUT = ("flows/", "citas/line.yaml")
PROMPTS_LAYOUT = ("prompts.yaml",)


def _dir(env: Mapping[str, str], name: str, default: Path, layout: tuple[str, ...]) -> Path:
    """The directory named by ``name`` (absolute), else ``default``.

    Raises ``SettingsError`` naming the variable when the directory or one of
    the ``layout`` entries (``x/`` a directory, else a file) is missing.
    """
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise SettingsError(f"{name}={raw!r} is not a directory")
    for entry in layout:
        found = (path / entry).is_dir() if entry.endswith("/") else (path / entry).is_file()
        if not found:
            raise SettingsError(f"{name}={raw!r} has no {entry} (expected: {', '.join(layout)})")
    return path


def _api_version(env: Mapping[str, str], default: str) -> str:
    """``CITAS_WHATSAPP_API_VERSION``: a Graph API version like ``v25.0``."""
    raw = env.get("CITAS_WHATSAPP_API_VERSION")
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"v[0-9]+\.[0-9]+", raw):
        raise SettingsError(f"CITAS_WHATSAPP_API_VERSION={raw!r} is not a version like 'v25.0'")
    return raw


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < 0 or value > 65535:
        raise SettingsError(f"{name}={raw!r} is out of range 0-65535")
    return value


def _one_of(env: Mapping[str, str], name: str, default: str, choices: Sequence[str]) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value
