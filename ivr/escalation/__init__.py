"""The SLA monitor and the escalation ladder of cases (issue 11 §3).

A case has two clocks, first response and resolution, that run in business
time (``ivr.cases.calendar``: the group's working hours, Colombian holidays).
The monitor (``monitor.SlaMonitor``, started by ``ivr serve``) warns at the
group's percentages of each clock and, when a clock runs out, climbs the
group's ladder: it phones each person in turn (``call``: an ARI originate into
our own Stasis app) until one presses 1.

Everything it decides is kept in the database (``tables``): a warning or a
ladder step is claimed by inserting a row under a unique key, so a restart or
a second controller never warns or calls twice.

Modules: ``ladder`` (pure: clock state, warnings due, the next move of a
ladder), ``summary`` (what the person hears, in Spanish), ``tables``
(migration 0008), ``monitor`` (the worker), ``call`` (the phone call),
``testclock`` (the sandbox's movable clock).
"""
