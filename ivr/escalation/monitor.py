"""The SLA monitor: a worker of ``ivr serve`` that warns and escalates open cases.

Every ``interval_s`` it reads the open cases, and for each clock of each case
(``ivr.escalation.ladder``: business time on the group's calendar):

- writes each warning due (``sla_warning`` case event, ``new`` =
  ``{"clock", "percent"}``; at 100 % also an ops alert ``sla_overrun``, which
  the console's alerts list shows like the breaker's);
- on an overrun clock, makes the ladder's next move: place a call
  (``escalation_call`` event; the call runs in its own task and writes its
  result: ``escalation_result``, and ``escalation_acknowledged`` when the person
  pressed 1), log a step skipped for quiet hours (``escalation_skipped``), give
  up a call whose controller died (``failed``), or close an exhausted ladder
  (``escalation_exhausted`` and an ops alert ``escalation_unacknowledged``).

Restarts and several controllers: nothing is kept in memory between rounds.
Each warning is claimed by a unique ``sla_marks`` row and each ladder step by a
unique ``escalation_attempts`` row, inserted in the same transaction as its
case event; whoever loses the insert does nothing (a losing call claim is
logged once as ``suppressed_duplicate``). A call claimed by a controller that
then died is given up after ``ladder.STALE_CALL`` and the ladder goes on.

Errors: a database outage (``StoreUnavailable``) skips the round with a
warning; the next round retries. A bug in one case is logged with the case
number and does not stop the others.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.cases.model import ANSWERED, ASSIGNED, OPEN, Case
from ivr.cases.sla import CLOCKS, RESOLUTION, ClockState, case_clocks
from ivr.cases.store import CaseStore
from ivr.cases.tables import CaseEventRow
from ivr.escalation import ladder
from ivr.escalation.ladder import Attempt, Step
from ivr.escalation.order import CallOrder, CallOutcome, EscalationCalls
from ivr.escalation.summary import Summary
from ivr.escalation.tables import (
    CALL,
    DUP,
    FAILED,
    SKIP,
    SKIPPED_QUIET_HOURS,
    SUPPRESSED_DUPLICATE,
    EscalationAttemptRow,
    SlaMarkRow,
)
from ivr.ops.tables import AlertRow
from ivr.store import StoreUnavailable

logger = logging.getLogger(__name__)

Marks = dict[tuple[str, str], set[str]]  # (case id, clock) -> warn:<percent> | exhausted
Attempts = dict[tuple[str, str], list[Attempt]]
PAGE = 500  # open cases read per query

SYSTEM_ACTOR, SYSTEM_ROLE = "sistema", "system"  # ivr.cases.model.SYSTEM
EXHAUSTED = "exhausted"
ALERT_OVERRUN = "sla_overrun"
ALERT_UNACKNOWLEDGED = "escalation_unacknowledged"
CLOCK_NAMES = {"first_response": "primera respuesta", "resolution": "resolución"}


class SlaMonitor:
    """See the module docstring. ``store``: the cases (its database and cases.yaml);
    ``clock``: the monitor's now (the sandbox's ``TestClock.now``, else the real
    time); ``interval_s``: seconds between rounds."""

    def __init__(
        self,
        store: CaseStore,
        calls: EscalationCalls,
        *,
        clock: Callable[[], datetime],
        interval_s: float = 5.0,
    ) -> None:
        self.store, self.db, self.config = store, store.db, store.config
        self.calls, self.clock = calls, clock
        self.interval_s = interval_s
        self._stop = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._unknown_groups: set[str] = set()

    async def run(self) -> None:
        """Rounds until ``stop()``; then the calls in progress are cancelled
        (each hangs up and records ``failed``)."""
        logger.info("SLA monitor: every %.1fs", self.interval_s)
        try:
            while not self._stop.is_set():
                try:
                    await self.tick()
                except StoreUnavailable as exc:
                    logger.warning("SLA monitor: round skipped: %s", exc)
                try:
                    await asyncio.wait_for(self._stop.wait(), self.interval_s)
                except TimeoutError:
                    pass
        finally:
            for task in list(self._calls):
                task.cancel()
            if self._calls:
                await asyncio.wait(self._calls)

    def stop(self) -> None:
        self._stop.set()

    async def idle(self) -> None:
        """Wait for the calls this monitor placed to end (tests)."""
        while self._calls:
            await asyncio.wait(set(self._calls))

    # --- one round -----------------------------------------------------------------
    async def tick(self) -> None:
        """One round over every open case."""
        now = self.clock()
        cases = await self._open_cases()
        marks, attempts = await self.db.run("read escalation state", _state_of([c.id for c in cases]))
        for case in cases:
            try:
                await self._case(case, now, marks, attempts)
            except StoreUnavailable:
                raise
            except Exception:
                logger.exception("SLA monitor: case %s", case.number)

    async def _open_cases(self) -> list[Case]:
        found: list[Case] = []
        while True:  # every case not closed, a page at a time
            page = await self.store.list(state=(OPEN, ASSIGNED, ANSWERED), limit=PAGE, offset=len(found))
            found += page
            if len(page) < PAGE:
                return found

    async def _case(
        self,
        case: Case,
        now: datetime,
        marks: dict[tuple[str, str], set[str]],
        attempts: dict[tuple[str, str], list[Attempt]],
    ) -> None:
        if case.group not in self.config.groups:
            # A group removed from cases.yaml while its cases stay open: no clock to
            # run (no calendar, no ladder); said once per group, not every round.
            if case.group not in self._unknown_groups:
                self._unknown_groups.add(case.group)
                logger.error("SLA monitor: case %s is in group %r, which cases.yaml does not "
                             "define: its clocks are not watched", case.number, case.group)  # fmt: skip
            return
        group = self.config.group(case.group)
        clocks = case_clocks(case, self.config.calendar_for(case.group), now)
        for clock in CLOCKS:
            state = clocks[clock]
            done = {int(m[5:]) for m in marks[case.id, clock] if m.startswith("warn:")}
            for percent in ladder.warnings_due(state, group.warnings, done):
                await self._warn(case, state, percent, now)
            if not ladder.overrun(state):
                continue
            steps = [
                Step(s.person, self.config.people[s.person].extension, s.wait)
                for s in group.ladder
            ]
            move = ladder.next_move(
                steps, attempts[case.id, clock], due=state.due_at, now=now,
                quiet=self.config.in_quiet_hours(case.group, now),
            )  # fmt: skip
            summary = Summary(case.number, case.site_id, clock, clocks[RESOLUTION].remaining)
            await self._move(case, clock, steps, move, now, marks[case.id, clock], summary)

    async def _move(
        self,
        case: Case,
        clock: str,
        steps: Sequence[Step],
        move: ladder.Move,
        now: datetime,
        marks: set[str],
        summary: Summary,
    ) -> None:
        if isinstance(move, ladder.Call):
            await self._call(case, clock, move.step, steps[move.step], now, summary)
        elif isinstance(move, ladder.Skip):
            await self._skip(case, clock, move.step, steps[move.step], now)
        elif isinstance(move, ladder.GiveUp):
            await self._give_up(case, move.attempt_id, now)
        elif isinstance(move, ladder.Done) and not move.acknowledged and EXHAUSTED not in marks:
            await self._exhausted(case, clock, len(steps), now)

    # --- warnings ------------------------------------------------------------------
    async def _warn(self, case: Case, state: ClockState, percent: int, now: datetime) -> None:
        name = CLOCK_NAMES[state.clock]
        detail = f"El plazo de {name} del caso {case.number} va en {percent} %."

        async def op(session: AsyncSession) -> None:
            session.add(SlaMarkRow(case_id=case.id, clock=state.clock, mark=f"warn:{percent}", at=now))
            _event(session, case.id, now, "sla_warning", {"clock": state.clock, "percent": percent}, detail)
            if percent >= 100:
                session.add(AlertRow(at=now, kind=ALERT_OVERRUN, source=f"case:{case.number}:{state.clock}",
                                     detail=f"El caso {case.number} venció su plazo de {name}."))  # fmt: skip

        if await self._claim(f"warn case {case.number}", op):
            logger.info("case %s: %s at %d %%", case.number, state.clock, percent)

    # --- the ladder ----------------------------------------------------------------
    async def _call(
        self, case: Case, clock: str, step: int, rung: Step, now: datetime, summary: Summary
    ) -> None:
        attempt_id = str(uuid.uuid4())
        order = CallOrder(attempt_id, case.number, clock, step, rung.person, rung.extension, summary)

        async def op(session: AsyncSession) -> None:
            row = _attempt(attempt_id, case.id, clock, step, CALL, rung, now, None, summary.text)
            row.channel_id = order.channel_id
            session.add(row)
            _event(session, case.id, now, "escalation_call",
                   {"clock": clock, "step": step, "person": rung.person}, summary.text)  # fmt: skip

        if not await self._claim(f"claim call of case {case.number}", op):
            await self._duplicate(case, clock, step, rung, now)
            return
        logger.info(
            "case %s: %s overrun, step %d: calling %s at %s",
            case.number, clock, step, rung.person, rung.extension,
        )  # fmt: skip
        task = asyncio.create_task(self._run_call(case.id, order), name=f"escalation-{attempt_id}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _run_call(self, case_id: str, order: CallOrder) -> None:
        try:
            outcome = await self.calls.place(order)
        except asyncio.CancelledError:
            outcome = CallOutcome(FAILED, detail="controlador detenido durante la llamada")
            await asyncio.shield(self._finish(case_id, order, outcome))
            raise
        await self._finish(case_id, order, outcome)

    async def _finish(self, case_id: str, order: CallOrder, outcome: CallOutcome) -> None:
        now = self.clock()

        async def op(session: AsyncSession) -> None:
            await session.execute(
                update(EscalationAttemptRow)
                .where(EscalationAttemptRow.id == order.attempt_id, EscalationAttemptRow.result.is_(None))
                .values(result=outcome.result, answered_at=outcome.answered_at,
                        acknowledged_at=outcome.acknowledged_at, ended_at=now,
                        detail=outcome.detail or order.summary.text)
            )  # fmt: skip
            new = {"clock": order.clock, "step": order.step, "person": order.person,
                   "result": outcome.result}  # fmt: skip
            _event(session, case_id, now, "escalation_result", new, outcome.detail)
            if outcome.acknowledged_at is not None:
                _event(session, case_id, now, "escalation_acknowledged", new,
                       f"{order.person} confirmó que atiende el caso {order.case_number}.",
                       actor=order.person, role="support")  # fmt: skip

        try:
            await self.db.run(f"record call of case {order.case_number}", op)
        except StoreUnavailable as exc:
            # The row stays "in progress" and is given up after STALE_CALL.
            logger.error("case %s: call result %s not recorded: %s", order.case_number, outcome.result, exc)
            return
        logger.info(
            "case %s: %s step %d (%s): %s %s",
            order.case_number, order.clock, order.step, order.person, outcome.result, outcome.detail,
        )  # fmt: skip

    async def _skip(self, case: Case, clock: str, step: int, rung: Step, now: datetime) -> None:
        detail = "Horario de silencio del grupo: se llamará al terminar."

        async def op(session: AsyncSession) -> None:
            session.add(_attempt(str(uuid.uuid4()), case.id, clock, step, SKIP, rung, now,
                                 SKIPPED_QUIET_HOURS, detail))  # fmt: skip
            _event(session, case.id, now, "escalation_skipped",
                   {"clock": clock, "step": step, "person": rung.person}, detail)  # fmt: skip

        if await self._claim(f"skip a step of case {case.number}", op):
            logger.info("case %s: %s step %d skipped (quiet hours)", case.number, clock, step)

    async def _duplicate(self, case: Case, clock: str, step: int, rung: Step, now: datetime) -> None:
        async def op(session: AsyncSession) -> None:
            session.add(_attempt(str(uuid.uuid4()), case.id, clock, step, DUP, rung, now,
                                 SUPPRESSED_DUPLICATE, "Otro monitor ya hizo esta llamada."))  # fmt: skip

        await self._claim(f"log a duplicate of case {case.number}", op)
        logger.info("case %s: %s step %d already claimed; not calling", case.number, clock, step)

    async def _give_up(self, case: Case, attempt_id: str, now: datetime) -> None:
        async def op(session: AsyncSession) -> None:
            await session.execute(
                update(EscalationAttemptRow)
                .where(EscalationAttemptRow.id == attempt_id, EscalationAttemptRow.result.is_(None))
                .values(result=FAILED, ended_at=now,
                        detail="Sin resultado: el controlador se detuvo durante la llamada.")
            )  # fmt: skip

        await self.db.run(f"give up a call of case {case.number}", op)
        logger.warning("case %s: call %s never finished; recorded as failed", case.number, attempt_id)

    async def _exhausted(self, case: Case, clock: str, steps: int, now: datetime) -> None:
        detail = f"Nadie confirmó el caso {case.number} ({CLOCK_NAMES[clock]}) tras {steps} llamada(s)."

        async def op(session: AsyncSession) -> None:
            session.add(SlaMarkRow(case_id=case.id, clock=clock, mark=EXHAUSTED, at=now))
            _event(session, case.id, now, "escalation_exhausted", {"clock": clock, "steps": steps}, detail)
            session.add(AlertRow(at=now, kind=ALERT_UNACKNOWLEDGED,
                                 source=f"case:{case.number}:{clock}", detail=detail))  # fmt: skip

        if await self._claim(f"close the ladder of case {case.number}", op):
            logger.warning("case %s: %s ladder exhausted without acknowledgement", case.number, clock)

    async def _claim(self, what: str, op: Callable[[AsyncSession], Any]) -> bool:
        """Run ``op`` (whose inserts carry a unique key); False when another
        monitor (or an earlier round) already did it."""
        try:
            await self.db.run(what, op)
        except IntegrityError:
            return False
        return True


def _state_of(
    ids: list[str],
) -> Callable[[AsyncSession], Awaitable[tuple[Marks, Attempts]]]:
    """The marks and attempts of the cases ``ids``, by (case id, clock)."""

    async def op(session: AsyncSession) -> tuple[Marks, Attempts]:
        marks: Marks = defaultdict(set)
        attempts: Attempts = defaultdict(list)
        if not ids:
            return marks, attempts
        found = await session.execute(select(SlaMarkRow).where(SlaMarkRow.case_id.in_(ids)))
        for m in found.scalars():
            marks[m.case_id, m.clock].add(m.mark)
        rows = await session.execute(
            select(EscalationAttemptRow).where(EscalationAttemptRow.case_id.in_(ids))
        )
        for a in rows.scalars():
            attempts[a.case_id, a.clock].append(
                Attempt(a.step, a.kind, a.started_at, a.ended_at, a.result, a.id)
            )
        return marks, attempts

    return op


def _attempt(
    attempt_id: str, case_id: str, clock: str, step: int, kind: str, rung: Step,
    now: datetime, result: str | None, detail: str,
) -> EscalationAttemptRow:  # fmt: skip
    return EscalationAttemptRow(
        id=attempt_id, case_id=case_id, clock=clock, step=step, kind=kind, person=rung.person,
        extension=rung.extension, channel_id=None, started_at=now, result=result, detail=detail,
        ended_at=now if result is not None else None,
    )  # fmt: skip


def _event(
    session: AsyncSession, case_id: str, at: datetime, action: str, new: dict[str, Any],
    detail: str, *, actor: str = SYSTEM_ACTOR, role: str = SYSTEM_ROLE,
) -> None:  # fmt: skip
    session.add(CaseEventRow(case_id=case_id, at=at, actor=actor, role=role, action=action,
                             old=None, new=new, detail=detail))  # fmt: skip
