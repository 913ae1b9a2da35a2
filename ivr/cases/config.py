"""The cases configuration: ``config/citas/cases.yaml`` as a typed :class:`CasesConfig`.

Checked against ``ivr/schemas/cases.json`` (structure), then here for what a
schema cannot say: the time zone exists, times are real (``24:00`` only as an
end), a weekday's working ranges do not overlap and each day is named once,
``default_group`` and every ladder ``person`` exist, warnings go up. Errors
are ``ivr.yamlsrc.ConfigError`` naming file, line and field.

Durations: SLA budgets are business time — ``m``/``h`` of working time,
``d`` business days (:class:`Budget`); ladder waits are wall-clock (``s``,
``m``, ``h``). Quiet hours are local ranges that may cross midnight.

>>> cfg = load_cases_config(DEFAULT_PATH)
>>> cfg.group("citas").sla.first_response
Budget(business_days=0, business_time=datetime.timedelta(seconds=28800))
>>> [s.person for s in cfg.group("citas").ladder]
['lider_citas', 'coordinadora']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.cases.calendar import WEEKDAY_NAMES, BusinessCalendar, colombian_holidays
from ivr.schemas import load_checked
from ivr.settings import Settings
from ivr.yamlsrc import ConfigError, Located

DEFAULT_PATH = Settings().citas_dir / "cases.yaml"
CLOCKS = ("first_response", "resolution")


@dataclass(frozen=True)
class Budget:
    """An SLA clock's budget: ``business_days`` (``5d``: due at the end of the 5th
    business day after the start's day) or ``business_time`` (``8h``: that much
    working time). Exactly one is non-zero."""

    business_days: int = 0
    business_time: timedelta = timedelta(0)

    def due(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """When the clock started at ``start`` runs out."""
        if self.business_days:
            return calendar.add_business_days(start, self.business_days)
        return calendar.add_business_time(start, self.business_time)

    @property
    def text(self) -> str:
        """As written in cases.yaml (``5d``, ``8h``, ``90m``)."""
        if self.business_days:
            return f"{self.business_days}d"
        minutes = int(self.business_time.total_seconds() // 60)
        return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


@dataclass(frozen=True)
class SlaPolicy:
    first_response: Budget
    resolution: Budget

    def budget(self, clock: str) -> Budget:
        """The budget of ``clock`` (``first_response`` | ``resolution``); KeyError otherwise."""
        if clock not in CLOCKS:
            raise KeyError(clock)
        budget: Budget = getattr(self, clock)
        return budget


@dataclass(frozen=True)
class TimeRange:
    """Local ``start``–``end``; ``end <= start`` wraps past midnight (20:00-07:00)."""

    start: time
    end: time

    def contains(self, at: time) -> bool:
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end


@dataclass(frozen=True)
class LadderStep:
    person: str
    wait: timedelta  # wall-clock time to wait for an acknowledgement before the next step


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    extension: str
    email: str | None = None


@dataclass(frozen=True)
class SupportGroup:
    id: str
    name: str
    working_hours: Mapping[
        int, tuple[tuple[time, time], ...]
    ]  # weekday -> ranges; end time(0) = 24:00
    sla: SlaPolicy
    quiet_hours: tuple[TimeRange, ...] = ()
    warnings: tuple[int, ...] = (50, 75, 100)
    ladder: tuple[LadderStep, ...] = ()


@dataclass(frozen=True)
class CasesConfig:
    answer_within_business_days: int
    default_group: str
    groups: Mapping[str, SupportGroup]
    people: Mapping[str, Person]
    timezone: str = "America/Bogota"
    business_weekdays: frozenset[int] = frozenset(range(5))
    holidays: Container[date] = field(default_factory=colombian_holidays, compare=False)

    def group(self, group_id: str) -> SupportGroup:
        """The group ``group_id``; ``KeyError`` when there is none."""
        return self.groups[group_id]

    @cached_property
    def _calendars(self) -> dict[str, BusinessCalendar]:
        return {
            g.id: BusinessCalendar(
                self.timezone, g.working_hours, self.holidays,
                business_weekdays=self.business_weekdays,
            )
            for g in self.groups.values()
        }  # fmt: skip

    def calendar_for(self, group_id: str) -> BusinessCalendar:
        """The business calendar of a group (its working hours, the holidays, the zone);
        ``KeyError`` for an unknown group. Pass this method as ``CaseStore``'s ``calendar_for``."""
        return self._calendars[group_id]

    def in_quiet_hours(self, group_id: str, instant: datetime) -> bool:
        """Whether ``instant`` falls in the group's quiet hours (local time)."""
        local = instant.astimezone(ZoneInfo(self.timezone)).time()
        return any(r.contains(local) for r in self.group(group_id).quiet_hours)


_DURATION = re.compile(r"^([1-9][0-9]{0,3})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours"}


def parse_days(text: str) -> list[int]:
    """``mon-fri`` → [0, 1, 2, 3, 4]; ``sat`` → [5]; ``mon,wed`` → [0, 2];
    ``fri-mon`` wraps → [4, 5, 6, 0]. ``ValueError`` for an unknown name."""
    days: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        first = WEEKDAY_NAMES.index(lo)
        last = WEEKDAY_NAMES.index(hi) if hi else first
        day = first
        while True:
            days.append(day)
            if day == last:
                break
            day = (day + 1) % 7
    return days


def parse_range(text: str) -> tuple[time, time]:
    """``"07:00-17:00"`` → (07:00, 17:00); ``24:00`` is read as ``time(0)`` (only
    meaningful as an end). ``ValueError`` for a time that does not exist."""
    lo, hi = text.split("-")
    return _clock(lo), _clock(hi)


def _clock(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    if (hours, minutes) == (24, 0):
        return time(0)
    return time(hours, minutes)  # ValueError: 25:00, 07:61


def _budget(text: str) -> Budget:
    match = _DURATION.match(text)
    assert match, text  # the schema checked the form
    amount, unit = int(match[1]), match[2]
    if unit == "d":
        return Budget(business_days=amount)
    return Budget(business_time=timedelta(**{_UNITS[unit]: amount}))


def _wait(text: str) -> timedelta:
    match = _DURATION.match(text)
    assert match and match[2] in _UNITS, text
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _working_hours(d: Located, where: str) -> dict[int, tuple[tuple[time, time], ...]]:
    hours: dict[int, list[tuple[time, time]]] = {}
    named: dict[int, str] = {}
    for key, ranges in d.items():
        line = d.line_of(key)
        for day in parse_days(key):
            if day in named:
                raise ConfigError(d.file, line, f"{where}.{key}",
                                  f"{WEEKDAY_NAMES[day]} is also in {named[day]!r}")  # fmt: skip
            named[day] = key
            hours[day] = []
        for i, text in enumerate(ranges):
            problem = None
            try:
                lo, hi = parse_range(text)
            except ValueError:
                problem = f"{text!r} is not a time range of real times (00:00-24:00)"
            else:
                if lo == time(0) and text.startswith("24"):
                    problem = f"{text!r}: 24:00 can only end a range"
                elif hi != time(0) and hi <= lo:
                    problem = (
                        f"{text!r} ends before it starts (working hours cannot cross midnight)"
                    )
            if problem:
                raise ConfigError(d.file, ranges.line_of(i), f"{where}.{key}[{i}]", problem)
            for day in parse_days(key):
                hours[day].append((lo, hi))
    out: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, spans in hours.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            if end == time(0) or start < end:
                key = named[day]
                raise ConfigError(d.file, d.line_of(key), f"{where}.{key}",
                                  f"ranges overlap on {WEEKDAY_NAMES[day]}")  # fmt: skip
        out[day] = tuple(spans)
    return out


def _group(group_id: str, g: Located, people: Mapping[str, Any], file: str) -> SupportGroup:
    where = f"groups.{group_id}"
    quiet = []
    for i, text in enumerate(g.get("quiet_hours", [])):
        try:
            lo, hi = parse_range(text)
        except ValueError:
            raise ConfigError(file, g["quiet_hours"].line_of(i), f"{where}.quiet_hours[{i}]",
                              f"{text!r} is not a time range of real times") from None  # fmt: skip
        quiet.append(TimeRange(lo, hi))
    warnings = list(g.get("warnings", [50, 75, 100]))
    if warnings != sorted(warnings):
        raise ConfigError(
            file, g.line_of("warnings"), f"{where}.warnings", "must go up (50, 75, 100)"
        )
    ladder = []
    for i, step in enumerate(g.get("ladder", [])):
        if step["person"] not in people:
            raise ConfigError(file, g["ladder"].line_of(i), f"{where}.ladder[{i}].person",
                              f"no person {step['person']!r} in people; known: "
                              + (", ".join(sorted(people)) or "none"))  # fmt: skip
        ladder.append(LadderStep(step["person"], _wait(step["wait"])))
    sla = g["sla"]
    return SupportGroup(
        id=group_id,
        name=g["name"],
        working_hours=_working_hours(g["working_hours"], f"{where}.working_hours"),
        sla=SlaPolicy(_budget(sla["first_response"]), _budget(sla["resolution"])),
        quiet_hours=tuple(quiet),
        warnings=tuple(warnings),
        ladder=tuple(ladder),
    )


def load_cases_config(path: Path = DEFAULT_PATH) -> CasesConfig:
    """``cases.yaml`` checked against ``ivr/schemas/cases.json``, then cross-checked.

    Raises ``ConfigError`` naming file, line and field."""
    d = load_checked(path, "cases")
    timezone = d.get("timezone", "America/Bogota")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(d.file, d.line_of("timezone"), "timezone",
                          f"unknown time zone {timezone!r}") from None  # fmt: skip
    people = {
        pid: Person(pid, p["name"], p["extension"], p.get("email"))
        for pid, p in d["people"].items()
    }
    groups = {gid: _group(gid, g, people, d.file) for gid, g in d["groups"].items()}
    if d["default_group"] not in groups:
        raise ConfigError(d.file, d.line_of("default_group"), "default_group",
                          f"no group {d['default_group']!r}; known: {', '.join(sorted(groups))}")  # fmt: skip
    for gid, group in groups.items():
        if not group.working_hours or not any(group.working_hours.values()):
            raise ConfigError(d.file, d["groups"][gid].line_of("working_hours"),
                              f"groups.{gid}.working_hours", "no working range on any day")  # fmt: skip
    return CasesConfig(
        answer_within_business_days=d["answer_within_business_days"],
        default_group=d["default_group"],
        groups=groups,
        people=people,
        timezone=timezone,
        business_weekdays=frozenset(parse_days(d.get("business_days", "mon-fri"))),
    )
