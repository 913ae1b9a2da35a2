import sys, json
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ivr.bench.profile import merged, by_process, read_collapsed, top_frames, top_self, by_area, under
name = sys.argv[1]
stacks = read_collapsed(Path(name))
stacks = merged(by_process(stacks))  # a --subprocesses recording: every process
allN = sum(stacks.values())
# steady state: drop startup/shutdown (stacks inside serve() itself) and the probe thread
steady = {s: c for s, c in stacks.items() if not any(f.startswith("serve (ivr/controller.py") for f in s)
          and not any(f.startswith("dumper (") for f in s)
          and any(f.startswith(("Runner.run ", "Thread.run")) for f in s)}  # asyncio or uvloop
N = sum(steady.values())
main = {s: c for s, c in steady.items() if s[0].startswith("_run_module_as_main")}
threads = {s: c for s, c in steady.items() if not s[0].startswith("_run_module_as_main")}
print(f"main thread (event loop) {sum(main.values())} samples = {100*sum(main.values())/N:.1f} %, other threads {sum(threads.values())}")
tl = {}
for s_, c in threads.items():
    k = s_[-1]
    tl[k] = tl.get(k, 0) + c
print("other threads by leaf:")
for k, v in sorted(tl.items(), key=lambda kv: -kv[1])[:6]: print(f"   {v:6d} {k}")
if len(sys.argv) > 2 and sys.argv[2] == "main":
    steady = main; N = sum(main.values()); print("### MAIN THREAD ONLY below")
print(f"samples all {allN}, steady {N}")
print("\n## by area (self)")
for a, s in by_area(steady): print(f"{a:20s} {100*s:5.1f} %")
print("\n## top self")
for f, s in top_self(steady, 40): print(f"{100*s:5.1f} %  {f}")
print("\n## top cumulative")
for f, s, c in top_frames(steady, 70): print(f"{100*c:5.1f} % cum {100*s:5.1f} % self  {f}")

print("\n## cumulative under")
for needle in ["panoramisk/", "aiosqlite/core.py", "sqlalchemy/", "ivr/store/records.py", "EventStream._deliver", "json/", "logging/", "aiohttp/", "VoiceChannel", "FlowEngine.run", "CallRouter", "ReactionTimer", "prometheus", "ivr/citas/", "ivr/booking/", "ivr/sms/", "ivr/ops/", "importlib", "_connection_worker_thread", "Connection._execute (aiosqlite", "Database.run", "ivr/desk/"]:
    print(f"{100*under(steady, needle):5.1f} %  {needle}")
