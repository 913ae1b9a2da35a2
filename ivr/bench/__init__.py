"""``ivr bench``: capacity and reaction time of the IVR, against plain dialplan.

``lines`` says what each simulated caller does, ``runner`` drives sipp, the
sandbox and the controller, ``stats`` turns measurements into figures,
``plot`` draws them. See docs/PERFORMANCE.md.
"""
