"""The desk's Asterisk side, rendered from ``desk.yaml``: app_queue queues, agent
endpoints that REGISTER, and the agent VDNs that queue the caller (docs/desk/queues.md).

Three placeholders of the templates in ``dialplans/asterisk/``:

- ``@@desk_queues@@`` (queues.conf): one section per desk queue, named by its id
  (the Asterisk queue name every AMI queue event carries). The sandbox's tester
  agent ``PJSIP/agent`` is a static member of every level-1 queue with penalty
  ``TESTER_PENALTY``: app_queue rings a higher penalty only when no member of a
  lower one is available, so a call reaches the tester only when no desk agent is
  logged in, unpaused and free, and every pre-desk test keeps its agent.
- ``@@desk_agent_endpoints@@`` (pjsip.conf): endpoint + AOR ``PJSIP/<extension>``
  per desk agent; the AOR takes one registered contact (``max_contacts = 1``,
  ``remove_existing = yes``: a softphone that re-registers from another port
  replaces its old contact). An agent that has not registered is UNAVAILABLE
  and app_queue skips it.
- ``@@desk_queue_extensions@@`` (extensions.conf ``[citas-agents]``): the queue's
  extension sets ``CITAS_LEVEL`` and sends the caller to ``[citas-queue]``.

Queue settings, and why (Asterisk 22's ``queues.conf.sample``):

- ``strategy = leastrecent``: rings the agent who hung up longest ago, the
  "longest idle agent" rule of an ACD. ``rrmemory`` rotates by position whatever
  each agent's last call was, so an agent just back from a long call can be rung
  again at once while another has been idle for minutes.
- ``timeout`` = desk.yaml ``ring_timeout`` (seconds one agent rings),
  ``retry = 2`` (seconds between two rounds of the members), ``wrapuptime`` =
  desk.yaml ``wrapup``.
- ``joinempty`` / ``leavewhenempty = paused,unavailable,invalid,unknown``: a
  caller never joins, nor keeps waiting in, a queue where no member could ever
  answer (all logged out, unregistered or paused); Queue() returns (JOINEMPTY,
  LEAVEEMPTY) and the dialplan plays ``agents_unavailable``. Busy, ringing and
  wrap-up members are not "empty": they will be free soon.
- ``ringinuse = no``: an agent on a call is not rung (the tester member says
  ``yes`` on its own line: one sipp UAS answers several test calls at once).
- no announcements (``announce-holdtime``, position, periodic): the caller hears
  ringing (``Queue(…, r)``): the sandbox root has no music-on-hold files
  (``/var/lib/asterisk/moh`` is empty), and ringing is what a caller expects
  while a person is being reached.
- ``persistentmembers = yes`` (``[general]``): logged-in and paused agents are
  kept in Asterisk's astdb across an Asterisk restart, so the queues keep
  matching the ``desk_presence`` log (which records no logout then) and no agent
  is silently logged out; the desk reads the live state back with QueueStatus.
- ``autopause = no``: an agent who lets a call ring out is not paused behind the
  desk's back (every pause is an agent's or supervisor's act, logged with a reason).
- ``setinterfacevar``/``setqueuevar``/``setqueueentryvar = yes``: the member's
  channel gets MEMBERNAME, QUEUENAME... (and the pop part sees them in events).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.sandbox.errors import SandboxError
from ivr.settings import Settings

# The sandbox's tester agent (pjsip.conf [agent]) in every level-1 queue.
TESTER_MEMBER = "PJSIP/agent"
TESTER_NAME = "Probador (sipp)"
TESTER_PENALTY = 100
# How long a caller waits in a queue (Queue()'s timeout, seconds) before hearing
# "agents_unavailable": the pre-desk Dial()'s 30 s. Queue callers are served in
# order, so a caller that never hangs up (a sipp that died without its BYE: the
# channel has no RTP timeout) holds the head of the queue this long; at 120 s it
# made the next test's call wait behind it and time out (test_smoke's
# controller-down call after a smoke call with no controller).
QUEUE_MAX_WAIT_S = 30
# desk_sip + N, N = 1..: stays below the next sandbox block (offsets step by 100).
MAX_SANDBOX_AGENTS = 40


@dataclass(frozen=True)
class QueueLayout:
    id: str
    name: str
    extension: str
    level: int


@dataclass(frozen=True)
class DeskLayout:
    """What the sandbox renders: queues (desk.yaml order), agents (extension -> name)."""

    queues: tuple[QueueLayout, ...]
    agents: dict[str, str]
    ring_timeout_s: int
    wrapup_s: int

    @property
    def agent_extensions(self) -> list[str]:
        return sorted(self.agents)


def load_layout(settings: Settings) -> DeskLayout | None:
    """The desk of ``<CITAS_CONFIG_DIR>/citas/desk.yaml``; ``None`` when the file is absent
    (a line without a desk: every agent VDN dials the tester agent, as before issue 12).

    Raises ``ConfigError`` (``ivr.desk.config.load_desk_config``: file, line, field; a
    queue named ``general`` too) and ``SandboxError`` when the sandbox has no ports
    for that many agents."""
    from ivr.desk.config import load_desk_config

    path = settings.citas_dir / "desk.yaml"
    if not path.is_file():
        return None
    config = load_desk_config(path)
    if len(config.agents) > MAX_SANDBOX_AGENTS:
        raise SandboxError(f"{path}: agents: the sandbox has ports for {MAX_SANDBOX_AGENTS} agents")
    return DeskLayout(
        tuple(QueueLayout(q.id, q.name, q.extension, q.level) for q in config.queues.values()),
        {ext: a.name for ext, a in config.agents.items()},
        int(config.ring_timeout.total_seconds()),
        int(config.wrapup.total_seconds()),
    )


def desk_agent_port(settings: Settings, extension: str, layout: DeskLayout | None = None) -> int:
    """The loopback port where the sandbox's desk agent ``extension`` takes its calls:
    ``desk_sip`` + its place among desk.yaml's extensions, sorted (7001 -> 5091 at offset 0).

    Raises ``SandboxError`` for an extension that is not a desk agent."""
    layout = layout if layout is not None else load_layout(settings)
    extensions = layout.agent_extensions if layout else []
    if extension not in extensions:
        known = ", ".join(extensions) or "none: no desk.yaml"
        raise SandboxError(f"{extension} is not a desk agent ({known})")
    return settings.ports.desk_sip + extensions.index(extension) + 1


def queues_conf(layout: DeskLayout | None) -> str:
    """queues.conf's queue sections (see the module docstring for each setting)."""
    if layout is None:
        return "; no desk.yaml: no queues"
    sections = []
    for q in layout.queues:
        lines = [
            f"[{q.id}]",
            f"; {q.name}: level {q.level}, VDN {q.extension}",
            "strategy = leastrecent",
            f"timeout = {layout.ring_timeout_s}",
            "retry = 2",
            f"wrapuptime = {layout.wrapup_s}",
            "ringinuse = no",
            "joinempty = paused,unavailable,invalid,unknown",
            "leavewhenempty = paused,unavailable,invalid,unknown",
            "announce-holdtime = no",
            "announce-position = no",
            "announce-frequency = 0",
            "periodic-announce-frequency = 0",
            "reportholdtime = no",
            "autopause = no",
            "setinterfacevar = yes",
            "setqueuevar = yes",
            "setqueueentryvar = yes",
        ]
        if q.level == 1:
            # member => interface,penalty,membername,state_interface,ringinuse
            lines.append(f"member => {TESTER_MEMBER},{TESTER_PENALTY},{TESTER_NAME},,yes")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def agent_endpoints(settings: Settings, layout: DeskLayout | None) -> str:
    """pjsip.conf endpoint + AOR per desk agent, named by the extension (``PJSIP/7001``)."""
    if layout is None:
        return "; no desk.yaml: no desk agents"
    sections = []
    for ext in layout.agent_extensions:
        sections.append(
            f"; {layout.agents[ext]}: the sipp agent or softphone registers from "
            f"{settings.host} (sandbox: port {desk_agent_port(settings, ext, layout)})\n"
            f"[{ext}]\ntype = endpoint\ntransport = transport-udp\ncontext = citas-agent-side\n"
            "disallow = all\nallow = ulaw,alaw\ndtmf_mode = auto_info\ndirect_media = no\n"
            f"rtp_symmetric = yes\nlanguage = es\naors = {ext}\n\n"
            f"[{ext}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n"
        )
    return "\n".join(sections)


def queue_extensions(layout: DeskLayout | None) -> str:
    """``[citas-agents]`` lines: each queue's extension sets the level and queues the caller."""
    if layout is None:
        return "; no desk.yaml: every VDN dials the tester agent (below)"
    lines = []
    for q in layout.queues:
        lines += [
            f"exten => {q.extension},1,Set(CITAS_QUEUE={q.id})",
            f" same => n,Set(__CITAS_LEVEL={q.level})",
            " same => n,Goto(citas-queue,${EXTEN},1)",
        ]
    return "\n".join(lines)


def template_values(settings: Settings) -> dict[str, str]:
    """The desk's placeholders (``ivr.sandbox.render.template_values`` adds them)."""
    layout = load_layout(settings)
    return {
        "desk_queues": queues_conf(layout),
        "desk_agent_endpoints": agent_endpoints(settings, layout),
        "desk_queue_extensions": queue_extensions(layout),
        "queue_max_wait": str(QUEUE_MAX_WAIT_S),
    }
