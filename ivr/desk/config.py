"""The desk configuration: ``config/citas/desk.yaml`` as a typed :class:`DeskConfig`.

Checked against ``ivr/schemas/desk.json`` (structure), then here for what a schema
cannot say: every extension (queue or agent) is used once, every ops-API user acts
as one agent, every profile's queues and every agent's profile exist, and every
escalation target exists, is of the area it is filed under and exactly one level
above the level it escalates from (issue 12 §5: L1 reception → L2 technical,
clinical, commercial → L3 specialised). :func:`check_agent_vdns` is the cross-file
check: ``line.yaml``'s ``agent_vdn`` extensions must be queues here (a transfer to an
extension that is no queue would ring nobody). Errors are ``ivr.yamlsrc.ConfigError``
naming file, line and field.

Durations (``20s``, ``2m``) become ``timedelta``.

>>> cfg = load_desk_config(DEFAULT_PATH)
>>> cfg.queue_by_extension("5550001").id
'l1_general'
>>> cfg.escalation_target("l1_general", "clinico").id
'l2_clinico'
>>> cfg.escalation_target("l3_clinico", "clinico") is None
True
>>> [q.id for q in cfg.queues_of("7001")]
['l1_general', 'incidentes']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.desk.errors import AgentNotAllowed, UnknownAgent
from ivr.schemas import load_checked
from ivr.settings import Settings
from ivr.yamlsrc import ConfigError, Located, load_yaml_file

DEFAULT_PATH = Settings().citas_dir / "desk.yaml"
# app_queue reads queues.conf's [general] as its own settings: a queue so named
# would silently not exist (found rendering the first desk.yaml, issue 12).
RESERVED_QUEUE_IDS = frozenset({"general"})
DEFAULT_PAUSE_REASONS = {"almuerzo": "Almuerzo", "capacitacion": "Capacitación",
                         "pausa_activa": "Pausa activa", "backoffice": "Backoffice"}  # fmt: skip
FILE_NAME = "desk.yaml"


@dataclass(frozen=True)
class Queue:
    """An app_queue queue: ``id`` is the Asterisk queue name, ``extension`` where the
    dialplan (context ``citas-agents``) sends a caller to it."""

    id: str
    name: str
    extension: str
    level: int
    area: str


@dataclass(frozen=True)
class Profile:
    """What an agent takes: ``queues`` (voice, ids), ``call_types`` (the script's
    call type ids) and, when ``chat``, WhatsApp hand-offs."""

    id: str
    name: str
    queues: tuple[str, ...]
    call_types: tuple[str, ...]
    chat: bool = False


@dataclass(frozen=True)
class Agent:
    """A desk agent: ``extension`` (``7001``: the PJSIP endpoint and app_queue member
    ``PJSIP/7001``), ``user`` (the ops-API token name acting as this agent)."""

    extension: str
    name: str
    user: str
    profile: str

    @property
    def interface(self) -> str:
        """The app_queue member interface (``PJSIP/7001``)."""
        return f"PJSIP/{self.extension}"


@dataclass(frozen=True)
class DeskConfig:
    """The whole desk.yaml. Lookups by an id the file itself uses (``queue``,
    ``profile``) raise ``KeyError``; lookups of outside input return ``None``
    (``queue_by_extension``, ``agent_for_user``, ``escalation_target``) or raise
    :class:`UnknownAgent` (``agent``)."""

    ring_timeout: timedelta
    wrapup: timedelta
    queues: Mapping[str, Queue]
    escalation: Mapping[int, Mapping[str, str]]  # level -> area -> target queue id
    profiles: Mapping[str, Profile]
    agents: Mapping[str, Agent]  # extension -> agent
    file: str = ""
    timezone: str = "America/Bogota"  # IANA zone agents' times are shown in
    # Why an agent pauses: id -> Spanish label (ivr.desk.ami.QueueControl.pause).
    pause_reasons: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PAUSE_REASONS))

    def queue(self, queue_id: str) -> Queue:
        """The queue ``queue_id`` (its Asterisk name); ``KeyError`` when there is none."""
        return self.queues[queue_id]

    def queue_by_extension(self, extension: str) -> Queue | None:
        """The queue a caller reaches at ``extension`` (``5550001``), or None."""
        return next((q for q in self.queues.values() if q.extension == extension), None)

    def agent(self, extension: str) -> Agent:
        """The agent at ``extension``; :class:`UnknownAgent` when there is none."""
        try:
            return self.agents[extension]
        except KeyError:
            raise UnknownAgent(extension) from None

    def agent_for_user(self, user: str) -> Agent | None:
        """The agent an ops-API token named ``user`` acts as, or None (an admin, a bot)."""
        return next((a for a in self.agents.values() if a.user == user), None)

    def agent_for_actor(self, actor_name: str) -> Agent | None:
        """The agent an ops-API actor (``token:ana``) acts as, or None: see :func:`token_user`."""
        return self.agent_for_user(token_user(actor_name))

    def profile(self, profile_id: str) -> Profile:
        """The profile ``profile_id``; ``KeyError`` when there is none."""
        return self.profiles[profile_id]

    def profile_of(self, extension: str) -> Profile:
        """The profile of the agent at ``extension``; :class:`UnknownAgent`."""
        return self.profiles[self.agent(extension).profile]

    def queues_of(self, extension: str) -> list[Queue]:
        """The queues the agent at ``extension`` logs into, in profile order; :class:`UnknownAgent`."""
        return [self.queues[q] for q in self.profile_of(extension).queues]

    def escalation_target(self, queue_id: str, area: str) -> Queue | None:
        """Where an agent answering in ``queue_id`` escalates a caller of ``area``
        (``l1_general``, ``clinico`` → ``l2_clinico``); None when that level has no
        escalation to that area (level 3, an unknown area). ``KeyError`` for an
        unknown queue."""
        level = self.queue(queue_id).level
        target = self.escalation.get(level, {}).get(area)
        return self.queues[target] if target is not None else None

    def escalation_areas(self, queue_id: str) -> dict[str, Queue]:
        """Area -> target queue for an agent answering in ``queue_id`` (empty at the top level)."""
        level = self.queue(queue_id).level
        return {area: self.queues[q] for area, q in self.escalation.get(level, {}).items()}

    def check_call_type(self, extension: str, call_type: str) -> None:
        """:class:`AgentNotAllowed` when the agent's profile does not take ``call_type``
        (desk.yaml ``profiles.<id>.call_types``); :class:`UnknownAgent`."""
        profile = self.profile_of(extension)
        if call_type not in profile.call_types:
            raise AgentNotAllowed(
                f"el perfil {profile.name} no atiende el tipo de llamada {call_type!r}"
            )

    def check_queue(self, extension: str, queue_id: str) -> None:
        """:class:`AgentNotAllowed` when the agent's profile does not take ``queue_id``."""
        profile = self.profile_of(extension)
        if queue_id not in profile.queues:
            raise AgentNotAllowed(f"el perfil {profile.name} no atiende la cola {queue_id!r}")

    def chat_agents(self) -> list[Agent]:
        """The agents whose profile takes chat hand-offs."""
        return [a for a in self.agents.values() if self.profiles[a.profile].chat]


def _duration(d: Located, key: str) -> timedelta:
    text = str(d[key])  # the schema checked the form: digits then s or m
    amount, unit = int(text[:-1]), text[-1]
    return timedelta(seconds=amount) if unit == "s" else timedelta(minutes=amount)


def _known(names: Mapping[str, Any]) -> str:
    return ", ".join(sorted(names)) or "none"


def load_desk_config(path: Path = DEFAULT_PATH) -> DeskConfig:
    """``desk.yaml`` checked against ``ivr/schemas/desk.json``, then cross-checked
    (unique extensions and users, profiles' queues, agents' profiles, escalation
    targets one level up in their area).

    Raises ``ConfigError`` naming file, line and field."""
    d = load_checked(path, "desk")
    file = d.file
    timezone = d.get("timezone", "America/Bogota")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(file, d.line_of("timezone"), "timezone",
                          f"unknown time zone {timezone!r}") from None  # fmt: skip
    extensions: dict[str, str] = {}  # extension -> who uses it (for the message)

    def claim(extension: str, who: str, line: int, field: str) -> None:
        if extension in extensions:
            raise ConfigError(file, line, field,
                              f"extension {extension} is also {extensions[extension]}")  # fmt: skip
        extensions[extension] = who

    queues: dict[str, Queue] = {}
    for qid, q in d["queues"].items():
        if qid in RESERVED_QUEUE_IDS:
            raise ConfigError(file, d["queues"].line_of(qid), f"queues.{qid}",
                              f"{qid!r} is app_queue's settings section in queues.conf, "
                              "it cannot name a queue")  # fmt: skip
        claim(q["extension"], f"queue {qid}", q.line_of("extension"), f"queues.{qid}.extension")
        queues[qid] = Queue(qid, q["name"], q["extension"], q["level"], q["area"])

    escalation: dict[int, dict[str, str]] = {}
    for level_key, targets in d["escalation"].items():
        level = int(level_key)
        if not any(q.level == level for q in queues.values()):
            raise ConfigError(file, d["escalation"].line_of(level_key), f"escalation.{level_key}",
                              f"no queue is at level {level}")  # fmt: skip
        escalation[level] = {}
        for area, target in targets.items():
            field, line = f"escalation.{level_key}.{area}", targets.line_of(area)
            if target not in queues:
                raise ConfigError(file, line, field,
                                  f"no queue {target!r}; known: {_known(queues)}")  # fmt: skip
            goal = queues[target]
            if goal.level != level + 1:
                raise ConfigError(file, line, field,
                                  f"queue {target!r} is at level {goal.level}; an escalation "
                                  f"from level {level} goes to level {level + 1}")  # fmt: skip
            if goal.area != area:
                raise ConfigError(file, line, field,
                                  f"queue {target!r} is of area {goal.area!r}, not {area!r}")  # fmt: skip
            escalation[level][area] = target

    profiles: dict[str, Profile] = {}
    for pid, p in d["profiles"].items():
        for i, qid in enumerate(p["queues"]):
            if qid not in queues:
                raise ConfigError(file, p["queues"].line_of(i), f"profiles.{pid}.queues[{i}]",
                                  f"no queue {qid!r}; known: {_known(queues)}")  # fmt: skip
        profiles[pid] = Profile(pid, p["name"], tuple(p["queues"]), tuple(p["call_types"]),
                                bool(p.get("chat", False)))  # fmt: skip

    agents: dict[str, Agent] = {}
    users: dict[str, str] = {}
    for ext, a in d["agents"].items():
        where = d["agents"].line_of(ext)
        claim(ext, f"agent {a['name']}", where, f"agents.{ext}")
        if a["profile"] not in profiles:
            raise ConfigError(file, a.line_of("profile"), f"agents.{ext}.profile",
                              f"no profile {a['profile']!r}; known: {_known(profiles)}")  # fmt: skip
        if a["user"] in users:
            raise ConfigError(file, a.line_of("user"), f"agents.{ext}.user",
                              f"user {a['user']!r} already acts as agent {users[a['user']]}")  # fmt: skip
        users[a["user"]] = ext
        agents[ext] = Agent(ext, a["name"], a["user"], a["profile"])

    return DeskConfig(
        ring_timeout=_duration(d, "ring_timeout"),
        wrapup=_duration(d, "wrapup"),
        queues=queues,
        escalation=escalation,
        profiles=profiles,
        agents=agents,
        file=file,
        timezone=timezone,
        pause_reasons=dict(d.get("pause_reasons") or DEFAULT_PAUSE_REASONS),
    )


def check_agent_vdns(config: DeskConfig, line_file: Path) -> None:
    """The cross-file check: every ``agent_vdn`` extension of ``line_file``
    (``line.yaml``: ``default``, ``non_target``, ``incident``) is a queue of ``config``.

    Reads ``line_file`` itself (the platform does not import the citas line's
    loader); a file that does not load is left to its own check. Raises
    ``ConfigError`` naming line.yaml, the line and ``agent_vdn.<name>``."""
    try:
        line = load_yaml_file(line_file)
    except ConfigError:
        return
    vdns = line.get("agent_vdn") if isinstance(line, Located) else None
    if not isinstance(vdns, Located):
        return
    extensions = sorted(q.extension for q in config.queues.values())
    for name, extension in vdns.items():
        if config.queue_by_extension(str(extension)) is None:
            raise ConfigError(
                vdns.file, vdns.line_of(name), f"agent_vdn.{name}",
                f"{extension!r} is no queue of {config.file or FILE_NAME} "
                f"(queue extensions: {', '.join(extensions)})",
            )  # fmt: skip


def load_desk_for_line(citas_dir: Path) -> DeskConfig:
    """``<citas_dir>/desk.yaml`` loaded and cross-checked against ``<citas_dir>/line.yaml``:
    what ``ivr serve`` calls at start. ``ConfigError`` naming file, line and field."""
    config = load_desk_config(citas_dir / FILE_NAME)
    check_agent_vdns(config, citas_dir / "line.yaml")
    return config


def token_user(actor_name: str) -> str:
    """The ops-API token's name an actor acts as: what desk.yaml's ``agents.<ext>.user``
    holds (the ops service names a token's actor ``token:<name>``; other actors, such as
    the CLI's ``cli:<user>``, are left as they are).

    >>> token_user("token:ana"), token_user("cli:root")
    ('ana', 'cli:root')
    """
    return actor_name.removeprefix("token:")
