"""The three lines the benchmark calls, and what a caller does on each.

- ``citas``: the real citas flow over ARI (4441234). The caller is Ana
  (3001234567, a target affiliate of site ``norte``, found by caller ID);
  she waits out the promotional audio, picks service 1, hears the first slot
  offered, and declines it with 0. A target caller who declines is sent to
  the WhatsApp assistant: one SMS is queued, the redirect audio plays and the
  IVR hangs up (outcome ``redirected_whatsapp``). Declining books nothing, so
  the finite demo slots are never used up and every step sees the same flow:
  caller-ID lookup, menu, eligibility, a slot search, the spoken slot, the SMS
  outbox write, two call-record writes.
- ``smoke-ari``: the smoke menu over ARI (4440001): press 1, hear it
  confirmed, goodbye (outcome ``completed``).
- ``smoke-dialplan``: the same menu in plain dialplan (4440002): the ceiling.

Each caller presses its keys at fixed times and then waits for the IVR's BYE
for at most ``bye_within`` seconds: a key the IVR missed makes it re-prompt,
which takes longer than that, so a missed key fails the call at the SIP level
even on the plain-dialplan line, which keeps no record.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.scenarios.spec import Expect, Scenario, Step

CITAS_CALLER = "3001234567"  # Ana: target, site norte (the site with demo slots)


@dataclass(frozen=True)
class Line:
    name: str
    title: str
    dial: str
    steps: tuple[Step, ...]
    bye_within: float  # seconds from the last key to the IVR's BYE
    outcome: str | None  # the call record's outcome; None: no controller, no record
    caller_id: str = CITAS_CALLER

    @property
    def uses_controller(self) -> bool:
        return self.outcome is not None

    def scenario(self) -> Scenario:
        """The sipp caller, as a tester scenario (``caller_xml`` writes its XML)."""
        return Scenario(
            name=f"bench-{self.name}",
            description=self.title,
            dial=self.dial,
            caller_ids=(self.caller_id,),
            steps=self.steps,
            ends_by="ivr",
            agent=False,
            controller=self.uses_controller,
            expect=Expect(record=self.uses_controller, outcome=self.outcome),
            timeout=self.bye_within,
        )

    def nominal_seconds(self) -> float:
        """The caller's own pauses plus the BYE wait: an upper bound for one call."""
        waits = sum(s.seconds for s in self.steps if s.kind == "wait")
        return waits + self.bye_within + 2.0


CITAS = Line(
    name="citas",
    title="citas flow over ARI (4441234): menu 1, service 1, decline the slot, WhatsApp redirect",
    dial="4441234",
    steps=(
        Step("wait", seconds=10.0),  # the promotional audio (no barge-in) plays out
        Step("dtmf", digits="1"),  # main menu: pedir una cita
        Step("wait", seconds=2.0),  # into the service menu
        Step("dtmf", digits="1"),  # service: medicina general primera vez
        Step("wait", seconds=3.0),  # into the slot offer
        Step("dtmf", digits="0"),  # decline: WhatsApp redirect, no slot taken
    ),
    bye_within=28.0,  # redirect + goodbye audio ≈ 15 s; a missed 0 re-offers for longer
    outcome="redirected_whatsapp",
)

SMOKE_ARI = Line(
    name="smoke-ari",
    title="smoke menu over ARI (4440001): press 1, confirm, goodbye",
    dial="4440001",
    steps=(Step("wait", seconds=3.0), Step("dtmf", digits="1")),
    bye_within=12.0,  # confirmation + goodbye ≈ 6.6 s; a missed key re-prompts after 5 s more
    outcome="completed",
)

SMOKE_DIALPLAN = Line(
    name="smoke-dialplan",
    title="the same smoke menu in plain dialplan (4440002): the ceiling",
    dial="4440002",
    steps=(Step("wait", seconds=3.0), Step("dtmf", digits="1")),
    bye_within=12.0,
    outcome=None,
)

LINES: dict[str, Line] = {line.name: line for line in (SMOKE_DIALPLAN, SMOKE_ARI, CITAS)}

# The chat line (``ivr.bench.chat``): no sipp caller, no dial; the serving process
# answers it, so it "uses the controller". Its steps are N WhatsApp contacts.
CHAT = Line(
    name="chat",
    title="citas flow on WhatsApp through the simulator: Hola, pedir una cita, service 1, "
    "decline the slot",
    dial="",
    steps=(),
    bye_within=0.0,
    outcome="chat",
)
ALL_LINES: tuple[str, ...] = (*LINES, CHAT.name)
