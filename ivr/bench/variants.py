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
  WhatsApp; voice workers do not).
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

# Default ladders (``make bench``), per line. Coarse below, ~10 % apart near the
# limits measured on 2 cores (docs/PERFORMANCE.md): plain dialplan passed 1280 and
# failed 1920 with the machine CPU-bound (Asterisk ~15 ms per call); the ARI smoke
# line's target is ≥ 0.95 of plain, so it gets the same ladder (the ratio is then
# read at the same resolution; 800 since the ARI line stopped between 640 and 960
# on 2026-11-30); citas, whose target is the ARI smoke line's, gets a finer ladder
# lower down, where SQLite stopped it before (320–480), and goes on up.
SMOKE_LADDER = (40, 320, 640, 800, 960, 1280, 1440, 1600, 1760, 1920, 2240, 2560)
CITAS_LADDER = (40, 160, 320, 400, 480, 560, 640, 800, 960, 1280, 1600)
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

    @property
    def name(self) -> str:
        """``smoke-dialplan``, ``smoke-ari ×2``, ``citas ×1 sqlite``, ``citas ×2 pg``."""
        if self.line in NO_CONTROLLER_LINES:
            return self.line
        name = f"{self.line} ×{self.controllers}"
        if self.line not in ONE_DB_LINES:
            name += f" {DATABASES.get(self.db, self.db)}"
        return name

    @property
    def slug(self) -> str:
        """The name as a file-name part: ``citas-x2-pg``."""
        return self.name.replace(" ×", "-x").replace(" ", "-")

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


def matrix(lines: Sequence[str], controllers: Sequence[int], dbs: Sequence[str]) -> list[Variant]:
    """Every variant of one run, in run order: ``lines`` in the order given; within a
    line, database by database (so PostgreSQL is up once, for a contiguous stretch),
    controller counts increasing. The rules are the module docstring's."""
    if not controllers or not dbs:
        raise ValueError("matrix needs at least one controller count and one database")
    out: list[Variant] = []
    for line in lines:
        if line in NO_CONTROLLER_LINES:
            out.append(Variant(line))
            continue
        line_dbs = dbs[:1] if line in ONE_DB_LINES else dbs
        counts = [1] if line in ONE_CONTROLLER_LINES else controllers
        out.extend(Variant(line, n, db) for db in line_dbs for n in counts)
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


def rounds_for(hold_s: float, call_s: float) -> int:
    """Calls per slot in one step: enough to keep N up for ``hold_s`` (at least one)."""
    return max(1, math.ceil(hold_s / max(call_s, 1.0)))


def ramp_seconds(call_seconds: float) -> float:
    """How long a step takes to start its first N calls: half a call, 1–10 s."""
    return min(10.0, max(1.0, call_seconds / 2))


def step_seconds(
    call_s: float, hold_s: float, settle_s: float = 3.0, drain_s: float = 4.0
) -> float:
    """Wall time of one step: settle + ramp + rounds × call + drain (sipp's last BYEs,
    the records check). Measured on 2 cores: smoke (9.2 s calls, hold 15) 30 s a step.
    """
    return settle_s + ramp_seconds(call_s) + rounds_for(hold_s, call_s) * call_s + drain_s


# Typical call lengths (warm-up calls on 2 cores) and per-variant overheads, for the
# estimate printed before a run starts: the controller start, its 5 s idle measure.
TYPICAL_CALL_S: dict[str, float] = {
    "smoke-dialplan": 9.2,
    "smoke-ari": 9.6,
    "citas": 30.0,
    "chat": 8.0,
}
CONTROLLER_START_S = 20.0
WARMUP_S = 3.0


def estimate_seconds(
    variants: Sequence[Variant],
    ladders: Mapping[str, Sequence[int]],
    hold_s: float,
    expected_capacity: dict[str, int] | None = None,
    repeat: int = 1,
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
        total += repeat * len(ladder) * step_seconds(call_s, hold_s)
        total += WARMUP_S + call_s + (CONTROLLER_START_S if v.uses_controller else 0.0)
    return total
