# The collector's pauses in an `ivr serve` process (run t54, docs/PERFORMANCE.md):
# with PYTHONPATH=scripts/profile/gc and GC_OUT=<prefix>, every second rewrites
# <prefix>.<pid> as JSON: per generation the collections ("n"), their seconds
# ("t") and the longest ("max"), counted from the process's start. Read two
# snapshots and subtract.
import os
import sys

if "serve" in sys.argv and os.environ.get("GC_OUT"):
    import gc
    import json
    import threading
    import time

    _stats = {"n": [0, 0, 0], "t": [0.0, 0.0, 0.0], "max": [0.0, 0.0, 0.0]}
    _started = [0.0]

    def _on_gc(phase, info):
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        gen, took = info["generation"], time.perf_counter() - _started[0]
        _stats["n"][gen] += 1
        _stats["t"][gen] += took
        _stats["max"][gen] = max(_stats["max"][gen], took)

    def _dump():
        path = f"{os.environ['GC_OUT']}.{os.getpid()}"
        while True:
            time.sleep(1)
            with open(path, "w") as f:
                json.dump({**_stats, "at": time.time()}, f)

    gc.callbacks.append(_on_gc)
    threading.Thread(target=_dump, name="gc-probe", daemon=True).start()

    # GC_FREEZE_AFTER=<s>: gc.collect() then gc.freeze() once, that many seconds after
    # the start (the process built, before the bench's calls): run t54-gc-freeze.
    def _freeze_later(delay: float) -> None:
        time.sleep(delay)
        gc.collect()
        gc.freeze()

    if os.environ.get("GC_FREEZE_AFTER"):
        threading.Thread(
            target=_freeze_later, args=(float(os.environ["GC_FREEZE_AFTER"]),), daemon=True
        ).start()
