import json, sys
name = sys.argv[1]
rows = [json.loads(l) for l in open(f"{name}.timeline.jsonl")]
# baseline: last snapshot with no StasisStart yet (after startup's migrations/seeding)
base = [r for r in rows if r["events"].get("StasisStart", 0) == 0]
b = base[-1] if base else {"events": {}, "requests": {}, "sql": {}, "sql_statements": {}, "ami": {}}
b.setdefault("ami", {})
e = rows[-1]
def d(k): return {x: e[k][x] - b[k].get(x, 0) for x in e[k] if e[k][x] - b[k].get(x, 0)}
ev, rq, sq, ss = d("events"), d("requests"), d("sql"), d("sql_statements")
calls = ev.get("StasisStart", 0)
print("calls (StasisStart):", calls)
print(f"\nevents/call total {sum(ev.values())/calls:.2f}")
for k, v in sorted(ev.items(), key=lambda kv: -kv[1]): print(f"  {v/calls:6.2f}  {k}")
print(f"\nrequests/call total {sum(rq.values())/calls:.2f}")
for k, v in sorted(rq.items(), key=lambda kv: -kv[1]): print(f"  {v/calls:6.2f}  {k}")
print(f"\nSQL statements/call total {sum(sq.values())/calls:.2f}")
for k, v in sorted(sq.items(), key=lambda kv: -kv[1]): print(f"  {v/calls:6.2f}  {k}")
am = d("ami") if "ami" in e else {}
print(f"\nAMI events/call total {sum(am.values())/calls:.2f}")
for k, v in sorted(am.items(), key=lambda kv: -kv[1]): print(f"  {v/calls:6.2f}  {k}")
print("\nstatements:")
for k, v in sorted(ss.items(), key=lambda kv: -kv[1])[:40]: print(f"  {v/calls:6.2f}  {k}")
