import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ivr.bench.profile import read_collapsed
stacks = read_collapsed(Path(sys.argv[1]))
main = {s: c for s, c in stacks.items() if s[0].startswith("_run_module_as_main")
        and not any(f.startswith("serve (ivr/controller.py") for f in s)
        and any(f.startswith("BaseEventLoop._run_once") for f in s)}
N = sum(main.values())
out = {}
for s, c in main.items():
    i = max(i for i, f in enumerate(s) if f.startswith("BaseEventLoop._run_once"))
    rest = s[i + 1:]
    if not rest:
        k = "(loop itself: _run_once)"
    elif rest[0].startswith("Handle._run"):
        k = rest[1] if len(rest) > 1 else "(Handle._run)"
        # name the task by its outermost coroutine frame
        if k.startswith(("Task.__step", "Task.task_wakeup")) and len(rest) > 2:
            k = "task: " + rest[2]
        elif len(rest) > 2 and k.startswith("_SelectorSocketTransport._read_ready"):
            k = "socket read: " + next((f for f in rest[2:] if "data_received" in f and "selector_events" not in f), rest[-1])
    else:
        k = rest[0]
    out[k] = out.get(k, 0) + c
print(f"main-thread steady samples {N}")
for k, v in sorted(out.items(), key=lambda kv: -kv[1])[:30]:
    print(f"{100*v/N:5.1f} %  {k}")
