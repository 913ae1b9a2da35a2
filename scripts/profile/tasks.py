import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ivr.bench.profile import merged, by_process, read_collapsed
stacks = read_collapsed(Path(sys.argv[1]))
stacks = merged(by_process(stacks))  # a --subprocesses recording: every process
main = {s: c for s, c in stacks.items() if s[0].startswith("_run_module_as_main")
        and not any(f.startswith("serve (ivr/controller.py") for f in s)
        and any(f.startswith("Runner.run ") for f in s)}  # asyncio or uvloop
N = sum(main.values())
out = {}
for s, c in main.items():
    # asyncio: ... Runner.run;run_until_complete;run_forever;_run_once;Handle._run;<task>
    # uvloop: the loop is C, so the task's outermost frame follows Runner.run
    loop_frames = [i for i, f in enumerate(s) if f.startswith("BaseEventLoop._run_once")]
    if not loop_frames:
        i = max(i for i, f in enumerate(s) if f.startswith("Runner.run "))
        k = s[i + 1] if i + 1 < len(s) else "(Runner.run)"
        out[k] = out.get(k, 0) + c
        continue
    i = max(loop_frames)
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
