# Deterministic call counts of an `ivr serve` process's event loop (the main thread):
# with PYTHONPATH=scripts/profile/cprof and CPROF_OUT=<file>, SIGUSR1 starts cProfile
# on the main thread and SIGUSR2 stops it and writes <file>.<pid> (pstats). Used by
# step.sh with CPROF=1 (run s4, docs/PERFORMANCE.md): py-spy's and perf's samples say
# where the CPU is, this says how many Python calls a bench call costs and which.
import os
import sys

if "serve" in sys.argv and os.environ.get("CPROF_OUT"):
    import cProfile
    import signal

    _profile = cProfile.Profile()

    def _start(signum, frame):
        _profile.enable()

    def _stop(signum, frame):
        _profile.disable()
        _profile.dump_stats(f"{os.environ['CPROF_OUT']}.{os.getpid()}")

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
