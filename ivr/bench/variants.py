"""The benchmark's matrix: which variants one run steps, on which ladder, in
what order, and how long that takes. Pure: nothing here starts a process.

A *variant* is one line run one way: ``smoke-dialplan`` (no controller, no
database), ``smoke-ari ×1`` / ``smoke-ari ×2`` (one or N controller processes,
``CITAS_CONTROLLERS``), ``citas ×2 pg`` (N controllers on PostgreSQL). Each
variant is stepped up its own ladder and stops at its first failed step
(``ivr.bench.stats.next_step``); the controller is restarted for each.

Which variants the matrix holds (docs/perf/bench.md, "The matrix"):

- ``smoke-dialplan`` once: it uses neither the controller nor a database;
- ``smoke-ari`` with every controller count, on the first database only: its
  one database write per call (the call record) is not what it measures;
- ``citas`` with every controller count on every database: the issue's
  "with 1 and with N controllers, SQLite and PostgreSQL";
- ``chat`` once, one controller, first database (the serving process answers
  WhatsApp; voice workers do not);
- with ``--nodes`` (issue 14), each call line with a controller once more per node
  count K, last: Kamailio in front of K Asterisk nodes (``ivr sandbox up --nodes K``,
  docs/cluster.md), a controller each, on PostgreSQL (the cluster's database):
  ``citas ×1 pg · 2 nodes``. sipp calls Kamailio's address; the CPU per call is
  every node's Asterisk and controller, Kamailio and PostgreSQL.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The databases ``--db`` accepts, and the short name a variant carries.
DATABASES: dict[str, str] = {"sqlite": "sqlite", "postgresql": "pg"}
NO_CONTROLLER_LINES = frozenset({"smoke-dialplan"})
ONE_DB_LINES = frozenset({"smoke-ari", "chat"})  # first database only
ONE_CONTROLLER_LINES = frozenset({"chat"})
CLUSTER_DB = "postgresql"  # a cluster's nodes share one PostgreSQL (docs/cluster.md)

# Default ladders (``make bench``), per line. One ladder for every call line, so their
# capacities (and the ARI/plain ratio) are read at the same steps: coarse below,
# 80 apart (11–25 %) from 320 to 800, where this machine's lines stopped (2 cores,
# steady load, every line judged on its callers' lateness; docs/PERFORMANCE.md, b47
# and t49: plain dialplan 440–480, the ARI lines 320), then 9–20 % apart on up past
# where plain dialplan failed on faster machines (1920).
CALL_LADDER = (
    40, 320, 400, 480, 560, 640, 720, 800, 960, 1120, 1280, 1440, 1600, 1760, 1920, 2240, 2560,
)  # fmt: skip
SMOKE_LADDER = CALL_LADDER
CITAS_LADDER = CALL_LADDER
CHAT_LADDER = (5, 10, 20, 30, 40)
DEFAULT_LADDERS: dict[str, tuple[int, ...]] = {
    "smoke-dialplan": SMOKE_LADDER,
    "smoke-ari": SMOKE_LADDER,
    "citas": CITAS_LADDER,
    "chat": CHAT_LADDER,
}
QUICK_LADDER = (10, 40)


@dataclass(frozen=True)
class Variant:
    """One line run one way. ``controllers`` 0 and ``db`` "" for the plain line."""

    line: str
    controllers: int = 0
    db: str = ""
    nodes: int = 0  # 0: the one sandbox, called directly; K: Kamailio in front of K nodes

    @property
    def name(self) -> str:
        """``smoke-dialplan``, ``smoke-ari ×2``, ``citas ×1 sqlite``, ``citas ×2 pg``,
        ``citas ×1 pg · 2 nodes`` (through Kamailio; ×1: controllers per node)."""
        if self.line in NO_CONTROLLER_LINES:
            return self.line
        name = f"{self.line} ×{self.controllers}"
        if self.line not in ONE_DB_LINES:
            name += f" {DATABASES.get(self.db, self.db)}"
        if self.nodes:
            name += f" · {self.nodes} node{'s' if self.nodes > 1 else ''}"
        return name

    @property
    def slug(self) -> str:
        """The name as a file-name part: ``citas-x2-pg``, ``citas-x1-pg-2nodes``.

        >>> Variant("smoke-ari", 1, "postgresql", nodes=1).slug
        'smoke-ari-x1-1nodes'
        """
        base = self.name.partition(" · ")[0]
        slug = base.replace(" ×", "-x").replace(" ", "-")
        return f"{slug}-{self.nodes}nodes" if self.nodes else slug

    @property
    def uses_controller(self) -> bool:
        return self.controllers > 0


def cores() -> int:
    return os.cpu_count() or 1


def parse_controllers(text: str, n_cores: int) -> list[int]:
    """``"1,auto"`` → [1, n_cores] (``auto``: one per core), increasing, unique.

    >>> parse_controllers("1,auto", 4)
    [1, 4]
    >>> parse_controllers("auto,1", 1)
    [1]

    Raises ValueError on anything but positive integers and ``auto``.
    """
    counts: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "auto":
            counts.add(max(1, n_cores))
            continue
        try:
            n = int(part)
        except ValueError:
            raise ValueError(f"controllers must be integers or 'auto', got {part!r}") from None
        if n < 1:
            raise ValueError(f"controllers must be at least 1, got {n}")
        counts.add(n)
    if not counts:
        raise ValueError(f"no controller count in {text!r}")
    return sorted(counts)


def parse_dbs(text: str) -> list[str]:
    """``"sqlite,postgresql"`` → the same list, checked (``pg`` is accepted for postgresql).

    >>> parse_dbs("sqlite, pg")
    ['sqlite', 'postgresql']
    """
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        name = "postgresql" if part in ("pg", "postgres") else part
        if name not in DATABASES:
            raise ValueError(f"unknown database {part!r}; choose from {', '.join(DATABASES)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"no database in {text!r}")
    return out


def parse_nodes(text: str) -> list[int]:
    """``"1,2"`` → [1, 2]: the node counts of ``--nodes``, increasing, unique; "" → [].

    >>> parse_nodes("2, 1,2")
    [1, 2]

    Raises ValueError on anything but integers from 1 to the cluster's
    ``MAX_NODES``.
    """
    from ivr.sandbox.cluster import MAX_NODES

    counts: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_NODES:
            raise ValueError(f"--nodes takes counts from 1 to {MAX_NODES}, got {part!r}")
        counts.add(int(part))
    return sorted(counts)


def matrix(
    lines: Sequence[str],
    controllers: Sequence[int],
    dbs: Sequence[str],
    nodes: Sequence[int] = (),
) -> list[Variant]:
    """Every variant of one run, in run order: ``lines`` in the order given; within a
    line, database by database (so PostgreSQL is up once, for a contiguous stretch),
    controller counts increasing; then, for each count of ``nodes`` (increasing), the
    call lines with a controller through Kamailio, one controller per node, on
    PostgreSQL. The rules are the module docstring's.

    >>> [v.name for v in matrix(["smoke-dialplan", "citas"], [1], ["sqlite"], [2, 1])]
    ['smoke-dialplan', 'citas ×1 sqlite', 'citas ×1 pg · 1 node', 'citas ×1 pg · 2 nodes']
    """
    if not controllers or not dbs:
        raise ValueError("matrix needs at least one controller count and one database")
    if any(k < 1 for k in nodes):
        raise ValueError(f"node counts must be at least 1, got {list(nodes)}")
    out: list[Variant] = []
    for line in lines:
        if line in NO_CONTROLLER_LINES:
            out.append(Variant(line))
            continue
        line_dbs = dbs[:1] if line in ONE_DB_LINES else dbs
        counts = [1] if line in ONE_CONTROLLER_LINES else controllers
        out.extend(Variant(line, n, db) for db in line_dbs for n in counts)
    for k in sorted(set(nodes)):
        out.extend(
            Variant(line, 1, CLUSTER_DB, nodes=k)
            for line in lines
            if line not in NO_CONTROLLER_LINES and line not in ONE_CONTROLLER_LINES
        )
    return out


def ladder_for(line: str, steps: Sequence[int] | None, *, quick: bool, max_calls: int) -> list[int]:
    """The concurrency steps of ``line``: ``steps`` when given (``--steps``: every
    line), else the quick ladder or the line's default; never above ``max_calls``."""
    chosen = steps if steps else (QUICK_LADDER if quick else DEFAULT_LADDERS[line])
    return [n for n in chosen if n <= max_calls]


def profile_step(ladder: Sequence[int], expected_capacity: int | None) -> int | None:
    """The step ``--profile`` records: the one nearest 60 % of the expected capacity
    (CAP.md, part bench), the lower one on a tie; with no expectation, the ladder's
    middle step. None for an empty ladder.

    >>> profile_step([40, 320, 640, 960, 1280], 1280)
    640
    """
    if not ladder:
        return None
    if not expected_capacity:
        return ladder[(len(ladder) - 1) // 2]
    target = 0.6 * expected_capacity
    return min(ladder, key=lambda n: (abs(n - target), n))


LOADS = ("steady", "burst")
"""How a step places its calls (``--load``):

- ``steady``: calls arrive at N per call length (sipp ``-r N -rp <call>``), so N are
  up at once from the end of the first call length on, each call at its own point of
  the flow: the steady state of a line carrying N calls (Little's law: N = arrival
  rate × call length), the load a contact centre is sized for (Erlang). The step is
  judged on the calls answered while N were up.
- ``burst``: the first N calls start within half a call (1–10 s) and their successors
  take their places as they end, so the calls run in step: a surge, harder on a line
  whose calls are long (citas 31 s: 10 s, three times its steady rate) than on a short
  one (smoke 10 s: 5 s, twice). The bench's only shape before the ninth session of
  issue 13 (docs/perf/bench.md).
"""


def rounds_for(hold_s: float, call_s: float, load: str = "steady") -> int:
    """Calls per slot in one step: enough to keep N up for ``hold_s`` (at least one
    call length); ``steady`` adds the first call length, while N are coming up."""
    rounds = max(1, math.ceil(hold_s / max(call_s, 1.0)))
    return rounds + 1 if load == "steady" else rounds


def ramp_seconds(call_seconds: float, load: str = "steady") -> float:
    """sipp's rate period (``-rp``), in s, over which it starts N calls: one call length
    (``steady``), half a call within 1–10 s (``burst``). At least 1 s.

    Raises ValueError for a load not in ``LOADS``.
    """
    if load == "steady":
        return max(1.0, call_seconds)
    if load == "burst":
        return min(10.0, max(1.0, call_seconds / 2))
    raise ValueError(f"unknown load {load!r}; choose from {', '.join(LOADS)}")


def full_window(
    t0: float, call_s: float, rounds: int, load: str = "steady"
) -> tuple[float, float | None]:
    """The part of a step, in epoch seconds from its start ``t0``, whose responses
    judge it: while N are up. ``steady``: from the end of the first call length to the
    last call placed (rounds × call); ``burst``: all of it (end None: the step's end).
    """
    if load == "steady":
        ramp = ramp_seconds(call_s, load)
        return t0 + ramp, t0 + rounds * ramp
    return t0, None


def step_seconds(
    call_s: float,
    hold_s: float,
    settle_s: float = 3.0,
    drain_s: float = 4.0,
    load: str = "steady",
) -> float:
    """Wall time of one step: settle + placing the calls + the last call + drain
    (sipp's last BYEs, the records check). ``burst`` places N per ramp, so its calls
    are placed as slots free: ramp + rounds × call; ``steady`` places them at N per call
    length: rounds × call + call. Measured on 2 cores, burst: smoke (9.2 s calls, hold
    15) 30 s a step.
    """
    return settle_s + placing_seconds(call_s, rounds_for(hold_s, call_s, load), load) + drain_s


def placing_seconds(call_s: float, rounds: int, load: str = "steady") -> float:
    """How long sipp runs for ``rounds`` calls per slot, s: until the last call placed
    ends. ``steady`` places them at N per call length: rounds × call + call; ``burst``
    places N per ramp, then each as a slot frees: ramp + rounds × call."""
    if load == "steady":
        return rounds * ramp_seconds(call_s, load) + call_s
    return ramp_seconds(call_s, load) + rounds * call_s


# Typical call lengths (warm-up calls on 2 cores) and per-variant overheads, for the
# estimate printed before a run starts: the controller start, its 5 s idle measure.
TYPICAL_CALL_S: dict[str, float] = {
    "smoke-dialplan": 9.2,
    "smoke-ari": 9.6,
    "citas": 30.0,
    "chat": 8.0,
}
CONTROLLER_START_S = 20.0
CLUSTER_START_S = 40.0  # a cluster node's Asterisk and controller, then its down
WARMUP_S = 3.0


def estimate_seconds(
    variants: Sequence[Variant],
    ladders: Mapping[str, Sequence[int]],
    hold_s: float,
    expected_capacity: dict[str, int] | None = None,
    repeat: int = 1,
    load: str = "steady",
) -> float:
    """The run's wall time if each variant climbs its ladder up to the first step
    above ``expected_capacity[variant.name]`` (that failed step included; all of it
    without an expectation), every step run ``repeat`` times, plus the controller
    start and the warm-up call."""
    total = 0.0
    for v in variants:
        call_s = TYPICAL_CALL_S.get(v.line, 10.0)
        ladder = list(ladders[v.line])
        cap = (expected_capacity or {}).get(v.name)
        if cap is not None:
            passing = [n for n in ladder if n <= cap]
            ladder = ladder[: len(passing) + 1]
        total += repeat * len(ladder) * step_seconds(call_s, hold_s, load=load)
        total += WARMUP_S + call_s + (CONTROLLER_START_S if v.uses_controller else 0.0)
        total += CLUSTER_START_S * v.nodes  # each node's Asterisk and controller
    return total
